// Package bushealth owns the one answer to "is the bus down?". Each bus
// has one Health: the master feeds it the outcome of every read, the
// transport every open and every broken port, and everything else reads
// it — the transport to know when to reopen, the master when to stop
// repeating, the poller when to hold scheduled reads back, the status
// page, the metrics and the gateway's own device in Home Assistant.
//
// States and transitions (the outcome that causes each):
//
//	up        ── Garbled ×SuspectAfter ─▶ suspect
//	up        ── PortFailed ───────────▶ down
//	suspect   ── Answered ─────────────▶ up
//	suspect   ── Garbled ×DownAfter ───▶ down
//	suspect   ── PortFailed ───────────▶ down
//	down      ── Opening ──────────────▶ reopening   (once RetryAt has passed)
//	reopening ── Opened ───────────────▶ up
//	reopening ── PortFailed ───────────▶ down        (the backoff grows)
//	any       ── Answered ─────────────▶ up          (the backoff resets)
//
// A meter that does not answer (NoAnswer) changes nothing: one silent
// meter is that meter's problem, and its own breaker deals with it.
// Garbled answers count across meters and are forgotten at the next good
// answer, so one noisy meter among good ones never makes the bus
// suspect. A broken or unopenable port is always the bus.
//
// Down holds the bus back until RetryAt: the first time right away (a
// converter that dropped one connection takes the next at once), then
// Backoff.Min, doubling up to Backoff.Max while no meter answers.
package bushealth

import (
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/backoff"
)

// State of a bus. The numbers are the values of the mbus_bus_state metric.
type State uint8

// States of a Health. The zero value is Up: nothing has failed yet.
const (
	Up        State = 0 // reads work, or nothing has failed yet
	Suspect   State = 1 // several answers in a row were garbled; reads go on
	Down      State = 2 // the port failed or the garbling went on; held back until RetryAt
	Reopening State = 3 // the wait is over and the port is being opened
)

// States lists every state, in metric order.
var States = []State{Up, Suspect, Down, Reopening}

var stateNames = [...]string{Up: "up", Suspect: "suspect", Down: "down", Reopening: "reopening"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText makes a State a JSON string.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Working reports whether the bus can be used now: up or suspect.
func (s State) Working() bool { return s == Up || s == Suspect }

// Outcome is what one operation on the bus showed.
type Outcome uint8

// Outcomes fed to Record.
const (
	// Answered: a meter answered with a valid frame. The bus works.
	Answered Outcome = iota + 1
	// NoAnswer: a meter stayed silent. Says nothing about the bus.
	NoAnswer
	// Garbled: bytes came back but no valid frame, after the repeats.
	Garbled
	// PortFailed: the port broke, was closed, or could not be opened.
	PortFailed
	// Opening: an attempt to open the port starts.
	Opening
	// Opened: the port was opened.
	Opened
)

var outcomeNames = [...]string{Answered: "answered", NoAnswer: "no_answer", Garbled: "garbled",
	PortFailed: "port_failed", Opening: "opening", Opened: "opened"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && outcomeNames[o] != "" {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Defaults of Options.
const (
	DefaultSuspectAfter = 3
	DefaultDownAfter    = 10
)

// DefaultBackoff is the wait between attempts to bring a down bus back:
// 500 ms after the second failure in a row, doubling up to a minute.
var DefaultBackoff = backoff.Backoff{Min: 500 * time.Millisecond, Max: time.Minute}

// Options configure a Health. The zero value gives the defaults.
type Options struct {
	// SuspectAfter and DownAfter are the numbers of garbled answers in a
	// row, across meters and without a good answer between them, that
	// make the bus suspect and down.
	SuspectAfter, DownAfter int
	// Backoff is the wait between attempts while the bus is down.
	Backoff backoff.Backoff
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the transitions: to down at warn, others at info.
	Log zerolog.Logger
}

// Transition is one change of state, counted by Transitions.
type Transition struct {
	From, To State
}

// Snapshot is a copy of a Health's state.
type Snapshot struct {
	State State     `json:"state"`
	Since time.Time `json:"since"`
	// RetryAt is when a down bus is tried again; zero in other states.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// LastError is the failure that made the bus suspect or down, kept
	// until it is up again.
	LastError string `json:"last_error,omitempty"`
	// Failures counts attempts to bring the bus back that failed since it
	// last worked; Garbled counts garbled answers in a row.
	Failures int `json:"failures"`
	Garbled  int `json:"garbled"`
}

// Health is the state machine of one bus; safe for concurrent use.
type Health struct {
	opts Options

	mu          sync.Mutex
	state       State
	since       time.Time
	retryAt     time.Time
	lastErr     error
	garbled     int // garbled answers since the last good one
	downs       int // entries into down since the bus last worked
	transitions map[Transition]uint64
}

// New returns the Health of a bus that is up.
func New(o Options) *Health {
	if o.SuspectAfter <= 0 {
		o.SuspectAfter = DefaultSuspectAfter
	}
	if o.DownAfter <= 0 {
		o.DownAfter = DefaultDownAfter
	}
	o.DownAfter = max(o.DownAfter, o.SuspectAfter)
	o.Backoff = o.Backoff.OrDefault(DefaultBackoff)
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Log = o.Log.With().Str("component", "bus").Logger()
	return &Health{opts: o, since: o.Now(), transitions: map[Transition]uint64{}}
}

// Record feeds one outcome; err is the failure behind Garbled and
// PortFailed, nil otherwise. See the package comment for the rules.
func (h *Health) Record(o Outcome, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.opts.Now()
	switch o {
	case Answered:
		h.garbled, h.downs, h.lastErr = 0, 0, nil
		h.set(Up, now, nil)
	case NoAnswer:
	case Garbled:
		if !h.state.Working() {
			return // a port being brought back has no answers to judge
		}
		h.garbled++
		switch {
		case h.garbled >= h.opts.DownAfter:
			h.down(now, err)
		case h.garbled >= h.opts.SuspectAfter:
			h.set(Suspect, now, err)
		}
	case PortFailed:
		if h.state == Down {
			h.lastErr = err // reported twice (transport and master): once is enough
			return
		}
		h.down(now, err)
	case Opening:
		if h.state == Reopening {
			return
		}
		h.set(Reopening, now, nil)
	case Opened:
		h.garbled = 0 // a new port starts with a clean line
		h.set(Up, now, nil)
	}
}

// down enters Down with the next wait of the backoff: none the first time.
func (h *Health) down(now time.Time, err error) {
	h.downs++
	h.retryAt = now.Add(h.opts.Backoff.Delay(h.downs - 1))
	h.set(Down, now, err)
}

// set moves to s, logging and counting a change; err, when not nil,
// becomes the last error.
func (h *Health) set(s State, now time.Time, err error) {
	if err != nil {
		h.lastErr = err
	}
	if s == h.state {
		return
	}
	from := h.state
	h.transitions[Transition{From: from, To: s}]++
	h.state, h.since = s, now
	if s != Down {
		h.retryAt = time.Time{}
	}
	ev := h.opts.Log.Info()
	if h.downs == 0 && (s == Reopening || from == Reopening) {
		ev = h.opts.Log.Debug() // the first open, not a recovery
	}
	if s == Down {
		ev = h.opts.Log.Warn().Time("retry_at", h.retryAt).Int("failures", h.downs)
	}
	if s == Up {
		ev = ev.Int("failed_attempts", h.downs)
	}
	ev.Str("from", from.String()).Str("state", s.String()).AnErr("error", err).Msg("bus " + s.String())
}

// State returns the current state.
func (h *Health) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state
}

// RetryAt returns when a down bus is tried next; zero when it is not down.
func (h *Health) RetryAt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.retryAt
}

// Wait returns how long the bus is still held back: until RetryAt while
// down, otherwise nothing.
func (h *Health) Wait() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != Down {
		return 0
	}
	return max(h.retryAt.Sub(h.opts.Now()), 0)
}

// Snapshot returns a copy of the state.
func (h *Health) Snapshot() Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Snapshot{State: h.state, Since: h.since, RetryAt: h.retryAt, Failures: h.downs, Garbled: h.garbled}
	if h.lastErr != nil && h.state != Up {
		s.LastError = h.lastErr.Error()
	}
	return s
}

// Transitions returns how often each change of state happened.
func (h *Health) Transitions() map[Transition]uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[Transition]uint64, len(h.transitions))
	for t, n := range h.transitions {
		out[t] = n
	}
	return out
}
