package poll

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/backoff"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// Bus reads and scans meters; *master.Master implements it. Every call
// blocks until the bus is free again and returns early when ctx ends.
// Errors name the operation and the address ("read 5: no answer"), as
// master's do; the poller passes them on without another prefix.
type Bus interface {
	Read(ctx context.Context, addr mbus.Address) (master.Result, error)
	ScanPrimary(ctx context.Context, progress func(master.Progress)) ([]master.Found, error)
	ScanSecondary(ctx context.Context, progress func(master.Progress)) ([]master.Found, error)
}

// MeterReader is a Bus that reads a meter with options of its own: at
// another speed than the rest of the bus, for meters whose Meter.Baud
// differs from Options.Baud, and with the key of a meter whose telegrams
// are encrypted (Meter.Key); *master.Master implements it. A Bus without
// it reads every meter at the bus speed and without a key.
type MeterReader interface {
	ReadWith(ctx context.Context, addr mbus.Address, o master.ReadOptions) (master.Result, error)
}

// Sink commits a reading to the outbox. An error means the reading is
// not stored; the poller keeps it and tries again.
type Sink interface {
	Deliver(ctx context.Context, r reading.Reading) error
}

// Availability is told when a meter starts or stops answering. It must
// not block for long: it is called from the bus goroutine.
type Availability interface {
	SetAvailability(meter string, online bool)
}

// Errors of the request methods.
var (
	ErrScanRunning  = errors.New("a scan is already running")
	ErrScanMode     = errors.New("unknown scan mode (want primary or secondary)")
	ErrUnknownMeter = errors.New("no such meter")
	ErrStopped      = errors.New("poller stopped")
	ErrRunning      = errors.New("poller already running")
)

// Scan modes.
const (
	ScanPrimary   = "primary"
	ScanSecondary = "secondary"
)

// ScanProgress reports how far a scan got. A primary scan counts
// addresses (Done of Total); a secondary scan counts probes in Done and
// has no Total, as the number of probes depends on the meters found.
// Probes counts the requests sent (see master.Progress).
type ScanProgress struct {
	Mode   string `json:"mode"`
	Done   int    `json:"done"`
	Total  int    `json:"total"`
	Found  int    `json:"found"`
	Probes int    `json:"probes"`
}

// availability as last reported for a meter.
type availability uint8

const (
	availUnknown availability = iota
	availOnline
	availOffline
)

// meterState is the poller's view of one meter; fields are guarded by
// Poller.mu and written by the bus goroutine, and by AddMeters and
// SetMeters (configuration, schedule, removal).
type meterState struct {
	cfg     Meter
	addr    string
	id      string // identifier for topics, metrics and logs
	breaker Breaker
	avail   availability
	// removed is set when SetMeters drops the meter; a read of it queued
	// or on the wire then leaves no trace.
	removed bool
	slot    time.Time // nominal time of the next scheduled read
	due     time.Time // slot plus jitter, or the breaker's probe time

	// ident is the meter's identity, nil until it is known (stored, or
	// from its first good answer): nothing is published for the meter
	// before. suspect is another meter that answered at the address once.
	ident   *reading.Identity
	suspect *reading.Identity

	lastRead    time.Time
	lastSuccess time.Time
	readTime    time.Duration
	last        *reading.Reading
	raw         [][]byte
	decodeErr   string
	lastErr     string
}

// requestKind tells what a request asks of the bus goroutine.
type requestKind uint8

const (
	reqRead requestKind = iota
	reqReadAll
	reqScan
)

// request is work for the bus goroutine. reply is nil for reads that
// ReadAll queued: nobody waits for them.
type request struct {
	kind     requestKind
	ctx      context.Context
	meter    *meterState
	mode     string
	progress func(ScanProgress)
	reply    chan response
}

type response struct {
	reading reading.Reading
	found   []master.Found
	err     error
}

// Poller owns one bus. Run is its only goroutine; the other methods are
// safe for concurrent use and hand work to Run.
type Poller struct {
	opts  Options
	bus   Bus
	sink  Sink
	avail Availability
	log   zerolog.Logger
	met   *metrics
	jit   *jitterer

	reqs     chan request
	wake     chan struct{}
	quit     chan struct{} // closed when Run returns
	running  atomic.Bool
	scanning atomic.Bool

	mu         sync.Mutex
	started    bool
	meters     []*meterState
	byKey      map[string]*meterState // by address and by identifier
	busPolls   uint64
	busErrors  uint64
	busWasDown bool // the bus was down after the last operation
	scan       ScanStatus
	overloaded bool
	pending    []reading.Reading
	sinkWait   time.Duration
	sinkRetry  time.Time
	sinkStatus SinkStatus
	// resets are the notices of the newest confirmed meter resets.
	resets []string
	// reg holds the identities (shared with the other buses' pollers);
	// unsaved are those the IdentityStore has not taken yet.
	reg     *Registry
	unsaved []reading.Identity
	notes   []string // replacements since the start, for Warnings
	// sinkDropped counts the readings dropped since the sink started
	// failing: the first drop is logged, the rest only counted.
	sinkDropped int
}

// sinkBackoff is the wait between attempts to deliver to a failing sink.
// The longest is short: an attempt costs one failed commit, and a disk
// that has space again must not wait (nor drop what the memory cannot
// hold meanwhile).
var sinkBackoff = backoff.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}

// New checks opts and builds a Poller for bus; metrics go to reg.
func New(opts Options, bus Bus, sink Sink, avail Availability, log zerolog.Logger, reg prometheus.Registerer) (*Poller, error) {
	if bus == nil || sink == nil || avail == nil {
		return nil, errors.New("poll: bus, sink and availability are required")
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("poll: metrics: %w", err)
	}
	p := &Poller{
		opts:  opts,
		bus:   bus,
		sink:  sink,
		avail: avail,
		log:   log.With().Str("component", "poll").Logger(),
		met:   met,
		jit:   newJitterer(opts.Seed, opts.Jitter),
		reqs:  make(chan request, 16),
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		byKey: make(map[string]*meterState),
		reg:   opts.Registry,
	}
	if p.reg == nil {
		p.reg = NewRegistry()
	}
	p.addLocked(opts.Meters, time.Now())
	return p, nil
}

// AddMeters adds meters at run time, e.g. those a scan found. Meters
// whose address is already known are skipped; it returns how many were
// added.
func (p *Poller) AddMeters(ms ...Meter) (int, error) {
	if err := validateMeters(ms); err != nil {
		return 0, fmt.Errorf("poll: add meters: %w", err)
	}
	p.mu.Lock()
	fresh := make([]Meter, 0, len(ms))
	for _, m := range ms {
		if p.byKey[m.Address.String()] == nil {
			fresh = append(fresh, m)
		}
	}
	p.addLocked(fresh, time.Now())
	p.mu.Unlock()
	p.poke()
	return len(fresh), nil
}

// addLocked registers ms; once Run has started they are scheduled at once.
func (p *Poller) addLocked(ms []Meter, now time.Time) {
	added := make([]*meterState, 0, len(ms))
	for _, cfg := range ms {
		m := p.newMeterLocked(cfg)
		p.meters = append(p.meters, m)
		added = append(added, m)
	}
	if p.started {
		p.scheduleFirst(added, now)
		p.checkLoad("meters added")
	}
}

// newMeterLocked makes the state of a meter and makes it known by
// address and identifier; the caller puts it in p.meters.
func (p *Poller) newMeterLocked(cfg Meter) *meterState {
	m := &meterState{cfg: cfg, addr: cfg.Address.String()}
	m.id = initialID(cfg)
	m.breaker = Breaker{Threshold: p.opts.FailureThreshold, Base: breakerBase(cfg.Interval), Max: p.opts.BreakerMaxBackoff}
	p.byKey[m.addr] = m
	p.byKey[m.id] = m
	p.met.breaker.WithLabelValues(m.id).Set(float64(BreakerClosed))
	p.attachLocked(m)
	return m
}

// breakerBase is the first wait of an open breaker: one interval, so a
// meter read rarely is not probed more often than it is read.
func breakerBase(interval time.Duration) time.Duration {
	return max(interval, DefaultBreakerBase)
}

// initialID names a meter in logs, metrics and the status page until its
// identity is known: the configured identifier, else one derived from the
// secondary address, else from the primary address. No topic carries it.
func initialID(cfg Meter) string {
	if cfg.ID != "" {
		return cfg.ID
	}
	var h mbus.Header
	if a := cfg.Address; a.IsSecondary {
		h.ID, h.Manufacturer = a.Secondary.ID(), mbus.ManufacturerName(a.Secondary.ManufacturerCode())
	}
	return reading.MeterID(h, cfg.Address.String())
}

// scheduleFirst spreads the first reads of ms from now on.
func (p *Poller) scheduleFirst(ms []*meterState, now time.Time) {
	for i, m := range ms {
		m.slot = now.Add(startOffset(i, len(ms), m.cfg.Interval, p.opts.StartSpread))
		m.due = m.slot.Add(p.jit.next(m.cfg.Interval))
	}
}

// checkLoad warns when the intervals need more bus time than exists; it
// warns again only after the load was back below 1.
func (p *Poller) checkLoad(why string) {
	load := busLoad(p.meters, p.opts.Baud)
	over := load > 1
	if over && !p.overloaded {
		p.log.Warn().Str("reason", why).Float64("load", load).
			Float64("bus_seconds_per_second", load).
			Msg("poll intervals need more bus time than exists; meters will be read less often than configured")
	}
	p.overloaded = over
}

func (p *Poller) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run reads meters until ctx ends, then finishes the read in flight
// (for at most Options.ShutdownGrace), tries once more to deliver
// readings the sink refused, and returns nil. It may be called once.
func (p *Poller) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(p.quit)
	p.loadIdentities(ctx)
	p.mu.Lock()
	p.started = true
	p.scheduleFirst(p.meters, time.Now())
	p.checkLoad("start")
	p.mu.Unlock()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var queue []request
	for ctx.Err() == nil {
		if p.sinkDue(time.Now()) {
			p.flush(ctx)
		}
		select {
		case r := <-p.reqs:
			queue = append(queue, r)
			continue
		default:
		}
		if len(queue) > 0 {
			r := queue[0]
			queue = p.serve(ctx, r, queue[1:])
			continue
		}
		now := time.Now()
		m, at := p.nextDue()
		if m != nil && !at.After(now) {
			_, _ = p.poll(ctx, m, true) // the outcome is kept in the meter's state, metrics and log
			continue
		}
		var tick <-chan time.Time
		if wakeAt := p.wakeAt(at); !wakeAt.IsZero() {
			timer.Reset(wakeAt.Sub(now))
			tick = timer.C
		}
		select {
		case <-ctx.Done():
		case r := <-p.reqs:
			queue = append(queue, r)
		case <-p.wake:
		case <-tick:
		}
	}
	p.drain(ctx)
	return nil
}

// wakeAt is the earlier of the next due read and the next delivery retry.
func (p *Poller) wakeAt(due time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) > 0 && (due.IsZero() || p.sinkRetry.Before(due)) {
		return p.sinkRetry
	}
	return due
}

// nextDue returns the enabled meter due first and when it is due.
func (p *Poller) nextDue() (*meterState, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *meterState
	var at time.Time
	bus := p.opts.Health.Snapshot()
	for _, m := range p.meters {
		if !m.cfg.Enabled {
			continue
		}
		if d := p.effectiveDue(m, bus); best == nil || d.Before(at) {
			best, at = m, d
		}
	}
	return best, at
}

// effectiveDue is when m is read next. While the bus is down, open
// meters are due at the bus's next retry, not at their breakers' probe
// times: the bus being away says nothing about the meters, and when every
// breaker is open their reads are what finds the bus back. Closed meters
// keep their slots, which a down bus fails.
func (p *Poller) effectiveDue(m *meterState, bus bushealth.Snapshot) time.Time {
	if m.breaker.State() == BreakerOpen && bus.State == bushealth.Down {
		return bus.RetryAt
	}
	return m.due
}

// serve handles one request and returns the queue left to do.
func (p *Poller) serve(ctx context.Context, r request, queue []request) []request {
	if r.ctx != nil && r.ctx.Err() != nil {
		return queue // the caller gave up waiting
	}
	switch r.kind {
	case reqReadAll:
		p.mu.Lock()
		for _, m := range p.meters {
			if m.cfg.Enabled {
				queue = append(queue, request{kind: reqRead, meter: m})
			}
		}
		p.mu.Unlock()
	case reqRead:
		rd, err := p.poll(ctx, r.meter, false)
		p.reply(r, response{reading: rd, err: err})
	case reqScan:
		found, err := p.runScan(ctx, r)
		p.reply(r, response{found: found, err: err})
	}
	return queue
}

func (p *Poller) reply(r request, resp response) {
	if r.reply != nil {
		r.reply <- resp // buffered: never blocks
	}
}

// enqueue hands r to Run and waits for its answer. The error says why
// no answer came (ctx ended, Run stopped); the answer's own error is in
// the response.
func (p *Poller) enqueue(ctx context.Context, r request) (response, error) {
	r.ctx = ctx
	r.reply = make(chan response, 1)
	select {
	case p.reqs <- r:
	case <-ctx.Done():
		return response{}, ctx.Err()
	case <-p.quit:
		return response{}, ErrStopped
	}
	select {
	case resp := <-r.reply:
		return resp, nil
	case <-ctx.Done():
		return response{}, ctx.Err()
	case <-p.quit:
		return response{}, ErrStopped
	}
}

// ReadNow reads one meter, given by identifier or address, as soon as
// the bus is free (after the read in flight, before scheduled ones),
// delivers the reading like any other and returns it. Cancelling ctx
// stops the wait, not a read already on the wire.
func (p *Poller) ReadNow(ctx context.Context, meter string) (reading.Reading, error) {
	p.mu.Lock()
	m := p.byKey[meter]
	p.mu.Unlock()
	if m == nil {
		return reading.Reading{}, fmt.Errorf("read %q: %w", meter, ErrUnknownMeter)
	}
	resp, err := p.enqueue(ctx, request{kind: reqRead, meter: m})
	if err != nil {
		return reading.Reading{}, fmt.Errorf("read %s: %w", m.addr, err)
	}
	return resp.reading, resp.err // named by the read itself
}

// ReadAll queues a read of every enabled meter, ahead of scheduled reads,
// and returns once the request is queued.
func (p *Poller) ReadAll(ctx context.Context) error {
	select {
	case p.reqs <- request{kind: reqReadAll}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("read all: %w", ctx.Err())
	case <-p.quit:
		return fmt.Errorf("read all: %w", ErrStopped)
	}
}

// Scan searches the bus for meters (mode ScanPrimary or ScanSecondary)
// once the bus is free; reads wait while it runs. progress, if not nil,
// is called from the bus goroutine and must return quickly. Only one
// scan may be queued or running: another gets ErrScanRunning. Cancelling
// ctx stops the scan.
func (p *Poller) Scan(ctx context.Context, mode string, progress func(ScanProgress)) ([]master.Found, error) {
	if mode != ScanPrimary && mode != ScanSecondary {
		return nil, fmt.Errorf("scan %q: %w", mode, ErrScanMode)
	}
	if !p.scanning.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("scan: %w", ErrScanRunning)
	}
	defer p.scanning.Store(false)
	resp, err := p.enqueue(ctx, request{kind: reqScan, mode: mode, progress: progress})
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	return resp.found, resp.err // named by the bus ("scan secondary: …")
}

// runScan runs a scan on the bus goroutine. It ends when the caller's
// ctx or Run's ctx ends: a scan is long and may be cut short.
func (p *Poller) runScan(ctx context.Context, r request) ([]master.Found, error) {
	sctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()

	prog := ScanProgress{Mode: r.mode}
	p.mu.Lock()
	p.scan = ScanStatus{Running: true, Progress: prog, Started: time.Now()}
	p.mu.Unlock()
	update := func(mp master.Progress) {
		prog.Done, prog.Total, prog.Found, prog.Probes = mp.Done, mp.Total, mp.Found, mp.Probes
		p.mu.Lock()
		p.scan.Progress = prog
		p.mu.Unlock()
		if r.progress != nil {
			r.progress(prog)
		}
	}
	p.log.Info().Str("mode", r.mode).Msg("scan started")
	scan := p.bus.ScanSecondary
	if r.mode == ScanPrimary {
		scan = p.bus.ScanPrimary
	}
	found, err := scan(sctx, update)
	now := time.Now()
	p.mu.Lock()
	p.scan.Running, p.scan.Finished, p.scan.Found = false, now, len(found)
	if err != nil {
		p.scan.LastError = err.Error()
	}
	p.noteBus(err, now)
	p.mu.Unlock()
	if err != nil {
		p.log.Warn().Err(err).Str("mode", r.mode).Int("found", len(found)).Int("probes", prog.Probes).Msg("scan failed")
	} else {
		p.log.Info().Str("mode", r.mode).Int("found", len(found)).Int("probes", prog.Probes).Msg("scan finished")
	}
	return found, err
}

// opContext gives a read a context of its own: it survives the
// cancellation of ctx by ShutdownGrace, so the frame on the wire is
// finished and its reading committed, and it never outlives ReadTimeout.
func (p *Poller) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	op, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.ReadTimeout)
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(p.opts.ShutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-op.Done():
		}
	})
	return op, func() { stop(); cancel() }
}

var (
	_ Bus         = (*master.Master)(nil)
	_ MeterReader = (*master.Master)(nil)
)
