package mqtt

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging/logtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading/readingtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait for the broker or the client in tests.
const waitTimeout = 15 * time.Second

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// heatReading is a heat meter reading with an energy register and a flow
// temperature.
func heatReading(meter string, at time.Time, energy float64) reading.Reading {
	return readingtest.Heat(meter, strings.TrimPrefix(meter, "kam_"), at,
		readingtest.Number("energy", "energy", "kWh", energy),
		readingtest.Number("flow_temperature", "flow_temperature", "°C", 71.3),
	)
}

// testBox is the real store as the client's Outbox, converted as the
// gateway's outbox package does (which imports this package).
type testBox struct{ *store.Store }

func (b testBox) Pending(ctx context.Context, afterSeq int64, limit int) ([]Row, error) {
	rows, err := b.Store.Pending(ctx, afterSeq, limit)
	out := make([]Row, len(rows))
	for i, r := range rows {
		out[i] = Row{Seq: r.Seq, Meter: r.Meter, Reading: r.Reading, Payload: r.Payload}
	}
	if re, ok := errors.AsType[*store.RowError](err); ok {
		err = &RowError{Seq: re.Seq, Err: re.Err}
	}
	return out, err
}

func openStore(t testing.TB) testBox {
	t.Helper()
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("store.Close: %v", err)
		}
	})
	return testBox{s}
}

func enqueue(t testing.TB, s testBox, rs ...reading.Reading) {
	t.Helper()
	if _, err := s.EnqueueBatch(context.Background(), rs); err != nil {
		t.Fatalf("EnqueueBatch: %v", err)
	}
}

// testConfig is a configuration with fast retries and rediscovery.
func testConfig(broker string) Config {
	return Config{
		Broker:           broker,
		ClientID:         NewClientID(),
		Version:          "1.2.3",
		MinBackoff:       20 * time.Millisecond,
		MaxBackoff:       200 * time.Millisecond,
		Maintenance:      50 * time.Millisecond,
		RediscoveryDelay: func() time.Duration { return 10 * time.Millisecond },
	}
}

// running is a Client under Run in the background.
type running struct {
	*Client
	cancel context.CancelFunc
	done   chan error
	log    *logtest.Buffer
	reg    *prometheus.Registry

	stopOnce sync.Once
}

// start creates a client and runs it until the test ends (or stop).
func start(t testing.TB, cfg Config, box Outbox) *running {
	t.Helper()
	logBuf := &logtest.Buffer{}
	reg := prometheus.NewRegistry()
	c, err := New(cfg, box, zerolog.New(logBuf).Level(zerolog.DebugLevel), reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Client: c, cancel: cancel, done: make(chan error, 1), log: logBuf, reg: reg}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("client log:\n%s", logBuf.String())
		}
	})
	return r
}

// stop cancels Run and waits for it; it may be called more than once.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("Run did not return within %v of cancel", waitTimeout)
		}
	})
}

// waitUntil polls cond until it holds or the timeout passes.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		case <-tick.C:
		}
	}
}

func depth(t testing.TB, s testBox) int {
	t.Helper()
	n, err := s.Depth(context.Background())
	if err != nil {
		t.Fatalf("Depth: %v", err)
	}
	return n
}

func decodeReading(t testing.TB, m mosquittotest.Message) reading.Reading {
	t.Helper()
	var r reading.Reading
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		t.Fatalf("reading payload %q: %v", m.Payload, err)
	}
	return r
}

func payloadIs(want string) func(mosquittotest.Message) bool {
	return func(m mosquittotest.Message) bool { return string(m.Payload) == want }
}

// proxy forwards loopback TCP connections to a target and can cut them
// all at once, the way a dead network or a killed process does: the broker
// sees the connection end without DISCONNECT.
type proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
	// gate, while open (closed), lets what the broker sends reach the
	// client; hold and release shut and open it.
	gate chan struct{}
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &proxy{l: l, target: target, gate: make(chan struct{})}
	close(p.gate)
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = l.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) url() string { return "tcp://" + p.l.Addr().String() }

func (p *proxy) accept() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		p.wg.Go(func() { pipe(out, in) })
		p.wg.Go(func() { pipe(in, heldConn{Conn: out, p: p}) })
	}
}

// heldConn passes nothing on while the proxy holds: what it has read is
// kept until then.
type heldConn struct {
	net.Conn
	p *proxy
}

func (h heldConn) Read(b []byte) (int, error) {
	n, err := h.Conn.Read(b)
	h.p.mu.Lock()
	gate := h.p.gate
	h.p.mu.Unlock()
	<-gate
	return n, err
}

// hold stops what the broker sends from reaching the client, as a broker
// that no longer answers; release passes it on again. The test's end
// releases.
func (p *proxy) hold(t testing.TB) {
	p.mu.Lock()
	p.gate = make(chan struct{})
	p.mu.Unlock()
	t.Cleanup(p.release)
}

func (p *proxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// cut closes every connection through the proxy without a word.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN: nothing more is delivered
		}
		_ = c.Close()
	}
	p.conns = nil
}

func discard() zerolog.Logger { return zerolog.Nop() }

// metricValue gathers reg and returns the value of the unlabelled gauge or
// counter name.
func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// damageRow overwrites the stored JSON of one outbox row, as a failing
// disk or a manual edit might.
func damageRow(t testing.TB, path string, seq int64) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.ExecContext(context.Background(), `UPDATE outbox SET payload = ? WHERE seq = ?`, []byte("{not json"), seq); err != nil {
		t.Fatalf("damage row %d: %v", seq, err)
	}
}
