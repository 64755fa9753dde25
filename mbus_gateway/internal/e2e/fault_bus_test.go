package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// pollInterval is the poll interval of the fault rig (poll_interval 1).
const pollInterval = time.Second

// minOffline is the least time from the moment a bus fails to a meter's
// "offline": its breaker opens on the third failed poll, and three slots
// span two intervals, less the jitter (a tenth of the interval) at each
// end and some slack.
const minOffline = (poll.DefaultFailureThreshold-1)*pollInterval - 5*pollInterval/10

// waitAvailability waits for every meter of r to report state on its
// availability topic after since, and returns when each did.
func waitAvailability(r *faultRig, state string, since time.Time, timeout time.Duration) map[string]time.Time {
	r.t.Helper()
	out := map[string]time.Time{}
	for _, meter := range r.meters {
		m := r.rec.WaitFor("mbus/"+meter+"/availability", func(m mosquittotest.Message) bool {
			return string(m.Payload) == state && m.At.After(since)
		}, timeout)
		out[meter] = m.At
	}
	return out
}

// availabilitySince is the availability messages of every meter after since.
func availabilitySince(r *faultRig, since time.Time) []string {
	var out []string
	for _, m := range r.rec.Messages("") {
		if m.At.After(since) && strings.HasSuffix(m.Topic, "/availability") {
			out = append(out, m.Topic+" "+string(m.Payload))
		}
	}
	return out
}

// adapter is a rig whose gateway reads the bus through a USB master
// that can be pulled out: a pseudo-terminal behind a stable link.
type adapter struct {
	*faultRig
	pty  *sim.PTY
	link string
}

// newAdapter starts the rig on a pseudo-terminal of countingMeters(n)
// and waits until every meter is online.
func newAdapter(t *testing.T, n int) *adapter {
	t.Helper()
	link := filepath.Join(t.TempDir(), "usb-M-Bus_Master_MB-USB-if00-port0")
	a := &adapter{link: link}
	a.faultRig = newFaultRig(t, countingMeters(t, n), map[string]any{"tcp_address": "", "serial_port": link})
	a.pty = servePTY(t, a.bus, link)
	a.start()
	a.waitReadings(15 * time.Second)
	waitAvailability(a.faultRig, "online", time.Time{}, 10*time.Second)
	return a
}

// servePTY serves bus on a pseudo-terminal behind link until the test
// ends.
func servePTY(t *testing.T, bus *sim.Bus, link string) *sim.PTY {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pty, err := bus.OpenPTY(ctx, link)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pty.Close(); err != nil {
			t.Errorf("pty: %v", err)
		}
		cancel()
	})
	return pty
}

// unplug pulls the adapter out and returns when.
func (a *adapter) unplug() time.Time {
	a.t.Helper()
	device := a.pty.Device()
	at := time.Now()
	if err := a.pty.Unplug(); err != nil {
		a.t.Fatal(err)
	}
	a.t.Logf("unplugged %s (%s)", a.link, device)
	return at
}

// replug plugs it back in and returns when.
func (a *adapter) replug() time.Time {
	a.t.Helper()
	at := time.Now()
	if err := a.pty.Replug(); err != nil {
		a.t.Fatal(err)
	}
	a.t.Logf("plugged back in as %s", a.pty.Device())
	return at
}

// outage unplugs the adapter until every meter is offline, checking that
// none went before its breaker could open, and for hold longer, then
// plugs it back in and waits until every meter is online. It returns how
// long the adapter was out and how long the meters took to come back
// after the replug.
func (a *adapter) outage(hold time.Duration) (out, back time.Duration) {
	a.t.Helper()
	unplugged := a.unplug()
	offline := waitAvailability(a.faultRig, "offline", unplugged, 30*time.Second)
	for meter, at := range offline {
		if d := at.Sub(unplugged); d < minOffline {
			a.t.Errorf("%s: offline %v after the unplug, want at least %v (its breaker must open first)", meter, d, minOffline)
		} else {
			a.t.Logf("%s: offline %v after the unplug", meter, d.Round(time.Millisecond))
		}
	}
	if hold > 0 {
		// The gateway has nothing to tell while the adapter stays away:
		// this is the outage itself, not a wait for an event.
		time.Sleep(hold)
	}
	replugged := a.replug()
	var last time.Time
	for _, at := range waitAvailability(a.faultRig, "online", replugged, 90*time.Second) {
		last = maxTime(last, at)
	}
	out, back = replugged.Sub(unplugged), last.Sub(replugged)
	a.t.Logf("unplugged for %v: every meter online again %v after the replug", out.Round(time.Millisecond), back.Round(time.Millisecond))
	return out, back
}

// TestFaultAdapterUnplugged: the USB master behind a stable link (as
// /dev/serial/by-id/… is) is pulled out and plugged back in, first for a
// moment, then for longer. After the moment no meter turned unavailable;
// during the long outage each meter turns unavailable only once its own
// breaker opened, and all come back once the device is back and
// reopened. Every whole telegram's reading arrives, once, in order; at
// most the one on the wire at each unplug is lost with the adapter.
func TestFaultAdapterUnplugged(t *testing.T) {
	a := newAdapter(t, 3)
	start := time.Now()

	// A moment: the gateway notices, the adapter is back before any
	// meter has failed three polls.
	brief := a.unplug()
	eventually(t, 10*time.Second, "/metrics shows the bus down", func() bool { return a.metric("mbus_bus_up") == 0 })
	back := a.replug()
	eventually(t, 15*time.Second, "/metrics shows the bus up again", func() bool { return a.metric("mbus_bus_up") == 1 })
	t.Logf("brief unplug: bus down after %v, up %v after the replug", back.Sub(brief).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	a.waitSent(a.sent(), 2, 15*time.Second)
	if got := availabilitySince(a.faultRig, start); len(got) > 0 {
		t.Errorf("availability changes after a brief unplug: got %q, want none", got)
	}

	// Longer: every meter goes offline in its own time, then returns.
	a.outage(0)

	a.waitSent(a.sent(), 3, 30*time.Second)
	f := drain(a.faultRig, 30*time.Second).check(events{})
	t.Logf("whole telegrams %d, readings delivered %d, lost on the wire at an unplug %d (of 2 unplugs), lost otherwise %d, duplicates %d",
		f.produced, f.delivered, f.unplugged, f.lost, f.duplicates)
	if f.unplugged > 2 {
		t.Errorf("readings lost with the adapter: got %d, want at most the one on the wire at each of the 2 unplugs", f.unplugged)
	}
	select {
	case <-a.gw.done:
		t.Fatalf("the gateway exited: code %d", a.gw.code)
	default:
	}
	stop(t, a.gw)
}

// TestFaultAdapterReopenBackoff: after the adapter was out for a while
// (about 9 s, long enough for several doublings of every backoff), the
// meters are back within the time it was out (plus two seconds): an
// exponential backoff that doubles its wait never waits longer than the
// outage has lasted so far. Neither the port's reopen backoff (a read
// tries to reopen a vanished adapter once, not once per retry) nor the
// meters' breakers (the open meters keep probing the bus at its own
// backoff) may stretch that.
func TestFaultAdapterReopenBackoff(t *testing.T) {
	a := newAdapter(t, 3)
	out, back := a.outage(6 * time.Second)
	if back > out+2*time.Second {
		t.Errorf("meters back %v after the replug, for an outage of %v: want at most the outage plus 2 s", back.Round(time.Millisecond), out.Round(time.Millisecond))
	}
	checkBusHealthShown(a.faultRig)
	stop(t, a.gw)
}

// checkBusHealthShown checks that an outage of the bus that is over shows
// the same way everywhere the bus health is read: /metrics counted the
// bus going down and back, /status and the metric say up, and the
// gateway's device in Home Assistant showed the bus down and then up.
func checkBusHealthShown(r *faultRig) {
	r.t.Helper()
	eventually(r.t, 10*time.Second, "/metrics shows the bus state up", func() bool { return r.metric("mbus_bus_state") == 0 })
	for _, name := range []string{`mbus_bus_transitions_total{from="up",to="down"}`, `mbus_bus_transitions_total{from="reopening",to="up"}`} {
		if got := r.metric(name); got < 1 {
			r.t.Errorf("%s: got %v, want at least 1", name, got)
		}
	}
	var st struct {
		Bus struct{ State string } `json:"bus"`
	}
	if code := getJSON(r.t, endpoint(r.port, "/status"), &st); code != http.StatusOK || st.Bus.State != "up" {
		r.t.Errorf("/status: got %d, bus state %q; want 200, up", code, st.Bus.State)
	}
	var states []string
	eventually(r.t, 10*time.Second, "mbus/bridge/bus_state says up again", func() bool {
		states = states[:0]
		for _, m := range r.rec.Messages("mbus/bridge/bus_state") {
			states = append(states, string(m.Payload))
		}
		return len(states) > 0 && states[len(states)-1] == "up"
	})
	if !slices.Contains(states, "down") {
		r.t.Errorf("mbus/bridge/bus_state: got %q, want down during the outage and up at the end", states)
	}
}
