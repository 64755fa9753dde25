package daemon

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/daemon/daemontest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim/simtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// TestStartWaitsForTheDatabase: the web side listens and answers before
// the database opens, and says why it does not; nothing that needs the
// database exists yet (no MQTT connection, no reading, no meter added).
// Once the directory can be created, the same run opens the database and
// everything else starts.
func TestStartWaitsForTheDatabase(t *testing.T) {
	broker := mosquittotest.Start(t)
	rec := mosquittotest.Subscribe(t, broker.URL(), "mbus/#")
	// A file where the data directory's parent should be: the directory
	// cannot be created until the file is gone.
	blocker := filepath.Join(t.TempDir(), "blocker")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(blocker, "data")
	gw := startGateway(t, testOptions(t, simtest.ServeDemo(t), broker.Addr(), dataDir, nil), Deps{})

	var h health
	daemontest.Eventually(t, 20*time.Second, "/health names the database", func() bool {
		return gw.get("health", &h) == http.StatusServiceUnavailable && len(h.Problems) > 0 &&
			strings.Contains(strings.Join(h.Problems, "\n"), "cannot open the database")
	})
	if p := strings.Join(h.Problems, "\n"); !strings.Contains(p, dataDir) || !strings.Contains(p, "writable") {
		t.Errorf("/health problems %q: want the file and what to do (check that the directory … is writable)", p)
	}
	var st status
	if code := gw.get("status", &st); code != http.StatusOK {
		t.Fatalf("/status: got %d, want 200 while waiting for the database", code)
	}
	if !slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.Contains(w, "cannot open the database") }) {
		t.Errorf("/status warnings %q: want why the database does not open", st.Warnings)
	}
	if st.Broker == nil || st.Broker.Connected || !strings.Contains(st.Broker.LastError, "database") {
		t.Errorf("/status broker %+v: want not connected until the database is open", st.Broker)
	}
	if st.read() != 0 {
		t.Errorf("/status: %d meters read before the database opened, want none", st.read())
	}
	if code := gw.post("meters", map[string]string{"address": "5"}, nil); code == http.StatusCreated {
		t.Error("POST /meters: a meter was added before the database opened")
	}
	if got := rec.Messages("mbus/bridge/state"); len(got) != 0 {
		t.Errorf("mbus/bridge/state: got %d messages before the database opened, want none", len(got))
	}

	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	// The retries wait 1 s, 2 s, 4 s, … : the next one opens it.
	rec.WaitFor("mbus/bridge/state", func(m mosquittotest.Message) bool { return string(m.Payload) == "online" }, 30*time.Second)
	daemontest.Eventually(t, 20*time.Second, "/health ok once the database opened", func() bool {
		return gw.get("health", &h) == http.StatusOK
	})
	daemontest.Eventually(t, 20*time.Second, "both meters read", func() bool {
		return gw.get("status", &st) == http.StatusOK && st.read() == 2
	})
	if slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.Contains(w, "database") }) {
		t.Errorf("/status warnings %q: the database warning stayed after it opened", st.Warnings)
	}
	if n := gw.log.Count("database opened: recovered"); n != 1 {
		t.Errorf("log: %d lines say the database recovered, want 1", n)
	}
	if err := gw.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestStartWithBrokerDown: without a broker the gateway reads the meters
// into the outbox and is healthy (a restart would not bring the broker
// back); /status says why nothing is published. When the broker comes,
// the outbox is delivered.
func TestStartWithBrokerDown(t *testing.T) {
	broker := mosquittotest.Start(t)
	broker.Stop()
	gw := startGateway(t, testOptions(t, simtest.ServeDemo(t), broker.Addr(), t.TempDir(), nil), Deps{})

	var st status
	daemontest.Eventually(t, 20*time.Second, "both meters read into the outbox", func() bool {
		return gw.get("status", &st) == http.StatusOK && st.read() == 2 && st.Outbox.Depth != nil && *st.Outbox.Depth >= 2
	})
	if st.Broker == nil || st.Broker.Connected {
		t.Errorf("/status broker %+v: want not connected", st.Broker)
	}
	daemontest.Eventually(t, 20*time.Second, "/status says why the broker is not connected", func() bool {
		return gw.get("status", &st) == http.StatusOK && st.Broker != nil && st.Broker.LastError != ""
	})
	var h health
	if code := gw.get("health", &h); code != http.StatusOK {
		t.Errorf("/health with the broker down: got %d %v, want 200", code, h.Problems)
	}

	broker.Start()
	// The bridge state is retained: a late subscriber sees it too.
	rec := mosquittotest.Subscribe(t, broker.URL(), "mbus/#")
	rec.WaitFor("mbus/bridge/state", func(m mosquittotest.Message) bool { return string(m.Payload) == "online" }, 30*time.Second)
	daemontest.Eventually(t, 30*time.Second, "the outbox delivered", func() bool {
		return gw.get("status", &st) == http.StatusOK && st.Outbox.Depth != nil && *st.Outbox.Depth == 0
	})
	if err := gw.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestRunSetupErrors: what the options and the environment decide alone
// fails before anything starts, with an error naming the cause, not
// marked as logged (the caller prints it).
func TestRunSetupErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		set  map[string]any
		env  []string
		want string
	}{
		{"no broker outside the add-on", map[string]any{"mqtt": map[string]any{}}, nil, "mqtt.host: empty, and not running as a Home Assistant add-on"},
		{"relative NOTIFY_SOCKET", nil, []string{"NOTIFY_SOCKET", "notify.sock"}, `NOTIFY_SOCKET "notify.sock"`},
		{"bad WATCHDOG_USEC", nil, []string{"NOTIFY_SOCKET", "/run/notify", "WATCHDOG_USEC", "soon"}, `WATCHDOG_USEC "soon"`},
		{"bad page cap", nil, []string{dbMaxPagesEnv, "-1"}, dbMaxPagesEnv + `: want a positive number of pages, got "-1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t, "127.0.0.1:1", "127.0.0.1:1883", filepath.Join(dir, "data"), tc.set)
			var log strings.Builder
			err := Run(t.Context(), o, Deps{LogOut: &log, Getenv: env(tc.env...)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: got %v, want an error containing %q", err, tc.want)
			}
			if errors.Is(err, ErrLogged) {
				t.Errorf("Run: %v is marked as logged, but the log cannot have it", err)
			}
			if _, serr := os.Stat(filepath.Join(dir, "data")); serr == nil {
				t.Error("the data directory was created although the start failed before")
			}
		})
	}
}

// TestAddedMeterSurvivesRestart: a meter added on the status page is kept
// in the store's table and read again after a restart; adding it twice is
// a conflict.
func TestAddedMeterSurvivesRestart(t *testing.T) {
	broker := mosquittotest.Start(t)
	bus := simtest.ServeDemo(t)
	dataDir := t.TempDir()
	o := testOptions(t, bus, broker.Addr(), dataDir, nil)

	gw := startGateway(t, o, Deps{})
	var st status
	daemontest.Eventually(t, 20*time.Second, "the configured meters read", func() bool {
		return gw.get("status", &st) == http.StatusOK && st.read() == 2
	})
	if code := gw.post("meters", map[string]string{"address": "5", "name": "Added"}, nil); code != http.StatusCreated {
		t.Fatalf("POST /meters: got %d, want 201", code)
	}
	if code := gw.post("meters", map[string]string{"address": "5"}, nil); code != http.StatusConflict {
		t.Errorf("POST /meters again: got %d, want 409", code)
	}
	if code := gw.post("meters", map[string]string{"address": "1"}, nil); code != http.StatusConflict {
		t.Errorf("POST /meters of a configured meter: got %d, want 409", code)
	}
	if err := gw.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	s, err := store.Open(t.Context(), filepath.Join(dataDir, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	added, err := s.AddedMeters(t.Context())
	if cerr := s.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil || len(added) != 1 || added[0] != (store.AddedMeter{Address: "5", Name: "Added"}) {
		t.Errorf("store: added meters %+v, %v; want meter 5 named Added", added, err)
	}

	again := startGateway(t, o, Deps{})
	daemontest.Eventually(t, 20*time.Second, "three meters read after the restart", func() bool {
		return again.get("status", &st) == http.StatusOK && st.read() == 3
	})
	if !slices.ContainsFunc(st.Meters, func(m meterStatus) bool { return m.Address == "5" && m.Name == "Added" }) {
		t.Errorf("/status meters %+v: want meter 5 named Added", st.Meters)
	}
	if err := again.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}
