package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// diskPages caps the gateway's database (4 KiB pages) so that a few dozen
// queued readings fill it: room for the schema, the last values and a
// short outbox.
const diskPages = 30

// TestFaultDiskFull: the database hits its size limit (SQLite reports
// SQLITE_FULL, as on a full disk) while the broker is away and the outbox
// grows. The gateway says so in the log and on /health (503), keeps what
// was committed, holds new readings in memory (up to its limit, counting
// any it drops) and commits them once the broker is back and delivered
// rows free their pages; /health is 200 again. Every reading arrives.
func TestFaultDiskFull(t *testing.T) {
	r := newFaultRig(t, demoMeters(t, faultPrimaries...), nil, "MBUS_DIAG_DB_MAX_PAGES="+itoa(diskPages))
	r.start()
	r.waitReadings(15 * time.Second)

	stopped := time.Now()
	r.broker.Stop()
	var problems []string
	eventually(t, 40*time.Second, "/health reports the full outbox", func() bool {
		code, p := r.health()
		problems = p
		return code == 503 && strings.Contains(strings.Join(p, "\n"), "database or disk is full")
	})
	full := time.Now()
	t.Logf("database full %v after the broker stopped; /health problems: %q", full.Sub(stopped).Round(time.Millisecond), problems)
	if log := r.gw.stderr.String(); !strings.Contains(log, "cannot commit reading to the outbox") || !strings.Contains(log, "database or disk is full") {
		t.Errorf("log: want the failed commit and its cause, got:\n%s", log)
	}
	// Keep it full for a few polls: these readings wait in memory.
	r.waitSent(r.sent(), 3, 20*time.Second)
	pending := r.metric("mbus_delivery_pending")
	if pending < 3 {
		t.Errorf("readings held in memory while full: got %v, want at least 3", pending)
	}

	restarted := time.Now()
	r.broker.Start()
	eventually(t, 40*time.Second, "/health is ok again", func() bool {
		code, _ := r.health()
		return code == 200
	})
	t.Logf("full for %v with %.0f readings held in memory; healthy %v after the broker came back",
		restarted.Sub(full).Round(time.Millisecond), pending, time.Since(restarted).Round(time.Millisecond))

	f := drain(r, 30*time.Second).check(events{outages: []time.Time{stopped}})
	dropped := r.metric("mbus_readings_dropped_total")
	if dropped != 0 {
		t.Errorf("readings dropped: got %v, want 0 (far fewer than the %d kept in memory waited)", dropped, poll.DefaultMaxPending)
	}
	t.Logf("whole telegrams %d, readings delivered %d, dropped %v, lost %d, duplicates %d", f.produced, f.delivered, dropped, f.lost, f.duplicates)
	stop(t, r.gw)
}

func itoa(n int) string { return strconv.Itoa(n) }
