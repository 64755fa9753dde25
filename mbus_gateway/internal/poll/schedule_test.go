package poll

import (
	"testing"
	"time"
)

func TestEstimateReadTime(t *testing.T) {
	tests := []struct {
		baud      int
		secondary bool
		want      time.Duration
	}{
		// 105 characters of 11 bits, plus 330 bit times and 50 ms.
		{2400, false, 481250*time.Microsecond + 137500*time.Microsecond + 50*time.Millisecond},
		{300, false, 3850*time.Millisecond + 1100*time.Millisecond + 50*time.Millisecond},
		// Selection: 18 more characters and one more answer window.
		{2400, true, 481250*time.Microsecond + 82500*time.Microsecond + 2*(137500*time.Microsecond+50*time.Millisecond)},
		{0, false, 481250*time.Microsecond + 137500*time.Microsecond + 50*time.Millisecond},
	}
	for _, tt := range tests {
		if got := EstimateReadTime(tt.baud, tt.secondary); got != tt.want {
			t.Errorf("EstimateReadTime(%d, %v): got %v, want %v", tt.baud, tt.secondary, got, tt.want)
		}
	}
}

func TestNextSlot(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }
	tests := []struct {
		name       string
		slot, done time.Time
		want       time.Time
	}{
		{"read within the period", s(0), s(3), s(10)},
		{"read ending on the next slot", s(0), s(10), s(10)},
		{"overrun starts from the end", s(0), s(12.5), s(22.5)},
	}
	for _, tt := range tests {
		if got := nextSlot(tt.slot, tt.done, 10*time.Second); !got.Equal(tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got.Sub(t0), tt.want.Sub(t0))
		}
	}
}

func TestStartOffset(t *testing.T) {
	tests := []struct {
		i, n             int
		interval, spread time.Duration
		want             time.Duration
	}{
		{0, 3, time.Minute, time.Minute, 0},
		{2, 3, time.Minute, time.Minute, 40 * time.Second},
		{1, 2, time.Hour, time.Minute, 30 * time.Second},
		{1, 2, 10 * time.Second, time.Minute, 5 * time.Second},
		{1, 2, time.Minute, -1, 0},
	}
	for _, tt := range tests {
		if got := startOffset(tt.i, tt.n, tt.interval, tt.spread); got != tt.want {
			t.Errorf("startOffset(%d, %d, %v, %v): got %v, want %v", tt.i, tt.n, tt.interval, tt.spread, got, tt.want)
		}
	}
}

// The same seed gives the same jitter; it stays below a tenth of the
// interval and below the configured bound.
func TestJitterDeterministic(t *testing.T) {
	a, b := newJitterer(42, time.Second), newJitterer(42, time.Second)
	other, short := newJitterer(43, time.Second), newJitterer(44, time.Second)
	same, differs := true, false
	for range 100 {
		x, y, z := a.next(time.Minute), b.next(time.Minute), other.next(time.Minute)
		same = same && x == y
		differs = differs || x != z
		if x < 0 || x >= time.Second {
			t.Fatalf("jitter %v outside [0, 1s)", x)
		}
		if s := short.next(5 * time.Second); s < 0 || s >= 500*time.Millisecond {
			t.Fatalf("jitter %v for a 5 s interval outside [0, 500ms)", s)
		}
	}
	if !same || !differs {
		t.Errorf("same seed same jitter: %v, other seed other jitter: %v; want both", same, differs)
	}
	if got := newJitterer(1, -1).next(time.Minute); got != 0 {
		t.Errorf("disabled jitter: got %v, want 0", got)
	}
}
