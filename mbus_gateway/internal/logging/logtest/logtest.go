// Package logtest is test support for capturing log output: a buffer that
// the goroutines under test write to while the test reads it.
package logtest

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Buffer collects what concurrent writers (loggers, a child process's
// stdout) write, for the test to read at any time. A bytes.Buffer alone
// would race. The zero value is an empty buffer ready for use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// wrote is closed and replaced by each Write, waking WaitCount.
	wrote chan struct{}
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wrote != nil {
		close(b.wrote)
		b.wrote = nil
	}
	return b.b.Write(p)
}

// WaitCount waits until s occurs at least n times in what was written and
// returns nil, or an error saying how many were seen when timeout passes
// first.
func (b *Buffer) WaitCount(s string, n int, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		got := strings.Count(b.b.String(), s)
		if got >= n {
			b.mu.Unlock()
			return nil
		}
		if b.wrote == nil {
			b.wrote = make(chan struct{})
		}
		wrote := b.wrote
		b.mu.Unlock()
		select {
		case <-wrote:
		case <-deadline.C:
			return fmt.Errorf("%q: seen %d times in %v, want %d", s, got, timeout, n)
		}
	}
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Count returns how many times s occurs in what was written so far.
func (b *Buffer) Count(s string) int { return strings.Count(b.String(), s) }
