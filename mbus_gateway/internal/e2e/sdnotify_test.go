package e2e

import (
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/daemon/daemontest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// TestRunNotifiesSystemd: READY=1 once listening, WATCHDOG=1 while the bus
// loop works, STOPPING=1 on the way out.
func TestRunNotifiesSystemd(t *testing.T) {
	broker := mosquittotest.Start(t)
	dir := t.TempDir()
	path, _ := gatewayOptions(t, dir, startBus(t), broker, map[string]any{"meters": []map[string]any{{"address": "1"}}})
	sock := daemontest.ListenNotify(t)
	p := start(t, hermeticEnv("NOTIFY_SOCKET="+sock.Path, "WATCHDOG_USEC=200000"), "run", "--config", path)
	eventually(t, 10*time.Second, "READY=1 and three WATCHDOG=1", func() bool {
		return sock.Count("READY=1") == 1 && sock.Count("WATCHDOG=1") >= 3
	})
	stop(t, p)
	if got := sock.Count("STOPPING=1"); got != 1 {
		t.Errorf("STOPPING=1: got %d, want 1 (all: %s)", got, sock.All())
	}
}
