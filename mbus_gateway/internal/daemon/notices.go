package daemon

import (
	"sync"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
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
	options     []string // of the options in effect
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
			" and started with an empty database; readings not yet published were in the old file")
	}
	out = append(out, n.options...)
	live := n.live
	n.mu.Unlock()
	if live != nil {
		out = append(out, live()...)
	}
	return out
}
