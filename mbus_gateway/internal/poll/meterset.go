package poll

import (
	"fmt"
	"time"
)

// MeterChanges counts what SetMeters did.
type MeterChanges struct {
	// Added are meters at addresses not read before.
	Added int
	// Removed are meters no longer in the list.
	Removed int
	// Changed are meters kept whose name, interval, baud rate or enabled
	// flag changed.
	Changed int
}

// SetMeters replaces the meters to read with ms, e.g. after the options
// were read again; it is safe to call while Run runs and takes effect
// before the next read starts. A meter is known by its address:
//
//   - A meter whose address stays keeps its state: identifier, breaker,
//     last reading, availability and the phase of its schedule. It takes
//     the new name (in its next reading), baud rate and enabled flag (ID
//     is ignored: the identifier is learned from its answers). A new
//     interval counts from its last scheduled read, so a shorter one may
//     make it due at once. A meter enabled again is scheduled like a new
//     one; a disabled one is not read and its availability stays as it
//     was reported.
//   - A meter not in ms is forgotten: nothing more is published for it
//     (no availability either, its topics keep what they hold), a read of
//     it queued or on the wire is dropped, and its metric series are
//     deleted, as a series that never changes again would mislead.
//   - A meter at a new address is added as AddMeters does.
//
// The poller reads the meters in the order of ms. On an invalid list
// nothing changes.
func (p *Poller) SetMeters(ms ...Meter) (MeterChanges, error) {
	if err := validateMeters(ms); err != nil {
		return MeterChanges{}, fmt.Errorf("poll: set meters: %w", err)
	}
	now := time.Now()
	var ch MeterChanges
	p.mu.Lock()
	list := make([]*meterState, 0, len(ms))
	kept := make(map[*meterState]bool, len(ms))
	var fresh []*meterState // to schedule from now on
	for _, cfg := range ms {
		m := p.byKey[cfg.Address.String()]
		switch {
		case m == nil || m.addr != cfg.Address.String():
			m = p.newMeterLocked(cfg)
			ch.Added++
			fresh = append(fresh, m)
		case p.reconfigureLocked(m, cfg, now):
			ch.Changed++
			if m.cfg.Enabled && m.slot.IsZero() {
				fresh = append(fresh, m)
			}
		}
		kept[m] = true
		list = append(list, m)
	}
	for _, m := range p.meters {
		if !kept[m] {
			p.removeLocked(m)
			ch.Removed++
		}
	}
	p.meters = list
	if p.started {
		p.scheduleFirst(fresh, now)
		p.checkLoad("meters changed")
	}
	p.mu.Unlock()
	p.poke()
	return ch, nil
}

// reconfigureLocked gives the kept meter m the configuration cfg and
// reports whether anything changed. A meter enabled again gets a zero
// slot: the caller schedules it from now.
func (p *Poller) reconfigureLocked(m *meterState, cfg Meter, now time.Time) bool {
	old := m.cfg
	cfg.ID = old.ID
	if cfg == old {
		return false
	}
	m.cfg = cfg
	m.breaker.Base = breakerBase(cfg.Interval) // from the next opening on
	switch {
	case !p.started:
		// Run schedules every meter when it starts.
	case cfg.Enabled && !old.Enabled:
		m.slot = time.Time{}
	case cfg.Enabled && cfg.Interval != old.Interval:
		m.slot = m.slot.Add(cfg.Interval - old.Interval)
		if m.slot.Before(now) {
			m.slot = now
		}
		if m.breaker.State() != BreakerOpen { // an open breaker keeps its probe time
			m.due = m.slot.Add(p.jit.next(cfg.Interval))
		}
	}
	p.log.Info().Str("meter", m.id).Str("address", m.addr).Str("name", cfg.Name).
		Dur("interval", cfg.Interval).Bool("enabled", cfg.Enabled).Msg("meter changed")
	return true
}

// removeLocked forgets m; see SetMeters.
func (p *Poller) removeLocked(m *meterState) {
	m.removed = true
	p.reg.release(m)
	if p.byKey[m.addr] == m {
		delete(p.byKey, m.addr)
	}
	if p.byKey[m.id] == m {
		delete(p.byKey, m.id)
		p.met.forget(m.id)
	}
	p.log.Info().Str("meter", m.id).Str("address", m.addr).Msg("meter removed")
}

// errRemoved is the error of a read of a meter that SetMeters removed.
func errRemoved(m *meterState) error {
	return fmt.Errorf("read %s: %w (removed from the configuration)", m.addr, ErrUnknownMeter)
}
