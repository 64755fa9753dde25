package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// gatewayOptions are options for a gateway on bus with broker, keeping
// its data in dir; extra entries are added or replace defaults.
func gatewayOptions(t *testing.T, dir, bus string, broker *mosquittotest.Broker, extra map[string]any) (path string, metricsPort int) {
	t.Helper()
	metricsPort = freePort(t)
	host, port, _ := strings.Cut(broker.Addr(), ":")
	o := map[string]any{
		"tcp_address":   bus,
		"baudrate":      38400, // the simulator is not paced; short timeouts keep scans short
		"poll_interval": 5,
		"mqtt":          map[string]any{"host": host, "port": mustAtoi(t, port)},
		"data_dir":      dir,
		"web_port":      freePort(t),
		"metrics_port":  metricsPort,
	}
	for k, v := range extra {
		o[k] = v
	}
	return writeOptions(t, dir, o), metricsPort
}

// stop ends p with SIGTERM and checks the exit code.
func stop(t *testing.T, p *process) {
	t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0", code)
	}
}

// TestRunScanOnStart: without meters the gateway scans once, reads what it
// found and keeps it; the next start reads the same meters at once,
// without scanning again.
func TestRunScanOnStart(t *testing.T) {
	broker := mosquittotest.Start(t)
	bus := startBus(t)
	dir := t.TempDir()
	path, metrics := gatewayOptions(t, dir, bus, broker, map[string]any{"scan_mode": "secondary"})

	first := start(t, hermeticEnv(), "run", "--config", path)
	var st status
	eventually(t, 60*time.Second, "/status shows the 7 meters found, read", func() bool {
		return getJSON(t, endpoint(metrics, "/status"), &st) == http.StatusOK && st.read() == 7
	})
	stop(t, first)
	if !strings.Contains(first.stderr.String(), "scan done") {
		t.Errorf("first start: no scan in the log:\n%s", first.stderr)
	}

	second := start(t, hermeticEnv(), "run", "--config", path)
	eventually(t, 30*time.Second, "after a restart, /status shows the 7 meters read", func() bool {
		return getJSON(t, endpoint(metrics, "/status"), &st) == http.StatusOK && st.read() == 7
	})
	stop(t, second)
	if log := second.stderr.String(); strings.Contains(log, "scanning") || !strings.Contains(log, "meters=7") {
		t.Errorf("second start: want the 7 stored meters and no scan, got:\n%s", log)
	}
}

// TestRunCorruptDatabase: a database file that is not SQLite is moved
// aside (never deleted) and the gateway starts with an empty one; the
// warning stays after a restart.
func TestRunCorruptDatabase(t *testing.T) {
	broker := mosquittotest.Start(t)
	dir := t.TempDir()
	garbage := []byte(strings.Repeat("not a database ", 512))
	if err := os.WriteFile(filepath.Join(dir, "mbus-gateway.db"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	path, metrics := gatewayOptions(t, dir, startBus(t), broker, map[string]any{"meters": []map[string]any{{"address": "1"}}})
	p := start(t, hermeticEnv(), "run", "--config", path)
	var health struct{ Status string }
	eventually(t, 15*time.Second, "/health says ok", func() bool {
		return getJSON(t, endpoint(metrics, "/health"), &health) == http.StatusOK
	})
	var st struct{ Warnings []string }
	if code := getJSON(t, endpoint(metrics, "/status"), &st); code != http.StatusOK {
		t.Fatalf("/status: got %d", code)
	}
	stop(t, p)

	moved, err := filepath.Glob(filepath.Join(dir, "mbus-gateway.db.corrupt-*"))
	if err != nil || len(moved) != 1 {
		t.Fatalf("quarantined files: got %v (%v), want one mbus-gateway.db.corrupt-*", moved, err)
	}
	if got, err := os.ReadFile(moved[0]); err != nil || string(got) != string(garbage) {
		t.Errorf("quarantined file: got %d bytes (%v), want the %d bytes of the corrupt file", len(got), err, len(garbage))
	}
	if log := p.stderr.String(); !strings.Contains(log, "database file is corrupt: moved aside") || !strings.Contains(log, moved[0]) {
		t.Errorf("log: want the quarantine and the new name %s, got:\n%s", moved[0], log)
	}
	want := "database file was corrupt: moved aside to " + moved[0]
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], want) {
		t.Errorf("/status warnings: got %q, want the quarantine with %s", st.Warnings, moved[0])
	}

	again := start(t, hermeticEnv(), "run", "--config", path)
	eventually(t, 15*time.Second, "after a restart, /status still warns about the quarantine", func() bool {
		st.Warnings = nil
		return getJSON(t, endpoint(metrics, "/status"), &st) == http.StatusOK &&
			len(st.Warnings) == 1 && strings.Contains(st.Warnings[0], want)
	})
	stop(t, again)
	if moved, err := filepath.Glob(filepath.Join(dir, "mbus-gateway.db.corrupt-*")); err != nil || len(moved) != 1 {
		t.Errorf("after a restart, quarantined files: got %v (%v), want still one", moved, err)
	}
}
