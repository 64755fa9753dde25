package e2e

import (
	"syscall"
	"testing"
	"time"
)

// outagePolls is how many poll intervals (1 s) each outage lasts at
// least: several, so that readings pile up in the outbox.
const outagePolls = 5

// publishWindow is how many readings the gateway has at most in flight
// to the broker (the MQTT client's default window).
const publishWindow = 64

// TestFaultBrokerOutage: Mosquitto stops (cleanly, keeping its sessions)
// for several poll intervals and comes back. Every reading taken in the
// meantime reaches the broker afterwards, with its own read time, in
// order; the process stays up throughout.
func TestFaultBrokerOutage(t *testing.T) {
	r := newFaultRig(t, demoMeters(t, faultPrimaries...), nil)
	r.start()
	r.waitReadings(15 * time.Second)

	atStop := r.sent()
	r.broker.Stop()
	// Mosquitto delivers until Stop returns; the outage starts then.
	stopped := time.Now()
	r.waitSent(atStop, outagePolls, 30*time.Second)
	restarted := time.Now()
	r.broker.Start()
	arr := drain(r, 30*time.Second)

	// What was read while the broker was away arrived after it came back,
	// stamped with the time of the read, not of the publication.
	queued := 0
	var last time.Time
	for meter, ar := range arr.meters {
		n := 0
		for _, c := range ar.got {
			if c.read.After(stopped) && c.read.Before(restarted) {
				n++
				last = maxTime(last, c.at)
				if c.at.Before(restarted) {
					t.Errorf("%s: reading of %v arrived at %v, during the outage", meter, c.read, c.at)
				}
			}
		}
		within := 0 // whole telegrams the meter was asked for during the outage
		for _, tx := range r.bus.Sent(r.index[meter]) {
			if tx.Intact && tx.At.After(stopped) && tx.At.Before(restarted) {
				within++
			}
		}
		// The reads at both ends of the outage may fall either side.
		if n < within-1 || n == 0 {
			t.Errorf("%s: %d readings stamped within the outage, want at least %d and one", meter, n, within-1)
		}
		queued += n
	}
	t.Logf("outage %v; %d readings queued meanwhile, the last delivered %v after the broker came back",
		restarted.Sub(stopped).Round(time.Millisecond), queued, last.Sub(restarted).Round(time.Millisecond))

	// Only what was in flight when the broker went away may come twice.
	f := arr.check(events{outages: []time.Time{stopped}})
	t.Logf("whole telegrams %d, readings delivered %d, lost %d, duplicates after a clean broker restart %d", f.produced, f.delivered, f.lost, f.duplicates)
	if r.gw.cmd.ProcessState != nil {
		t.Fatalf("the gateway exited during the outage: %v", r.gw.cmd.ProcessState)
	}
	stop(t, r.gw)
}

// TestFaultCrashDuringOutage: while the broker is away and readings wait
// in the outbox, the gateway is killed (SIGKILL: no shutdown code runs)
// and started again; the broker returns. Every reading committed before
// the kill is delivered; the one read in flight at the kill is the most
// that may be lost.
func TestFaultCrashDuringOutage(t *testing.T) {
	r := newFaultRig(t, demoMeters(t, faultPrimaries...), nil)
	r.start()
	r.waitReadings(15 * time.Second)

	r.broker.Stop()
	stopped := time.Now() // Mosquitto delivers until Stop returns
	r.waitSent(r.sent(), outagePolls, 30*time.Second)
	var depth float64
	eventually(t, 10*time.Second, "readings wait in the outbox", func() bool {
		depth = r.metric("mbus_outbox_depth")
		return depth >= outagePolls
	})
	killed := r.gw
	killed.signal(syscall.SIGKILL)
	if code := killed.wait(10 * time.Second); code != -1 {
		t.Errorf("exit code after SIGKILL: got %d, want -1 (killed)", code)
	}
	dead := time.Now()
	t.Logf("killed with %.0f readings in the outbox", depth)

	r.broker.Start()
	r.start()
	r.waitSent(r.sent(), 2, 30*time.Second)
	// Nothing was in flight to the broker at the kill: duplicates only
	// from the broker's stop before.
	f := drain(r, 30*time.Second).check(events{outages: []time.Time{stopped}, kills: []time.Time{dead}})
	t.Logf("whole telegrams %d, readings delivered %d, lost to SIGKILL %d (the read in flight), duplicates %d", f.produced, f.delivered, f.killed, f.duplicates)
	stop(t, r.gw)
}
