package guard

import (
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/hass"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading/readingtest"
)

const mediumHeat mbus.Medium = 0x04

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// step is one read of a heat meter's energy register (kWh, BCD 8 digits)
// and what must come of it.
type step struct {
	after time.Duration // since t0
	read  string        // the digits as read; A–F are error digits
	// published is the state of the energy sensor after the read, held
	// the reason the guard holds the value back ("" = passed on as read).
	published string
	held      string
}

func energyReading(at time.Duration, digits string) reading.Reading {
	rec := mbus.Record{Key: "energy", Quantity: "energy", Unit: "kWh", DIF: "\x0c", VIF: "\x06"}
	if v, ok := parseDigits(digits); ok {
		rec.Value = mbus.Value{Kind: mbus.KindNumber, Num: v}
	} else {
		rec.Value = mbus.Value{Kind: mbus.KindText, Text: digits}
	}
	return reading.Reading{
		Meter: "kam_00000001", Address: "1", Time: t0.Add(at),
		Header:  mbus.Header{ID: "00000001", Manufacturer: "KAM", Medium: mediumHeat},
		Records: []mbus.Record{rec},
	}
}

func parseDigits(s string) (float64, bool) {
	var v float64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = 10*v + float64(c-'0')
	}
	return v, true
}

// energyState is what the gateway publishes on the energy sensor's state
// topic for r, "" for nothing.
func energyState(t *testing.T, r reading.Reading) string {
	t.Helper()
	for _, m := range hass.States(hass.Options{}, r) {
		if m.Topic == "mbus/kam_00000001/energy" {
			return string(m.Payload)
		}
	}
	return ""
}

func TestApply(t *testing.T) {
	const h = time.Hour
	tests := []struct {
		name  string
		steps []step
	}{
		{"steady rise passes", []step{
			{0, "00012000", "12000", ""},
			{h, "00012050", "12050", ""},
			{2 * h, "00012050", "12050", ""},
		}},
		{"drop is held, then the old course resumes", []step{
			{0, "00012000", "12000", ""},
			{h, "00002000", "12000", reading.GuardDrop},
			{2 * h, "00012060", "12060", ""},
		}},
		{"spike is held and not confirmed", []step{
			{0, "00012000", "12000", ""},
			// 900 MWh in an hour: no 10 MW meter does that.
			{h, "00912000", "12000", reading.GuardSpike},
			{2 * h, "00012070", "12070", ""},
		}},
		{"spike confirmed by the next reading", []step{
			{0, "00012000", "12000", ""},
			{h, "00912000", "12000", reading.GuardSpike},
			{2 * h, "00912010", "912010", ""},
		}},
		{"drop confirmed is a meter reset", []step{
			{0, "00012000", "12000", ""},
			{h, "00000005", "12000", reading.GuardDrop},
			{2 * h, "00000009", "9", reading.GuardReset},
			{3 * h, "00000015", "15", ""},
		}},
		{"error digits never reach the sensor", []step{
			{0, "00012000", "12000", ""},
			{h, "0001E0A0", "12000", reading.GuardErrorDigits},
			{2 * h, "00012040", "12040", ""},
		}},
		{"a drop after held error digits is still held", []step{
			{0, "00012000", "12000", ""},
			{h, "0001E0A0", "12000", reading.GuardErrorDigits},
			{2 * h, "00011000", "12000", reading.GuardDrop},
		}},
		{"long gaps allow more", []step{
			{0, "00012000", "12000", ""},
			// 10 days at up to 10 MW: 2.4 GWh is plausible.
			{240 * h, "00812000", "812000", ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev reading.Reading
			for i, s := range tt.steps {
				got, _ := Apply(prev, energyReading(s.after, s.read))
				// What the store keeps and the next start reads back.
				got = readingtest.RoundTrip(t, got)
				g, guarded := got.Guard["energy"]
				switch {
				case s.held == "" && guarded:
					t.Errorf("step %d (%s): guard %+v, want none", i, s.read, g)
				case s.held != "" && g.Reason != s.held:
					t.Errorf("step %d (%s): guard reason %q, want %q", i, s.read, g.Reason, s.held)
				}
				if guarded && g.Raw != s.read && g.Raw != trimZeros(s.read) {
					t.Errorf("step %d: raw %q, want %q", i, g.Raw, s.read)
				}
				if st := energyState(t, got); st != s.published {
					t.Errorf("step %d (%s): published %q, want %q", i, s.read, st, s.published)
				}
				if rec := got.Records[0]; rec.Value.String() != trimZeros(s.read) {
					t.Errorf("step %d: the reading's record changed to %q", i, rec.Value.String())
				}
				prev = got
			}
		})
	}
}

func trimZeros(s string) string {
	if v, ok := parseDigits(s); ok {
		return Text(v)
	}
	return s
}

// Text formats v as sensor states do.
func Text(v float64) string { return mbus.Value{Kind: mbus.KindNumber, Num: v}.String() }
