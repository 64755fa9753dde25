package master

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/backoff"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim/simtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
)

// libmbusFrame reads a real meter's telegram from the codec's test data.
func libmbusFrame(t testing.TB, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("../mbus/testdata/libmbus/test-frames", name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := mbus.ParseHex(string(text))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// serveTCP serves bus on a loopback port, like a TCP converter, until the
// test ends; it returns the device string.
func serveTCP(t testing.TB, bus *sim.Bus) string {
	t.Helper()
	return "tcp://" + simtest.ServeTCP(t, bus)
}

// servePTY serves bus on a pseudo-terminal, like a USB master.
func servePTY(t testing.TB, bus *sim.Bus) string {
	t.Helper()
	p := openSimPTY(t, bus, "")
	return p.Path()
}

func openSimPTY(t testing.TB, bus *sim.Bus, link string) *sim.PTY {
	t.Helper()
	p, err := bus.OpenPTY(context.Background(), link)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// links are the two ways the gateway reaches a bus.
var links = []struct {
	name  string
	serve func(testing.TB, *sim.Bus) string
}{
	{"tcp", serveTCP},
	{"pty", servePTY},
}

// simBaud is the rate the master assumes: the fastest, so that missing
// answers cost least. The simulator in these tests does not pace.
const simBaud = 38400

func connect(t testing.TB, dev string, o Options) *Master {
	t.Helper()
	p, err := transport.Open(t.Context(), dev, transport.Options{Baud: simBaud})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if o.Baud == 0 {
		o.Baud = simBaud
	}
	return New(p, o)
}

func newBus(t testing.TB, opts sim.Options, meters ...sim.Meter) *sim.Bus {
	t.Helper()
	bus := sim.NewBus(opts)
	for _, m := range meters {
		if err := bus.AddMeter(m); err != nil {
			t.Fatal(err)
		}
	}
	return bus
}

func mustAddr(t testing.TB, s string) mbus.Address {
	t.Helper()
	a, err := mbus.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// threeTelegrams is a meter whose data takes three telegrams.
func threeTelegrams(t testing.TB, sec string) [][]byte {
	return [][]byte{
		telegram(t, 0, sec, 1000, true),
		telegram(t, 0, sec, 2000, true),
		telegram(t, 0, sec, 3000, false),
	}
}

func energies(t testing.TB, res Result) []float64 {
	var out []float64
	for _, tg := range res.Telegrams {
		out = append(out, energy(t, tg))
	}
	return out
}

func TestSimRead(t *testing.T) {
	kam := libmbusFrame(t, "kamstrup_multical_601.hex")
	const twinA, twinB = "11111111A5110107", "22222222A5110107"
	const hexID = "1A2B3C4DA5110107"
	for _, link := range links {
		t.Run(link.name, func(t *testing.T) {
			bus := newBus(t, sim.Options{},
				sim.Meter{Primary: 1, Telegrams: [][]byte{kam}},
				sim.Meter{Primary: 2, Secondary: secondary(t, "00000002A5110107"), Telegrams: threeTelegrams(t, "00000002A5110107")},
				sim.Meter{Primary: 3, Secondary: secondary(t, twinA), Telegrams: [][]byte{telegram(t, 0, twinA, 1000, false)}},
				sim.Meter{Primary: 3, Secondary: secondary(t, twinB), Telegrams: [][]byte{telegram(t, 0, twinB, 2000, false)}},
				sim.Meter{Primary: 4, Secondary: secondary(t, hexID), Telegrams: [][]byte{telegram(t, 0, hexID, 4000, false)}},
			)
			m := connect(t, link.serve(t, bus), Options{})
			ctx := t.Context()

			// A real meter's telegram, by primary address.
			res, err := m.Read(ctx, mustAddr(t, "1"))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := res.Telegrams[0].Header.ID, "06855817"; got != want {
				t.Errorf("kamstrup ID: got %s, want %s", got, want)
			}
			if got := len(res.Telegrams[0].Records); got < 10 {
				t.Errorf("kamstrup records: got %d, want the whole telegram", got)
			}

			// Three telegrams, in order, twice (the sequence wraps).
			for i := range 2 {
				res, err := m.Read(ctx, mustAddr(t, "2"))
				if err != nil {
					t.Fatalf("multi-telegram read %d: %v", i, err)
				}
				if got, want := energies(t, res), []float64{1, 2, 3}; !slices.Equal(got, want) {
					t.Errorf("multi-telegram read %d: got %v, want %v", i, got, want)
				}
			}

			// Two meters at primary 3 garble each other; by secondary
			// address each reads cleanly.
			if _, err := m.Read(ctx, mustAddr(t, "3")); !errors.Is(err, ErrGarbage) {
				t.Errorf("read of a shared primary address: got %v, want ErrGarbage", err)
			}
			for sec, want := range map[string]float64{twinA: 1, twinB: 2, hexID: 4} {
				res, err := m.Read(ctx, mustAddr(t, sec))
				if err != nil {
					t.Fatalf("read %s: %v", sec, err)
				}
				if got := energy(t, res.Telegrams[0]); got != want {
					t.Errorf("read %s: got %v kWh, want %v", sec, got, want)
				}
			}
			// A multi-telegram meter by secondary address.
			res, err = m.Read(ctx, mustAddr(t, "00000002A5110107"))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(res.Telegrams), 3; got != want {
				t.Errorf("multi-telegram by secondary: got %d telegrams, want %d", got, want)
			}
			// Every selection was undone.
			for _, ms := range bus.Meters() {
				if ms.Selected {
					t.Errorf("%s still selected after the reads", ms.Name)
				}
			}
		})
	}
}

// TestSimFaults reads a meter under each fault of the simulator: when
// the fault is permanent the read fails with the matching error; when it
// hits every second answer, retries repair it and the repeated FCB gets
// the same telegram again. A slow answer is taken when the configured
// extra time covers it (a slow converter).
func TestSimFaults(t *testing.T) {
	const sec = "33333333A5110107"
	const slowBy = 30 * time.Millisecond
	tests := []struct {
		kind    sim.FaultKind
		wantErr []error
	}{
		{sim.FaultNoAnswer, []error{ErrTimeout}},
		{sim.FaultCorrupt, []error{ErrGarbage, mbus.ErrChecksum}},
		{sim.FaultChecksum, []error{ErrGarbage, mbus.ErrChecksum}},
		{sim.FaultTruncate, []error{ErrGarbage, mbus.ErrTruncated}},
		{sim.FaultSlow, []error{ErrTimeout}},
		{sim.FaultEcho, nil}, // an echo is skipped, not an error
	}
	// read reads the meter with fault f injected after the link is up,
	// so that the fault hits the data exchanges; each call gets a fresh
	// bus, so late answers of one phase cannot reach the next.
	read := func(t *testing.T, serve func(testing.TB, *sim.Bus) string, f sim.Fault, o Options) (Result, *Master, error) {
		bus := newBus(t, sim.Options{}, sim.Meter{Primary: 8, Secondary: secondary(t, sec), Telegrams: threeTelegrams(t, sec)})
		m := connect(t, serve(t, bus), o)
		if err := m.Reset(t.Context(), 8); err != nil {
			t.Fatal(err)
		}
		if err := bus.SetFault(8, f); err != nil {
			t.Fatal(err)
		}
		res, err := m.Read(t.Context(), mustAddr(t, "8"))
		return res, m, err
	}
	for _, link := range links {
		for _, tt := range tests {
			t.Run(link.name+"/"+tt.kind.String(), func(t *testing.T) {
				res, m, err := read(t, link.serve, sim.Fault{Kind: tt.kind}, Options{})
				if checkErr(t, "permanent", err, tt.wantErr) {
					if got, want := energies(t, res), []float64{1, 2, 3}; !slices.Equal(got, want) {
						t.Errorf("permanent: got %v, want %v", got, want)
					}
					if got, want := m.Stats().Echoes, uint64(3); got != want {
						t.Errorf("echoes: got %d, want %d", got, want)
					}
				}

				f, o := sim.Fault{Kind: tt.kind, Every: 2}, Options{}
				if tt.kind == sim.FaultSlow {
					f, o = sim.Fault{Kind: tt.kind, Delay: slowBy}, Options{Extra: 10 * slowBy}
				}
				res, m, err = read(t, link.serve, f, o)
				if err != nil {
					t.Fatalf("intermittent: %v", err)
				}
				if got, want := energies(t, res), []float64{1, 2, 3}; !slices.Equal(got, want) {
					t.Errorf("intermittent: got %v, want %v", got, want)
				}
				if st := m.Stats(); tt.kind != sim.FaultSlow && tt.kind != sim.FaultEcho && st.Retries == 0 {
					t.Errorf("intermittent: got no retries, want the faults repaired by them (%v)", st)
				}
			})
		}
	}
}

func foundStrings(found []Found) []string {
	var out []string
	for _, f := range found {
		s := f.Secondary.String()
		if f.Primary >= 0 {
			s = strings.Join([]string{string(rune('0' + f.Primary/100)), string(rune('0' + f.Primary/10%10)), string(rune('0' + f.Primary%10))}, "") + " " + s
		}
		if f.Collision {
			s += " collision"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// tenMeters are on the bus of the secondary scan tests: IDs sharing
// prefixes (so the search must split deep), hex digits, and two meters
// with one ID but different manufacturers (which no ID digit can split).
var tenMeters = []string{
	"12345678A5110107",
	"12345679A5110107",
	"12345688A5110107",
	"12399999A5110107",
	"1A2B3C4DA5110107",
	"1A2B3C4EA5110107",
	"90000001A5110107",
	"00000000A5110107",
	"55555555A5110107",
	"E0E0E0E0A5110107",
}

// TestSimScanSecondary: the wildcard search finds ten meters (over TCP;
// over the pseudo-terminal a subset, since each empty branch costs a
// timeout) and reports the two meters it cannot tell apart.
func TestSimScanSecondary(t *testing.T) {
	twins := []string{"77777777A5110107", "777777772D2C0102"}
	for _, link := range links {
		t.Run(link.name, func(t *testing.T) {
			ids := tenMeters
			if link.name == "pty" {
				ids = []string{tenMeters[0], tenMeters[1], tenMeters[4], tenMeters[9]}
			}
			bus := newBus(t, sim.Options{})
			for i, s := range append(slices.Clone(ids), twins...) {
				// Distinct readings: the simulator combines colliding answers
				// with AND, and two identical telegrams but for one ID bit
				// would combine into a valid frame (see ScanSecondary).
				if err := bus.AddMeter(sim.Meter{Primary: byte(i), Secondary: secondary(t, s), Telegrams: [][]byte{telegram(t, 0, s, uint32(1000*i+999), false)}}); err != nil {
					t.Fatal(err)
				}
			}
			m := connect(t, link.serve(t, bus), Options{})
			var last Progress
			calls := 0
			found, err := m.ScanSecondary(t.Context(), func(p Progress) { last = p; calls++ })
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(ids)
			want = append(want, "77777777FFFFFFFF collision")
			slices.Sort(want)
			if got := foundStrings(found); !slices.Equal(got, want) {
				t.Errorf("found:\ngot  %q\nwant %q", got, want)
			}
			if got, want := last.Probes, minimalProbes(append(slices.Clone(ids), twins...)); got != want {
				t.Errorf("probes: got %d, want %d", got, want)
			}
			if last.Found != len(found) || last.Done == 0 || calls == 0 {
				t.Errorf("progress: got %+v after %d calls, want Found=%d", last, calls, len(found))
			}
			if st := m.Stats(); st.Collisions == 0 {
				t.Errorf("collisions: got 0, want the splits counted (%v)", st)
			}
		})
	}
}

func TestSimScanPrimary(t *testing.T) {
	const shared1, shared2 = "44444444A5110107", "44444445A5110107"
	for _, link := range links {
		t.Run(link.name, func(t *testing.T) {
			bus := newBus(t, sim.Options{},
				sim.Meter{Primary: 1, Secondary: secondary(t, secA), Telegrams: [][]byte{telegram(t, 0, secA, 1, false)}},
				sim.Meter{Primary: 5, Secondary: secondary(t, shared1), Telegrams: [][]byte{telegram(t, 0, shared1, 1, false)}},
				sim.Meter{Primary: 5, Secondary: secondary(t, shared2), Telegrams: [][]byte{telegram(t, 0, shared2, 2, false)}},
				sim.Meter{Primary: 9, Telegrams: [][]byte{libmbusFrame(t, "kamstrup_multical_601.hex")}},
			)
			m := connect(t, link.serve(t, bus), Options{})
			var seen []Progress
			// The whole range costs a timeout per empty address; the
			// cases sit at its start.
			found, err := m.ScanPrimaryRange(t.Context(), 0, 10, func(p Progress) { seen = append(seen, p) })
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"001 " + secA, "005 0000000000000000 collision", "009 06855817" + "2D2C0804"}
			if got := foundStrings(found); !slices.Equal(got, want) {
				t.Errorf("found:\ngot  %q\nwant %q", got, want)
			}
			if got, want := len(seen), 11; got != want {
				t.Fatalf("progress calls: got %d, want %d", got, want)
			}
			if got, want := seen[10], (Progress{Done: 11, Total: 11, Found: 3, Probes: 11 + 3}); got != want {
				t.Errorf("last progress: got %+v, want %+v", got, want)
			}
		})
	}
}

// TestSimScanCancel: a scan stops when its ctx is cancelled, with what it
// found so far.
func TestSimScanCancel(t *testing.T) {
	bus := newBus(t, sim.Options{}, sim.Meter{Primary: 0, Secondary: secondary(t, secA), Telegrams: [][]byte{telegram(t, 0, secA, 1, false)}})
	m := connect(t, serveTCP(t, bus), Options{})
	ctx, cancel := context.WithCancel(t.Context())
	found, err := m.ScanPrimary(ctx, func(p Progress) {
		if p.Done == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if got, want := len(found), 1; got != want {
		t.Errorf("found before cancel: got %d, want %d", got, want)
	}
}

// TestSimEchoingConverter: a converter that echoes every request; reads
// and a secondary scan work as without it.
func TestSimEchoingConverter(t *testing.T) {
	for _, link := range links {
		t.Run(link.name, func(t *testing.T) {
			bus := newBus(t, sim.Options{})
			for i, s := range []string{"12345678A5110107", "12345679A5110107", "99999999A5110107"} {
				err := bus.AddMeter(sim.Meter{Primary: byte(i + 1), Secondary: secondary(t, s),
					Telegrams: threeTelegrams(t, s), Faults: []sim.Fault{{Kind: sim.FaultEcho}}})
				if err != nil {
					t.Fatal(err)
				}
			}
			m := connect(t, link.serve(t, bus), Options{})
			res, err := m.Read(t.Context(), mustAddr(t, "12345679A5110107"))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res.Telegrams); got != 3 {
				t.Errorf("telegrams: got %d, want 3", got)
			}
			found, err := m.ScanSecondary(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(found), 3; got != want {
				t.Errorf("found %d meters, want %d: %q", got, want, foundStrings(found))
			}
			if m.Stats().Echoes == 0 {
				t.Error("echoes: got 0, want them counted")
			}
		})
	}
}

// TestSimUnplug: a USB master pulled out and plugged back in. The read in
// between fails with an I/O error (no hang); the reopening port finds the
// device again under its stable link.
func TestSimUnplug(t *testing.T) {
	bus := newBus(t, sim.Options{}, sim.Meter{Primary: 1, Secondary: secondary(t, secA), Telegrams: [][]byte{telegram(t, 0, secA, 1000, false)}})
	link := filepath.Join(t.TempDir(), "ttyMBUS")
	p := openSimPTY(t, bus, link)
	port, err := transport.OpenReopening(t.Context(), link, transport.Options{Baud: simBaud}, bushealth.New(bushealth.Options{Backoff: backoff.Backoff{Min: 1, Max: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	m := New(port, Options{Baud: simBaud})
	if _, err := m.Read(t.Context(), mustAddr(t, "1")); err != nil {
		t.Fatal(err)
	}
	if err := p.Unplug(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Read(t.Context(), mustAddr(t, "1")); !errors.Is(err, ErrPortDown) || errors.Is(err, ErrTimeout) {
		t.Fatalf("read while unplugged: got %v, want ErrPortDown", err)
	}
	if err := p.Replug(); err != nil {
		t.Fatal(err)
	}
	res, err := m.Read(t.Context(), mustAddr(t, "1"))
	if err != nil {
		t.Fatalf("read after replug: %v", err)
	}
	if got, want := energy(t, res.Telegrams[0]), 1.0; got != want {
		t.Errorf("energy: got %v, want %v", got, want)
	}
	if got, want := port.Reopens(), uint64(1); got != want {
		t.Errorf("reopens: got %d, want %d", got, want)
	}
}

// TestSimUnpluggedReadFailsFast: a read of an adapter that is gone tries
// to reopen it once and gives up; it does not wait out the port's reopen
// backoff once per retry.
func TestSimUnpluggedReadFailsFast(t *testing.T) {
	bus := newBus(t, sim.Options{}, sim.Meter{Primary: 1, Secondary: secondary(t, secA), Telegrams: [][]byte{telegram(t, 0, secA, 1000, false)}})
	link := filepath.Join(t.TempDir(), "ttyMBUS")
	p := openSimPTY(t, bus, link)
	var opens atomic.Int32
	port := transport.NewReopening(func(ctx context.Context) (transport.Port, error) {
		opens.Add(1)
		return transport.Open(ctx, link, transport.Options{Baud: simBaud})
	}, bushealth.New(bushealth.Options{Backoff: backoff.Backoff{Min: time.Hour, Max: time.Hour}}))
	defer port.Close()
	m := New(port, Options{Baud: simBaud, Retries: 5})
	if _, err := m.Read(t.Context(), mustAddr(t, "1")); err != nil {
		t.Fatal(err)
	}
	if err := p.Unplug(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := m.Read(ctx, mustAddr(t, "1"))
	if err == nil || ctx.Err() != nil {
		t.Fatalf("read while unplugged: got %v (context: %v), want the reopen's error before the deadline", err, ctx.Err())
	}
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrPortDown) || !errors.Is(err, transport.ErrOpen) {
		t.Errorf("read while unplugged: got %v, want ErrPortDown, transport.ErrOpen, saying the device does not exist", err)
	}
	if got := port.Health().State(); got != bushealth.Down {
		t.Errorf("bus while unplugged: got %v, want down", got)
	}
	// The first open, then one reopen attempt after the port broke.
	if got, want := opens.Load(), int32(2); got != want {
		t.Errorf("opens: got %d, want %d", got, want)
	}
}
