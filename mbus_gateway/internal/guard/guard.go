// Package guard keeps glitches of meter totals out of Home Assistant's
// long-term statistics. A total_increasing sensor that goes down makes
// Home Assistant record a meter reset, and a jump by an impossible amount
// stays in the statistics for good; a single garbled read (a BCD error
// digit, a bit flip the checksum missed, a swapped meter) does either.
//
// So a total that drops, or rises faster than the quantity plausibly can in
// the time since the last accepted value, is held back: the sensor keeps
// the last accepted value until the next reading confirms the new one (it
// continues from it plausibly). A confirmed drop is passed on as a meter
// reset. Numbers with error digits are always held. What the meter sent
// stays in the reading's records; the decisions go into Reading.Guard.
//
// The guard is pure: its whole state is the previous guarded reading of
// the meter, which the store keeps as the meter's last state, so a restart
// does not accept a glitch.
package guard

import (
	"math"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/hass"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// Event is one decision worth telling the user about.
type Event struct {
	Key string
	// Reason is one of reading.GuardDrop, GuardSpike, GuardErrorDigits
	// (held) or GuardReset (a confirmed drop, published).
	Reason string
	// Accepted is the last accepted value, Raw the value read.
	Accepted float64
	Raw      string
}

// minWindow is the shortest time a rise is judged over: meters count in
// steps, and two reads a few seconds apart must not make one step look
// like an impossible rate.
const minWindow = time.Hour

// maxRate is the largest plausible rise per hour of a total, by unit: a
// 10 MW heat or electricity meter, a flow of 1000 m³/h, 1000 t/h, and the
// meter's own clock for running times (twice real time, for clocks that
// disagree). Totals in other units are only checked for drops.
var maxRate = map[string]float64{
	"Wh": 1e7, "kWh": 1e4, "MWh": 10, "GWh": 0.01,
	"J": 3.6e10, "kJ": 3.6e7, "MJ": 3.6e4, "GJ": 36,
	"kcal": 8.6e6, "Mcal": 8.6e3, "Gcal": 8.6,
	"kvarh": 1e4, "kVAh": 1e4,
	"m³": 1000, "L": 1e6, "mL": 1e9, "ft³": 35315, "CCF": 353.15, "gal": 264172,
	"kg": 1e6, "t": 1000,
	"s": 7200, "min": 120, "h": 2, "d": 2.0 / 24,
}

// durationStep allows running times, counted in whole units, one step on
// top of their rate.
var durationStep = map[string]float64{"s": 1, "min": 1, "h": 1, "d": 1}

// maxRise is the largest plausible rise of a total in unit over d.
func maxRise(unit string, d time.Duration) (float64, bool) {
	rate, ok := maxRate[unit]
	if !ok {
		return 0, false
	}
	return rate*max(d, minWindow).Hours() + durationStep[unit], true
}

// plausible reports whether a total may go from a at ta to v at tv.
func plausible(unit string, a float64, ta time.Time, v float64, tv time.Time) bool {
	if v < a {
		return false
	}
	limit, ok := maxRise(unit, tv.Sub(ta))
	return !ok || v-a <= limit
}

// Apply guards the totals of cur, the newest reading of a meter; prev is
// the meter's previous reading as Apply returned it (the zero Reading when
// there is none). It returns cur with Guard filled in and the decisions to
// report.
func Apply(prev, cur reading.Reading) (reading.Reading, []Event) {
	before := firstByKey(prev.Records)
	var events []Event
	guard := map[string]reading.Guarded{}
	seen := map[string]bool{}
	for _, rec := range cur.Records {
		if seen[rec.Key] {
			continue
		}
		seen[rec.Key] = true
		if !hass.TotalIncreasing(cur.Header.Medium, rec) {
			continue
		}
		a, ta, ok := accepted(prev, before, rec.Key)
		if !ok {
			continue // nothing to compare with: the first value stands
		}
		held := reading.Guarded{Published: a, Raw: rec.Value.String(), AcceptedAt: ta}
		if hass.Unreadable(rec) || rec.Value.Kind != mbus.KindNumber || math.IsNaN(rec.Value.Num) || math.IsInf(rec.Value.Num, 0) {
			held.Reason = reading.GuardErrorDigits
			guard[rec.Key] = held
			events = append(events, Event{Key: rec.Key, Reason: held.Reason, Accepted: a, Raw: held.Raw})
			continue
		}
		v := rec.Value.Num
		if plausible(rec.Unit, a, ta, v, cur.Time) {
			continue
		}
		if c, tc, ok := candidate(prev, before, rec.Key); ok && plausible(rec.Unit, c, tc, v, cur.Time) {
			// The previous reading said the same: the meter really
			// went there.
			if v < a {
				guard[rec.Key] = reading.Guarded{Reason: reading.GuardReset, Published: v, Raw: held.Raw, AcceptedAt: cur.Time}
				events = append(events, Event{Key: rec.Key, Reason: reading.GuardReset, Accepted: a, Raw: held.Raw})
			}
			continue
		}
		held.Reason = reading.GuardSpike
		if v < a {
			held.Reason = reading.GuardDrop
		}
		guard[rec.Key] = held
		events = append(events, Event{Key: rec.Key, Reason: held.Reason, Accepted: a, Raw: held.Raw})
	}
	cur.Guard = nil
	if len(guard) > 0 {
		cur.Guard = guard
	}
	return cur, events
}

// accepted is the value of key the sensor showed after prev, and the time
// it was read.
func accepted(prev reading.Reading, before map[string]mbus.Record, key string) (float64, time.Time, bool) {
	if g, ok := prev.Guard[key]; ok {
		if g.Held() {
			return g.Published, g.AcceptedAt, true
		}
		return g.Published, prev.Time, true
	}
	rec, ok := before[key]
	if !ok || rec.Value.Kind != mbus.KindNumber || hass.Unreadable(rec) {
		return 0, time.Time{}, false
	}
	return rec.Value.Num, prev.Time, true
}

// candidate is the value of key that prev held back, if it did: the
// value the current one may confirm.
func candidate(prev reading.Reading, before map[string]mbus.Record, key string) (float64, time.Time, bool) {
	g, ok := prev.Guard[key]
	if !ok || (g.Reason != reading.GuardDrop && g.Reason != reading.GuardSpike) {
		return 0, time.Time{}, false
	}
	rec, ok := before[key]
	if !ok || rec.Value.Kind != mbus.KindNumber {
		return 0, time.Time{}, false
	}
	return rec.Value.Num, prev.Time, true
}

// firstByKey maps each key to its first record, the one the sensor shows.
func firstByKey(recs []mbus.Record) map[string]mbus.Record {
	m := make(map[string]mbus.Record, len(recs))
	for _, r := range recs {
		if _, ok := m[r.Key]; !ok {
			m[r.Key] = r
		}
	}
	return m
}
