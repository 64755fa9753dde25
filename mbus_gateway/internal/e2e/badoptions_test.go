package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestRunUnwritableDataDir: a data directory that cannot be created stops
// the start with a message that names data_dir.
func TestRunUnwritableDataDir(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeOptions(t, dir, map[string]any{
		"tcp_address": "127.0.0.1:1",
		"mqtt":        map[string]any{"host": "127.0.0.1", "port": 1},
		"data_dir":    filepath.Join(blocker, "data"), // below a file: never creatable
	})
	p := start(t, hermeticEnv(), "run", "--config", path)
	code := p.wait(10 * time.Second)
	got := p.stderr.String()
	if code != 1 || !strings.HasPrefix(got, "mbus-gateway run: data_dir: ") || !strings.Contains(got, blocker) {
		t.Errorf("got exit %d, stderr\n%s\nwant exit 1 and a message starting %q naming %s", code, got, "mbus-gateway run: data_dir: ", blocker)
	}
}
