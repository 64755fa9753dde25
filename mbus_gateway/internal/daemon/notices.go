package daemon

import (
	"fmt"
	"sync"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/web"
)

// notices are the warnings the status page and /status show: what the log
// says once, at start or reload, and a user who only looks at the page
// would otherwise never learn.
type notices struct {
	mu sync.Mutex
	// store says why the database cannot be opened; "" once it is.
	store string
	// quarantined is where a corrupt database was moved to, "" if none
	// (see quarantineNote).
	quarantined string
	// salvage is what was saved from it in this run; nil after a restart.
	salvage *web.Salvage
	options []string // of the options in effect
	// live gives warnings that come and go while running (the poller's
	// bus time); nil until the poller exists.
	live func() []string
}

// newNotices starts the list with the warnings of the options the gateway
// starts with.
func newNotices(o *config.Options) *notices {
	return &notices{options: o.Warnings()}
}

// setStore records why the database cannot be opened; "" clears it.
func (n *notices) setStore(problem string) {
	n.mu.Lock()
	n.store = problem
	n.mu.Unlock()
}

// setQuarantined records where a corrupt database was moved to.
func (n *notices) setQuarantined(path string) {
	n.mu.Lock()
	n.quarantined = path
	n.mu.Unlock()
}

// setSalvage records what was saved from the corrupt database.
func (n *notices) setSalvage(s *web.Salvage) {
	n.mu.Lock()
	n.salvage = s
	n.mu.Unlock()
}

// salvaged is what was saved from a corrupt database in this run, nil if
// nothing was to be saved; for the status page.
func (n *notices) salvaged() *web.Salvage {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.salvage == nil {
		return nil
	}
	s := *n.salvage
	return &s
}

// setLive adds the warnings that come and go while running.
func (n *notices) setLive(live func() []string) {
	n.mu.Lock()
	n.live = live
	n.mu.Unlock()
}

// setOptions replaces the warnings about the options, after a reload.
func (n *notices) setOptions(o *config.Options) {
	w := o.Warnings()
	n.mu.Lock()
	n.options = w
	n.mu.Unlock()
}

// list returns every warning in effect, oldest cause first.
func (n *notices) list() []string {
	n.mu.Lock()
	out := make([]string, 0, 2+len(n.options))
	if n.store != "" {
		out = append(out, n.store)
	}
	if n.quarantined != "" {
		out = append(out, "database file was corrupt: moved aside to "+n.quarantined+
			" and started with a new database; "+salvageNote(n.salvage, n.quarantined))
	}
	out = append(out, n.options...)
	live := n.live
	n.mu.Unlock()
	if live != nil {
		out = append(out, live()...)
	}
	return out
}

// salvageNote says what became of the readings queued in the corrupt
// file moved to file.
func salvageNote(s *web.Salvage, file string) string {
	switch {
	case s == nil || s.File != file:
		return "the readings that could be read from it were taken over when it was moved (see the log of that start)"
	case s.Error != "":
		return "taking over its queued readings failed (" + s.Error + "): they are still in that file"
	case !s.LostKnown:
		return "nothing could be read from it: the readings queued in it are lost"
	case s.Lost == 0:
		return fmt.Sprintf("all %d readings queued in it were saved", s.Saved)
	}
	return fmt.Sprintf("%d readings queued in it were saved, %d could not be read and are lost", s.Saved, s.Lost)
}
