package poll

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

func assertTimes(t *testing.T, what string, got, want []time.Duration) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// Three meters with one interval: first reads spread over the interval,
// then each keeps its exact period although every read takes a second.
func TestScheduleKeepsPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{Meters: meters(3, time.Minute)}, good(time.Second))
		h.runUntil(t, 5*time.Minute+30*time.Second)
		assertTimes(t, "meter 1", h.bus.starts("1"), secs(0, 60, 120, 180, 240, 300))
		assertTimes(t, "meter 2", h.bus.starts("2"), secs(20, 80, 140, 200, 260, 320))
		assertTimes(t, "meter 3", h.bus.starts("3"), secs(40, 100, 160, 220, 280))
		if got, want := len(h.sink.readings()), 17; got != want {
			t.Errorf("readings delivered: got %d, want %d", got, want)
		}
		for _, id := range []string{"kam_00000001", "kam_00000002", "kam_00000003"} {
			if got, want := h.avail.of(id), []bool{true}; !slices.Equal(got, want) {
				t.Errorf("availability of %s: got %v, want %v", id, got, want)
			}
		}
	})
}

// A read that takes longer than the interval starts the next period
// when it ends instead of bursting to catch up.
func TestScheduleOverrun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{Meters: meters(1, 10*time.Second)}, good(12*time.Second))
		h.runUntil(t, 60*time.Second)
		assertTimes(t, "meter 1", h.bus.starts("1"), secs(0, 22, 44))
	})
}

// A dead meter opens its breaker after three failures, is then only
// probed with doubling backoff, and the others keep their exact period.
func TestDeadMeterOpensBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ans := failing(time.Second, 2*time.Second, errTimeout, func(addr string, _ time.Duration) bool { return addr == "2" })
		h := newHarness(t, Options{Meters: meters(3, time.Minute)}, ans)
		h.start()
		h.sleepUntil(10*time.Minute - time.Second)
		snap := h.p.Snapshot()
		h.stop(t)

		assertTimes(t, "meter 1", h.bus.starts("1"), secs(0, 60, 120, 180, 240, 300, 360, 420, 480, 540))
		assertTimes(t, "meter 3", h.bus.starts("3"), secs(40, 100, 160, 220, 280, 340, 400, 460, 520, 580))
		// Failures at 20, 80, 140 open it at 142; probes after 60 s, 120 s, 240 s, then 480 s.
		assertTimes(t, "dead meter 2", h.bus.starts("2"), secs(20, 80, 140, 202, 324, 566))
		if got := h.avail.of("addr_2"); got != nil {
			t.Errorf("availability of the dead meter, never identified: got %v, want none (no placeholder topics)", got)
		}
		m := snap.Meters[1]
		if m.Breaker != BreakerOpen || m.Failures != 6 || !strings.Contains(m.LastError, "no answer") {
			t.Errorf("snapshot of the dead meter: got breaker %v, failures %d, error %q; want open, 6, no answer",
				m.Breaker, m.Failures, m.LastError)
		}
		if got, want := m.NextDue, h.epoch.Add(1048*time.Second); !got.Equal(want) {
			t.Errorf("next probe: got %v, want %v", got, want)
		}
		want := `
# HELP mbus_breaker_state Circuit breaker of each meter: 0 closed, 1 half-open, 2 open.
# TYPE mbus_breaker_state gauge
mbus_breaker_state{meter="addr_2"} 2
mbus_breaker_state{meter="kam_00000001"} 0
mbus_breaker_state{meter="kam_00000003"} 0
# HELP mbus_polls_total Reads of meters by outcome.
# TYPE mbus_polls_total counter
mbus_polls_total{meter="addr_2",result="timeout"} 6
mbus_polls_total{meter="kam_00000001",result="ok"} 10
mbus_polls_total{meter="kam_00000003",result="ok"} 10
# HELP mbus_meter_last_success_timestamp_seconds Unix time of the last successful read of each meter.
# TYPE mbus_meter_last_success_timestamp_seconds gauge
mbus_meter_last_success_timestamp_seconds{meter="kam_00000001"} 9.46685341e+08
mbus_meter_last_success_timestamp_seconds{meter="kam_00000003"} 9.46685381e+08
`
		if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want),
			"mbus_breaker_state", "mbus_polls_total", "mbus_meter_last_success_timestamp_seconds"); err != nil {
			t.Error(err)
		}
	})
}

// A meter that dies and comes back goes offline and online exactly once
// each, and its schedule starts afresh from the successful probe.
func TestBreakerRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ans := failing(time.Second, 2*time.Second, errTimeout, func(addr string, since time.Duration) bool {
			return addr == "2" && since > 100*time.Second && since < 400*time.Second
		})
		h := newHarness(t, Options{Meters: meters(3, time.Minute)}, ans)
		h.start()
		h.sleepUntil(10*time.Minute - time.Second)
		snap := h.p.Snapshot()
		h.stop(t)

		assertTimes(t, "meter 2", h.bus.starts("2"), secs(20, 80, 140, 200, 260, 322, 444, 505, 565))
		assertTimes(t, "meter 3", h.bus.starts("3"), secs(40, 100, 160, 220, 280, 340, 400, 460, 520, 580))
		if got, want := h.avail.of("kam_00000002"), []bool{true, false, true}; !slices.Equal(got, want) {
			t.Errorf("availability: got %v, want %v", got, want)
		}
		if m := snap.Meters[1]; m.Breaker != BreakerClosed || m.Failures != 0 || m.LastError != "" {
			t.Errorf("after recovery: got breaker %v, failures %d, error %q; want closed, 0, none", m.Breaker, m.Failures, m.LastError)
		}
	})
}

// An on-demand read waits for the read in flight and then goes first;
// the meter's own schedule is not shifted by it.
func TestReadNowQueuedBehindPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := meters(2, time.Minute)
		ms[1].Interval = time.Hour
		ans := func(addr string, _ time.Duration) (time.Duration, master.Result, error) {
			if addr == "1" {
				return 5 * time.Second, okResult(addr), nil
			}
			return time.Second, okResult(addr), nil
		}
		h := newHarness(t, Options{Meters: ms}, ans)
		h.start()
		h.sleepUntil(time.Second)

		short, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := h.p.ReadNow(short, "2")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ReadNow with a short context: got %v, want deadline exceeded", err)
		}
		rd, err := h.p.ReadNow(context.Background(), "kam_00000002")
		if err == nil {
			t.Errorf("ReadNow by an identifier not yet learned: got a reading, want an error")
		}
		rd, err = h.p.ReadNow(context.Background(), "2")
		if err != nil {
			t.Fatalf("ReadNow: %v", err)
		}
		if got, want := rd.Meter, "kam_00000002"; got != want {
			t.Errorf("reading of: got %q, want %q", got, want)
		}
		if got, want := rd.Time.Sub(h.epoch), 6*time.Second; got != want {
			t.Errorf("reading taken at: got %v, want %v", got, want)
		}
		if _, err := h.p.ReadNow(context.Background(), "kam_00000002"); err != nil {
			t.Errorf("ReadNow by identifier once known: %v", err)
		}
		if _, err := h.p.ReadNow(context.Background(), "77"); !errors.Is(err, ErrUnknownMeter) {
			t.Errorf("ReadNow of an unknown meter: got %v, want ErrUnknownMeter", err)
		}
		h.sleepUntil(40 * time.Second)
		h.stop(t)
		// The first queued read was given up by its caller before it began.
		assertTimes(t, "meter 2", h.bus.starts("2"), secs(5, 6, 30))
		assertTimes(t, "meter 1", h.bus.starts("1"), secs(0))
		if got, want := len(h.sink.readings()), 4; got != want {
			t.Errorf("readings delivered: got %d, want %d", got, want)
		}
	})
}

// ReadAll reads every enabled meter straight away, in order.
func TestReadAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := meters(3, time.Hour)
		ms[2].Enabled = false
		h := newHarness(t, Options{Meters: ms, StartSpread: -1}, good(time.Second))
		h.start()
		h.sleepUntil(10 * time.Second)
		if err := h.p.ReadAll(context.Background()); err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		h.sleepUntil(20 * time.Second)
		h.stop(t)
		assertTimes(t, "meter 1", h.bus.starts("1"), secs(0, 10))
		assertTimes(t, "meter 2", h.bus.starts("2"), secs(1, 11))
		assertTimes(t, "disabled meter 3", h.bus.starts("3"), nil)
	})
}

// A second scan is refused while one runs; reads wait for the scan.
func TestScanRefusedWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{Meters: meters(1, 10*time.Second)}, good(time.Second))
		want := []master.Found{{Primary: 5}, {Primary: 9, Collision: true}}
		h.bus.scanFound = want
		h.start()
		h.sleepUntil(2 * time.Second)

		type scanResult struct {
			found []master.Found
			err   error
		}
		first := make(chan scanResult, 1)
		var progress []ScanProgress
		go func() {
			found, err := h.p.Scan(context.Background(), ScanPrimary, func(p ScanProgress) { progress = append(progress, p) })
			first <- scanResult{found, err}
		}()
		synctest.Wait()
		if _, err := h.p.Scan(context.Background(), ScanSecondary, nil); !errors.Is(err, ErrScanRunning) {
			t.Errorf("second scan: got %v, want ErrScanRunning", err)
		}
		if _, err := h.p.Scan(context.Background(), "tertiary", nil); !errors.Is(err, ErrScanMode) {
			t.Errorf("scan with a bad mode: got %v, want ErrScanMode", err)
		}
		snap := h.p.Snapshot()
		if !snap.Scan.Running || snap.Scan.Progress != (ScanProgress{Mode: ScanPrimary, Done: 1, Total: 251}) {
			t.Errorf("snapshot during the scan: got %+v", snap.Scan)
		}
		h.sleepUntil(30 * time.Second) // the scan holds the bus: no reads
		close(h.bus.scanGate)
		got := <-first
		if got.err != nil || !slices.Equal(got.found, want) {
			t.Errorf("scan: got %v, %v; want %v", got.found, got.err, want)
		}
		if wantProg := []ScanProgress{{Mode: ScanPrimary, Done: 1, Total: 251}, {Mode: ScanPrimary, Done: 251, Total: 251, Found: 2}}; !slices.Equal(progress, wantProg) {
			t.Errorf("progress: got %v, want %v", progress, wantProg)
		}
		if _, err := h.p.Scan(context.Background(), ScanSecondary, nil); err != nil {
			t.Errorf("scan after the first ended: %v", err)
		}
		h.sleepUntil(35 * time.Second)
		h.stop(t)
		// The read due at 10 s waited for the scan, which ended at 30 s.
		assertTimes(t, "meter 1", h.bus.starts("1"), secs(0, 30))
		if s := h.p.Snapshot().Scan; s.Running || s.Found != 0 || s.Progress.Mode != ScanSecondary {
			t.Errorf("snapshot after the scans: got %+v", s)
		}
	})
}

// While the adapter is gone, the bus is tried with doubling backoff
// (capped); slots in between are counted as failed without using the bus.
func TestBusDownBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eio := &master.PortError{Err: &os.PathError{Op: "read", Path: "/dev/ttyUSB0", Err: syscall.EIO}}
		ans := failing(100*time.Millisecond, 0, eio, func(_ string, since time.Duration) bool {
			return since > 10500*time.Millisecond && since < 40*time.Second
		})
		opts := Options{Meters: meters(1, time.Second), FailureThreshold: 100,
			Health: busHealth(2*time.Second, 8*time.Second)}
		h := newHarness(t, opts, ans)
		h.start()
		// 13 s lies between two retries (12 s and 14 s): at a retry's own
		// instant the bus may already read "reopening".
		h.sleepUntil(13 * time.Second)
		snap := h.p.Snapshot()
		if snap.Bus.State != "down" || !strings.Contains(snap.Bus.LastError, "input/output error") {
			t.Errorf("bus during the outage: got %+v, want down with the error", snap.Bus)
		}
		h.sleepUntil(44500 * time.Millisecond)
		h.stop(t)

		var want []time.Duration
		for s := range 11 {
			want = append(want, time.Duration(s)*time.Second)
		}
		// The first retry is at once, then after 2, 4 and 8 s (the cap).
		want = append(want, secs(11, 12, 14, 18, 26, 34, 42, 43, 44)...)
		assertTimes(t, "bus use", h.bus.starts("1"), want)
		for _, c := range []struct {
			result string
			want   float64
		}{{resultBusError, 6}, {resultBusDown, 25}, {resultOK, 14}} {
			if got := testutil.ToFloat64(h.p.met.polls.WithLabelValues("kam_00000001", c.result)); got != c.want {
				t.Errorf("polls with result %s: got %v, want %v", c.result, got, c.want)
			}
		}
		if got := h.p.Snapshot().Bus; got.State != "up" || got.Errors != 6 {
			t.Errorf("bus after the outage: got %+v, want up with 6 errors", got)
		}
	})
}

// When the bus fails long enough for every breaker to open, the bus's
// own retries go on probing it through the open meters; once it answers,
// every open meter is read at once, long before its breaker's wait (30 s)
// is over.
func TestBusBackAfterEveryBreakerOpened(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eio := &master.PortError{Err: &os.PathError{Op: "open", Path: "/dev/ttyUSB0", Err: syscall.ENOENT}}
		ans := failing(100*time.Millisecond, 0, eio, func(_ string, since time.Duration) bool {
			return since >= 500*time.Millisecond && since < 9*time.Second
		})
		opts := Options{Meters: meters(2, time.Second), Health: busHealth(time.Second, time.Minute)}
		h := newHarness(t, opts, ans)
		h.start()
		h.sleepUntil(16500 * time.Millisecond)
		h.stop(t)

		// Meter 2 fails at 0.5 s, and the bus is tried again at once (at
		// meter 1's slot, 1 s), then after 1 s, 2 s, 4 s and 8 s; slots in
		// between fail without the bus, and both breakers are open at 3 s.
		// From then on meter 1's probes are the bus's retries; at 16 s it
		// answers and meter 2 is read straight after.
		assertTimes(t, "meter 1", h.bus.starts("1"), secs(0, 1, 2, 4, 8, 16))
		assertTimes(t, "meter 2", h.bus.starts("2"), secs(0.5, 16.1))
		// Meter 2 never answered before the outage: nothing was reported
		// under its address, and it came online under the identifier it
		// then told.
		for id, want := range map[string][]bool{"kam_00000001": {true, false, true}, "addr_2": nil, "kam_00000002": {true}} {
			if got := h.avail.of(id); !slices.Equal(got, want) {
				t.Errorf("%s availability: got %v, want %v", id, got, want)
			}
		}
	})
}

// Cancelling Run lets the read in flight finish and commits its reading.
func TestRunFinishesReadInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{Meters: meters(1, time.Minute)}, good(3*time.Second))
		h.runUntil(t, time.Second)
		if got, want := time.Since(h.epoch), 3*time.Second; got != want {
			t.Errorf("Run returned after %v, want %v", got, want)
		}
		rs := h.sink.readings()
		if len(rs) != 1 || rs[0].Time.Sub(h.epoch) != 3*time.Second {
			t.Errorf("readings: got %v, want one taken at 3s", rs)
		}
		if _, err := h.p.ReadNow(context.Background(), "1"); !errors.Is(err, ErrStopped) {
			t.Errorf("ReadNow after Run: got %v, want ErrStopped", err)
		}
		if err := h.p.Run(context.Background()); !errors.Is(err, ErrRunning) {
			t.Errorf("second Run: got %v, want ErrRunning", err)
		}
	})
}

// A read that does not end within the grace period is cut off; that
// counts neither against the meter nor against the bus.
func TestRunCutsOffAfterGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := Options{Meters: meters(1, time.Minute), ShutdownGrace: 2 * time.Second, ReadTimeout: time.Hour}
		h := newHarness(t, opts, good(time.Minute))
		h.runUntil(t, time.Second)
		if got, want := time.Since(h.epoch), 3*time.Second; got != want {
			t.Errorf("Run returned after %v, want %v", got, want)
		}
		snap := h.p.Snapshot()
		if m := snap.Meters[0]; m.Failures != 0 || m.LastError != "" || snap.Bus.State != "up" {
			t.Errorf("after the cut-off read: got meter %+v, bus %+v; want no failure", m, snap.Bus)
		}
	})
}

// A failing outbox is retried with backoff; readings arrive in order and
// the failures show in the snapshot and the metrics.
func TestSinkRetriesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{Meters: meters(1, 10*time.Second)}, good(time.Second))
		full := errors.New("database or disk is full")
		h.sink.fail = func(_ int, since time.Duration) error {
			if since < 25*time.Second {
				return full
			}
			return nil
		}
		h.start()
		h.sleepUntil(24 * time.Second)
		if s := h.p.Snapshot().Sink; !s.Failing || s.Pending != 3 || s.LastError != full.Error() {
			t.Errorf("sink while failing: got %+v, want failing with 3 pending", s)
		}
		h.sleepUntil(35 * time.Second)
		h.stop(t)
		var got []time.Duration
		for _, r := range h.sink.readings() {
			got = append(got, r.Time.Sub(h.epoch))
		}
		assertTimes(t, "delivered readings", got, secs(1, 11, 21, 31))
		s := h.p.Snapshot().Sink
		if s.Failing || s.Pending != 0 || s.Errors == 0 || float64(s.Errors) != testutil.ToFloat64(h.p.met.deliveryErr) {
			t.Errorf("sink after recovery: got %+v, metric %v", s, testutil.ToFloat64(h.p.met.deliveryErr))
		}
		if !strings.Contains(h.log.String(), "cannot commit reading to the outbox") {
			t.Errorf("log lacks the delivery error:\n%s", h.log)
		}
	})
}

// Beyond MaxPending the oldest readings are dropped and counted, and
// what is left at shutdown is counted too.
func TestSinkDropsOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{Meters: meters(1, time.Second), MaxPending: 3}, good(0))
		h.sink.fail = func(int, time.Duration) error { return errors.New("disk I/O error") }
		h.start()
		h.sleepUntil(4500 * time.Millisecond) // reads at 0…4
		if s := h.p.Snapshot().Sink; s.Pending != 3 || s.Dropped != 2 {
			t.Errorf("sink: got %+v, want 3 pending, 2 dropped", s)
		}
		h.stop(t)
		if got := testutil.ToFloat64(h.p.met.dropped); got != 5 {
			t.Errorf("dropped after shutdown: got %v, want 5", got)
		}
	})
}

// Meters found by a scan join the schedule; known addresses are skipped.
func TestAddMeters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{Meters: meters(1, time.Minute)}, good(time.Second))
		h.start()
		h.sleepUntil(10 * time.Second)
		n, err := h.p.AddMeters(meters(3, time.Minute)...)
		if err != nil || n != 2 {
			t.Errorf("AddMeters: got %d, %v; want 2 added", n, err)
		}
		if _, err := h.p.AddMeters(Meter{Address: mbus.Address{Primary: 9}}); err == nil {
			t.Errorf("AddMeters without interval: got no error")
		}
		h.sleepUntil(90 * time.Second)
		h.stop(t)
		assertTimes(t, "meter 2", h.bus.starts("2"), secs(10, 70))
		assertTimes(t, "meter 3", h.bus.starts("3"), secs(40))
	})
}

// The snapshot is a copy: changing it does not change the next one.
func TestSnapshotIsCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Options{Meters: meters(1, time.Minute)}, good(time.Second))
		h.start()
		h.sleepUntil(2 * time.Second)
		a := h.p.Snapshot()
		a.Meters[0].Reading.Records[0].Key = "changed"
		b := h.p.Snapshot()
		h.stop(t)
		m := b.Meters[0]
		if m.Reading == nil || m.Reading.Records[0].Key != "energy" {
			t.Errorf("second snapshot changed with the first: %+v", m.Reading)
		}
		if m.Manufacturer != "KAM" || m.Medium != "heat_outlet" || m.Meter != "kam_00000001" ||
			!slices.Equal(m.Raw, []string{"6803"}) || !m.LastSuccess.Equal(h.epoch.Add(time.Second)) {
			t.Errorf("meter status: got %+v", m)
		}
	})
}

// The warning about too little bus time comes at start and names the load.
func TestBusLoadWarning(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		wantWarn bool
	}{
		{"ten meters every second at 300 baud", Options{Meters: meters(10, time.Second), Baud: 300}, true},
		{"three meters every minute at 2400 baud", Options{Meters: meters(3, time.Minute)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, tt.opts, good(0))
				h.start()
				synctest.Wait()
				h.stop(t)
				got := strings.Contains(h.log.String(), "need more bus time")
				if got != tt.wantWarn {
					t.Errorf("warned: got %v, want %v; log:\n%s", got, tt.wantWarn, h.log)
				}
				if load := h.p.Snapshot().Load; (load > 1) != tt.wantWarn {
					t.Errorf("load %v does not match the warning", load)
				}
			})
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	ms := meters(2, time.Minute)
	ms[1].Address = ms[0].Address
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"zero interval", Options{Meters: []Meter{{Address: mbus.Address{Primary: 3}}}}, "meter 3: interval 0s: must be positive"},
		{"duplicate address", Options{Meters: ms}, "meter 1: address listed twice"},
		{"negative baud", Options{Baud: -1}, "baud -1: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts, &fakeBus{}, &fakeSink{}, &fakeAvail{}, zeroLog, newRegistry())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := New(Options{}, nil, &fakeSink{}, &fakeAvail{}, zeroLog, newRegistry()); err == nil {
		t.Errorf("New without a bus: got no error")
	}
	reg := newRegistry()
	if _, err := New(Options{}, &fakeBus{}, &fakeSink{}, &fakeAvail{}, zeroLog, reg); err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(Options{}, &fakeBus{}, &fakeSink{}, &fakeAvail{}, zeroLog, reg); err == nil {
		t.Errorf("New registering the same metrics twice: got no error")
	}
}

// When the bus works again, meters whose breakers opened while it was
// away are read at once instead of after their backoff (a minute and
// more here): while the bus is down, the open meters are what probes it,
// at the bus's own backoff.
func TestBusRecoveryProbesOpenMeters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eio := &master.PortError{Err: &os.PathError{Op: "write", Path: "/dev/ttyUSB0", Err: syscall.ENODEV}}
		ans := failing(time.Second, 0, eio, func(_ string, since time.Duration) bool {
			return since > 15*time.Second && since < 100*time.Second
		})
		opts := Options{Meters: meters(2, time.Minute), FailureThreshold: 1, Health: busHealth(time.Second, 10*time.Second)}
		h := newHarness(t, opts, ans)
		h.runUntil(t, 150*time.Second)
		// Meter 2 fails at 30 s and probes the bus at once, then after 1,
		// 2, 4, 8 and 10 s; meter 1's slot at 60 s passes while the bus backs off, so
		// its breaker opens too and it takes over the probes (the first of
		// equally due meters goes first). At 105 s the bus answers, and
		// meter 2 is read straight after.
		assertTimes(t, "meter 1", h.bus.starts("1"), secs(0, 65, 75, 85, 95, 105, 120))
		assertTimes(t, "meter 2", h.bus.starts("2"), secs(30, 30, 31, 33, 37, 45, 55, 106))
		if got := h.avail.of("addr_2"); got != nil {
			t.Errorf("availability of meter 2 before it answered: got %v, want none", got)
		}
		if got, want := h.avail.of("kam_00000002"), []bool{true}; !slices.Equal(got, want) {
			t.Errorf("availability of meter 2 once identified: got %v, want %v", got, want)
		}
		if got, want := h.avail.of("kam_00000001"), []bool{true, false, true}; !slices.Equal(got, want) {
			t.Errorf("availability of meter 1: got %v, want %v", got, want)
		}
	})
}
