package poll

import (
	"strconv"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/guard"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// maxResetNotices bounds the meter resets Warnings lists.
const maxResetNotices = 10

// guardLocked passes the totals of rd, a new reading, through the guard. The
// poller runs it because it owns each meter's previous reading: prev,
// from this run, or for the first reading after a start the one
// Options.Previous returns from the store. The guarded reading is what is
// delivered, so the store's last state carries the guard's state across a
// restart. Held values are logged; confirmed resets are logged and become
// warnings on the status page. p.mu is held.
func (p *Poller) guardLocked(prev *reading.Reading, rd reading.Reading) reading.Reading {
	var before reading.Reading
	switch {
	case prev != nil && prev.Meter == rd.Meter:
		before = *prev
	case p.opts.Previous != nil:
		if r, ok := p.opts.Previous(rd.Meter); ok && r.Meter == rd.Meter {
			before = r
		}
	}
	out, events := guard.Apply(before, rd)
	for _, ev := range events {
		if ev.Reason != reading.GuardReset {
			p.log.Info().Str("meter", rd.Meter).Str("key", ev.Key).Str("reason", ev.Reason).
				Float64("accepted", ev.Accepted).Str("read", ev.Raw).Msg("total held back until the next reading confirms it")
			continue
		}
		p.log.Warn().Str("meter", rd.Meter).Str("key", ev.Key).
			Float64("accepted", ev.Accepted).Str("read", ev.Raw).Msg("total went down and stayed down: published as a meter reset")
		name := rd.Name
		if name == "" {
			name = rd.Meter
		}
		note := "meter " + strconv.Quote(name) + ": " + ev.Key + " went down from " +
			strconv.FormatFloat(ev.Accepted, 'f', -1, 64) + " to " + ev.Raw +
			" and stayed there; published as a meter reset (" + rd.Time.UTC().Format(time.RFC3339) + ")"
		p.resets = append(p.resets, note)
		if over := len(p.resets) - maxResetNotices; over > 0 {
			p.resets = p.resets[over:]
		}
	}
	return out
}
