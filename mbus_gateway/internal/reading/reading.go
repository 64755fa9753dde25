// Package reading defines one read of one meter as it travels from the bus
// to the broker: the unit stored in the outbox and published on
// mbus/<meter>/reading.
package reading

import (
	"strings"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// Reading is one successful read of a meter: every record of every
// telegram of the read, with the time of the read.
type Reading struct {
	// Meter is the topic identifier, see MeterID.
	Meter string `json:"meter"`
	// Name is the user's name for the meter, empty if none was given.
	Name string `json:"name,omitempty"`
	// Address is the bus address the meter was read at ("5" or 16 hex digits).
	Address string        `json:"address"`
	Time    time.Time     `json:"time"`
	Header  mbus.Header   `json:"header"`
	Records []mbus.Record `json:"records"`
	// Guard lists, by record key, the totals whose value the gateway did
	// not pass on to Home Assistant as read (see package guard): Records
	// keep what the meter sent.
	Guard map[string]Guarded `json:"guard,omitempty"`
}

// Guarded is the guard's decision on one total of a reading.
type Guarded struct {
	// Reason is why: GuardDrop, GuardSpike, GuardErrorDigits (the value is
	// held back) or GuardReset (a confirmed drop, passed on as a reset).
	Reason string `json:"reason"`
	// Published is the value the sensor shows instead of the raw one:
	// the last accepted value, or the new start after a reset.
	Published float64 `json:"published"`
	// Raw is the value as read, in text.
	Raw string `json:"raw"`
	// AcceptedAt is the time of the reading Published was accepted from.
	AcceptedAt time.Time `json:"accepted_at"`
}

// Reasons of Guarded.
const (
	GuardDrop        = "drop"
	GuardSpike       = "spike"
	GuardErrorDigits = "error_digits"
	GuardReset       = "reset"
)

// Held reports whether the value read is held back.
func (g Guarded) Held() bool { return g.Reason != GuardReset }

// MeterID gives the identifier used in topics and unique IDs:
// "<manufacturer>_<id>" in lower case, e.g. "kam_06855817". A header
// without identification (short or no header) falls back to the address:
// "addr_5". Only [a-z0-9_@] can occur, so the result is always a single
// safe MQTT topic level.
func MeterID(h mbus.Header, address string) string {
	var b strings.Builder
	if h.ID != "" && h.Manufacturer != "" {
		b.WriteString(h.Manufacturer)
		b.WriteByte('_')
		b.WriteString(h.ID)
	} else {
		b.WriteString("addr_")
		b.WriteString(address)
	}
	return topicLevel(b.String())
}

// topicLevel lowers s and replaces everything but [a-z0-9_] with '_'.
func topicLevel(s string) string {
	out := []byte(strings.ToLower(s))
	for i, c := range out {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			out[i] = '_'
		}
	}
	return string(out)
}
