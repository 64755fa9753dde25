package poll

import (
	"context"
	"slices"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// deliver queues rd behind any readings the sink refused earlier, so the
// outbox keeps the order of reads, and delivers what it can.
func (p *Poller) deliver(ctx context.Context, rd reading.Reading) {
	p.mu.Lock()
	p.pending = append(p.pending, rd)
	full := len(p.pending) > p.opts.MaxPending
	p.met.pending.Set(float64(len(p.pending)))
	p.mu.Unlock()
	// A reading that would push out an older one is worth a commit
	// attempt whether or not the retry wait is over: space may be back.
	if full || p.sinkDue(time.Now()) {
		p.flush(ctx)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if over := len(p.pending) - p.opts.MaxPending; over > 0 {
		p.pending = slices.Delete(p.pending, 0, over)
		p.sinkStatus.Dropped += uint64(over)
		p.met.dropped.Add(float64(over))
		if p.sinkDropped == 0 {
			p.log.Error().Int("dropped", over).Int("kept", len(p.pending)).
				Msg("outbox keeps failing and memory holds no more readings: dropping the oldest until it recovers (counted in mbus_readings_dropped_total)")
		}
		p.sinkDropped += over
		p.met.pending.Set(float64(len(p.pending)))
	}
}

// sinkDue reports whether readings wait and the retry delay is over.
func (p *Poller) sinkDue(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending) > 0 && !now.Before(p.sinkRetry)
}

// flush delivers pending readings in order until the sink fails; then it
// waits (sinkBackoff) before the next try.
// The sink gets the same grace at shutdown as a read.
func (p *Poller) flush(ctx context.Context) {
	dctx, cancel := p.opContext(ctx)
	defer cancel()
	for {
		p.mu.Lock()
		if len(p.pending) == 0 {
			p.mu.Unlock()
			return
		}
		rd := p.pending[0]
		p.mu.Unlock()

		err := p.sink.Deliver(dctx, rd)
		now := time.Now()

		p.mu.Lock()
		wasFailing := p.sinkStatus.Failing
		if err != nil {
			p.sinkStatus.Failing = true
			p.sinkStatus.Errors++
			p.sinkStatus.LastError = err.Error()
			p.sinkStatus.LastErrorTime = now
			p.sinkWait = sinkBackoff.Next(p.sinkWait)
			p.sinkRetry = now.Add(p.sinkWait)
			p.met.deliveryErr.Inc()
			pending, wait := len(p.pending), p.sinkWait
			p.mu.Unlock()
			ev := p.log.Debug()
			if !wasFailing {
				ev = p.log.Error()
			}
			ev.Err(err).Str("meter", rd.Meter).Int("pending", pending).Dur("retry_in", wait).Msg("cannot commit reading to the outbox")
			return
		}
		p.pending = p.pending[1:]
		p.sinkStatus.Failing = false
		p.sinkWait = 0
		p.met.pending.Set(float64(len(p.pending)))
		dropped := p.sinkDropped
		p.sinkDropped = 0
		p.mu.Unlock()
		if wasFailing {
			p.log.Info().Int("dropped", dropped).Msg("outbox accepts readings again")
		}
	}
}

// drain runs once Run's context is done: a last attempt to deliver what
// the sink refused; what is still left is lost with the process and is
// counted and logged as such.
func (p *Poller) drain(ctx context.Context) {
	p.flush(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.pending); n > 0 {
		p.sinkStatus.Dropped += uint64(n)
		p.met.dropped.Add(float64(n))
		p.pending = nil
		p.met.pending.Set(0)
		p.log.Error().Int("dropped", n).Msg("shutting down with readings the outbox refused")
	}
}
