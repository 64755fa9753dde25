package poll

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// SetMeters while Run runs: a kept meter keeps its state and phase and
// takes its new interval and name, a removed one leaves nothing behind
// (not even the reading on the wire), a new one is read at once, and a
// meter disabled and enabled again pauses and resumes.
func TestSetMeters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ans := func(addr string, _ time.Duration) (time.Duration, master.Result, error) {
			if addr == "3" {
				return 10 * time.Second, okResult(addr), nil // on the wire while removed
			}
			return time.Second, okResult(addr), nil
		}
		h := newHarness(t, Options{Meters: meters(3, time.Minute)}, ans) // first reads at 0, 20, 40
		h.start()
		set := func(at time.Duration, want MeterChanges, ms ...Meter) {
			t.Helper()
			h.sleepUntil(at)
			got, err := h.p.SetMeters(ms...)
			if err != nil || got != want {
				t.Errorf("SetMeters at %v: got %+v, %v; want %+v", at, got, err, want)
			}
		}
		m1, m2, m4 := meters(1, 2*time.Minute)[0], meters(2, time.Minute)[1], meters(4, time.Minute)[3]
		m1.Name = "Heat"
		set(45*time.Second, MeterChanges{Added: 1, Removed: 1, Changed: 1}, m1, m2, m4)
		if _, err := h.p.ReadNow(context.Background(), "3"); !errors.Is(err, ErrUnknownMeter) {
			t.Errorf("ReadNow of the removed meter: got %v, want ErrUnknownMeter", err)
		}
		if _, err := h.p.SetMeters(m1, Meter{Address: mbus.Address{Primary: 9}}); err == nil {
			t.Errorf("SetMeters with a meter without interval: got no error")
		}
		m2.Enabled = false
		set(165*time.Second, MeterChanges{Changed: 1}, m1, m2, m4)
		m2.Enabled = true
		set(235*time.Second, MeterChanges{Changed: 1}, m1, m2, m4)
		h.sleepUntil(250 * time.Second)
		snap := h.p.Snapshot()
		h.stop(t)

		assertTimes(t, "meter 1, interval 1 min → 2 min", h.bus.starts("1"), secs(0, 120, 240))
		assertTimes(t, "meter 2, disabled from 165 s to 235 s", h.bus.starts("2"), secs(20, 80, 140, 235))
		assertTimes(t, "meter 3, removed at 45 s", h.bus.starts("3"), secs(40))
		assertTimes(t, "meter 4, added at 45 s", h.bus.starts("4"), secs(50, 105, 165, 225)) // slots from 45 s; the first waited for meter 3

		perMeter := map[string][]string{}
		for _, r := range h.sink.readings() {
			perMeter[r.Meter] = append(perMeter[r.Meter], r.Name)
		}
		if got, want := perMeter["kam_00000001"], []string{"", "Heat", "Heat"}; !slices.Equal(got, want) {
			t.Errorf("names in the readings of meter 1: got %q, want %q", got, want)
		}
		if got := perMeter["kam_00000003"]; got != nil {
			t.Errorf("readings of the removed meter: got %d, want none", len(got))
		}
		for id, want := range map[string][]bool{"kam_00000002": {true}, "kam_00000003": nil, "addr_3": nil} {
			if got := h.avail.of(id); !slices.Equal(got, want) {
				t.Errorf("availability of %s: got %v, want %v", id, got, want)
			}
		}

		var got []string
		for _, m := range snap.Meters {
			got = append(got, m.Meter+" "+m.Name)
		}
		if want := []string{"kam_00000001 Heat", "kam_00000002 ", "kam_00000004 "}; !slices.Equal(got, want) {
			t.Errorf("meters in the snapshot: got %q, want %q", got, want)
		}
		if m := snap.Meters[1]; !m.LastSuccess.Equal(h.epoch.Add(236*time.Second)) || m.IntervalSeconds != 60 {
			t.Errorf("meter 2 in the snapshot: got %+v", m)
		}
		if m := snap.Meters[0]; m.IntervalSeconds != 120 || !m.NextDue.Equal(h.epoch.Add(360*time.Second)) {
			t.Errorf("meter 1 in the snapshot: got interval %v s, next due %v", m.IntervalSeconds, m.NextDue.Sub(h.epoch))
		}
		want := `
# HELP mbus_breaker_state Circuit breaker of each meter: 0 closed, 1 half-open, 2 open.
# TYPE mbus_breaker_state gauge
mbus_breaker_state{meter="kam_00000001"} 0
mbus_breaker_state{meter="kam_00000002"} 0
mbus_breaker_state{meter="kam_00000004"} 0
# HELP mbus_polls_total Reads of meters by outcome.
# TYPE mbus_polls_total counter
mbus_polls_total{meter="kam_00000001",result="ok"} 3
mbus_polls_total{meter="kam_00000002",result="ok"} 4
mbus_polls_total{meter="kam_00000004",result="ok"} 4
`
		if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "mbus_breaker_state", "mbus_polls_total"); err != nil {
			t.Error(err)
		}
		if !strings.Contains(h.log.String(), `"message":"meter removed"`) {
			t.Errorf("log lacks the removal:\n%s", h.log)
		}
	})
}

// A meter with an open breaker keeps it, and its probe time, through
// SetMeters; before Run, SetMeters only replaces the list.
func TestSetMetersKeepsBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ans := failing(time.Second, time.Second, errTimeout, func(addr string, _ time.Duration) bool { return addr == "2" })
		h := newHarness(t, Options{Meters: meters(1, time.Minute), FailureThreshold: 1}, ans)
		if ch, err := h.p.SetMeters(meters(2, time.Minute)[1]); err != nil || ch != (MeterChanges{Added: 1, Removed: 1}) {
			t.Fatalf("SetMeters before Run: got %+v, %v", ch, err)
		}
		h.start()
		h.sleepUntil(30 * time.Second) // failed at 0, open until 61
		m := meters(2, 2*time.Minute)[1]
		m.Name = "Water"
		if ch, err := h.p.SetMeters(m); err != nil || ch != (MeterChanges{Changed: 1}) {
			t.Errorf("SetMeters: got %+v, %v; want one changed", ch, err)
		}
		h.sleepUntil(70 * time.Second)
		snap := h.p.Snapshot()
		h.stop(t)
		assertTimes(t, "meter 2", h.bus.starts("2"), secs(0, 61))
		if got := snap.Meters[0]; got.Breaker != BreakerOpen || got.Failures != 2 || got.Name != "Water" {
			t.Errorf("meter 2: got breaker %v, %d failures, name %q; want open, 2, Water", got.Breaker, got.Failures, got.Name)
		}
		if got := h.avail.of("addr_2"); got != nil {
			t.Errorf("availability under the placeholder of a meter never identified: got %v, want none", got)
		}
	})
}

// Errors of the bus reach the snapshot and ReadNow's caller with the
// bus's own "read <address>: " and no second one.
func TestReadErrorPrefixedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ans := failing(time.Second, time.Second, errTimeout, func(addr string, _ time.Duration) bool { return addr == "2" })
		h := newHarness(t, Options{Meters: meters(2, time.Minute)[1:]}, ans)
		h.start()
		_, err := h.p.ReadNow(context.Background(), "2")
		snap := h.p.Snapshot()
		h.stop(t)
		const want = "read 2: no answer"
		if err == nil || err.Error() != want || !errors.Is(err, master.ErrTimeout) {
			t.Errorf("ReadNow: got %v, want %q", err, want)
		}
		if got := snap.Meters[0].LastError; got != want {
			t.Errorf("last error: got %q, want %q", got, want)
		}
	})
}

// Warnings names the overload of the bus while it lasts.
func TestWarnings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{Meters: meters(10, time.Second), Baud: 300}, good(0))
		w := h.p.Warnings()
		if len(w) != 1 || !strings.Contains(w[0], "of the bus time: meters are read less often than configured") {
			t.Errorf("warnings with ten meters every second at 300 baud: got %q", w)
		}
		if _, err := h.p.SetMeters(meters(1, time.Minute)...); err != nil {
			t.Fatal(err)
		}
		if w := h.p.Warnings(); w != nil {
			t.Errorf("warnings with one meter a minute: got %q, want none", w)
		}
	})
}
