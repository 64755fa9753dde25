package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// ingressAddr is the Supervisor's ingress proxy as r.RemoteAddr shows it.
const ingressAddr = "172.30.32.2:41234"

// fakePoller is a Poller whose snapshot tests change at will.
type fakePoller struct {
	mu   sync.Mutex
	snap poll.Snapshot
	// readErr makes ReadNow of these meters fail.
	readErr map[string]error
	reads   []string
	// readTakes is how long a read takes, as on a slow bus.
	readTakes time.Duration
	// found is what Scan returns; steps is how many progress calls it
	// makes; gate, when not nil, holds Scan after its first step until
	// it is closed.
	found []master.Found
	steps int
	gate  chan struct{}
	// scanning is told when Scan has made its first step.
	scanning chan struct{}
}

func newFakePoller(meters ...poll.MeterStatus) *fakePoller {
	return &fakePoller{snap: poll.Snapshot{Bus: poll.BusStatus{State: bushealth.Up.String()}, Meters: meters}, readErr: map[string]error{}}
}

func (f *fakePoller) Snapshot() poll.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.snap
	s.Meters = append([]poll.MeterStatus(nil), f.snap.Meters...)
	return s
}

// update changes the snapshot under the lock.
func (f *fakePoller) update(fn func(*poll.Snapshot)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.snap)
}

// readLog lists the meters ReadNow was asked for.
func (f *fakePoller) readLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reads...)
}

// setEnergy gives meter i a new reading whose first record is v; the
// old reading is left alone, as snapshots share it.
func (f *fakePoller) setEnergy(i int, v float64) {
	f.update(func(s *poll.Snapshot) {
		rd := *s.Meters[i].Reading
		rd.Records = append([]mbus.Record(nil), rd.Records...)
		rd.Records[0].Value.Num = v
		rd.Time = time.Now()
		s.Meters[i].Reading = &rd
		s.Meters[i].LastSuccess = rd.Time
	})
}

func (f *fakePoller) ReadNow(ctx context.Context, meter string) (reading.Reading, error) {
	select {
	case <-time.After(f.readTakes):
	case <-ctx.Done():
		return reading.Reading{}, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, meter)
	for i, m := range f.snap.Meters {
		if m.Meter != meter && m.Address != meter {
			continue
		}
		if err := f.readErr[m.Meter]; err != nil {
			return reading.Reading{}, fmt.Errorf("read %s: %w", m.Address, err)
		}
		now := time.Now()
		rd := reading.Reading{Meter: m.Meter, Address: m.Address, Time: now}
		if m.Reading != nil {
			rd = *m.Reading
			rd.Time = now
		}
		f.snap.Meters[i].LastRead, f.snap.Meters[i].LastSuccess = now, now
		return rd, nil
	}
	return reading.Reading{}, fmt.Errorf("read %q: %w", meter, poll.ErrUnknownMeter)
}

func (f *fakePoller) Scan(ctx context.Context, mode string, progress func(poll.ScanProgress)) ([]master.Found, error) {
	f.mu.Lock()
	found, steps, gate, scanning := f.found, f.steps, f.gate, f.scanning
	f.mu.Unlock()
	for i := range steps {
		progress(poll.ScanProgress{Mode: mode, Done: i + 1, Total: steps, Found: min(i+1, len(found)), Probes: 2 * (i + 1)})
		if i == 0 && scanning != nil {
			close(scanning)
		}
		if i == 0 && gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, fmt.Errorf("scan: %w", ctx.Err())
			}
		}
	}
	return found, nil
}

// fakeAdder adds meters to a fakePoller's snapshot.
type fakeAdder struct {
	p   *fakePoller
	mu  sync.Mutex
	got []AddRequest
	err error
}

func (a *fakeAdder) AddMeter(_ context.Context, address, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	a.got = append(a.got, AddRequest{Address: address, Name: name})
	exists := false
	a.p.update(func(s *poll.Snapshot) {
		for _, m := range s.Meters {
			if m.Address == address {
				exists = true
				return
			}
		}
		s.Meters = append(s.Meters, poll.MeterStatus{Address: address, Name: name, Meter: "addr_" + strings.ToLower(address), Enabled: true, IntervalSeconds: 900})
	})
	if exists {
		return fmt.Errorf("add %s: %w", address, ErrMeterExists)
	}
	return nil
}

func (a *fakeAdder) calls() []AddRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AddRequest(nil), a.got...)
}

// fakeChecker answers Check with err.
type fakeChecker struct {
	mu  sync.Mutex
	err error
}

func (c *fakeChecker) Check(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *fakeChecker) set(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// heatMeter is a configured meter with one good reading.
func heatMeter(t testing.TB) poll.MeterStatus {
	t.Helper()
	sec, err := mbus.ParseSecondaryAddress("068558172D2C0804")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-2 * time.Minute).Truncate(time.Second)
	rd := &reading.Reading{
		Meter: "kam_06855817", Name: "Heating", Address: "5", Time: at,
		Header: mbus.Header{ID: "06855817", Manufacturer: "KAM", Version: 8, Medium: mbus.Medium(0x04), Address: sec},
		Records: []mbus.Record{
			{Key: "energy", Quantity: "energy", Unit: "kWh", Value: mbus.Value{Kind: mbus.KindNumber, Num: 37351}, DIF: "\x04", VIF: "\x06"},
			{Key: "volume", Quantity: "volume", Unit: "m³", Value: mbus.Value{Kind: mbus.KindNumber, Num: 1234.56}, DIF: "\x04", VIF: "\x14"},
			{Key: "flow_temperature", Quantity: "flow_temperature", Unit: "°C", Value: mbus.Value{Kind: mbus.KindNumber, Num: 71.5}, DIF: "\x02", VIF: "\x59"},
		},
	}
	return poll.MeterStatus{
		Address: "5", Name: "Heating", Meter: "kam_06855817", Manufacturer: "KAM", Medium: mbus.Medium(0x04).String(),
		Enabled: true, IntervalSeconds: 900, LastRead: at, LastSuccess: at, Reading: rd,
		Raw: []string{"68383868080572175885062d2c0804"}, Breaker: poll.BreakerClosed,
	}
}

// waterMeter is a configured meter that stopped answering.
func waterMeter() poll.MeterStatus {
	return poll.MeterStatus{
		Address: "7", Meter: "addr_7", Enabled: true, IntervalSeconds: 300,
		LastError: "read 7: no answer", Failures: 3, Breaker: poll.BreakerOpen,
	}
}

// fixture is a server with its fakes.
type fixture struct {
	s       *Server
	poller  *fakePoller
	adder   *fakeAdder
	checker *fakeChecker
	reg     *prometheus.Registry
}

// newFixture builds a server around fakes; change adjusts the options.
func newFixture(t testing.TB, change func(*Options), meters ...poll.MeterStatus) *fixture {
	t.Helper()
	p := newFakePoller(meters...)
	f := &fixture{poller: p, adder: &fakeAdder{p: p}, checker: &fakeChecker{}, reg: prometheus.NewRegistry()}
	depth := 2
	o := Options{
		Version:  "1.2.3",
		Gatherer: f.reg,
		Bus:      func() BusInfo { return BusInfo{Device: "/dev/ttyUSB0", Baud: 2400, TxBytes: 120, RxBytes: 4800} },
		Broker: func() BrokerStatus {
			return BrokerStatus{Broker: "tcp://core-mosquitto:1883", Connected: true, Published: 10, Delivered: 9}
		},
		OutboxDepth: func(context.Context) (int, error) { return depth, nil },
		Log:         zerolog.Nop(),
	}
	if change != nil {
		change(&o)
	}
	s, err := New(o, f.poller, f.adder, f.checker)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.close)
	f.s = s
	return f
}

// request is one test request to a handler.
type request struct {
	method, target, body string
	remote               string // default ingressAddr
	host                 string // default example.com; "-" sends none
	header               map[string]string
}

// do runs req against h and returns the answer.
func do(t testing.TB, h http.Handler, req request) *http.Response {
	t.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r := httptest.NewRequest(req.method, req.target, body)
	r.RemoteAddr = ingressAddr
	if req.remote != "" {
		r.RemoteAddr = req.remote
	}
	if req.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	switch req.host {
	case "":
	case "-":
		r.Host = ""
	default:
		r.Host = req.host
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func readBody(t testing.TB, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond until it holds, waking at every change the server
// announces and at least every 10 ms, and fails after 10 s.
func waitFor(t testing.TB, s *Server, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ch := s.changes()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

var errNoAnswer = errors.New("no answer")

// fakeWarnings is an Options.Warnings whose list the test changes.
type fakeWarnings struct {
	mu   sync.Mutex
	list []string
}

func (w *fakeWarnings) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

func (w *fakeWarnings) set(list []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = list
}
