package bushealth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/backoff"
)

// clock is a fake clock that moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var (
	errEIO    = errors.New("read /dev/ttyUSB0: input/output error")
	errGarble = errors.New("garbled answer")
)

// step is one event fed to a Health, and the state expected after it.
type step struct {
	advance time.Duration // clock moves before the event
	o       Outcome
	want    State
	// wait is the expected Wait after the event.
	wait time.Duration
}

func newHealth(c *clock) *Health {
	return New(Options{SuspectAfter: 2, DownAfter: 4, Now: c.now,
		Backoff: backoff.Backoff{Min: time.Second, Max: 4 * time.Second}})
}

func TestTransitions(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"a silent meter changes nothing", []step{
			{o: NoAnswer, want: Up}, {o: NoAnswer, want: Up}, {o: NoAnswer, want: Up}, {o: NoAnswer, want: Up},
		}},
		{"up to suspect after garbled answers in a row", []step{
			{o: Garbled, want: Up}, {o: Garbled, want: Suspect},
		}},
		{"silence does not break a run of garbled answers", []step{
			{o: Garbled, want: Up}, {o: NoAnswer, want: Up}, {o: Garbled, want: Suspect},
		}},
		{"a good answer ends the run", []step{
			{o: Garbled, want: Up}, {o: Answered, want: Up}, {o: Garbled, want: Up},
		}},
		{"suspect back to up on an answer", []step{
			{o: Garbled, want: Up}, {o: Garbled, want: Suspect}, {o: Answered, want: Up},
		}},
		{"suspect to down when the garbling goes on", []step{
			{o: Garbled, want: Up}, {o: Garbled, want: Suspect}, {o: Garbled, want: Suspect},
			{o: Garbled, want: Down},
		}},
		{"suspect to down on a port failure", []step{
			{o: Garbled, want: Up}, {o: Garbled, want: Suspect}, {o: PortFailed, want: Down},
		}},
		{"up to down on a port failure; first retry at once", []step{
			{o: PortFailed, want: Down, wait: 0},
		}},
		{"down to reopening to up", []step{
			{o: PortFailed, want: Down}, {o: Opening, want: Reopening}, {o: Opened, want: Up},
		}},
		{"a failed reopen is down again, with the backoff", []step{
			{o: PortFailed, want: Down}, {o: Opening, want: Reopening},
			{o: PortFailed, want: Down, wait: time.Second},
			{advance: 400 * time.Millisecond, o: NoAnswer, want: Down, wait: 600 * time.Millisecond},
		}},
		{"a port failure reported twice counts once", []step{
			{o: PortFailed, want: Down}, {o: PortFailed, want: Down, wait: 0},
		}},
		{"garbling is not judged while the port is away", []step{
			{o: PortFailed, want: Down}, {o: Garbled, want: Down}, {o: Opening, want: Reopening},
			{o: Garbled, want: Reopening},
		}},
		{"opening from up (the first open) and back", []step{
			{o: Opening, want: Reopening}, {o: Opened, want: Up},
		}},
		{"a new port starts with a clean line", []step{
			{o: Garbled, want: Up}, {o: Opening, want: Reopening}, {o: Opened, want: Up},
			{o: Garbled, want: Up},
		}},
		{"an answer brings any state up", []step{
			{o: PortFailed, want: Down}, {o: Answered, want: Up},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: time.Unix(1000, 0)}
			h := newHealth(c)
			for i, s := range tt.steps {
				c.t = c.t.Add(s.advance)
				h.Record(s.o, errGarble)
				if got := h.State(); got != s.want {
					t.Fatalf("step %d (%v): got %v, want %v", i, s.o, got, s.want)
				}
				if got := h.Wait(); got != s.wait {
					t.Fatalf("step %d (%v): wait got %v, want %v", i, s.o, got, s.wait)
				}
			}
		})
	}
}

// TestBackoffGrowsAndResets: each failed attempt to bring the bus back
// doubles the wait up to the cap; an answer starts over.
func TestBackoffGrowsAndResets(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	h := newHealth(c)
	h.Record(PortFailed, errEIO)
	var waits []time.Duration
	for range 5 {
		waits = append(waits, h.Wait())
		c.t = h.RetryAt()
		h.Record(Opening, nil)
		h.Record(PortFailed, errEIO)
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits: got %v, want %v", waits, want)
		}
	}
	if got := h.Snapshot().Failures; got != 6 {
		t.Errorf("failures: got %d, want 6", got)
	}
	// A reopen alone does not prove the bus: a converter that takes the
	// connection and drops it again keeps the long wait.
	c.t = h.RetryAt()
	h.Record(Opening, nil)
	h.Record(Opened, nil)
	h.Record(PortFailed, errEIO)
	if got := h.Wait(); got != 4*time.Second {
		t.Errorf("wait after open and break: got %v, want the cap 4s", got)
	}
	// An answer does.
	h.Record(Answered, nil)
	h.Record(PortFailed, errEIO)
	if got := h.Wait(); got != 0 {
		t.Errorf("wait after an answer and a break: got %v, want 0", got)
	}
	h.Record(Opening, nil)
	h.Record(PortFailed, errEIO)
	if got := h.Wait(); got != time.Second {
		t.Errorf("second wait after the reset: got %v, want 1s", got)
	}
}

func TestSnapshot(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	h := newHealth(c)
	if s := h.Snapshot(); s.State != Up || !s.Since.Equal(c.t) || s.LastError != "" || !s.RetryAt.IsZero() {
		t.Fatalf("new: got %+v, want up since now, no error", s)
	}
	h.Record(Answered, nil)
	c.t = c.t.Add(time.Minute)
	h.Record(PortFailed, errEIO)
	h.Record(Opening, nil)
	c.t = c.t.Add(time.Minute)
	h.Record(PortFailed, errEIO)
	s := h.Snapshot()
	if s.State != Down || !s.Since.Equal(c.t) || s.LastError != errEIO.Error() || !s.RetryAt.Equal(c.t.Add(time.Second)) || s.Failures != 2 {
		t.Errorf("down: got %+v, want down since now, the error, retry in 1s, 2 failures", s)
	}
	h.Record(Opening, nil)
	h.Record(Opened, nil)
	if s := h.Snapshot(); s.State != Up || s.LastError != "" || !s.RetryAt.IsZero() {
		t.Errorf("up again: got %+v, want no error, no retry", s)
	}
}

func TestOptionsDefaults(t *testing.T) {
	h := New(Options{})
	for range DefaultSuspectAfter - 1 {
		h.Record(Garbled, errGarble)
	}
	if got := h.State(); got != Up {
		t.Fatalf("after %d garbled: got %v, want up", DefaultSuspectAfter-1, got)
	}
	h.Record(Garbled, errGarble)
	if got := h.State(); got != Suspect {
		t.Fatalf("after %d garbled: got %v, want suspect", DefaultSuspectAfter, got)
	}
	for range DefaultDownAfter - DefaultSuspectAfter {
		h.Record(Garbled, errGarble)
	}
	if got := h.State(); got != Down {
		t.Fatalf("after %d garbled: got %v, want down", DefaultDownAfter, got)
	}
}

func TestStateNames(t *testing.T) {
	want := []string{"up", "suspect", "down", "reopening"}
	for i, s := range States {
		if got := s.String(); got != want[i] {
			t.Errorf("State(%d): got %q, want %q", i, got, want[i])
		}
	}
	if got := State(9).String(); got != "State(9)" {
		t.Errorf("unknown state: got %q", got)
	}
	if got := Outcome(99).String(); got != "Outcome(99)" {
		t.Errorf("unknown outcome: got %q", got)
	}
}

func TestCollector(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	h := newHealth(c)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(h)); err != nil {
		t.Fatal(err)
	}
	h.Record(PortFailed, errEIO)
	h.Record(Opening, nil)
	h.Record(PortFailed, errEIO)
	want := `
# HELP mbus_bus_state State of the bus: 0 up, 1 suspect (garbled answers in a row), 2 down (port failed; waiting to retry), 3 reopening.
# TYPE mbus_bus_state gauge
mbus_bus_state 2
# HELP mbus_bus_up 1 while the bus (adapter, port or converter) works (state up or suspect), 0 while it is down or being reopened.
# TYPE mbus_bus_up gauge
mbus_bus_up 0
# HELP mbus_bus_transitions_total Changes of the bus state, by the state left and the state entered.
# TYPE mbus_bus_transitions_total counter
mbus_bus_transitions_total{from="down",to="reopening"} 1
mbus_bus_transitions_total{from="reopening",to="down"} 1
mbus_bus_transitions_total{from="up",to="down"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
