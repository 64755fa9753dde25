package e2e

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// converter is an M-Bus-to-TCP converter on a fixed loopback port that
// can be switched off (listener and connections closed) and on again.
type converter struct {
	t      *testing.T
	bus    *sim.Bus
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// startConverter serves bus on a free loopback port until the test ends.
func startConverter(t *testing.T, bus *sim.Bus) *converter {
	t.Helper()
	c := &converter{t: t, bus: bus, addr: "127.0.0.1:0"}
	c.on()
	t.Cleanup(c.off)
	return c
}

// on starts serving on the converter's address.
func (c *converter) on() {
	c.t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", c.addr)
	if err != nil {
		c.t.Fatalf("converter on: %v", err)
	}
	c.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan error, 1)
	go func(done chan<- error) { done <- c.bus.ServeTCP(ctx, ln) }(c.done)
}

// off closes the listener and every connection, as a converter that
// restarts does; it does nothing when the converter is off.
func (c *converter) off() {
	c.t.Helper()
	if c.cancel == nil {
		return
	}
	c.cancel()
	if err := <-c.done; err != nil {
		c.t.Errorf("converter: %v", err)
	}
	c.cancel = nil
}

// TestFaultTCPConverter: the converter drops the connection in the middle
// of a telegram (every third answer of one meter), then restarts (port
// closed, then open again). The gateway reconnects each time; the
// telegram cut short is asked for again and arrives; no meter turns
// unavailable for a restart shorter than its breaker's patience; every
// whole telegram's reading arrives once, in order.
func TestFaultTCPConverter(t *testing.T) {
	setup := countingMeters(t, 3)
	r := newFaultRig(t, setup, nil)
	conv := startConverter(t, r.bus)
	opts := readOptions(t, r.options)
	opts["tcp_address"] = conv.addr
	writeOptions(t, r.dir, opts)
	r.start()
	r.waitReadings(15 * time.Second)
	start := time.Now()

	// Mid-frame drops on meter 2.
	const drops = 3
	cut := setup.Meters[1].Primary
	if err := r.bus.SetFault(cut, sim.Fault{Kind: sim.FaultHangUp, Every: 3}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "three telegrams cut short", func() bool {
		st := r.bus.Meters()[1]
		return st.TelegramsSent-st.Transmissions >= drops
	})
	if err := r.bus.SetFault(cut); err != nil {
		t.Fatal(err)
	}
	r.waitSent(r.sent(), 2, 15*time.Second)
	// The master asks again with the same FCB, and the meter repeats
	// the telegram it was cut off in: every transmission got through.
	st := r.bus.Meters()[1]
	t.Logf("%s: %d telegrams sent, %d cut short and repeated; %d transmissions, %d whole",
		r.meters[1], st.TelegramsSent, st.TelegramsSent-st.Transmissions, st.Transmissions, st.Intact)
	if st.Intact != st.Transmissions {
		t.Errorf("%s: %d of %d transmissions got through whole, want all", r.meters[1], st.Intact, st.Transmissions)
	}

	// A restart of the converter.
	off := time.Now()
	conv.off()
	eventually(t, 15*time.Second, "/metrics shows the bus down", func() bool { return r.metric("mbus_bus_up") == 0 })
	on := time.Now()
	conv.on()
	eventually(t, 30*time.Second, "/metrics shows the bus up again", func() bool { return r.metric("mbus_bus_up") == 1 })
	t.Logf("converter off for %v; the gateway was reading again %v after it came back",
		on.Sub(off).Round(time.Millisecond), time.Since(on).Round(time.Millisecond))
	r.waitSent(r.sent(), 2, 30*time.Second)
	if got := availabilitySince(r, start); len(got) > 0 {
		t.Errorf("availability changes: got %q, want none", got)
	}

	f := drain(r, 30*time.Second).check(events{})
	t.Logf("whole telegrams %d, readings delivered %d, lost %d, duplicates %d", f.produced, f.delivered, f.lost, f.duplicates)
	select {
	case <-r.gw.done:
		t.Fatalf("the gateway exited: code %d", r.gw.code)
	default:
	}
	stop(t, r.gw)
}
