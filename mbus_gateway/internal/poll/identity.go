package poll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// IdentityStore keeps the meters' identities across restarts;
// *store.Store implements it.
type IdentityStore interface {
	Identities(ctx context.Context) ([]reading.Identity, error)
	SaveIdentity(ctx context.Context, id reading.Identity) error
}

// ErrOtherMeter is the error of a read that another meter answered: a
// late answer that belongs to an earlier request, or a meter that took
// the place of the one configured and has not answered twice yet. Its
// telegrams are not stored as this meter's reading.
var ErrOtherMeter = errors.New("answer of another meter")

// checkSender reports an answer that the meter at addr cannot have sent:
// at a primary address every telegram must carry that address in its A
// field; at a secondary address every telegram with a long header must
// carry that secondary address. The link layer skips such answers
// already; this keeps a reading from ever being filed under the wrong
// meter whatever the bus delivers.
func checkSender(res master.Result, addr mbus.Address) error {
	for _, tg := range res.Telegrams {
		switch {
		case tg == nil:
		case !addr.IsSecondary && tg.A != addr.Primary:
			return fmt.Errorf("read %s: %w at primary address %d", addr, ErrOtherMeter, tg.A)
		case addr.IsSecondary && tg.Header.ID != "" && !addr.Secondary.Matches(tg.Header.Address):
			return fmt.Errorf("read %s: %w with secondary address %s", addr, ErrOtherMeter, tg.Header.Address)
		}
	}
	return nil
}

// loadIdentities reads the stored identities into the registry and gives
// every meter its own. Without them meters are identified again from
// their answers.
func (p *Poller) loadIdentities(ctx context.Context) {
	if p.opts.Identities == nil {
		return
	}
	list, err := p.opts.Identities.Identities(ctx)
	if err != nil {
		p.log.Error().Err(err).Msg("cannot read the meters' identities; meters are identified from their next answers")
		return
	}
	p.reg.load(list)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.meters {
		p.attachLocked(m)
	}
}

// attachLocked gives m the stored identity of its address on this bus,
// if there is one that was not replaced.
func (p *Poller) attachLocked(m *meterState) {
	if m.ident != nil {
		return
	}
	if id := p.reg.attach(p.opts.BusName, m); id != nil {
		m.ident = id
		p.renameLocked(m, id.Meter)
	}
}

// identifyLocked decides which meter rd is from and files it under that
// meter's identifier. It returns the identities to store, the
// availability changes to report, and ErrOtherMeter when rd is not to be
// stored: another meter answered at m's address for the first time. When
// it answers there a second time in a row, the meter was swapped: the old
// one is marked replaced and turns offline, the new one gets an identity
// of its own; nothing of the two is merged.
func (p *Poller) identifyLocked(m *meterState, rd *reading.Reading, now time.Time) ([]reading.Identity, []availEvent, error) {
	seen := reading.Identity{
		Meter:        reading.MeterID(rd.Header, m.addr),
		Bus:          p.opts.BusName,
		Address:      m.addr,
		Manufacturer: rd.Header.Manufacturer,
		Serial:       rd.Header.ID,
		Medium:       rd.Header.Medium.String(),
		FirstSeen:    now.UTC().Truncate(time.Millisecond),
	}
	if seen.Serial == "" || seen.Manufacturer == "" {
		seen.Manufacturer, seen.Serial, seen.Medium = "", "", ""
	}
	var save []reading.Identity
	var ev []availEvent
	switch {
	case m.ident == nil:
	case seen.Serial == "" || m.ident.Same(seen):
		// Answers without identification cannot tell meters apart.
		m.suspect = nil
		rd.Meter = m.ident.Meter
		return nil, nil, nil
	case m.suspect == nil || !m.suspect.Same(seen):
		m.suspect = &seen
		return nil, nil, fmt.Errorf("read %s: %w (%s), not %s; taken as a replacement if it answers so again",
			m.addr, ErrOtherMeter, describe(seen), describe(*m.ident))
	default:
		old := p.reg.replace(m, seen)
		save = append(save, old)
		ev = append(ev, availEvent{meter: old.Meter, online: false})
		note := fmt.Sprintf("meter %s (%s) at address %s was replaced by %s on %s: it stays offline; remove its device in Home Assistant when it is no longer needed",
			old.Meter, describe(old), p.where(m.addr), describe(seen), now.UTC().Format(time.DateTime+" UTC"))
		p.notes = append(p.notes[max(0, len(p.notes)-maxNotes+1):], note)
		p.log.Warn().Str("meter", old.Meter).Str("address", m.addr).Str("by", describe(seen)).Msg("meter replaced")
		m.ident, m.suspect = nil, nil
	}
	id := p.assignLocked(m, seen)
	save = append(save, *id)
	rd.Meter = id.Meter
	return save, ev, nil
}

// assignLocked gives m, which has no identity, the one seen says (see
// Registry.assign) and warns when it clashes with another meter's.
func (p *Poller) assignLocked(m *meterState, seen reading.Identity) *reading.Identity {
	ident, clash := p.reg.assign(seen, m)
	m.ident = ident
	if clash != nil {
		p.log.Warn().Str("meter", ident.Meter).Str("address", m.addr).Str("clashes_with", clash.Meter).
			Str("at", clash.Address).Str("at_bus", clash.Bus).Msg("two meters with the same manufacturer and ID: given a distinct identifier")
	}
	p.renameLocked(m, ident.Meter)
	return ident
}

// describe names a meter by what its header says.
func describe(id reading.Identity) string {
	if id.Serial == "" {
		return "a meter without identification"
	}
	return id.Manufacturer + " " + id.Serial + " (" + id.Medium + ")"
}

// saveIdentities stores ids, and those a failed attempt left, once the
// poller's lock is released; what fails is tried again after the next
// read.
func (p *Poller) saveIdentities(ctx context.Context, ids []reading.Identity) {
	p.mu.Lock()
	ids = append(p.unsaved, ids...)
	p.unsaved = nil
	p.mu.Unlock()
	if p.opts.Identities == nil || len(ids) == 0 {
		return
	}
	for i, id := range ids {
		if err := p.opts.Identities.SaveIdentity(ctx, id); err != nil {
			p.log.Error().Err(err).Str("meter", id.Meter).Msg("cannot store the meter's identity; trying again after the next read")
			p.mu.Lock()
			p.unsaved = append(p.unsaved, ids[i:]...)
			p.mu.Unlock()
			return
		}
	}
}

// where names address on this poller's bus for messages: the address
// alone for the only bus.
func (p *Poller) where(address string) string { return placed(p.opts.BusName, address) }

// placed names an address on a bus for messages.
func placed(bus, address string) string {
	if bus == "" {
		return address
	}
	return address + " on bus " + bus
}

// maxNotes bounds the notices about replaced meters kept for the status
// page: a bus where meters keep changing needs the log, not a long page.
const maxNotes = 10

// identityWarningsLocked lists the meters that share their manufacturer
// and ID with another one read now, and the replacements seen since the
// start.
func (p *Poller) identityWarningsLocked() []string {
	var out []string
	for _, m := range p.meters {
		id := m.ident
		if id == nil || id.Serial == "" {
			continue
		}
		base := reading.MeterID(mbus.Header{ID: id.Serial, Manufacturer: id.Manufacturer}, m.addr)
		if id.Meter == base {
			continue
		}
		if holder := p.reg.holder(base, m); holder != nil {
			out = append(out, fmt.Sprintf("meters at addresses %s and %s both identify as %s: the one at %s is published as %s",
				placed(holder.Bus, holder.Address), p.where(m.addr), describe(*id), p.where(m.addr), id.Meter))
		}
	}
	return append(out, p.notes...)
}
