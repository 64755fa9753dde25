package daemon

import (
	"io"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
)

// twoBuses are options with two buses, cellar and attic, keeping the data
// in dir; the arguments are attic's meters and baud rate.
func twoBuses(t *testing.T, dir string, atticMeters []map[string]any, atticBaud int) *config.Options {
	t.Helper()
	return testOptions(t, "", "127.0.0.1:1", dir, map[string]any{
		"tcp_address": "",
		"meters":      []any{},
		"buses": []map[string]any{
			{"name": "cellar", "tcp_address": "127.0.0.1:1", "meters": []map[string]any{{"address": "1"}, {"address": "2"}}},
			{"name": "attic", "tcp_address": "127.0.0.1:2", "baudrate": atticBaud, "meters": atticMeters},
		},
	})
}

// builtParts builds the daemon of o and its parts on the database in
// o.DataDir, without running them; they are closed when the test ends.
func builtParts(t *testing.T, o *config.Options) (*daemon, *parts) {
	t.Helper()
	d, err := newDaemon(t.Context(), o, Deps{LogOut: io.Discard, Getenv: env()})
	if err != nil {
		t.Fatal(err)
	}
	opened, err := d.open(t.Context(), d.log)
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.build(t.Context(), opened)
	if err != nil {
		t.Fatal(err)
	}
	d.parts.Store(p)
	t.Cleanup(d.close)
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
	dir := t.TempDir()
	one := []map[string]any{{"address": "1"}}
	oneAndThree := []map[string]any{{"address": "1"}, {"address": "3"}}
	d, p := builtParts(t, twoBuses(t, dir, one, 2400))
	if got := p.buses[1].addresses(); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("attic at start: got %q, want meter 1", got)
	}
	if err := p.buses[1].adder.AddMeter(t.Context(), "9", "added"); err != nil {
		t.Fatal(err)
	}

	applied, restart := d.apply(t.Context(), p, twoBuses(t, dir, oneAndThree, 2400))
	if want := []string{"buses: meters of attic: 1 added"}; !slices.Equal(applied, want) || len(restart) > 0 {
		t.Errorf("meters of attic changed: applied %q, restart %q; want %q and no restart", applied, restart, want)
	}
	if got, want := p.buses[1].addresses(), []string{"1", "3", "9"}; !slices.Equal(got, want) {
		t.Errorf("attic after the reload: got %q, want %q", got, want)
	}
	if got, want := p.buses[0].addresses(), []string{"1", "2"}; !slices.Equal(got, want) {
		t.Errorf("cellar after the reload: got %q, want %q (unchanged, without attic's added meter)", got, want)
	}

	_, restart = d.apply(t.Context(), p, twoBuses(t, dir, oneAndThree, 9600))
	if !slices.Contains(restart, "buses.baudrate") {
		t.Errorf("attic's baud rate changed: restart %q, want buses.baudrate", restart)
	}
}

// TestSingleBusUnlabelled: the single-bus options keep the metric names
// and labels of before (no bus label) and the store's rows without a bus;
// with buses: every bus metric has its bus label.
func TestSingleBusUnlabelled(t *testing.T) {
	single := testOptions(t, "127.0.0.1:1", "127.0.0.1:1", t.TempDir(), nil)
	for _, tc := range []struct {
		o     *config.Options
		label []string
		keys  []string
	}{
		{single, []string{""}, []string{""}},
		{twoBuses(t, t.TempDir(), nil, 2400), []string{"cellar", "attic"}, []string{"cellar", "attic"}},
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
