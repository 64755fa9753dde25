package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// notifySocket listens where systemd would and keeps the messages.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// Socket paths are limited to 108 bytes: t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	n := &notifySocket{path: filepath.Join(dir, "notify")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
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

func (n *notifySocket) count(msg string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, m := range n.msgs {
		if m == msg {
			c++
		}
	}
	return c
}

// TestRunNotifiesSystemd: READY=1 once listening, WATCHDOG=1 while the bus
// loop works, STOPPING=1 on the way out.
func TestRunNotifiesSystemd(t *testing.T) {
	broker := mosquittotest.Start(t)
	dir := t.TempDir()
	path, _ := gatewayOptions(t, dir, startBus(t), broker, map[string]any{"meters": []map[string]any{{"address": "1"}}})
	sock := listenNotify(t)
	p := start(t, hermeticEnv("NOTIFY_SOCKET="+sock.path, "WATCHDOG_USEC=200000"), "run", "--config", path)
	eventually(t, 10*time.Second, "READY=1 and three WATCHDOG=1", func() bool {
		return sock.count("READY=1") == 1 && sock.count("WATCHDOG=1") >= 3
	})
	stop(t, p)
	if got := sock.count("STOPPING=1"); got != 1 {
		t.Errorf("STOPPING=1: got %d, want 1 (all: %s)", got, sock.all())
	}
}

func (n *notifySocket) all() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.msgs, " ")
}
