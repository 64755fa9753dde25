package daemon

import "runtime/debug"

// daemonGCPercent is the garbage collector's target while the gateway
// runs, unless GOGC says otherwise. Its live heap is about a megabyte and
// it allocates little, so collecting at half the default growth costs a
// fraction of a percent of a core and keeps a few megabytes of garbage
// from being resident (Go's heap floor is 4 MB × GOGC/100).
const daemonGCPercent = 50

// tuneGC sets daemonGCPercent when the environment does not set GOGC.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
}
