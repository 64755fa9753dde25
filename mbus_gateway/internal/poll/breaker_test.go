package poll

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type step struct {
		op        string // "fail", "ok" or "allow"
		at        int    // seconds after t0
		want      bool   // opened, recovered or allowed
		wantState BreakerState
		wantRetry int // seconds after t0 when open, else -1
	}
	tests := []struct {
		name  string
		b     Breaker
		steps []step
	}{
		{"zero value opens after three failures with the 30 s default", Breaker{}, []step{
			{"fail", 0, false, BreakerClosed, -1},
			{"fail", 1, false, BreakerClosed, -1},
			{"fail", 2, true, BreakerOpen, 32},
			{"allow", 31, false, BreakerOpen, 32},
			{"allow", 32, true, BreakerHalfOpen, -1},
			{"fail", 33, false, BreakerOpen, 93},
			{"allow", 93, true, BreakerHalfOpen, -1},
			{"ok", 94, true, BreakerClosed, -1},
			{"fail", 95, false, BreakerClosed, -1},
		}},
		{"a success resets the count", Breaker{Threshold: 2}, []step{
			{"fail", 0, false, BreakerClosed, -1},
			{"ok", 1, false, BreakerClosed, -1},
			{"fail", 2, false, BreakerClosed, -1},
			{"fail", 3, true, BreakerOpen, 33},
		}},
		{"backoff doubles up to the cap", Breaker{Threshold: 1, Base: 10 * time.Second, Max: 25 * time.Second}, []step{
			{"fail", 0, true, BreakerOpen, 10},
			{"fail", 10, false, BreakerOpen, 30},
			{"fail", 30, false, BreakerOpen, 55},
			{"fail", 55, false, BreakerOpen, 80},
			{"ok", 80, true, BreakerClosed, -1},
			{"fail", 81, true, BreakerOpen, 91},
		}},
		{"a cap below the base keeps the base", Breaker{Threshold: 1, Base: time.Hour, Max: time.Minute}, []step{
			{"fail", 0, true, BreakerOpen, 3600},
			{"fail", 3600, false, BreakerOpen, 7200},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			for i, s := range tt.steps {
				var got bool
				switch s.op {
				case "fail":
					got = b.Failure(at(s.at))
				case "ok":
					got = b.Success()
				case "allow":
					got = b.Allow(at(s.at))
				}
				wantRetry := time.Time{}
				if s.wantRetry >= 0 {
					wantRetry = at(s.wantRetry)
				}
				if got != s.want || b.State() != s.wantState || !b.RetryAt().Equal(wantRetry) {
					t.Errorf("step %d (%s at %ds): got %v, %v, retry %v; want %v, %v, retry %v",
						i, s.op, s.at, got, b.State(), b.RetryAt(), s.want, s.wantState, wantRetry)
				}
			}
		})
	}
}

func TestBreakerStateText(t *testing.T) {
	for _, tt := range []struct {
		s    BreakerState
		want string
	}{{BreakerClosed, "closed"}, {BreakerHalfOpen, "half_open"}, {BreakerOpen, "open"}, {7, "breaker_state_7"}} {
		got, err := tt.s.MarshalText()
		if err != nil || string(got) != tt.want {
			t.Errorf("MarshalText(%d): got %q, %v; want %q", tt.s, got, err, tt.want)
		}
	}
}
