package daemon

import (
	"fmt"
	"sync"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// stuckAfter is how long the bus loop may make no progress while a meter
// is overdue before it counts as stuck. It is well above the longest
// legitimate pause: one read's safety timeout (poll.DefaultReadTimeout)
// plus the longest wait of a down bus (bushealth.DefaultBackoff.Max).
var stuckAfter = poll.DefaultReadTimeout + bushealth.DefaultBackoff.Max + time.Minute

// busWatch tells a working bus loop from a stuck one by the poller's
// snapshots alone: a loop that works either has nothing due or keeps
// counting polls. Long scans are exempt, as they hold the bus on purpose.
// The health check and the systemd watchdog share it.
type busWatch struct {
	snapshot func() poll.Snapshot
	now      func() time.Time
	slack    time.Duration

	mu       sync.Mutex
	polls    uint64
	progress time.Time // last time the loop was seen moving
}

func newBusWatch(snapshot func() poll.Snapshot, now func() time.Time, slack time.Duration) *busWatch {
	return &busWatch{snapshot: snapshot, now: now, slack: slack, progress: now()}
}

// Alive returns nil while the bus loop makes progress, else why not.
func (w *busWatch) Alive() error {
	s := w.snapshot()
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	overdue := oldestDue(s, now)
	if s.Scan.Running || s.Bus.Polls != w.polls || overdue.IsZero() {
		w.polls = s.Bus.Polls
		w.progress = now
		return nil
	}
	if idle := now.Sub(w.progress); idle > w.slack {
		return fmt.Errorf("no poll for %v although meters are due since %v", idle.Round(time.Second), overdue.Format(time.RFC3339))
	}
	return nil
}

// oldestDue is the earliest due time of the enabled meters that is not in
// the future; zero when nothing is due.
func oldestDue(s poll.Snapshot, now time.Time) time.Time {
	var oldest time.Time
	for _, m := range s.Meters {
		if !m.Enabled || m.NextDue.IsZero() || m.NextDue.After(now) {
			continue
		}
		if oldest.IsZero() || m.NextDue.Before(oldest) {
			oldest = m.NextDue
		}
	}
	return oldest
}
