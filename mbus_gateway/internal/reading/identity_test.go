package reading

import (
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

func TestDistinctID(t *testing.T) {
	for _, c := range []struct {
		base, bus, addr string
		n               int
		want            string
	}{
		{"kam_06855817", "", "5", 1, "kam_06855817_at_5"},
		{"kam_06855817", "", "123456782D2C0107", 1, "kam_06855817_at_123456782d2c0107"},
		{"kam_06855817", "Cellar West", "5", 1, "kam_06855817_at_cellar_west_5"},
		{"kam_06855817", "", "5", 3, "kam_06855817_at_5_3"},
	} {
		if got := DistinctID(c.base, c.bus, c.addr, c.n); got != c.want {
			t.Errorf("DistinctID(%q, %q, %q, %d) = %q, want %q", c.base, c.bus, c.addr, c.n, got, c.want)
		}
	}
}

func TestIdentitySame(t *testing.T) {
	a := Identity{Meter: "kam_1", Address: "5", Manufacturer: "KAM", Serial: "00000001", Medium: mbus.Medium(0x04).String()}
	moved := a
	moved.Meter, moved.Address = "kam_1_at_7", "7"
	other := a
	other.Medium = mbus.Medium(0x07).String()
	if !a.Same(moved) {
		t.Error("the same meter at another address is not Same")
	}
	if a.Same(other) {
		t.Error("a meter with another medium is Same")
	}
}
