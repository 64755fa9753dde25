// Package logtest is test support for capturing log output: a buffer that
// the goroutines under test write to while the test reads it.
package logtest

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects what concurrent writers (loggers, a child process's
// stdout) write, for the test to read at any time. A bytes.Buffer alone
// would race. The zero value is an empty buffer ready for use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Count returns how many times s occurs in what was written so far.
func (b *Buffer) Count(s string) int { return strings.Count(b.String(), s) }
