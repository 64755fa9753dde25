// Package daemontest is test support for running the gateway: a socket
// that plays systemd's notification socket (sd_notify(3)), and waiting
// for what the gateway does.
package daemontest

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// NotifySocket listens where systemd would (NOTIFY_SOCKET=Path) and keeps
// the messages, until the test ends.
type NotifySocket struct {
	Path string

	mu   sync.Mutex
	msgs []string
}

// ListenNotify opens a notification socket for the test.
func ListenNotify(t testing.TB) *NotifySocket {
	t.Helper()
	// Socket paths are limited to 108 bytes: t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	n := &NotifySocket{Path: filepath.Join(dir, "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.Path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = conn.Close(); <-done })
	return n
}

// Messages returns the messages received so far, in order.
func (n *NotifySocket) Messages() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.msgs)
}

// Count counts the messages equal to msg.
func (n *NotifySocket) Count(msg string) int {
	c := 0
	for _, m := range n.Messages() {
		if m == msg {
			c++
		}
	}
	return c
}

// All is every message so far, for error messages.
func (n *NotifySocket) All() string { return strings.Join(n.Messages(), " ") }

// Eventually polls cond until it holds, failing the test after timeout
// with what did not happen.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		<-tick.C
	}
}
