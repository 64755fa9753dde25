package reading

import (
	"strconv"
	"strings"
	"time"
)

// Identity is what a meter at one address of one bus is known as: the
// <meter> level of its topics, fixed from its first good telegram and
// kept across restarts, and what that telegram said about the meter, so
// that another meter answering at the address is told apart.
type Identity struct {
	// Meter is the topic identifier, see MeterID and DistinctID. It
	// identifies the entry: no two meters ever share it.
	Meter string
	// Bus names the bus, empty for the only one.
	Bus string
	// Address is the bus address the meter answers at ("5" or 16 hex
	// digits).
	Address string
	// Manufacturer (flag code), Serial (identification number) and Medium
	// are from the meter's header; empty for a meter whose answers carry
	// no identification, which is then known by its address alone.
	Manufacturer, Serial, Medium string
	// FirstSeen is when the identity was given (milliseconds, UTC).
	FirstSeen time.Time
	// Replaced is when another meter was found answering at Address in
	// this meter's place; zero while the meter is current.
	Replaced time.Time
}

// Same reports whether i and o describe the same physical meter: the
// same manufacturer, identification number and medium. The version is
// left out, as a firmware update may change it.
func (i Identity) Same(o Identity) bool {
	return i.Manufacturer == o.Manufacturer && i.Serial == o.Serial && i.Medium == o.Medium
}

// DistinctID is the identifier of a meter whose plain identifier base
// another meter already has: base, "_at_", the bus name (if any) and the
// address, e.g. "kam_06855817_at_5" or "kam_06855817_at_cellar_5"; n > 1
// appends "_<n>" for the rare case that this is taken as well.
func DistinctID(base, bus, address string, n int) string {
	var b strings.Builder
	b.WriteString(base)
	b.WriteString("_at_")
	if bus != "" {
		b.WriteString(bus)
		b.WriteByte('_')
	}
	b.WriteString(address)
	if n > 1 {
		b.WriteByte('_')
		b.WriteString(strconv.Itoa(n))
	}
	return topicLevel(b.String())
}
