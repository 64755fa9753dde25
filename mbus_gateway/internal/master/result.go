// Package master is the M-Bus link layer over a transport (EN 13757-2): it
// sends requests, waits for answers bounded by the baud rate, and reads and
// scans meters by primary and secondary address.
package master

import (
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// Result is everything one read of a meter returned.
type Result struct {
	// Telegrams are the decoded answers in order; a multi-telegram meter
	// gives several.
	Telegrams []*mbus.Telegram
	// Raw holds each telegram's frame bytes as received, for diagnostics.
	Raw [][]byte
	// DecodeErr is the first problem decoding records of an otherwise
	// valid frame; the telegrams still hold every record decoded.
	DecodeErr error
}

// Found is one meter found by a scan.
type Found struct {
	// Primary is the primary address, -1 when the meter was found by its
	// secondary address only.
	Primary int
	// Secondary is the meter's secondary address (zero when unknown, e.g.
	// a primary scan of a meter without long header).
	Secondary mbus.SecondaryAddress
	// Collision reports several meters answering at one primary address.
	Collision bool
}
