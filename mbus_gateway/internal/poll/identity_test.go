package poll

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// fakeIdentities is an IdentityStore in memory.
type fakeIdentities struct {
	mu  sync.Mutex
	ids map[string]reading.Identity
}

func newFakeIdentities(ids ...reading.Identity) *fakeIdentities {
	f := &fakeIdentities{ids: map[string]reading.Identity{}}
	for _, id := range ids {
		f.ids[id.Meter] = id
	}
	return f
}

func (f *fakeIdentities) Identities(context.Context) ([]reading.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]reading.Identity, 0, len(f.ids))
	for _, id := range f.ids {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Meter < out[j].Meter })
	return out, nil
}

func (f *fakeIdentities) SaveIdentity(_ context.Context, id reading.Identity) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids[id.Meter] = id
	return nil
}

// byAddress lists "address meter" of the stored identities, with
// "replaced" for replaced ones.
func (f *fakeIdentities) byAddress() []string {
	ids, _ := f.Identities(context.Background())
	var out []string
	for _, id := range ids {
		s := id.Address + " " + id.Meter
		if !id.Replaced.IsZero() {
			s += " replaced"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// answerAs is a telegram of the meter mf/id/medium sent from primary
// address a.
func answerAs(a byte, mf, id string, medium mbus.Medium) master.Result {
	tg := telegram("1", "energy")
	tg.A = a
	tg.Header.Manufacturer, tg.Header.ID, tg.Header.Medium = mf, id, medium
	return master.Result{Telegrams: []*mbus.Telegram{tg}, Raw: [][]byte{{0x68}}}
}

// meterIDs are the meters of the delivered readings in order.
func (h *harness) meterIDs(addr string) []string {
	var out []string
	for _, r := range h.sink.readings() {
		if r.Address == addr {
			out = append(out, r.Meter)
		}
	}
	return out
}

// Two meters with the same manufacturer and ID: the first one identified
// keeps the plain identifier, the other gets one with its address; both
// are stored, warned about, and keep their identifiers after a restart
// whichever answers first then.
func TestIdentityClash(t *testing.T) {
	ids := newFakeIdentities()
	synctest.Test(t, func(t *testing.T) {
		ans := func(addr string, _ time.Duration) (time.Duration, master.Result, error) {
			return time.Second, answerAs(byte(addr[0]-'0'), "KAM", "00000007", 0x04), nil
		}
		h := newHarness(t, Options{Meters: meters(2, time.Minute), Identities: ids}, ans)
		h.runUntil(t, 170*time.Second)
		if got, want := h.meterIDs("1"), []string{"kam_00000007", "kam_00000007", "kam_00000007"}; !slices.Equal(got, want) {
			t.Errorf("readings of meter 1: got %q, want %q", got, want)
		}
		if got, want := h.meterIDs("2"), []string{"kam_00000007_at_2", "kam_00000007_at_2", "kam_00000007_at_2"}; !slices.Equal(got, want) {
			t.Errorf("readings of meter 2: got %q, want %q", got, want)
		}
		for id, want := range map[string][]bool{"kam_00000007": {true}, "kam_00000007_at_2": {true}, "addr_1": nil, "addr_2": nil} {
			if got := h.avail.of(id); !slices.Equal(got, want) {
				t.Errorf("availability of %s: got %v, want %v", id, got, want)
			}
		}
		want := "meters at addresses 1 and 2 both identify as KAM 00000007 (heat_outlet): the one at 2 is published as kam_00000007_at_2"
		if got := h.p.Warnings(); !slices.Equal(got, []string{want}) {
			t.Errorf("warnings: got %q, want %q", got, want)
		}
		if !strings.Contains(h.log.String(), "two meters with the same manufacturer and ID") {
			t.Errorf("log lacks the clash:\n%s", h.log)
		}
	})
	if got, want := ids.byAddress(), []string{"1 kam_00000007", "2 kam_00000007_at_2"}; !slices.Equal(got, want) {
		t.Errorf("stored identities: got %q, want %q", got, want)
	}

	// After a restart meter 2 is read first: it keeps its identifier.
	synctest.Test(t, func(t *testing.T) {
		ms := meters(2, time.Minute)
		ms[0], ms[1] = ms[1], ms[0]
		ans := func(addr string, _ time.Duration) (time.Duration, master.Result, error) {
			return time.Second, answerAs(byte(addr[0]-'0'), "KAM", "00000007", 0x04), nil
		}
		h := newHarness(t, Options{Meters: ms, Identities: ids}, ans)
		h.runUntil(t, 45*time.Second)
		if got, want := h.meterIDs("2"), []string{"kam_00000007_at_2"}; !slices.Equal(got, want) {
			t.Errorf("after the restart, readings of meter 2: got %q, want %q", got, want)
		}
		if got, want := h.meterIDs("1"), []string{"kam_00000007"}; !slices.Equal(got, want) {
			t.Errorf("after the restart, readings of meter 1: got %q, want %q", got, want)
		}
		if got := h.p.Warnings(); len(got) != 1 {
			t.Errorf("after the restart, warnings: got %q, want the clash", got)
		}
	})
}

// A different meter at a configured address: its first answer is not
// stored; when it answers again it is a new device, and the old one is
// marked replaced and offline. One odd answer between the meter's own is
// never stored and changes nothing. The old meter put back gets its
// identity back.
func TestIdentitySwap(t *testing.T) {
	ids := newFakeIdentities()
	synctest.Test(t, func(t *testing.T) {
		ans := func(_ string, since time.Duration) (time.Duration, master.Result, error) {
			switch {
			case since > 50*time.Second && since < 70*time.Second: // one stray reading
				return time.Second, answerAs(1, "ABB", "00000099", 0x02), nil
			case since > 150*time.Second && since < 270*time.Second:
				return time.Second, answerAs(1, "ABB", "00000099", 0x02), nil
			}
			return time.Second, answerAs(1, "KAM", "00000001", 0x04), nil
		}
		h := newHarness(t, Options{Meters: meters(1, time.Minute), Identities: ids}, ans)
		h.start()
		h.sleepUntil(250 * time.Second) // reads at 0, 60, 120, 180, 240
		if got, want := h.meterIDs("1"), []string{"kam_00000001", "kam_00000001", "abb_00000099"}; !slices.Equal(got, want) {
			t.Errorf("readings: got %q, want %q", got, want)
		}
		for id, want := range map[string][]bool{"kam_00000001": {true, false}, "abb_00000099": {true}} {
			if got := h.avail.of(id); !slices.Equal(got, want) {
				t.Errorf("availability of %s: got %v, want %v", id, got, want)
			}
		}
		w := h.p.Warnings()
		if len(w) != 1 || !strings.Contains(w[0], "meter kam_00000001 (KAM 00000001 (heat_outlet)) at address 1 was replaced by ABB 00000099 (electricity)") {
			t.Errorf("warnings: got %q, want the replacement", w)
		}
		snap := h.p.Snapshot()
		if m := snap.Meters[0]; m.Meter != "abb_00000099" || !m.Identified || m.Failures != 0 {
			t.Errorf("snapshot: got %s, identified %v, %d failures; want abb_00000099, identified, 0", m.Meter, m.Identified, m.Failures)
		}
		if got, want := ids.byAddress(), []string{"1 abb_00000099", "1 kam_00000001 replaced"}; !slices.Equal(got, want) {
			t.Errorf("stored identities: got %q, want %q", got, want)
		}

		h.sleepUntil(370 * time.Second) // the old meter answers at 300 and 360
		h.stop(t)
		if got, want := h.meterIDs("1"), []string{"kam_00000001", "kam_00000001", "abb_00000099", "kam_00000001"}; !slices.Equal(got, want) {
			t.Errorf("readings after the old meter came back: got %q, want %q", got, want)
		}
		if got, want := h.avail.of("kam_00000001"), []bool{true, false, true}; !slices.Equal(got, want) {
			t.Errorf("availability of the old meter: got %v, want %v", got, want)
		}
	})
	if got, want := ids.byAddress(), []string{"1 abb_00000099 replaced", "1 kam_00000001"}; !slices.Equal(got, want) {
		t.Errorf("stored identities at the end: got %q, want %q", got, want)
	}
}

// A late answer of another meter is never stored as this meter's
// reading: by primary address (the A field) and by secondary address
// (the header).
func TestIdentityOtherMeterNotStored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sec, err := mbus.ParseAddress("0000000122B00104")
		if err != nil {
			t.Fatal(err)
		}
		ans := func(addr string, _ time.Duration) (time.Duration, master.Result, error) {
			// Both get the answer of the meter at primary address 2.
			res := answerAs(2, "KAM", "00000002", 0x04)
			res.Telegrams[0].Header.Address = mbus.SecondaryAddress{0x02, 0, 0, 0, 0x2D, 0x2C, 0, 0x04}
			return time.Second, res, nil
		}
		ms := []Meter{meters(1, time.Minute)[0], {Address: sec, Interval: time.Minute, Enabled: true}}
		h := newHarness(t, Options{Meters: ms}, ans)
		h.start()
		for _, m := range []string{"1", sec.String()} {
			if _, err := h.p.ReadNow(context.Background(), m); !errors.Is(err, ErrOtherMeter) {
				t.Errorf("read %s: got %v, want ErrOtherMeter", m, err)
			}
		}
		h.stop(t)
		if got := h.sink.readings(); len(got) != 0 {
			t.Errorf("delivered %d readings of another meter", len(got))
		}
		if !strings.Contains(h.log.String(), `"result":"other_meter"`) {
			t.Errorf("log lacks the other meter's answers:\n%s", h.log)
		}
	})
}

// Two buses with a meter of the same manufacturer and ID at the same
// address: the pollers share one registry, so the clash is found across
// buses as within one, and the later meter gets an identifier with its
// bus and address.
func TestIdentityClashAcrossBuses(t *testing.T) {
	ids := newFakeIdentities()
	synctest.Test(t, func(t *testing.T) {
		reg := NewRegistry()
		ans := func(addr string, _ time.Duration) (time.Duration, master.Result, error) {
			return time.Second, answerAs(byte(addr[0]-'0'), "KAM", "00000007", 0x04), nil
		}
		a := newHarness(t, Options{Meters: meters(1, time.Minute), Identities: ids, Registry: reg, BusName: "cellar"}, ans)
		b := newHarness(t, Options{Meters: meters(1, time.Minute), Identities: ids, Registry: reg, BusName: "attic"}, ans)
		a.start()
		a.sleepUntil(30 * time.Second) // a's meter answers first
		b.start()
		b.sleepUntil(170 * time.Second)
		a.stop(t)
		b.stop(t)
		if got, want := a.meterIDs("1"), []string{"kam_00000007", "kam_00000007", "kam_00000007"}; !slices.Equal(got, want) {
			t.Errorf("readings on bus cellar: got %q, want %q", got, want)
		}
		got := b.meterIDs("1")
		if len(got) == 0 || slices.ContainsFunc(got, func(id string) bool { return id != "kam_00000007_at_attic_1" }) {
			t.Errorf("readings on bus attic: got %q, want all kam_00000007_at_attic_1", got)
		}
		want := "meters at addresses 1 on bus cellar and 1 on bus attic both identify as KAM 00000007 (heat_outlet): the one at 1 on bus attic is published as kam_00000007_at_attic_1"
		if got := b.p.Warnings(); !slices.Equal(got, []string{want}) {
			t.Errorf("warnings: got %q, want %q", got, want)
		}
	})
	if got, want := ids.byAddress(), []string{"1 kam_00000007", "1 kam_00000007_at_attic_1"}; !slices.Equal(got, want) {
		t.Errorf("stored identities: got %q, want %q", got, want)
	}
}
