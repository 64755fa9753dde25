package poll

import (
	"math/rand/v2"
	"time"
)

// Bytes on the wire for one read, used to estimate bus time. A character
// is 11 bits: start, 8 data, even parity, stop (EN 13757-2).
const (
	bitsPerChar    = 11
	reqUD2Bytes    = 5   // short frame 10 C A CS 16
	selectBytes    = 17  // SND_UD, CI 0x52, 8 address bytes: 68 0B 0B 68 … CS 16
	ackBytes       = 1   // E5
	typicalAnswer  = 100 // RSP_UD of a typical heat or water meter
	answerWaitBits = 330 // a slave starts answering within 11 to 330 bit times…
	answerWaitFix  = 50 * time.Millisecond
)

// EstimateReadTime estimates how long the bus is busy reading one meter
// at baud: the request, the latest start of the answer allowed by
// EN 13757-2 (330 bit times plus 50 ms) and a typical answer of 100
// bytes; a meter read by secondary address needs its selection first.
func EstimateReadTime(baud int, secondary bool) time.Duration {
	if baud <= 0 {
		baud = DefaultBaud
	}
	bits := func(chars int) time.Duration {
		return time.Duration(chars*bitsPerChar) * time.Second / time.Duration(baud)
	}
	wait := time.Duration(answerWaitBits)*time.Second/time.Duration(baud) + answerWaitFix
	d := bits(reqUD2Bytes+typicalAnswer) + wait
	if secondary {
		d += bits(selectBytes+ackBytes) + wait
	}
	return d
}

// busLoad is the fraction of bus time the schedule needs: the sum of
// read time over interval of every enabled meter. Above 1 the meters
// cannot all be read as often as configured. A measured read time wins
// over the estimate.
func busLoad(ms []*meterState, baud int) float64 {
	var load float64
	for _, m := range ms {
		if !m.cfg.Enabled {
			continue
		}
		d := m.readTime
		if d <= 0 {
			b := m.cfg.Baud
			if b == 0 {
				b = baud
			}
			d = EstimateReadTime(b, m.cfg.Address.IsSecondary)
		}
		load += d.Seconds() / m.cfg.Interval.Seconds()
	}
	return load
}

// jitterer draws the random part of due times from a seeded source, so
// a given seed always gives the same schedule.
type jitterer struct {
	rng *rand.Rand
	max time.Duration
}

func newJitterer(seed uint64, maxJitter time.Duration) *jitterer {
	if seed == 0 {
		seed = rand.Uint64() //nolint:gosec // G404: jitter spreads load, it guards nothing
	}
	return &jitterer{rng: rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)), max: maxJitter} //nolint:gosec // G404: jitter must be reproducible from the seed, not secret
}

// next returns a delay in [0, min(max, interval/10)).
func (j *jitterer) next(interval time.Duration) time.Duration {
	limit := min(j.max, interval/10)
	if limit <= 0 {
		return 0
	}
	return time.Duration(j.rng.Int64N(int64(limit)))
}

// startOffset is when meter i of n is first due after start: evenly
// spread over min(spread, interval), so equal intervals do not all fall
// due at the same instant.
func startOffset(i, n int, interval, spread time.Duration) time.Duration {
	if spread <= 0 || n <= 1 {
		return 0
	}
	return time.Duration(i) * min(spread, interval) / time.Duration(n)
}

// nextSlot returns the nominal time of the next scheduled read after a
// read of the slot at slot finished at done. Slots advance by whole
// intervals so that time spent reading does not accumulate as drift; a
// read that ran past the next slot starts a new period from done
// instead of causing a burst of catch-up reads.
func nextSlot(slot, done time.Time, interval time.Duration) time.Time {
	next := slot.Add(interval)
	if next.Before(done) {
		return done.Add(interval)
	}
	return next
}
