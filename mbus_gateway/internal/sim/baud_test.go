package sim

import (
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// TestMeterBaud: a meter with a speed of its own hears only requests sent
// at that speed, or of unknown speed; a meter without one hears all.
func TestMeterBaud(t *testing.T) {
	kam := frameFile(t, "kamstrup_multical_601.hex")
	bus := newBus(t, Options{},
		Meter{Primary: 1, Baud: 9600, Telegrams: [][]byte{kam}},
		Meter{Primary: 2, Telegrams: [][]byte{kam}},
	)
	tests := []struct {
		primary  byte
		lineBaud int
		want     bool
	}{
		{1, 9600, true},
		{1, 2400, false},
		{1, 0, true},
		{2, 2400, true},
		{2, 300, true},
	}
	for _, tt := range tests {
		req := sndNKE(t, tt.primary)
		f, _, err := mbus.DecodeFrame(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(bus.handleAt(f, req, tt.lineBaud).segs) > 0; got != tt.want {
			t.Errorf("meter %d, request at %d baud: got answered=%v, want %v", tt.primary, tt.lineBaud, got, tt.want)
		}
	}
}
