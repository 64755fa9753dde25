package daemon

import (
	"context"
	"io"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// discard is a poll.Sink and poll.Availability that keeps nothing.
type discard struct{}

func (discard) Deliver(context.Context, reading.Reading) error { return nil }
func (discard) SetAvailability(string, bool)                   {}

// twoBuses are options with two buses, cellar and attic; the arguments
// are attic's meters (YAML) and baud rate.
func twoBuses(t *testing.T, secondMeters, secondBaud string) *config.Options {
	t.Helper()
	o, err := config.Parse([]byte(`
mqtt: {host: broker}
poll_interval: 60
buses:
  - name: cellar
    tcp_address: 127.0.0.1:1
    meters: [{address: "1"}, {address: "2"}]
  - name: attic
    tcp_address: 127.0.0.1:2
    baudrate: `+secondBaud+`
    meters: `+secondMeters+`
`), "options.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// startedParts builds the parts of o's buses on a store in a temporary
// directory, without running them.
func startedParts(t *testing.T, o *config.Options) (*daemon, *parts) {
	t.Helper()
	log, level, err := newLogger(io.Discard, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{opts: o, log: log, level: level, notes: newNotices(o)}
	if d.buses, err = newBuses(o, log, prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), t.TempDir()+"/gateway.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	p := &parts{store: st}
	ids := poll.NewRegistry()
	for _, b := range d.buses {
		bp, err := d.buildBus(t.Context(), b, st, discard{}, discard{}, ids, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.buses = append(p.buses, bp)
	}
	return d, p
}

// addresses lists the meters a bus reads.
func (b *busParts) addresses() []string {
	var out []string
	for _, m := range b.poller.Snapshot().Meters {
		out = append(out, m.Address)
	}
	return out
}

// TestReloadBuses: meters of a bus change live, on that bus only; a bus
// reached otherwise needs a restart; a meter added on the page belongs to
// its bus across a reload.
func TestReloadBuses(t *testing.T) {
	d, p := startedParts(t, twoBuses(t, `[{address: "1"}]`, "2400"))
	if got := p.buses[1].addresses(); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("attic at start: got %q, want meter 1", got)
	}
	if err := p.buses[1].adder.AddMeter(t.Context(), "9", "added"); err != nil {
		t.Fatal(err)
	}

	applied, restart := d.apply(t.Context(), p, twoBuses(t, `[{address: "1"}, {address: "3"}]`, "2400"))
	if want := []string{"meters of bus attic: 1 added"}; !slices.Equal(applied, want) || len(restart) > 0 {
		t.Errorf("meters of attic changed: applied %q, restart %q; want %q and no restart", applied, restart, want)
	}
	if got, want := p.buses[1].addresses(), []string{"1", "3", "9"}; !slices.Equal(got, want) {
		t.Errorf("attic after the reload: got %q, want %q", got, want)
	}
	if got, want := p.buses[0].addresses(), []string{"1", "2"}; !slices.Equal(got, want) {
		t.Errorf("cellar after the reload: got %q, want %q (unchanged, without attic's added meter)", got, want)
	}

	_, restart = d.apply(t.Context(), p, twoBuses(t, `[{address: "1"}, {address: "3"}]`, "9600"))
	if !slices.Contains(restart, "buses") {
		t.Errorf("attic's baud rate changed: restart %q, want buses", restart)
	}
}

// TestSingleBusUnlabelled: the single-bus options keep the metric names
// and labels of before (no bus label) and the store's rows without a bus;
// with buses: every bus metric has its bus label.
func TestSingleBusUnlabelled(t *testing.T) {
	single, err := config.Parse([]byte("mqtt: {host: broker}\ntcp_address: 127.0.0.1:1\n"), "options.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o     *config.Options
		label []string
		keys  []string
	}{
		{single, []string{""}, []string{""}},
		{twoBuses(t, "[]", "2400"), []string{"cellar", "attic"}, []string{"cellar", "attic"}},
	} {
		reg := prometheus.NewRegistry()
		log, _, _ := newLogger(io.Discard, "info", "text")
		buses, err := newBuses(tc.o, log, reg)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, b := range buses {
			keys = append(keys, b.key)
		}
		if !slices.Equal(keys, tc.keys) {
			t.Errorf("store keys: got %q, want %q", keys, tc.keys)
		}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var labels []string
		for _, f := range families {
			if f.GetName() != "mbus_bus_up" {
				continue
			}
			for _, m := range f.GetMetric() {
				label := ""
				for _, l := range m.GetLabel() {
					if l.GetName() == "bus" {
						label = l.GetValue()
					}
				}
				labels = append(labels, label)
			}
		}
		slices.Sort(labels)
		want := slices.Clone(tc.label)
		slices.Sort(want)
		if !slices.Equal(labels, want) {
			t.Errorf("mbus_bus_up bus labels: got %q, want %q", labels, want)
		}
	}
}
