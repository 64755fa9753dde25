package readingtest

import (
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// TestHeat: the reading names the meter the way the poller would
// ("kam_" and the ID) and carries its records as given.
func TestHeat(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := Heat("kam_06855817", "06855817", at,
		Number("energy", "energy", "kWh", 37351),
		Number("flow_temperature", "flow_temperature", "°C", 71.3))
	if got, want := reading.MeterID(r.Header, r.Address), r.Meter; got != want {
		t.Errorf("MeterID: got %q, want %q", got, want)
	}
	if !r.Time.Equal(at) {
		t.Errorf("time: got %v, want %v", r.Time, at)
	}
	tests := []struct {
		got  mbus.Record
		key  string
		unit string
		num  float64
	}{
		{r.Records[0], "energy", "kWh", 37351},
		{r.Records[1], "flow_temperature", "°C", 71.3},
	}
	for _, tt := range tests {
		if tt.got.Key != tt.key || tt.got.Unit != tt.unit || tt.got.Value.Kind != mbus.KindNumber || tt.got.Value.Num != tt.num {
			t.Errorf("record: got %+v, want %s = %v %s", tt.got, tt.key, tt.num, tt.unit)
		}
	}
}
