package demo

import (
	"slices"
	"testing"
)

// TestSetup: the demo bus has one meter of each promised kind, each with
// its own address, and one meter that needs three requests.
func TestSetup(t *testing.T) {
	s, err := Setup()
	if err != nil {
		t.Fatal(err)
	}
	bus, err := s.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	var media []string
	seen := map[string]bool{}
	telegrams := 0
	for _, m := range bus.Meters() {
		media = append(media, m.Secondary.Medium().String())
		if seen[m.Secondary.String()] {
			t.Errorf("secondary address %s twice", m.Secondary)
		}
		seen[m.Secondary.String()] = true
		telegrams = max(telegrams, m.Telegrams)
	}
	for _, want := range []string{"heat_outlet", "water", "gas", "electricity", "heat_cost_allocator", "warm_water"} {
		if !slices.Contains(media, want) {
			t.Errorf("media: got %v, want one %s meter", media, want)
		}
	}
	if !s.Options.Advance || s.Options.FixedAccessNumber {
		t.Errorf("options: got advance %v, fixed access number %v; want registers that move and counting access numbers",
			s.Options.Advance, s.Options.FixedAccessNumber)
	}
	if len(media) < 6 || telegrams != 3 {
		t.Errorf("got %d meters, at most %d telegrams each; want at least 6 meters and one with 3 telegrams", len(media), telegrams)
	}
}
