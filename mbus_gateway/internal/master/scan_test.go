package master

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// The scan tests run on a bus like the ones of real installations: a TCP
// converter at 2400 baud whose meters answer 20 ms after a request.
const (
	scanBaud  = 2400
	scanDelay = 20 * time.Millisecond
	// lateEcho is when a converter with a buffered loop-back echoes a
	// request: after the E5 that answers a selection (17 bytes on the
	// wire, then scanDelay).
	lateEcho = 100 * time.Millisecond
	// loadRoom is extra answer time for the tests whose point is not
	// timing: a loaded test machine may hold the simulator up.
	loadRoom = 100 * time.Millisecond
)

// scanBus is a bus of one-telegram meters at scanBaud; primaries[i] is
// the primary address of the meter with secondary address secs[i].
func scanBus(t testing.TB, opts sim.Options, secs []string, primaries []byte, meter func(i int, m *sim.Meter)) *sim.Bus {
	t.Helper()
	opts.Baud, opts.ResponseDelay = scanBaud, scanDelay
	bus := newBus(t, opts)
	for i, s := range secs {
		m := sim.Meter{Primary: primaries[i], Secondary: secondary(t, s),
			Telegrams: [][]byte{telegram(t, 0, s, uint32(1000*i+999), false)}}
		if meter != nil {
			meter(i, &m)
		}
		if err := bus.AddMeter(m); err != nil {
			t.Fatal(err)
		}
	}
	return bus
}

// minimalProbes is the number of probes of a wildcard search that sends
// none in vain: the root, and for each ID prefix shared by at least two
// meters (which collide there) the 15 digits 0-E below it; meters with one
// ID collide at the last digit and are not split further.
func minimalProbes(ids []string) int {
	n := 1
	for pos := range idDigits {
		shared := map[string]int{}
		for _, id := range ids {
			shared[id[:pos]]++
		}
		for _, k := range shared {
			if k >= 2 {
				n += 15
			}
		}
	}
	return n
}

// secondaryScan scans bus by secondary address over TCP and cancels the
// scan once it needs more than limit probes: the runaway scans these tests
// guard against would otherwise go on for minutes.
func scanSecondaryUpTo(t *testing.T, bus *sim.Bus, o Options, limit int) ([]Found, Progress, *Master, error) {
	t.Helper()
	o.Baud = scanBaud
	m := connect(t, serveTCP(t, bus), o)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var last Progress
	found, err := m.ScanSecondary(ctx, func(p Progress) {
		last = p
		if p.Probes > limit {
			cancel()
		}
	})
	return found, last, m, err
}

// TestScanSecondaryProbes: the wildcard search finds every meter with the
// least probes, on a converter that echoes and one that does not, with
// hex digits in the IDs, and with meters answering a byte apart.
func TestScanSecondaryProbes(t *testing.T) {
	ids := []string{"12345678A5110107", "1A2B3C4DA5110107", "5B000001A5110107", "E0E0E0E0A5110107"}
	tests := []struct {
		name  string
		opts  sim.Options
		meter func(i int, m *sim.Meter)
	}{
		{name: "plain"},
		{name: "echoing converter", opts: sim.Options{Echo: true}},
		// Each probe used to read the echo of the one before, take it for
		// a collision and split every branch without end.
		{name: "late echo", opts: sim.Options{Echo: true, EchoDelay: lateEcho}},
		// An E5 followed by another used to count as one meter; the rest
		// landed on the next probe and split it in vain.
		{name: "answers 10 ms apart", meter: func(i int, m *sim.Meter) {
			m.Delay = time.Duration(i%2) * 10 * time.Millisecond
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bus := scanBus(t, tt.opts, ids, []byte{1, 2, 3, 4}, tt.meter)
			want := minimalProbes(ids)
			found, last, m, err := scanSecondaryUpTo(t, bus, Options{Extra: loadRoom}, want)
			if err != nil {
				t.Fatalf("scan: %v (after %d probes, %v)", err, last.Probes, m.Stats())
			}
			if got := foundStrings(found); !slices.Equal(got, ids) {
				t.Errorf("found:\ngot  %q\nwant %q", got, ids)
			}
			if last.Probes != want {
				t.Errorf("probes: got %d, want %d", last.Probes, want)
			}
		})
	}
}

// TestScanSecondarySlowAnswers: meters that answer late are found, with
// no extra answer time configured. The scan used to end at once with no
// meter.
func TestScanSecondarySlowAnswers(t *testing.T) {
	ids := []string{"12345678A5110107", "5B000001A5110107"}
	tests := []struct {
		name   string
		meter  func(i int, m *sim.Meter)
		probes int
	}{
		// Every E5 and telegram 190 ms after the request: 2.5 ms after
		// the window of EN 13757-2 at 2400 baud has closed.
		{name: "190 ms", probes: minimalProbes(ids) + 1, meter: func(_ int, m *sim.Meter) {
			m.Delay = 190*time.Millisecond - scanDelay
		}},
		// Only the first answer of each meter (the root wildcard) late.
		{name: "first answer late", probes: minimalProbes(ids) + 1, meter: func(_ int, m *sim.Meter) {
			m.Faults = []sim.Fault{{Kind: sim.FaultSlow, Delay: 100 * time.Millisecond, Times: 1}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bus := scanBus(t, sim.Options{}, ids, []byte{1, 2}, tt.meter)
			found, last, m, err := scanSecondaryUpTo(t, bus, Options{}, 2*tt.probes)
			if err != nil {
				t.Fatalf("scan: %v (after %d probes, %v)", err, last.Probes, m.Stats())
			}
			if got := foundStrings(found); !slices.Equal(got, ids) {
				t.Errorf("found:\ngot  %q\nwant %q", got, ids)
			}
			if last.Probes != tt.probes {
				t.Errorf("probes: got %d, want %d", last.Probes, tt.probes)
			}
		})
	}
}

// TestScanPrimaryCollision: two meters at one primary address are one
// collision there; their answers do not spill onto the next addresses.
func TestScanPrimaryCollision(t *testing.T) {
	secs := []string{"11111111A5110107", "11111112A5110107", "33333333A5110107", "44444444A5110107"}
	for _, echo := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "echoing converter"}[echo], func(t *testing.T) {
			t.Parallel()
			// Meters send telegrams of their own lengths: the rest of the
			// longer one used to land on the next probes.
			bus := scanBus(t, sim.Options{Echo: echo}, secs, []byte{1, 1, 3, 4}, func(i int, m *sim.Meter) {
				switch i {
				case 1:
					m.Telegrams = [][]byte{libmbusFrame(t, "kamstrup_multical_601.hex")}
				case 2:
					// The first telegram after the window: the repeated
					// request takes it, and the answer to the repeat is
					// late for the next probe, a SND_NKE.
					m.Faults = []sim.Fault{{Kind: sim.FaultSlow, Delay: loadRoom + 30*time.Millisecond, Every: 2, Times: 1}}
				}
			})
			m := connect(t, serveTCP(t, bus), Options{Baud: scanBaud, Extra: loadRoom})
			var last Progress
			found, err := m.ScanPrimaryRange(t.Context(), 0, 5, func(p Progress) { last = p })
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"001 0000000000000000 collision", "003 " + secs[2], "004 " + secs[3]}
			if got := foundStrings(found); !slices.Equal(got, want) {
				t.Errorf("found:\ngot  %q\nwant %q", got, want)
			}
			// A probe (SND_NKE) per address, and the read of each meter
			// found, once repeated.
			if got, want := last.Probes, 6+3+1; got != want {
				t.Errorf("probes: got %d, want %d", got, want)
			}
			if got, want := m.Stats().Collisions, uint64(1); got != want {
				t.Errorf("collisions: got %d, want %d", got, want)
			}
		})
	}
}

// TestScanSecondaryUnresolved: meters that answer a wildcard but cannot
// be read or split are reported, never dropped in silence.
func TestScanSecondaryUnresolved(t *testing.T) {
	t.Parallel()
	// The meter with the F digit hides behind the wildcard F.
	ids := []string{"1F000000A5110107", "12000000A5110107"}
	bus := scanBus(t, sim.Options{}, ids, []byte{1, 2}, nil)
	found, _, _, err := scanSecondaryUpTo(t, bus, Options{Extra: loadRoom}, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"12000000A5110107", "1FFFFFFFFFFFFFFF collision"}
	if got := foundStrings(found); !slices.Equal(got, want) {
		t.Errorf("found:\ngot  %q\nwant %q", got, want)
	}
}

func TestExtraFor(t *testing.T) {
	tests := []struct {
		device string
		extra  time.Duration
		want   time.Duration
	}{
		{"tcp://10.0.0.5:10001", 0, DefaultTCPExtra},
		{"tcp://10.0.0.5:10001", 5 * time.Millisecond, 5 * time.Millisecond},
		{"/dev/ttyUSB0", 0, 0},
		{"/dev/ttyUSB0", 100 * time.Millisecond, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := ExtraFor(tt.device, tt.extra); got != tt.want {
			t.Errorf("ExtraFor(%q, %v): got %v, want %v", tt.device, tt.extra, got, tt.want)
		}
	}
}

// TestScanSecondaryAckedButUnread: a meter acknowledges the wildcard but
// its telegram never comes. The scan fails with ErrUnresolved; it used to
// report no meter and no error.
func TestScanSecondaryAckedButUnread(t *testing.T) {
	s := newScript().on(selectReq(t, "FFFFFFFFFFFFFFFF"), now(ack))
	m, _ := newMaster(t, s, fastOpts)
	found, err := m.ScanSecondary(t.Context(), nil)
	if !errors.Is(err, ErrUnresolved) || len(found) != 0 {
		t.Fatalf("got %v, %v; want no meter and ErrUnresolved", foundStrings(found), err)
	}
}

// TestReadLateEcho: a converter that echoes each request only after the
// answer. Each echo reaches the next exchange, which skips it: it used to
// be taken for a wrong answer and cost a repeat.
func TestReadLateEcho(t *testing.T) {
	const sec = "00000003A5110107"
	bus := newBus(t, sim.Options{Echo: true, EchoDelay: 5 * time.Millisecond},
		sim.Meter{Primary: 2, Secondary: secondary(t, secA), Telegrams: threeTelegrams(t, secA)},
		sim.Meter{Primary: 3, Secondary: secondary(t, sec), Telegrams: threeTelegrams(t, sec)})
	m := connect(t, serveTCP(t, bus), Options{})
	for _, addr := range []string{"2", sec, "2", sec} {
		res, err := m.Read(t.Context(), mustAddr(t, addr))
		if err != nil {
			t.Fatalf("read %s: %v", addr, err)
		}
		if got, want := energies(t, res), []float64{1, 2, 3}; !slices.Equal(got, want) {
			t.Errorf("read %s: got %v, want %v", addr, got, want)
		}
	}
	if st := m.Stats(); st.Retries != 0 || st.Strays == 0 {
		t.Errorf("stats: got %v, want no retries and the late echoes skipped", st)
	}
}

// TestCutEcho: the drain before a request took the start of the previous
// request's late echo; its end is skipped, not taken for garbage.
func TestCutEcho(t *testing.T) {
	req := reqUD2(1, true)
	s := newScript().
		on(sndNKE(1), now(sndNKE(1), ack)).
		on(req, now(req, telegram(t, 1, secA, 1000, false))).
		on(sndNKE(2), now(req[2:], sndNKE(2), ack))
	m, _ := newMaster(t, s, fastOpts)
	if _, err := m.Read(t.Context(), mustAddr(t, "1")); err != nil {
		t.Fatal(err)
	}
	if err := m.Reset(t.Context(), 2); err != nil {
		t.Fatalf("reset after a cut echo: %v", err)
	}
	if st := m.Stats(); st.Strays != 1 || st.Echoes != 3 || st.Retries != 0 {
		t.Errorf("stats: got %v, want 3 echoes, the cut one skipped, no retries", st)
	}
}
