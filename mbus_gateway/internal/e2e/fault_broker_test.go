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

// checkTallies fails the test for readings missing beyond allowMissing in
// total, readings out of order, and duplicates other than readings that
// were in flight when the broker went away at brokerGone (their first
// copy arrived before it; the PUBACK did not), at most a publish window.
// It logs the figures.
func checkTallies(t *testing.T, r *faultRig, sent []uint64, allowMissing int, brokerGone time.Time) (missing, dups int) {
	t.Helper()
	tallies := r.count(sent)
	for i, meter := range r.meters {
		tl := tallies[meter]
		t.Logf("%s: %d telegrams sent, %d readings delivered, %d duplicates, missing %v", meter, sent[i], tl.unique, tl.duplicates, tl.missing)
		missing += len(tl.missing)
		dups += tl.duplicates
		if len(tl.disorder) > 0 {
			t.Errorf("%s: readings out of order: %v", meter, tl.disorder)
		}
		for _, at := range tl.firstOfDup {
			if !at.Before(brokerGone) {
				t.Errorf("%s: a reading first delivered at %v came again, though the broker was up and acknowledging since %v", meter, at, brokerGone)
			}
		}
	}
	if missing > allowMissing {
		t.Errorf("readings missing: got %d, want at most %d", missing, allowMissing)
	}
	if dups > publishWindow {
		t.Errorf("duplicate readings: got %d, want at most the window of %d", dups, publishWindow)
	}
	return missing, dups
}

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
	during := r.waitSent(atStop, outagePolls, 30*time.Second)
	restarted := time.Now()
	r.broker.Start()
	r.waitDelivered(during, 30*time.Second)
	t.Logf("outage %v; queued readings delivered %v after the broker came back",
		restarted.Sub(stopped).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))

	// What was read while the broker was away arrived after it came back,
	// stamped with the time of the read, not of the publication.
	queued := 0
	for meter, list := range r.readings() {
		n := 0
		for _, d := range list {
			if d.time.After(stopped) && d.time.Before(restarted) {
				n++
				if d.at.Before(restarted) {
					t.Errorf("%s: reading of %v arrived at %v, during the outage", meter, d.time, d.at)
				}
			}
		}
		// The reads at both ends of the outage may fall either side.
		if i := r.index[meter]; n < int(during[i]-atStop[i])-1 {
			t.Errorf("%s: %d readings stamped within the outage, want at least %d", meter, n, during[i]-atStop[i]-1)
		}
		queued += n
	}
	t.Logf("%d readings queued during the outage", queued)

	final := r.sent()
	r.waitDelivered(final, 15*time.Second)
	// Only what was in flight when the broker went away may come twice.
	_, dups := checkTallies(t, r, final, 0, stopped)
	t.Logf("duplicates after a clean broker restart: %d", dups)
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
	atKill := r.sent()
	t.Logf("killed with %.0f readings in the outbox", depth)

	r.broker.Start()
	r.start()
	more := r.waitSent(atKill, 2, 30*time.Second)
	r.waitDelivered(more, 30*time.Second)
	// Nothing was in flight to the broker at the kill: duplicates only
	// from the broker's stop before.
	missing, _ := checkTallies(t, r, more, 1, stopped)
	t.Logf("readings lost to SIGKILL: %d (a read in flight)", missing)
	stop(t, r.gw)
}
