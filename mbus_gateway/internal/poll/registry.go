package poll

import (
	"sync"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// Registry holds the identities of the meters of all buses of a gateway
// and which meter reads under each now. The pollers of a gateway share
// one (Options.Registry), so that an identifier is handed out once across
// buses: a meter on another bus with the same manufacturer and ID gets a
// distinct identifier exactly as one on the same bus does. Its lock is
// taken after a poller's, never before.
type Registry struct {
	mu     sync.Mutex
	idents map[string]*reading.Identity // every identity, replaced ones included
	held   map[string]*meterState       // identifier → meter reading under it
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{idents: make(map[string]*reading.Identity), held: make(map[string]*meterState)}
}

// load adds stored identities not known yet.
func (r *Registry) load(list []reading.Identity) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range list {
		if r.idents[id.Meter] == nil {
			r.idents[id.Meter] = &id
		}
	}
}

// attach gives m the identity stored for its bus and address, if there is
// one that was not replaced and no other meter holds.
func (r *Registry) attach(bus string, m *meterState) *reading.Identity {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range r.idents {
		if id.Bus == bus && id.Address == m.addr && id.Replaced.IsZero() && r.heldByOtherLocked(id.Meter, m) == nil {
			r.held[id.Meter] = m
			return id
		}
	}
	return nil
}

// assign gives m, which has no identity, the one seen says: its plain
// identifier, or one distinct from another meter's that has it (see
// reading.DistinctID). An identity of the same meter that no meter holds
// (a meter moved to another address, or swapped back) is taken over.
// clash is the identity that has the plain identifier when m did not get
// it.
func (r *Registry) assign(seen reading.Identity, m *meterState) (ident, clash *reading.Identity) {
	r.mu.Lock()
	defer r.mu.Unlock()
	base := seen.Meter
	id := base
	for n := 1; ; n++ {
		if n > 1 {
			id = reading.DistinctID(base, seen.Bus, m.addr, n-1)
		}
		old := r.idents[id]
		if old != nil && (!old.Same(seen) || r.heldByOtherLocked(id, m) != nil) {
			continue
		}
		if old != nil {
			seen.FirstSeen = old.FirstSeen
		}
		seen.Meter = id
		ident = &seen
		r.idents[id] = ident
		r.held[id] = m
		if id != base {
			clash = r.idents[base]
		}
		return ident, clash
	}
}

// replace marks m's identity replaced at the time the new meter was first
// seen, lets it go and returns a copy to store.
func (r *Registry) replace(m *meterState, seen reading.Identity) reading.Identity {
	r.mu.Lock()
	defer r.mu.Unlock()
	m.ident.Replaced = seen.FirstSeen
	r.releaseLocked(m)
	return *m.ident
}

// release lets go of the identity m holds (m no longer read).
func (r *Registry) release(m *meterState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseLocked(m)
}

func (r *Registry) releaseLocked(m *meterState) {
	if m.ident != nil && r.held[m.ident.Meter] == m {
		delete(r.held, m.ident.Meter)
	}
}

// holder is the identity of the meter other than m that reads under id,
// nil when there is none.
func (r *Registry) holder(id string, m *meterState) *reading.Identity {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.heldByOtherLocked(id, m) == nil {
		return nil
	}
	c := *r.idents[id]
	return &c
}

func (r *Registry) heldByOtherLocked(id string, m *meterState) *meterState {
	if h := r.held[id]; h != nil && h != m {
		return h
	}
	return nil
}
