package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// TestBusWatch walks a clock through the states the bus loop can be in.
func TestBusWatch(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	var snap poll.Snapshot
	w := newBusWatch(func() poll.Snapshot { return snap }, func() time.Time { return now }, time.Minute)
	meter := func(due time.Time, enabled bool) []poll.MeterStatus {
		return []poll.MeterStatus{{Meter: "m", Enabled: enabled, NextDue: due}}
	}
	steps := []struct {
		name    string
		advance time.Duration
		polls   uint64
		meters  []poll.MeterStatus
		scan    bool
		stuck   bool
	}{
		{"nothing due", 10 * time.Minute, 0, meter(t0.Add(time.Hour), true), false, false},
		{"due, loop just seen", 0, 0, meter(t0, true), false, false},
		{"overdue within the slack", 50 * time.Second, 0, meter(t0, true), false, false},
		{"overdue beyond the slack, no poll", 20 * time.Second, 0, meter(t0, true), false, true},
		{"a poll happened", time.Second, 1, meter(t0, true), false, false},
		{"long scan holds the bus", 5 * time.Minute, 1, meter(t0, true), true, false},
		{"scan over, polls resume late", 2 * time.Minute, 1, meter(t0, true), false, true},
		{"disabled meters never count", 0, 1, meter(t0, false), false, false},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		snap = poll.Snapshot{Bus: poll.BusStatus{Polls: s.polls}, Scan: poll.ScanStatus{Running: s.scan}, Meters: s.meters}
		err := w.Alive()
		if got := err != nil; got != s.stuck {
			t.Errorf("%s: got stuck %v (%v), want %v", s.name, got, err, s.stuck)
		}
		if err != nil && !strings.Contains(err.Error(), "no poll for") {
			t.Errorf("%s: got %q, want a reason", s.name, err)
		}
	}
}

func TestNewNotifier(t *testing.T) {
	tests := []struct {
		env      map[string]string
		addr     string
		watchdog time.Duration
		err      string
	}{
		{env: nil},
		{env: map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify"}, addr: "/run/systemd/notify"},
		{env: map[string]string{"NOTIFY_SOCKET": "@abstract"}, addr: "\x00abstract"},
		{env: map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000"}, addr: "/n", watchdog: 30 * time.Second},
		{env: map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, addr: "/n"},
		{env: map[string]string{"NOTIFY_SOCKET": "relative"}, err: `sd_notify: NOTIFY_SOCKET "relative": want an absolute path or @name`},
		{env: map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "soon"}, err: `sd_notify: WATCHDOG_USEC "soon": want a positive number of microseconds`},
	}
	for _, tt := range tests {
		n, err := newNotifier(func(k string) string { return tt.env[k] })
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%v: got error %v, want %s", tt.env, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tt.env, err)
			continue
		}
		var addr string
		if n.addr != nil {
			addr = n.addr.Name
		}
		if addr != tt.addr || n.watchdog != tt.watchdog {
			t.Errorf("%v: got socket %q watchdog %v, want %q %v", tt.env, addr, n.watchdog, tt.addr, tt.watchdog)
		}
	}
}
