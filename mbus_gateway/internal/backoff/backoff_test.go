package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 10 * time.Second}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for n, w := range want {
		if got := b.Delay(n); got != w {
			t.Errorf("Delay(%d): got %v, want %v", n, got, w)
		}
	}
	if got := b.Delay(1 << 20); got != 10*time.Second {
		t.Errorf("Delay(1<<20): got %v, want the cap 10s", got)
	}
}

func TestDelayOddBounds(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
		n    int
		want time.Duration
	}{
		{"zero value never waits", Backoff{}, 5, 0},
		{"max below min is min", Backoff{Min: time.Minute, Max: time.Second}, 3, time.Minute},
		{"no max is min", Backoff{Min: time.Second}, 4, time.Second},
		{"cap not a power of two", Backoff{Min: 3 * time.Second, Max: 10 * time.Second}, 3, 10 * time.Second},
	}
	for _, tt := range tests {
		if got := tt.b.Delay(tt.n); got != tt.want {
			t.Errorf("%s: Delay(%d): got %v, want %v", tt.name, tt.n, got, tt.want)
		}
	}
}

func TestNext(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	var d time.Duration
	var got []time.Duration
	for range 6 {
		d = b.Next(d)
		got = append(got, d)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits: got %v, want %v", got, want)
		}
	}
}

func TestOrDefault(t *testing.T) {
	def := Backoff{Min: time.Second, Max: time.Minute}
	tests := []struct {
		in, want Backoff
	}{
		{Backoff{}, def},
		{Backoff{Min: 2 * time.Second}, Backoff{Min: 2 * time.Second, Max: time.Minute}},
		{Backoff{Min: 2 * time.Minute}, Backoff{Min: 2 * time.Minute, Max: 2 * time.Minute}},
		{Backoff{Max: 5 * time.Second}, Backoff{Min: time.Second, Max: 5 * time.Second}},
	}
	for _, tt := range tests {
		if got := tt.in.OrDefault(def); got != tt.want {
			t.Errorf("%+v.OrDefault: got %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
