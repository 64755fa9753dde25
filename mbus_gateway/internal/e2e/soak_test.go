package e2e

// The soak run: many meters read often, with the broker restarting and
// meters misbehaving at random, for a set time. CI runs 60 seconds; the
// docs/performance.md reports a longer run, made with
//
//	SOAK_DURATION=30m make soak
//
// (go test -run '^TestSoak$' -v on this package, see the Makefile).
// SOAK_METERS (default 50), SOAK_INTERVAL (poll interval in
// seconds, default 1) and SOAK_SEED (default: from the clock, logged)
// change the run.

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// soakFaults are the meter faults the soak run draws from. A slow answer
// is left out: it is whole but late, and whether the master still takes
// it is a matter of timing, so it could not be counted exactly (the
// noise scenario covers it).
var soakFaults = []sim.FaultKind{sim.FaultNoAnswer, sim.FaultCorrupt, sim.FaultChecksum, sim.FaultTruncate, sim.FaultEcho}

// soakSettings are the knobs of a soak run, from the environment.
type soakSettings struct {
	duration time.Duration
	meters   int
	interval int // seconds
	seed     uint64
}

func soakFromEnv(t *testing.T) soakSettings {
	t.Helper()
	s := soakSettings{duration: time.Minute, meters: 50, interval: 1, seed: uint64(time.Now().UnixNano())} //nolint:gosec // G115: any seed will do
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("SOAK_DURATION=%q: want a positive duration such as 60s or 30m", v)
		}
		s.duration = d
	}
	for _, knob := range []struct {
		name string
		to   *int
		max  int
	}{{"SOAK_METERS", &s.meters, 250}, {"SOAK_INTERVAL", &s.interval, 3600}} {
		if v := os.Getenv(knob.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > knob.max {
				t.Fatalf("%s=%q: want a whole number from 1 to %d", knob.name, v, knob.max)
			}
			*knob.to = n
		}
	}
	if v := os.Getenv("SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED=%q: want a whole number", v)
		}
		s.seed = n
	}
	return s
}

// chaos is the random schedule of broker restarts and meter faults.
type chaos struct {
	t       *testing.T
	r       *faultRig
	rng     *rand.Rand
	down    bool        // broker stopped
	next    time.Time   // next broker stop or start
	outages []time.Time // when the broker had stopped
	faulty  map[byte]bool
	faults  int // faults set
}

func newChaos(r *faultRig, seed uint64) *chaos {
	c := &chaos{t: r.t, r: r, rng: rand.New(rand.NewPCG(seed, seed^0x736f616b)), faulty: map[byte]bool{}} //nolint:gosec // G404: the run must repeat for a seed
	c.next = time.Now().Add(c.between(8, 20))
	return c
}

// between is a random duration of lo to hi seconds.
func (c *chaos) between(lo, hi int) time.Duration {
	return time.Duration(lo)*time.Second + time.Duration(c.rng.Int64N(int64(hi-lo)*int64(time.Second)))
}

// step makes the changes due at now: the broker goes away for 2 to 6 s
// every 8 to 20 s, and each step sets a fault on a random meter (fires
// on 20 % to 100 % of its answers) or clears one.
func (c *chaos) step(now time.Time) {
	c.t.Helper()
	if !now.Before(c.next) {
		if c.down {
			c.r.broker.Start()
			c.next = now.Add(c.between(8, 20))
		} else {
			c.r.broker.Stop()
			// Until the broker has exited it may still deliver what it
			// will never acknowledge: the outage counts from its exit.
			c.outages = append(c.outages, time.Now())
			c.next = now.Add(c.between(2, 6))
		}
		c.down = !c.down
	}
	meters := c.r.bus.Meters()
	m := meters[c.rng.IntN(len(meters))]
	var faults []sim.Fault
	if !c.faulty[m.Primary] {
		p := []float64{0.2, 0.5, 1}[c.rng.IntN(3)]
		faults = append(faults, sim.Fault{Kind: soakFaults[c.rng.IntN(len(soakFaults))], Probability: p})
		c.faults++
	}
	if err := c.r.bus.SetFault(m.Primary, faults...); err != nil {
		c.t.Fatal(err)
	}
	c.faulty[m.Primary] = len(faults) > 0
}

// calm clears every fault and brings the broker back.
func (c *chaos) calm() {
	c.t.Helper()
	for p, on := range c.faulty {
		if on {
			if err := c.r.bus.SetFault(p); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	if c.down {
		c.r.broker.Start()
		c.down = false
	}
}

// TestSoak: every whole telegram the simulator sent during the run
// arrives on the broker, in order per meter, once (twice only when a
// broker outage fell between the copies), or is named as sent late by a
// held-up simulator and given up by the gateway (see arrivals.check);
// the process stays up, and its goroutines do not pile up.
func TestSoak(t *testing.T) {
	s := soakFromEnv(t)
	t.Logf("soak: %d meters every %d s for %v, seed %d", s.meters, s.interval, s.duration, s.seed)
	r := newFaultRig(t, countingMeters(t, s.meters), map[string]any{"poll_interval": s.interval})
	r.start()
	r.waitReadings(time.Minute)
	goStart := r.metric("go_goroutines")

	c := newChaos(r, s.seed)
	began := time.Now()
	tick := time.NewTicker(time.Second)
	for now := range tick.C {
		if now.Sub(began) >= s.duration {
			break
		}
		select {
		case <-r.gw.done:
			tick.Stop()
			t.Fatalf("the gateway exited during the run with code %d", r.gw.code)
		default:
		}
		c.step(now)
	}
	tick.Stop()
	c.calm()
	ran := time.Since(began)

	arr := drain(r, 2*time.Minute)
	goEnd := r.metric("go_goroutines")
	rss := peakRSS(t, r.gw.cmd.Process.Pid)
	f := arr.check(events{outages: c.outages})
	stop(t, r.gw)

	t.Logf("soak: %v, %d meters every %d s: %d broker restarts, %d meter faults set",
		ran.Round(time.Second), s.meters, s.interval, len(c.outages), c.faults)
	t.Logf("soak: telegrams %d (%d damaged on the line), readings produced %d, delivered %d, not read (sent late by the held-up simulator) %d, lost %d, duplicates %d",
		f.transmissions, f.damaged, f.produced, f.delivered, f.late, f.lost, f.duplicates)
	t.Logf("soak: broker outages ended at %s", times(c.outages))
	t.Logf("soak: peak RSS %.1f MB, goroutines at start %.0f, at end %.0f", float64(rss)/(1<<20), goStart, goEnd)
	if f.produced == 0 {
		t.Error("no reading produced")
	}
	// A leak of one goroutine per poll or per reconnect would show as
	// hundreds; paho and the web server come and go by a few.
	if goEnd > goStart+25 {
		t.Errorf("goroutines: %v at start, %v at end: want no growth beyond 25", goStart, goEnd)
	}
}

// times lists ts as clock times.
func times(ts []time.Time) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Format("15:04:05.000")
	}
	return strings.Join(out, " ")
}
