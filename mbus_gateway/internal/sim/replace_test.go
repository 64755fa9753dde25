package sim

import (
	"bytes"
	"slices"
	"testing"
)

// A meter swapped at its primary address: the next request is answered by
// the new meter, in the old one's place on the list; a swap at an address
// without meter fails and changes nothing.
func TestReplaceMeter(t *testing.T) {
	kam := frameFile(t, "kamstrup_multical_601.hex")
	other := frameFile(t, "rel_padpuls3.hex")
	bus := newBus(t, Options{}, Meter{Name: "old", Primary: 7, Telegrams: [][]byte{kam}}, Meter{Name: "next", Primary: 8, Telegrams: [][]byte{kam}})
	m := serveTCP(t, bus)
	if got, want := m.ask(reqUD2(t, 7, true)), withAddress(kam, 7); !bytes.Equal(got, want) {
		t.Fatalf("before the swap:\ngot  %X\nwant %X", got, want)
	}
	if err := bus.ReplaceMeter(Meter{Name: "new", Primary: 7, Telegrams: [][]byte{other}}); err != nil {
		t.Fatal(err)
	}
	if got, want := m.ask(reqUD2(t, 7, false)), withAddress(other, 7); !bytes.Equal(got, want) {
		t.Fatalf("after the swap:\ngot  %X\nwant %X", got, want)
	}
	if err := bus.ReplaceMeter(Meter{Primary: 9, Telegrams: [][]byte{other}}); err == nil {
		t.Error("swap at an address without meter: got no error")
	}
	var names []string
	for _, st := range bus.Meters() {
		names = append(names, st.Name)
	}
	if got, want := names, []string{"new", "next"}; !slices.Equal(got, want) {
		t.Errorf("meters: got %q, want %q", got, want)
	}
}
