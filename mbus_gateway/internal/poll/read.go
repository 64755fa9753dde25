package poll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// availEvent is a change of a meter's availability, reported after the
// poller's lock is released.
type availEvent struct {
	meter  string
	online bool
}

// ErrBusDown is the error of a scheduled read that was not attempted
// because the bus health held the bus back.
var ErrBusDown = errors.New("bus down")

// poll reads m once, updates its breaker and availability and delivers
// the reading. Scheduled reads advance m's schedule; on-demand reads
// leave it as it is.
//
// Breaker policy: a meter's breaker counts every failed poll, whatever
// the cause, including slots that passed while the bus was backing off.
// So a meter turns unavailable only after FailureThreshold of its own
// polls brought no data, and an unplugged adapter makes every meter
// unavailable in its own time, never at once. The bus backoff only
// (the bus health's) keeps the poller from hammering a vanished adapter:
// while it runs,
// scheduled reads are counted as failures without touching the bus; at
// each of its retries a meter whose breaker is open tries the bus; and
// when the bus works again every open breaker is probed straight away.
func (p *Poller) poll(ctx context.Context, m *meterState, scheduled bool) (reading.Reading, error) {
	now := time.Now()
	p.mu.Lock()
	if m.removed {
		p.mu.Unlock()
		return reading.Reading{}, errRemoved(m)
	}
	if bus := p.opts.Health.Snapshot(); scheduled && bus.State == bushealth.Down && now.Before(bus.RetryAt) {
		err := fmt.Errorf("read %s: %w: %s", m.addr, ErrBusDown, bus.LastError)
		ev := p.failedLocked(m, now, err, resultBusDown)
		p.rescheduleLocked(m, now, true)
		p.mu.Unlock()
		p.emit(ev)
		return reading.Reading{}, err
	}
	if scheduled {
		m.breaker.Allow(now) // an open breaker whose wait is over lets this probe through
	}
	p.met.breaker.WithLabelValues(m.id).Set(float64(m.breaker.State()))
	// SetMeters may replace cfg while the read is on the wire.
	cfg := m.cfg
	addr := cfg.Address
	p.mu.Unlock()

	opCtx, cancel := p.opContext(ctx)
	start := time.Now()
	res, err := p.read(opCtx, cfg)
	done := time.Now()
	cancel()
	p.met.duration.Observe(done.Sub(start).Seconds())
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Cut off by shutdown after the grace period: this says nothing
		// about the meter or the bus.
		return reading.Reading{}, err
	}
	var rd reading.Reading
	var buildErr error
	if err == nil {
		if err = checkSender(res, addr); err == nil {
			rd, buildErr = buildReading(res, m.cfg.Name, m.addr, done)
		}
	}

	p.mu.Lock()
	p.busPolls++
	p.noteBus(err, done)
	if m.removed {
		// Removed while on the wire: its reading, metrics and
		// availability went with it.
		p.mu.Unlock()
		return reading.Reading{}, errRemoved(m)
	}
	m.lastRead = done
	var ev []availEvent
	var save []reading.Identity
	var recovered bool
	switch {
	case errors.Is(err, ErrOtherMeter):
		ev = p.failedLocked(m, done, err, resultOtherMeter)
	case err != nil:
		// The bus names the read and the address itself (see Bus).
		ev = p.failedLocked(m, done, err, failureResult(err))
	case errors.Is(buildErr, ErrNoTelegram):
		err = fmt.Errorf("read %s: %w", m.addr, buildErr)
		ev = p.failedLocked(m, done, err, resultError)
	default:
		m.raw = cloneRaw(res.Raw)
		m.decodeErr = ""
		if res.DecodeErr != nil {
			m.decodeErr = res.DecodeErr.Error()
		}
		save, ev, err = p.identifyLocked(m, &rd, done)
		if err != nil {
			ev = append(ev, p.failedLocked(m, done, err, resultOtherMeter)...)
			break
		}
		if buildErr == nil && !m.cfg.Unguarded {
			// After identifyLocked: a meter put in another's place has
			// another identifier, and its totals start afresh.
			rd = p.guardLocked(m.last, rd)
		}
		var answered []availEvent
		recovered, answered = p.answeredLocked(m, &rd, done.Sub(start), buildErr, res.DecodeErr != nil)
		ev = append(ev, answered...)
		if buildErr != nil {
			err = fmt.Errorf("read %s: %w", m.addr, buildErr)
		}
	}
	p.rescheduleLocked(m, done, scheduled || recovered)
	p.mu.Unlock()
	p.emit(ev)
	p.saveIdentities(context.WithoutCancel(ctx), save)
	if err != nil {
		return reading.Reading{}, err
	}
	p.deliver(ctx, rd)
	return rd, nil
}

// read reads the meter m: at its own speed when that is set and differs
// from the bus's, with its key when it has one, where the bus can
// (MeterReader).
func (p *Poller) read(ctx context.Context, m Meter) (master.Result, error) {
	o := master.ReadOptions{Key: m.key()}
	if m.Baud > 0 && m.Baud != p.opts.Baud {
		o.Baud = m.Baud
	}
	if mr, ok := p.bus.(MeterReader); ok && (o.Baud != 0 || o.Key != nil) {
		return mr.ReadWith(ctx, m.Address, o)
	}
	return p.bus.Read(ctx, m.Address)
}

// failureResult names the kind of a failed read for the metrics, by the
// master's typed errors.
func failureResult(err error) string {
	switch {
	case errors.Is(err, master.ErrPortDown):
		return resultBusError
	case errors.Is(err, master.ErrTimeout):
		return resultTimeout
	case errors.Is(err, mbus.ErrKeyNeeded):
		return resultKeyNeeded
	case errors.Is(err, mbus.ErrDecrypt):
		return resultWrongKey
	}
	return resultError
}

// failedLocked records a failed poll of m.
func (p *Poller) failedLocked(m *meterState, now time.Time, err error, result string) []availEvent {
	m.lastErr = err.Error()
	opened := m.breaker.Failure(now)
	p.met.polls.WithLabelValues(m.id, result).Inc()
	p.met.breaker.WithLabelValues(m.id).Set(float64(m.breaker.State()))
	p.log.Debug().Str("meter", m.id).Str("result", result).Err(err).Msg("poll failed")
	if !opened {
		return nil
	}
	p.log.Warn().Str("meter", m.id).Int("failures", m.breaker.Failures()).
		Time("retry_at", m.breaker.RetryAt()).Err(err).Msg("meter not answering, breaker open")
	return p.setAvailLocked(m, availOffline)
}

// answeredLocked records a poll that m answered. A meter that sent only
// an application error report (buildErr) is alive but gave no reading.
// It reports whether the breaker had been open.
func (p *Poller) answeredLocked(m *meterState, rd *reading.Reading, took time.Duration, buildErr error, partial bool) (bool, []availEvent) {
	recovered := m.breaker.Success()
	if recovered {
		p.log.Info().Str("meter", m.id).Msg("meter answering again, breaker closed")
	}
	result := resultOK
	switch {
	case buildErr != nil:
		result, m.lastErr = resultAppError, buildErr.Error()
	default:
		if partial {
			result = resultPartial
		}
		m.lastErr = ""
		m.lastSuccess = rd.Time
		m.readTime = took
		last := *rd
		last.Records = cloneRecords(rd.Records)
		m.last = &last
		p.met.setLastSuccess(m.id, rd.Time)
		p.checkLoad("measured read times")
	}
	p.met.polls.WithLabelValues(m.id, result).Inc()
	p.met.breaker.WithLabelValues(m.id).Set(float64(BreakerClosed))
	p.log.Debug().Str("meter", m.id).Str("result", result).Dur("took", took).Int("records", len(rd.Records)).Msg("poll")
	return recovered, p.setAvailLocked(m, availOnline)
}

// renameLocked gives m the identifier of its identity.
func (p *Poller) renameLocked(m *meterState, id string) {
	p.log.Info().Str("meter", id).Str("was", m.id).Str("address", m.addr).Msg("meter identified")
	if p.byKey[m.id] == m && m.id != m.addr {
		delete(p.byKey, m.id)
	}
	p.met.rename(m.id, id, m.breaker.State(), m.lastSuccess)
	m.id = id
	p.byKey[id] = m
	// Availability was reported, if at all, under the old identifier.
	m.avail = availUnknown
}

// setAvailLocked returns the event for a change of m's availability, or
// nothing when it was already reported or m has no identity yet (no
// topic may carry a placeholder).
func (p *Poller) setAvailLocked(m *meterState, a availability) []availEvent {
	if m.ident == nil || m.avail == a {
		return nil
	}
	m.avail = a
	return []availEvent{{meter: m.id, online: a == availOnline}}
}

func (p *Poller) emit(ev []availEvent) {
	for _, e := range ev {
		p.avail.SetAvailability(e.meter, e.online)
	}
}

// rescheduleLocked sets when m is due next after a poll that ended at
// done. An open breaker decides alone; otherwise, if advance, the
// schedule moves on to the next slot.
func (p *Poller) rescheduleLocked(m *meterState, done time.Time, advance bool) {
	if m.breaker.State() == BreakerOpen {
		m.due = m.breaker.RetryAt()
		return
	}
	if advance {
		m.slot = nextSlot(m.slot, done, m.cfg.Interval)
		m.due = m.slot.Add(p.jit.next(m.cfg.Interval))
	}
}

// noteBus counts an operation that ended at now with err and, when the
// bus health says the bus came back, reads every meter whose breaker
// opened meanwhile at once. Whether the bus is down is the health's
// call, not the poller's.
func (p *Poller) noteBus(err error, now time.Time) {
	if errors.Is(err, master.ErrPortDown) {
		p.busErrors++
	}
	down := !p.opts.Health.Snapshot().State.Working()
	if p.busWasDown && !down {
		for _, m := range p.meters {
			if m.breaker.State() == BreakerOpen {
				m.due = now
			}
		}
	}
	p.busWasDown = down
}

func cloneRaw(raw [][]byte) [][]byte {
	out := make([][]byte, len(raw))
	for i, r := range raw {
		out[i] = cloneBytes(r)
	}
	return out
}
