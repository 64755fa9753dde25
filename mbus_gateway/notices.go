package main

import (
	"sync"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
)

// notices are the warnings the status page and /status show: what the log
// says once, at start or reload, and a user who only looks at the page
// would otherwise never learn.
type notices struct {
	// live gives warnings that come and go while running (the poller's
	// bus time); nil if none.
	live func() []string

	mu      sync.Mutex
	start   []string // found at start: a database moved aside
	options []string // of the options in effect
}

// newNotices starts the list: quarantined is where a corrupt database was
// moved to ("" if it was not), o are the options the gateway starts with.
func newNotices(quarantined string, o *config.Options, live func() []string) *notices {
	n := &notices{live: live, options: o.Warnings()}
	if quarantined != "" {
		n.start = []string{"database file was corrupt: moved aside to " + quarantined +
			" and started with an empty database; readings not yet published were in the old file"}
	}
	return n
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
	out := make([]string, 0, len(n.start)+len(n.options))
	out = append(out, n.start...)
	out = append(out, n.options...)
	n.mu.Unlock()
	if n.live != nil {
		out = append(out, n.live()...)
	}
	return out
}
