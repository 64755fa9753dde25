package daemon

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/daemon/daemontest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim/simtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// TestShutdown: when its context ends (SIGTERM), the gateway tells
// systemd, publishes "offline" (retained), delivers what it read and
// closes the database cleanly, within the time the Supervisor gives.
// Before, it told systemd it was ready and kept the watchdog fed.
func TestShutdown(t *testing.T) {
	broker := mosquittotest.Start(t)
	rec := mosquittotest.Subscribe(t, broker.URL(), "mbus/#")
	notify := daemontest.ListenNotify(t)
	dataDir := t.TempDir()
	// One meter read once a minute: read at the start and not again
	// before the stop, so that the outbox is known to be empty after it.
	o := testOptions(t, simtest.ServeDemo(t), broker.Addr(), dataDir, map[string]any{
		"poll_interval": 60,
		"meters":        []map[string]any{{"address": "1"}},
	})
	gw := startGateway(t, o, Deps{
		Getenv: env("NOTIFY_SOCKET", notify.Path, "WATCHDOG_USEC", "100000"),
	})

	rec.WaitFor("mbus/bridge/state", func(m mosquittotest.Message) bool { return string(m.Payload) == "online" }, 20*time.Second)
	rec.WaitFor("mbus/kam_06855817/reading", nil, 20*time.Second)
	var st status
	daemontest.Eventually(t, 20*time.Second, "the reading acknowledged", func() bool {
		return gw.get("status", &st) == http.StatusOK && st.Outbox.Depth != nil && *st.Outbox.Depth == 0
	})
	daemontest.Eventually(t, 10*time.Second, "systemd told ready and fed the watchdog", func() bool {
		m := notify.Messages()
		return len(m) > 0 && m[0] == sdReady && slices.Contains(m, sdWatchdog)
	})

	if err := gw.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	daemontest.Eventually(t, 5*time.Second, "systemd told stopping", func() bool {
		m := notify.Messages()
		return m[len(m)-1] == sdStopping
	})
	rec.WaitFor("mbus/bridge/state", func(m mosquittotest.Message) bool { return string(m.Payload) == "offline" }, 5*time.Second)
	after := mosquittotest.Subscribe(t, broker.URL(), "mbus/bridge/state")
	if got := after.WaitFor("mbus/bridge/state", nil, 5*time.Second); string(got.Payload) != "offline" || !got.Retained {
		t.Errorf("mbus/bridge/state after the stop: got %q retained %v, want offline retained", got.Payload, got.Retained)
	}
	if gw.log.Count("stopped") != 1 {
		t.Error(`log: no "stopped"`)
	}

	// Closed cleanly: SQLite folds the write-ahead log into the file and
	// removes it when the last connection closes.
	db := filepath.Join(dataDir, storeFile)
	if _, err := os.Stat(db + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s-wal after the stop: %v, want it gone", db, err)
	}
	s, err := store.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	depth, err := s.Depth(t.Context())
	if err != nil || depth != 0 {
		t.Errorf("outbox after the stop: %d rows, %v; want every reading delivered", depth, err)
	}
}
