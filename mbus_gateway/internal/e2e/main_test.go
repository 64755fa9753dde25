// Package e2e tests the built mbus-gateway binary from the outside: the
// simulated bus over TCP, a real Mosquitto, a fake Supervisor on loopback,
// options files in temporary data directories, signals and exit codes.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/daemon/daemontest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging/logtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim/simtest"
)

// binary is the gateway built once for all tests of the package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mbus-gateway-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mbus-gateway")
	build := exec.Command("go", "build", "-o", binary, "github.com/mbus-gateway/mbus-gateway/mbus_gateway")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the gateway:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// process is one run of the binary.
type process struct {
	t       *testing.T
	cmd     *exec.Cmd
	started time.Time
	stdout  *logtest.Buffer
	stderr  *logtest.Buffer
	done    chan struct{}
	code    int
}

// hermeticEnv is the test's environment without anything that would
// change the gateway's behaviour behind the test's back.
func hermeticEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "MBUS_GATEWAY_"), name == "SUPERVISOR_TOKEN", name == "HASSIO_TOKEN",
			name == "SUPERVISOR_API", name == "NOTIFY_SOCKET", strings.HasPrefix(name, "WATCHDOG_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// start runs the binary with args; it is killed when the test ends if it
// still runs.
func start(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	return startBinary(t, binary, env, args...)
}

// startBinary is start with another build of the gateway.
func startBinary(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{t: t, stdout: &logtest.Buffer{}, stderr: &logtest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		if err != nil && p.code < 0 {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("stdout of %v:\n%s\nstderr:\n%s", args, p.stdout, p.stderr)
		}
	})
	return p
}

// wait returns the exit code, or fails the test when the process is still
// running after timeout.
func (p *process) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("still running after %v", timeout)
		return -1
	}
}

// signal sends sig and returns the time it was sent.
func (p *process) signal(sig syscall.Signal) time.Time {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
	return time.Now()
}

// eventually polls cond every 20 ms until it holds, or fails the test
// with what after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	daemontest.Eventually(t, timeout, what, cond)
}

// startBus serves the demo bus unpaced (see simtest.ServeDemo) and
// returns its host:port.
func startBus(t *testing.T) string {
	t.Helper()
	return simtest.ServeDemo(t)
}

// serveBus serves bus on a loopback port until the test ends and returns
// its host:port, the form of the tcp_address option.
func serveBus(t *testing.T, bus *sim.Bus) string {
	t.Helper()
	return simtest.ServeTCP(t, bus)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	var lc net.ListenConfig
	for {
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		// The kernel may hand a port out again once its listener is
		// closed; two options of one gateway must never share one.
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
}

// handedOut remembers the ports freePort gave in this test process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// writeOptions writes opts as options.json into dir and returns its path.
func writeOptions(t *testing.T, dir string, opts map[string]any) string {
	t.Helper()
	data, err := json.MarshalIndent(opts, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "options.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// getJSON fetches url into out and returns the status code; a transport
// error returns 0.
func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, body)
		}
	}
	return resp.StatusCode
}

// status is the part of GET /status the tests read.
type status struct {
	Meters []struct {
		ID          string    `json:"id"`
		Address     string    `json:"address"`
		Name        string    `json:"name"`
		LastSuccess time.Time `json:"last_success"`
		Values      []struct {
			Key  string `json:"key"`
			Unit string `json:"unit"`
		} `json:"values"`
	} `json:"meters"`
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

func endpoint(port int, path string) string { return "http://127.0.0.1:" + strconv.Itoa(port) + path }

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// readOptions reads an options file written by writeOptions.
func readOptions(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var o map[string]any
	if err := json.Unmarshal(data, &o); err != nil {
		t.Fatal(err)
	}
	return o
}
