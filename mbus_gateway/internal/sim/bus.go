package sim

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// Defaults of Options, also used by bus files and the simulate command.
const (
	// DefaultResponseDelay is how long a meter takes to start its answer
	// after the end of a request. EN 13757-2 allows 11 bit times to 330
	// bit times + 50 ms; real meters typically answer within a few
	// milliseconds to a few tens of milliseconds.
	DefaultResponseDelay = 10 * time.Millisecond
	// DefaultIdleTimeout bounds the wait for the rest of a partial request
	// before its first byte is discarded as garbage.
	DefaultIdleTimeout = 500 * time.Millisecond
)

// Options configure a Bus. The zero value is a bus without pacing and
// without response delay, which suits tests that do not care about time.
type Options struct {
	// Baud paces answers at 11 bit times per byte; 0 sends at once.
	Baud int
	// ResponseDelay is the time from the end of a request to the start
	// of an answer, for every meter (Meter.Delay adds to it).
	ResponseDelay time.Duration
	// IdleTimeout bounds the wait for the rest of a partial request;
	// zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Seed seeds the generator behind probabilistic faults.
	Seed uint64
	// Log receives one debug event per request; the zero Logger is silent.
	Log zerolog.Logger
	// FixedAccessNumber sends every telegram with the access number it
	// was given. By default a meter counts its transmissions in it, as
	// EN 13757-3 asks, so every reading can be told apart.
	FixedAccessNumber bool
	// Advance makes the first counter register of each telegram (current
	// energy, volume or mass as integer or BCD) grow by one unit with
	// every new transmission, so that values change as on a real bus.
	Advance bool
	// Echo makes the bus a converter that loops every request back to
	// the master as it goes out on the bus, answered or not (FaultEcho
	// echoes only the requests its meter answers).
	Echo bool
	// EchoDelay is how long after the request arrived its echo comes
	// back (Echo and FaultEcho). A converter that buffers its loop-back
	// sends the echo late, even after the answer; zero sends it as the
	// request goes out.
	EchoDelay time.Duration
	// Record keeps a Transmission for every new telegram of every meter
	// (see Bus.Sent): memory grows with each one, so it is for tests.
	Record bool
}

// Bus is a software M-Bus with its meters. It is safe for concurrent use:
// requests from several conversations are handled one at a time, as on a
// real bus.
type Bus struct {
	opts Options

	mu      sync.Mutex
	meters  []*meter
	rng     *rand.Rand
	frames  uint64 // requests decoded
	garbage uint64 // bytes skipped while looking for a request
	// lastReply are the whole telegrams of the reply put on the line
	// last, see pulled.
	lastReply []sentTx
}

// NewBus returns an empty bus.
func NewBus(opts Options) *Bus {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Baud < 0 {
		opts.Baud = 0
	}
	if opts.ResponseDelay < 0 {
		opts.ResponseDelay = 0
	}
	return &Bus{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x6d627573))} //nolint:gosec // G404: faults must repeat for a seed; nothing here is secret
}

// AddMeter puts a meter on the bus. Several meters may share a primary
// address (they collide when addressed by it) or a secondary address.
func (b *Bus) AddMeter(m Meter) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.Name == "" {
		m.Name = fmt.Sprintf("meter %d", len(b.meters)+1)
	}
	mt, err := b.newMeter(m)
	if err != nil {
		return err
	}
	b.meters = append(b.meters, mt)
	return nil
}

// ReplaceMeter takes every meter at m's primary address off the bus and
// puts m there in their place, as when a meter is swapped; it fails when
// no meter has the address or m is invalid, and then changes nothing.
func (b *Bus) ReplaceMeter(m Meter) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	primary := m.Primary
	if m.Name == "" {
		m.Name = fmt.Sprintf("meter at %d", primary)
	}
	mt, err := b.newMeter(m)
	if err != nil {
		return err
	}
	kept := b.meters[:0:0]
	at := -1
	for _, old := range b.meters {
		if old.primary != primary {
			kept = append(kept, old)
		} else if at < 0 {
			at = len(kept)
		}
	}
	if at < 0 {
		return fmt.Errorf("sim: replace meter: no meter at primary address %d", primary)
	}
	b.meters = slices.Insert(kept, at, mt)
	return nil
}

// newMeter is newMeter with the bus's options that each meter keeps.
func (b *Bus) newMeter(m Meter) (*meter, error) {
	mt, err := newMeter(m)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	mt.fixedAccess, mt.advance, mt.keep = b.opts.FixedAccessNumber, b.opts.Advance, b.opts.Record
	return mt, nil
}

// Meters returns a snapshot of every meter, in the order they were added.
func (b *Bus) Meters() []MeterStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]MeterStatus, len(b.meters))
	for i, m := range b.meters {
		out[i] = m.status()
	}
	return out
}

// Stats is a snapshot of the bus's own counters.
type Stats struct {
	Requests uint64 // well-formed frames received
	Garbage  uint64 // bytes skipped: noise, bad checksums, partial frames
}

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{Requests: b.frames, Garbage: b.garbage}
}

// SetFault replaces the faults of every meter at the primary address
// (none: the meter works again). It fails when no meter has the address.
func (b *Bus) SetFault(primary byte, faults ...Fault) error {
	return b.setFaults(func(m *meter) bool { return m.primary == primary },
		fmt.Sprintf("primary address %d", primary), faults)
}

// SetFaultSecondary is SetFault for the meters with a secondary address.
func (b *Bus) SetFaultSecondary(addr mbus.SecondaryAddress, faults ...Fault) error {
	return b.setFaults(func(m *meter) bool { return m.secondary == addr },
		"secondary address "+addr.String(), faults)
}

func (b *Bus) setFaults(match func(*meter) bool, what string, faults []Fault) error {
	for _, f := range faults {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.meters {
		if !match(m) {
			continue
		}
		m.faults = m.faults[:0]
		for _, f := range faults {
			m.faults = append(m.faults, faultState{Fault: f})
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("sim: %s: %w", what, ErrUnknownMeter)
	}
	return nil
}

// segment is part of what goes on the wire after a request: data starting
// at offset at from the end of the request.
type segment struct {
	at   time.Duration
	data []byte
}

// answer is one meter's answer to a request, faults applied.
type answer struct {
	meter    *meter
	data     []byte
	delay    time.Duration
	echo     bool
	silent   bool
	telegram bool
	damaged  bool // a fault changed or cut the bytes
	late     bool // starts after the response window
	hangUp   bool // the conversation ends after the answer
}

// reply is what the line carries back after one request.
type reply struct {
	segs []segment
	// hangUp ends the conversation once segs are sent.
	hangUp bool
	// intact are the transmissions that go out undamaged, in time and
	// without colliding; see meter.noteIntact.
	intact []sentTx
}

var ack = []byte{0xE5}

// handle runs one request through the meters it reaches and returns what
// the line carries back.
func (b *Bus) handle(f mbus.Frame, raw []byte) reply { return b.handleAt(f, raw, 0) }

// handleAt is handle for a request sent at lineBaud (0: unknown), which
// only the meters that talk at that speed hear.
func (b *Bus) handleAt(f mbus.Frame, raw []byte, lineBaud int) reply {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frames++
	now := time.Now()
	var answers []answer
	speakers := 0
	for _, m := range b.reached(f) {
		if !m.hears(lineBaud) {
			continue
		}
		m.requests++
		data := m.respond(f, now)
		if data == nil || f.A == mbus.AddrBroadcast {
			continue
		}
		a := b.applyFaults(m, answer{meter: m, data: data, delay: b.opts.ResponseDelay + m.delay, telegram: data[0] == 0x68})
		if !a.silent {
			m.answers++
			speakers++
			if a.telegram {
				m.sent++
				if r := m.record(m.cur); r != nil {
					r.Copies++
				}
			}
		}
		answers = append(answers, a)
	}
	r := reply{segs: mix(raw, answers, b.opts.Baud, b.opts.Echo, b.opts.EchoDelay)}
	for _, a := range answers {
		r.hangUp = r.hangUp || a.hangUp
		if a.telegram && !a.silent && !a.damaged && !a.late && speakers == 1 {
			r.intact = append(r.intact, sentTx{m: a.meter, n: a.meter.cur})
		}
	}
	return r
}

// LateSlack is how much later than due an answer may leave the
// simulator and still count as in time (MeterStatus.Late).
const LateSlack = 20 * time.Millisecond

// noteIntact counts the telegrams of a reply once they are on the line,
// late when they left more than LateSlack after they were due, and keeps
// them as the last reply.
func (b *Bus) noteIntact(txs []sentTx, late bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range txs {
		s.m.noteIntact(s.n, late)
	}
	b.lastReply = txs
}

// reached lists the meters a request is for.
func (b *Bus) reached(f mbus.Frame) []*meter {
	var out []*meter
	for _, m := range b.meters {
		switch {
		case f.A <= mbus.AddrMaxPrimary && m.primary == f.A,
			f.A == mbus.AddrNetwork && (m.selected || isSelect(f)),
			f.A == mbus.AddrBroadcastAll, f.A == mbus.AddrBroadcast:
			out = append(out, m)
		}
	}
	return out
}

// Request control fields without FCB and FCV (EN 13757-2 table 4).
const (
	cMask   = 0xCF
	cReqUD2 = mbus.CReqUD2 &^ mbus.FCV
	cReqUD1 = mbus.CReqUD1 &^ mbus.FCV
	cSndUD  = mbus.CSndUD &^ mbus.FCV
)

func isSndUD(f mbus.Frame) bool {
	return (f.Type == mbus.FrameLong || f.Type == mbus.FrameControl) && f.C&cMask == cSndUD
}

func isSelect(f mbus.Frame) bool { return isSndUD(f) && f.CI == mbus.CISelect }

// respond is the meter's protocol: its answer to f, or nil for silence.
func (m *meter) respond(f mbus.Frame, now time.Time) []byte {
	if f.Type == mbus.FrameShort {
		switch {
		case f.C == mbus.CSndNKE:
			m.reset()
			if f.A >= mbus.AddrNetwork {
				m.selected = false
			}
			return ack
		case f.C&cMask == cReqUD2:
			return m.next(f.C, now)
		case f.C&cMask == cReqUD1:
			return ack
		}
		return nil
	}
	if !isSndUD(f) {
		return nil
	}
	switch {
	case f.CI == mbus.CISelect:
		if f.A != mbus.AddrNetwork || len(f.Data) < 8 {
			return nil
		}
		m.selected = mbus.SecondaryAddress(f.Data[:8]).Matches(m.secondary)
		if !m.selected {
			return nil
		}
		return ack
	case f.CI == mbus.CIAppReset:
		m.reset()
		return ack
	case f.CI == mbus.CIDataSend:
		// DIF 01 (8-bit integer), VIF 7A (bus address): EN 13757-3 table 14.
		if len(f.Data) == 3 && f.Data[0] == 0x01 && f.Data[1] == 0x7A {
			if f.Data[2] > mbus.AddrMaxPrimary {
				return nil
			}
			m.primary = f.Data[2]
		}
		return ack
	case f.CI >= mbus.CIBaudBase && f.CI <= mbus.CIBaudBase+7:
		return ack
	}
	return nil
}

// applyFaults decides which of the meter's faults fire on this answer.
func (b *Bus) applyFaults(m *meter, a answer) answer {
	for i := range m.faults {
		fs := &m.faults[i]
		fs.count++
		switch {
		case fs.Every > 0 && fs.count%fs.Every != 0:
			continue
		case fs.Probability > 0 && b.rng.Float64() >= fs.Probability:
			continue
		case fs.Times > 0 && fs.fired >= fs.Times:
			continue
		}
		fs.fired++
		switch fs.Kind {
		case FaultNoAnswer:
			a.silent = true
		case FaultEcho:
			a.echo = true
		case FaultSlow:
			d := fs.Delay
			if d == 0 {
				d = DefaultSlowDelay
			}
			a.delay = max(a.delay, responseWindow(b.opts.Baud)+d)
			a.late = true
		case FaultHangUp:
			a.data, a.damaged, a.hangUp = damage(fs.Kind, a.data), true, true
		default:
			damaged := damage(fs.Kind, a.data)
			a.damaged = a.damaged || !bytes.Equal(damaged, a.data)
			a.data = damaged
		}
	}
	return a
}

// mix puts the answers on one line, as offsets from the moment the
// request arrived: it takes its own time on the wire first (with a baud
// rate), and each answer starts its delay after that. An echo of the
// request (echo, or a fault that asks for it) goes out with the request,
// or echoDelay after its arrival, then after whatever answer is on the line
// at that time.
// Answers that overlap in time collide byte by byte at their offsets, so a
// meter that starts a byte later than another garbles both from there on
// (one that starts right at the end of another follows it); an answer that
// starts after the line went quiet again is a segment of its own.
func mix(req []byte, answers []answer, baud int, echo bool, echoDelay time.Duration) []segment {
	var segs []segment
	for _, a := range answers {
		echo = echo || a.echo
	}
	sent := byteTimes(len(req), baud)
	speaking := make([]answer, 0, len(answers))
	for _, a := range answers {
		if !a.silent {
			speaking = append(speaking, a)
		}
	}
	slices.SortStableFunc(speaking, func(a, b answer) int { return cmp.Compare(a.delay, b.delay) })
	for _, a := range speaking {
		at := sent + a.delay
		if n := len(segs); n > 0 {
			last := &segs[n-1]
			if at <= last.at+byteTimes(len(last.data), baud) {
				off := 0
				if bt := byteTimes(1, baud); bt > 0 {
					off = int((at - last.at) / bt)
				}
				last.data = overlay(last.data, a.data, off)
				continue
			}
		}
		segs = append(segs, segment{at: at, data: append([]byte(nil), a.data...)})
	}
	if !echo {
		return segs
	}
	e := segment{at: echoDelay, data: append([]byte(nil), req...)}
	i := 0
	for i < len(segs) && segs[i].at < e.at {
		e.at = max(e.at, segs[i].at+byteTimes(len(segs[i].data), baud))
		i++
	}
	return slices.Insert(segs, i, e)
}

// collide overlays b on a: a 0 bit from either sender wins (see the
// package doc), and the longer answer goes on alone after the shorter ends.
func collide(a, b []byte) []byte {
	return overlay(append([]byte(nil), a...), b, 0)
}

// overlay puts b on the line off bytes after the start of a (off is at
// most len(a)), changing or extending a in place: where both send, a 0 bit
// wins.
func overlay(a, b []byte, off int) []byte {
	for i, v := range b {
		if j := off + i; j < len(a) {
			a[j] &= v
		} else {
			a = append(a, v)
		}
	}
	return a
}
