package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging/logtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// shutdownBudget is the time the Supervisor (and systemd's default
// TimeoutStopSec is longer) gives the gateway between SIGTERM and SIGKILL.
const shutdownBudget = 10 * time.Second

// testOptions loads options as a file would hold them: set over a base
// that reads bus, publishes to broker (host:port), keeps its database in
// dataDir and serves no separate metrics port.
func testOptions(t *testing.T, bus, broker, dataDir string, set map[string]any) *config.Options {
	t.Helper()
	o, err := config.Parse(optionsJSON(t, bus, broker, dataDir, set), "options.json")
	if err != nil {
		t.Fatalf("options: %v", err)
	}
	return o
}

// optionsJSON is the file testOptions loads.
func optionsJSON(t *testing.T, bus, broker, dataDir string, set map[string]any) []byte {
	t.Helper()
	host, port, err := net.SplitHostPort(broker)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	m := map[string]any{
		"tcp_address":   bus,
		"baudrate":      9600,
		"poll_interval": 5,
		"meters":        []map[string]any{{"address": "1", "name": "Heat"}, {"address": "2"}},
		"mqtt":          map[string]any{"host": host, "port": p},
		"data_dir":      dataDir,
		"metrics_port":  0,
	}
	for k, v := range set {
		m[k] = v
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// env is a hermetic environment for Deps.Getenv: nothing from the test
// process (NOTIFY_SOCKET, GOGC, …) reaches the daemon. GOGC is set so that
// the daemon leaves the test process's garbage collector alone.
func env(vars ...string) func(string) string {
	m := map[string]string{"GOGC": "100"}
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	return func(k string) string { return m[k] }
}

// gateway is one Run of the daemon in the test.
type gateway struct {
	t      *testing.T
	log    *logtest.Buffer
	url    string // of the web side, with a trailing slash
	cancel context.CancelFunc
	done   chan error
}

// startGateway runs the daemon with o until the test ends (or stop) and
// returns once its web side listens. deps may preset Getenv, Reload and
// Hup; the log, the listen address and readiness are the test's.
func startGateway(t *testing.T, o *config.Options, deps Deps) *gateway {
	t.Helper()
	g := &gateway{t: t, log: &logtest.Buffer{}, done: make(chan error, 1)}
	ready := make(chan net.Addr, 1)
	deps.LogOut = g.log
	deps.WebListen = "127.0.0.1:0"
	deps.WebAllow = []string{"127.0.0.1"}
	deps.Ready = func(web, _ net.Addr) { ready <- web }
	if deps.Getenv == nil {
		deps.Getenv = env()
	}
	if deps.Version == "" {
		deps.Version = "test"
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- Run(ctx, o, deps) }()
	t.Cleanup(func() {
		cancel()
		if err := <-g.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("log:\n%s", g.log)
		}
	})
	select {
	case web := <-ready:
		g.url = "http://" + web.String() + "/"
	case err := <-g.done:
		g.done <- err
		t.Fatalf("Run ended before the web side listened: %v\nlog:\n%s", err, g.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("the web side did not listen within 20 s\nlog:\n%s", g.log)
	}
	return g
}

// stop ends the run as SIGTERM does (the context ends) and returns Run's
// error; it fails the test when Run takes more than the shutdown budget.
func (g *gateway) stop() error {
	g.t.Helper()
	sent := time.Now()
	g.cancel()
	select {
	case err := <-g.done:
		g.done <- err // for the cleanup
		g.t.Logf("stopped in %v", time.Since(sent).Round(time.Millisecond))
		return err
	case <-time.After(shutdownBudget):
		g.t.Fatalf("Run did not return within %v of the end of its context", shutdownBudget)
		return nil
	}
}

// get fetches path from the web side into out (if not nil) and returns
// the status code.
func (g *gateway) get(path string, out any) int {
	g.t.Helper()
	return g.do(http.MethodGet, path, nil, out)
}

// post sends body as JSON to path and returns the status code.
func (g *gateway) post(path string, body, out any) int {
	g.t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		g.t.Fatal(err)
	}
	return g.do(http.MethodPost, path, data, out)
}

func (g *gateway) do(method, path string, body []byte, out any) int {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, g.url+path, bytes.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s /%s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("%s /%s: %v", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			g.t.Fatalf("%s /%s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

// health is GET /health.
type health struct {
	Status   string   `json:"status"`
	Problems []string `json:"problems"`
}

// status is the part of GET /status the tests read.
type status struct {
	Meters []meterStatus `json:"meters"`
	Broker *struct {
		Connected bool   `json:"connected"`
		LastError string `json:"last_error"`
	} `json:"broker"`
	Outbox struct {
		Depth *int `json:"depth"`
	} `json:"outbox"`
	Warnings []string `json:"warnings"`
}

// meterStatus is the part of a meter in GET /status the tests read.
type meterStatus struct {
	Address     string    `json:"address"`
	Name        string    `json:"name"`
	LastSuccess time.Time `json:"last_success"`
}

// read counts the meters read at least once.
func (s status) read() int {
	n := 0
	for _, m := range s.Meters {
		if !m.LastSuccess.IsZero() {
			n++
		}
	}
	return n
}
