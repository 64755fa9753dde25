// Package backoff is the one schedule of waits between attempts used
// across the gateway: reopening the bus, probing a silent meter, dialling
// the broker, opening the database, retrying the outbox. Every wait starts
// at a minimum and doubles per consecutive failure up to a maximum.
package backoff

import "time"

// Backoff is an exponential schedule: Min after the first failure, then
// 2×Min, 4×Min, … up to Max. The zero value never waits; a Max below Min
// is taken as Min.
type Backoff struct {
	Min, Max time.Duration
}

// Delay returns the wait after n consecutive failures: none for n <= 0,
// Min for n = 1, doubling per further failure, at most Max.
func (b Backoff) Delay(n int) time.Duration {
	if n <= 0 || b.Min <= 0 {
		return 0
	}
	top := max(b.Max, b.Min)
	d := b.Min
	for i := 1; i < n && d < top; i++ {
		d *= 2
	}
	return min(d, top)
}

// Next returns the wait that follows a wait of d: Min when d is below it,
// else 2×d, at most Max. Loops that keep their current wait use it
// instead of counting failures.
func (b Backoff) Next(d time.Duration) time.Duration {
	top := max(b.Max, b.Min)
	if d < b.Min {
		return min(b.Min, top)
	}
	return min(2*d, top)
}

// OrDefault fills a zero Min or Max from def, so that options can leave
// either unset.
func (b Backoff) OrDefault(def Backoff) Backoff {
	if b.Min <= 0 {
		b.Min = def.Min
	}
	if b.Max <= 0 {
		b.Max = def.Max
	}
	b.Max = max(b.Max, b.Min)
	return b
}
