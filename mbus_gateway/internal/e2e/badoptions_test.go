package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/daemon/daemontest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// supervisorAnswering is a fake Supervisor that answers every request
// with status and body.
func supervisorAnswering(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRunBadOptions: every kind of bad start-up input ends with exit 1 and
// a message naming the problem, before the data directory is touched.
func TestRunBadOptions(t *testing.T) {
	valid := func(dir string) map[string]any {
		return map[string]any{
			"tcp_address": "127.0.0.1:1",
			"mqtt":        map[string]any{"host": "127.0.0.1", "port": 1},
			"data_dir":    filepath.Join(dir, "data"),
		}
	}
	tests := []struct {
		name string
		// edit changes the valid options; file, when set, replaces them.
		edit func(o map[string]any)
		file string
		// supervisor, when set, is a fake Supervisor's status and body,
		// and SUPERVISOR_TOKEN is set.
		supervisor *struct {
			status int
			body   string
		}
		want string // stderr, with DIR for the test's directory
	}{
		{
			name: "missing file",
			file: "-",
			want: "mbus-gateway run: read options: open DIR/options.json: no such file or directory\n",
		},
		{
			name: "malformed",
			file: `{"tcp_address": "127.0.0.1:1",`,
			want: "mbus-gateway run: DIR/options.json: line 1, column 31: unexpected end of file\n",
		},
		{
			name: "both ports",
			edit: func(o map[string]any) { o["serial_port"] = "/dev/ttyUSB0" },
			want: "mbus-gateway run: tcp_address: serial_port is set too: give only one of serial_port and tcp_address\n",
		},
		{
			name: "no port",
			edit: func(o map[string]any) { delete(o, "tcp_address") },
			want: "mbus-gateway run: serial_port: set serial_port (a device such as /dev/ttyUSB0) or tcp_address (host:port of an M-Bus-to-TCP converter)\n",
		},
		{
			name: "address out of range",
			edit: func(o map[string]any) { o["meters"] = []map[string]any{{"address": "251"}} },
			want: "mbus-gateway run: meters[0].address: \"251\" is out of range: primary addresses go from 0 to 250\n",
		},
		{
			name: "duplicate meter",
			edit: func(o map[string]any) { o["meters"] = []map[string]any{{"address": "5"}, {"address": "5"}} },
			want: "mbus-gateway run: meters[1].address: 5 is already meters[0]: each meter may appear once\n",
		},
		{
			name: "no broker, not an add-on",
			edit: func(o map[string]any) { o["mqtt"] = map[string]any{} },
			want: "mbus-gateway run: mqtt.host: empty, and not running as a Home Assistant add-on (no SUPERVISOR_TOKEN) to ask for the broker: set mqtt.host\n",
		},
		{
			name: "no broker add-on",
			edit: func(o map[string]any) { o["mqtt"] = map[string]any{} },
			supervisor: &struct {
				status int
				body   string
			}{http.StatusBadRequest, `{"result":"error","message":"Service not enabled"}`},
			want: "mbus-gateway run: mqtt.host: empty, and asking the Supervisor failed: no MQTT service: install the Mosquitto broker add-on or set mqtt.host\n",
		},
		{
			name: "Supervisor answers garbage",
			edit: func(o map[string]any) { o["mqtt"] = map[string]any{} },
			supervisor: &struct {
				status int
				body   string
			}{http.StatusOK, `<html>proxy error</html>`},
			want: "mbus-gateway run: mqtt.host: empty, and asking the Supervisor failed: supervisor: GET /services/mqtt: 200 OK: answer is not the Supervisor's JSON (application/json, 24 bytes)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "options.json")
			switch tt.file {
			case "":
				o := valid(dir)
				if tt.edit != nil {
					tt.edit(o)
				}
				writeOptions(t, dir, o)
			case "-":
			default:
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := hermeticEnv()
			if s := tt.supervisor; s != nil {
				env = hermeticEnv("SUPERVISOR_TOKEN=e2e-token", "SUPERVISOR_API="+supervisorAnswering(t, s.status, s.body))
			}
			p := start(t, env, "run", "--config", path)
			code := p.wait(10 * time.Second)
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			if got := p.stderr.String(); code != 1 || got != want {
				t.Errorf("got exit %d, stderr\n%s\nwant exit 1, stderr\n%s", code, got, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
				t.Error("the data directory was created: something was opened before the options were checked")
			}
		})
	}
}

// blockedDataDir returns a data directory that cannot be created, not
// even by root: its parent is a regular file. unblock replaces that file
// with a directory.
func blockedDataDir(t *testing.T, dir string) (dataDir string, unblock func()) {
	t.Helper()
	blocker := filepath.Join(dir, "blocked")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(blocker, "data"), func() {
		t.Helper()
		if err := os.Remove(blocker); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(blocker, 0o750); err != nil {
			t.Fatal(err)
		}
	}
}

// degraded is what GET /health and GET /status say while the database
// cannot be opened.
type degraded struct {
	health struct {
		Status   string   `json:"status"`
		Problems []string `json:"problems"`
	}
	status struct {
		Warnings []string `json:"warnings"`
		Outbox   struct {
			Depth *int   `json:"depth"`
			Error string `json:"error"`
		} `json:"outbox"`
		Bus struct {
			State string `json:"state"`
			Polls uint64 `json:"polls"`
		} `json:"bus"`
		Meters []any `json:"meters"`
	}
}

// awaitDegraded waits until /health on port is 503 with the problem, then
// checks that /status carries it and reads nothing.
func awaitDegraded(t *testing.T, port int, problem string) {
	t.Helper()
	var d degraded
	eventually(t, 15*time.Second, "/health answers 503", func() bool {
		return getJSON(t, endpoint(port, "/health"), &d.health) == http.StatusServiceUnavailable &&
			len(d.health.Problems) > 0
	})
	if d.health.Status != "unhealthy" || len(d.health.Problems) != 1 || !strings.Contains(d.health.Problems[0], problem) {
		t.Errorf("/health: got %q %q, want unhealthy with %q", d.health.Status, d.health.Problems, problem)
	}
	if code := getJSON(t, endpoint(port, "/status"), &d.status); code != http.StatusOK {
		t.Fatalf("/status: got %d, want 200", code)
	}
	st := d.status
	if len(st.Warnings) == 0 || !strings.Contains(st.Warnings[0], problem) {
		t.Errorf("/status warnings: got %q, want first %q", st.Warnings, problem)
	}
	if st.Outbox.Depth != nil || !strings.Contains(st.Outbox.Error, problem) {
		t.Errorf("/status outbox: got depth %v error %q, want no depth and %q", st.Outbox.Depth, st.Outbox.Error, problem)
	}
	if st.Bus.State != "down" || st.Bus.Polls != 0 || len(st.Meters) != 0 {
		t.Errorf("/status bus: got %q with %d polls and %d meters, want down, nothing read", st.Bus.State, st.Bus.Polls, len(st.Meters))
	}
}

// TestRunUnwritableDataDir: a data directory that cannot be created does
// not stop the gateway. It says why on /health (503), /status and in the
// log, reads and publishes nothing, and retries; once the directory can be
// created it starts reading and publishing, and /health turns 200.
func TestRunUnwritableDataDir(t *testing.T) {
	broker := mosquittotest.Start(t)
	rec := mosquittotest.Subscribe(t, broker.URL(), "#")
	dir := t.TempDir()
	dataDir, unblock := blockedDataDir(t, dir)
	path, metrics := gatewayOptions(t, dir, startBus(t), broker, map[string]any{
		"data_dir": dataDir,
		"meters":   []map[string]any{{"address": "1"}},
	})
	p := start(t, hermeticEnv(), "run", "--config", path)

	problem := "cannot open the database " + filepath.Join(dataDir, "mbus-gateway.db") + ": "
	awaitDegraded(t, metrics, problem)
	if log := p.stderr.String(); !strings.Contains(log, problem) || !strings.Contains(log, "is a directory and is writable") {
		t.Errorf("log: want %q and what to do, got:\n%s", problem, log)
	}

	fixed := time.Now()
	unblock()
	var health struct{ Status string }
	eventually(t, 2*time.Minute, "/health says ok after the directory became creatable", func() bool {
		return getJSON(t, endpoint(metrics, "/health"), &health) == http.StatusOK && health.Status == "ok"
	})
	reading := rec.WaitFor("mbus/"+heatMeter+"/reading", nil, 30*time.Second)
	for _, topic := range []string{"mbus/bridge/state", "mbus/" + heatMeter + "/reading"} {
		for _, m := range rec.Messages(topic) {
			if m.At.Before(fixed) {
				t.Errorf("%s published at %v, before the database could be opened (%v)", topic, m.At, fixed)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "mbus-gateway.db")); err != nil {
		t.Errorf("database after recovery: %v", err)
	}
	stop(t, p)
	t.Logf("directory fixed to first reading on the broker: %v", reading.At.Sub(fixed).Round(time.Millisecond))
	if log := p.stderr.String(); !strings.Contains(log, "database opened: recovered") {
		t.Errorf("log: want the recovery, got:\n%s", log)
	}
}

// TestRunUnwritableDataDirStops: while waiting for the database the
// gateway tells systemd it is ready (its /health is up) and keeps the
// watchdog fed, and SIGTERM still ends it promptly with exit 0.
func TestRunUnwritableDataDirStops(t *testing.T) {
	dir := t.TempDir()
	dataDir, _ := blockedDataDir(t, dir)
	metrics := freePort(t)
	path := writeOptions(t, dir, map[string]any{
		"tcp_address":  "127.0.0.1:1",
		"mqtt":         map[string]any{"host": "127.0.0.1", "port": 1},
		"data_dir":     dataDir,
		"web_port":     freePort(t),
		"metrics_port": metrics,
	})
	sock := daemontest.ListenNotify(t)
	p := start(t, hermeticEnv("NOTIFY_SOCKET="+sock.Path, "WATCHDOG_USEC=200000"), "run", "--config", path)
	awaitDegraded(t, metrics, "cannot open the database "+filepath.Join(dataDir, "mbus-gateway.db")+": ")
	eventually(t, 10*time.Second, "READY=1 and three WATCHDOG=1", func() bool {
		return sock.Count("READY=1") == 1 && sock.Count("WATCHDOG=1") >= 3
	})
	sent := p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0", code)
	}
	t.Logf("SIGTERM to exit: %v", time.Since(sent).Round(time.Millisecond))
	if got := sock.Count("STOPPING=1"); got != 1 {
		t.Errorf("STOPPING=1: got %d, want 1 (all: %s)", got, sock.All())
	}
}
