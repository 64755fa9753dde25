// Package mosquittotest runs a real Mosquitto broker for tests: one process
// per test on a free loopback port, with persistence in t.TempDir(), that a
// fault test can stop, kill and start again on the same port. It also has a
// recording subscriber built on paho.
//
// Tests that use it skip when Mosquitto is not installed, except under
// CI=true, where a missing broker fails the test: CI must never pass by
// testing nothing.
package mosquittotest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long Start waits for the broker to accept
// connections, and Stop for it to exit.
const startTimeout = 10 * time.Second

// Broker is one Mosquitto process owned by a test.
type Broker struct {
	t       testing.TB
	bin     string
	dir     string
	conf    string
	logFile string
	port    int
	tlsPort int // 0 without WithTLS

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Option changes the broker's configuration.
type Option func(*settings)

type settings struct {
	users map[string]string
	tls   *Certs
}

// WithTLS adds a second listener, on TLSAddr, that speaks TLS with the
// server certificate of c and accepts only clients that present a
// certificate signed by c's authority. The plain listener stays, for
// recorders.
func WithTLS(c Certs) Option {
	return func(s *settings) { s.tls = &c }
}

// WithUsers makes the broker refuse anonymous clients and accept only these
// user names with their passwords. The password file is generated with
// mosquitto_passwd; where that is missing the test is skipped (failed under
// CI=true).
func WithUsers(users map[string]string) Option {
	return func(s *settings) { s.users = users }
}

// Start runs a new broker on a free loopback port and stops it when the
// test ends.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	var s settings
	for _, o := range opts {
		o(&s)
	}
	bin := require(t, "mosquitto", "/usr/sbin/mosquitto")
	b := &Broker{t: t, bin: bin, dir: t.TempDir()}
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	b.logFile = filepath.Join(b.dir, "mosquitto.log")
	var passwd string
	if len(s.users) > 0 {
		passwd = writePasswords(t, b.dir, s.users)
	}
	t.Cleanup(func() {
		b.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", b.Log())
		}
	})
	// The free port is found by binding and closing; another process may
	// take it in between, so a broker that cannot bind gets another port.
	var err error
	for range 3 {
		b.port = freePort(t)
		if s.tls != nil {
			b.tlsPort = freePort(t)
		}
		if err = writeConfig(b.conf, b.dir, b.logFile, b.port, passwd, b.tlsPort, s.tls); err != nil {
			t.Fatalf("mosquittotest: %v", err)
		}
		if err = b.launch(); err == nil {
			return b
		}
	}
	t.Fatalf("mosquittotest: %v\n%s", err, b.Log())
	return nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// URL is the broker's address for paho: tcp://127.0.0.1:<port>.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// TLSAddr is the host:port of the TLS listener (see WithTLS).
func (b *Broker) TLSAddr() string {
	if b.tlsPort == 0 {
		b.t.Fatalf("mosquittotest: TLSAddr: the broker was started without WithTLS")
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.tlsPort))
}

// Start runs the broker again on the same port, with the same persistence
// directory, after Stop or Kill.
func (b *Broker) Start() {
	b.t.Helper()
	b.mu.Lock()
	running := b.cmd != nil
	b.mu.Unlock()
	if running {
		b.t.Fatalf("mosquittotest: Start: broker is running")
	}
	if err := b.launch(); err != nil {
		b.t.Fatalf("mosquittotest: restart: %v\n%s", err, b.Log())
	}
}

// Stop ends the broker the way a service manager does (SIGTERM): it saves
// retained messages and persistent sessions before it exits.
func (b *Broker) Stop() { b.t.Helper(); b.stop(syscall.SIGTERM) }

// Kill ends the broker at once (SIGKILL), as a crash would: what changed
// since the last autosave (at most a second ago) is lost.
func (b *Broker) Kill() { b.t.Helper(); b.stop(syscall.SIGKILL) }

// Log returns what the broker logged so far.
func (b *Broker) Log() string {
	data, err := os.ReadFile(b.logFile)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return string(data)
}

// launch starts the process and waits until the port accepts connections.
func (b *Broker) launch() error {
	// The process lives until Stop or Kill, not for a context.
	cmd := exec.CommandContext(context.Background(), b.bin, "-c", b.conf) //nolint:gosec // the broker found by require, with our own config
	cmd.Dir = b.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", b.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status of a stopped broker says nothing
		close(done)
	}()
	b.mu.Lock()
	b.cmd, b.done = cmd, done
	b.mu.Unlock()
	if err := waitListening(b.Addr(), done); err != nil {
		b.stop(syscall.SIGKILL)
		return err
	}
	return nil
}

// stop signals the process and waits for it to exit.
func (b *Broker) stop(sig syscall.Signal) {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd, b.done = nil, nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig) // fails only if it already exited
	select {
	case <-done:
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-done
		b.t.Errorf("mosquittotest: broker did not stop within %v after %v", startTimeout, sig)
	}
}

// waitListening dials addr until it answers, the process exits or the
// start timeout passes.
func waitListening(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	d := net.Dialer{Timeout: 200 * time.Millisecond}
	for {
		conn, err := d.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("mosquitto exited before listening on %s", addr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mosquitto not listening on %s after %v: %w", addr, startTimeout, err)
		}
	}
}

// writeConfig writes the broker configuration. Persistence keeps retained
// messages and persistent sessions across Stop/Start; QoS 0 messages are
// queued for disconnected persistent sessions so that a Recorder misses
// nothing while it reconnects after a restart.
func writeConfig(path, dir, logFile string, port int, passwd string, tlsPort int, certs *Certs) error {
	var c strings.Builder
	// Settings below apply to every listener, not only the last one.
	c.WriteString("per_listener_settings false\n")
	fmt.Fprintf(&c, "listener %d 127.0.0.1\n", port)
	if certs != nil {
		fmt.Fprintf(&c, "listener %d 127.0.0.1\n", tlsPort)
		fmt.Fprintf(&c, "cafile %s\ncertfile %s\nkeyfile %s\n", certs.CA, certs.ServerCert, certs.ServerKey)
		c.WriteString("require_certificate true\n")
	}
	if passwd == "" {
		c.WriteString("allow_anonymous true\n")
	} else {
		c.WriteString("allow_anonymous false\n")
		fmt.Fprintf(&c, "password_file %s\n", passwd)
	}
	c.WriteString("persistence true\n")
	fmt.Fprintf(&c, "persistence_location %s/\n", dir)
	c.WriteString("autosave_interval 1\n")
	c.WriteString("max_queued_messages 0\n")
	c.WriteString("queue_qos0_messages true\n")
	fmt.Fprintf(&c, "log_dest file %s\n", logFile)
	c.WriteString("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	c.WriteString("log_timestamp_format %H:%M:%S\n")
	if os.Geteuid() == 0 {
		// Run as root, Mosquitto switches to the user "mosquitto", which
		// cannot write into the test's private directory.
		c.WriteString("user root\n")
	}
	if err := os.WriteFile(path, []byte(c.String()), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// writePasswords creates a Mosquitto password file with mosquitto_passwd.
func writePasswords(t testing.TB, dir string, users map[string]string) string {
	t.Helper()
	bin := require(t, "mosquitto_passwd", "/usr/bin/mosquitto_passwd")
	path := filepath.Join(dir, "passwd")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatalf("mosquittotest: %v", err)
	}
	for user, pass := range users {
		out, err := exec.CommandContext(context.Background(), bin, "-b", path, user, pass).CombinedOutput() //nolint:gosec // test users and passwords
		if err != nil {
			t.Fatalf("mosquittotest: mosquitto_passwd %s: %v\n%s", user, err, out)
		}
	}
	return path
}

// require finds a program in PATH or at fallback. Without it the test is
// skipped, or failed when CI=true.
func require(t testing.TB, name, fallback string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("mosquittotest: %s not installed (CI=true: a missing dependency is a failure)", name)
	}
	t.Skipf("mosquittotest: %s not installed", name)
	return ""
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mosquittotest: free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("mosquittotest: free port: unexpected address %v", l.Addr())
	}
	return addr.Port
}
