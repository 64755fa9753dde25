package poll

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/backoff"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging/logtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// answer decides how the fake bus answers a read of addr started at
// offset since (the test's start): how long the bus is busy, and the
// result or error.
type answer func(addr string, since time.Duration) (time.Duration, master.Result, error)

// call is one read the fake bus served.
type call struct {
	addr       string
	start, end time.Duration
}

// fakeBus is a bus of meters that answer as the test's answer function
// says, taking (simulated) time.
type fakeBus struct {
	epoch  time.Time
	answer answer
	// health is fed as the master and the transport would: an attempt
	// on a down bus first reopens it.
	health *bushealth.Health

	mu    sync.Mutex
	calls []call

	scanGate  chan struct{} // ScanPrimary waits for it to close
	scanFound []master.Found
}

func (b *fakeBus) Read(ctx context.Context, addr mbus.Address) (master.Result, error) {
	start := time.Since(b.epoch)
	if b.health != nil && b.health.State() == bushealth.Down {
		b.health.Record(bushealth.Opening, nil)
	}
	took, res, err := b.answer(addr.String(), start)
	t := time.NewTimer(took)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		res, err = master.Result{}, ctx.Err()
	}
	switch {
	case b.health == nil:
	case err == nil:
		b.health.Record(bushealth.Answered, nil)
	case errors.Is(err, master.ErrPortDown):
		b.health.Record(bushealth.PortFailed, err)
	default:
		if b.health.State() == bushealth.Reopening {
			b.health.Record(bushealth.Opened, nil)
		}
	}
	b.mu.Lock()
	b.calls = append(b.calls, call{addr: addr.String(), start: start, end: time.Since(b.epoch)})
	b.mu.Unlock()
	return res, err
}

func (b *fakeBus) ScanPrimary(ctx context.Context, progress func(master.Progress)) ([]master.Found, error) {
	progress(master.Progress{Done: 1, Total: 251})
	select {
	case <-b.scanGate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	progress(master.Progress{Done: 251, Total: 251, Found: len(b.scanFound)})
	return b.scanFound, nil
}

func (b *fakeBus) ScanSecondary(ctx context.Context, progress func(master.Progress)) ([]master.Found, error) {
	progress(master.Progress{Done: 1})
	return nil, nil
}

// starts returns the start offsets of the reads of addr.
func (b *fakeBus) starts(addr string) []time.Duration {
	return collect(&b.mu, &b.calls, func(c call) (time.Duration, bool) { return c.start, c.addr == addr })
}

// collect returns pick's value for each of *items that pick keeps,
// reading the items under mu.
func collect[T, V any](mu *sync.Mutex, items *[]T, pick func(T) (V, bool)) []V {
	mu.Lock()
	defer mu.Unlock()
	var out []V
	for _, it := range *items {
		if v, ok := pick(it); ok {
			out = append(out, v)
		}
	}
	return out
}

// fakeSink records deliveries; fail, if set, refuses a delivery.
type fakeSink struct {
	epoch time.Time
	fail  func(attempt int, since time.Duration) error

	mu        sync.Mutex
	attempts  []time.Duration
	delivered []reading.Reading
}

func (s *fakeSink) Deliver(ctx context.Context, r reading.Reading) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	since := time.Since(s.epoch)
	s.attempts = append(s.attempts, since)
	if s.fail != nil {
		if err := s.fail(len(s.attempts), since); err != nil {
			return err
		}
	}
	s.delivered = append(s.delivered, r)
	return nil
}

func (s *fakeSink) readings() []reading.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]reading.Reading(nil), s.delivered...)
}

// availChange is one call of SetAvailability.
type availChange struct {
	meter  string
	online bool
	at     time.Duration
}

type fakeAvail struct {
	epoch time.Time

	mu     sync.Mutex
	events []availChange
}

func (a *fakeAvail) SetAvailability(meter string, online bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, availChange{meter: meter, online: online, at: time.Since(a.epoch)})
}

// of returns the changes reported for meter.
func (a *fakeAvail) of(meter string) []bool {
	return collect(&a.mu, &a.events, func(e availChange) (bool, bool) { return e.online, e.meter == meter })
}

// harness wires a Poller to the fakes. Build it inside a synctest bubble
// so that all offsets count from the bubble's start.
type harness struct {
	p     *Poller
	bus   *fakeBus
	sink  *fakeSink
	avail *fakeAvail
	reg   *prometheus.Registry
	log   *logtest.Buffer
	epoch time.Time

	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, opts Options, ans answer) *harness {
	t.Helper()
	now := time.Now()
	if opts.Health == nil {
		opts.Health = bushealth.New(bushealth.Options{})
	}
	h := &harness{
		bus:   &fakeBus{epoch: now, answer: ans, scanGate: make(chan struct{}), health: opts.Health.(*bushealth.Health)},
		sink:  &fakeSink{epoch: now},
		avail: &fakeAvail{epoch: now},
		reg:   prometheus.NewRegistry(),
		log:   &logtest.Buffer{},
		epoch: now,
	}
	if opts.Jitter == 0 {
		opts.Jitter = -1
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	p, err := New(opts, h.bus, h.sink, h.avail, zerolog.New(h.log), h.reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.p = p
	return h
}

// start runs the poller until stop.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.p.Run(ctx) }()
}

// stop cancels Run and waits for it.
func (h *harness) stop(t *testing.T) {
	t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// runUntil runs the poller from now until offset d from the start.
func (h *harness) runUntil(t *testing.T, d time.Duration) {
	t.Helper()
	h.start()
	h.sleepUntil(d)
	h.stop(t)
}

// sleepUntil advances the bubble's clock to offset d from the start.
func (h *harness) sleepUntil(d time.Duration) {
	time.Sleep(time.Until(h.epoch.Add(d)))
}

// meters gives n enabled meters at primary addresses 1…n.
func meters(n int, interval time.Duration) []Meter {
	ms := make([]Meter, n)
	for i := range ms {
		ms[i] = Meter{Address: mbus.Address{Primary: byte(i + 1)}, Interval: interval, Enabled: true}
	}
	return ms
}

// telegram is a heat meter's answer with the given record keys.
func telegram(addr string, keys ...string) *mbus.Telegram {
	n, _ := strconv.Atoi(addr)
	t := &mbus.Telegram{
		A:        byte(n),
		Header:   mbus.Header{ID: fmt.Sprintf("%08d", n), Manufacturer: "KAM", Medium: 0x04},
		AppError: -1,
	}
	for i, k := range keys {
		t.Records = append(t.Records, mbus.Record{Key: k, Quantity: k, Unit: "kWh",
			Value: mbus.Value{Kind: mbus.KindNumber, Num: float64(i + 1)}, DIF: "\x04", VIF: "\x06"})
	}
	return t
}

// good answers every read after took with one telegram.
func good(took time.Duration) answer {
	return func(addr string, _ time.Duration) (time.Duration, master.Result, error) {
		return took, okResult(addr), nil
	}
}

// failing answers like good(took), except that a read for which fails
// is true keeps the bus busy and then ends with err.
func failing(took, busy time.Duration, err error, fails func(addr string, since time.Duration) bool) answer {
	return func(addr string, since time.Duration) (time.Duration, master.Result, error) {
		if fails(addr, since) {
			return busy, master.Result{}, err
		}
		return took, okResult(addr), nil
	}
}

func okResult(addr string) master.Result {
	return master.Result{Telegrams: []*mbus.Telegram{telegram(addr, "energy")}, Raw: [][]byte{{0x68, 0x03}}}
}

// busHealth is a bus health with the given backoff; make it inside the
// test's bubble.
func busHealth(lo, hi time.Duration) *bushealth.Health {
	return bushealth.New(bushealth.Options{Backoff: backoff.Backoff{Min: lo, Max: hi}})
}

// errTimeout is what the link layer gives when a meter stays silent.
var errTimeout = fmt.Errorf("read 2: %w", master.ErrTimeout)

// secs turns whole seconds into durations.
func secs(ss ...float64) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = time.Duration(s * float64(time.Second))
	}
	return out
}

var zeroLog = zerolog.Nop()

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
