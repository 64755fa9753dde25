package bridge

import (
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// With two buses, each bus's connectivity, state, counters and last scan
// go to its own topics, the gateway-wide states add up both, and each
// bus's scan button scans that bus.
func TestTwoBuses(t *testing.T) {
	scanned := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := start(t, Options{Watch: 10 * time.Millisecond, Period: time.Hour}, func(s *sources) {
		s.buses = []BusSources{
			{
				Name:   "cellar",
				Poll:   func() poll.Snapshot { return poll.Snapshot{Sink: poll.SinkStatus{Dropped: 1}} },
				Bus:    func() master.Stats { return master.Stats{Timeouts: 3} },
				Health: func() bushealth.Snapshot { return bushealth.Snapshot{State: bushealth.Up} },
			},
			{
				Name: "stair-a",
				Poll: func() poll.Snapshot {
					return poll.Snapshot{Scan: poll.ScanStatus{Finished: scanned, Found: 2}, Sink: poll.SinkStatus{Dropped: 2}}
				},
				Bus:    func() master.Stats { return master.Stats{Timeouts: 9} },
				Health: func() bushealth.Snapshot { return bushealth.Snapshot{State: bushealth.Down} },
			},
		}
	})
	for topic, want := range map[string]string{
		"mbus/bridge/bus/cellar/bus":           "ON",
		"mbus/bridge/bus/cellar/bus_state":     "up",
		"mbus/bridge/bus/cellar/bus_timeouts":  "3",
		"mbus/bridge/bus/cellar/meters_found":  "None",
		"mbus/bridge/bus/stair-a/bus":          "OFF",
		"mbus/bridge/bus/stair-a/bus_state":    "down",
		"mbus/bridge/bus/stair-a/bus_timeouts": "9",
		"mbus/bridge/bus/stair-a/last_scan":    "2026-03-01T12:00:00Z",
		"mbus/bridge/bus/stair-a/meters_found": "2",
		"mbus/bridge/dropped":                  "3",
	} {
		h.rec.WaitFor(topic, payloadIs(want), waitTimeout)
		h.retained(t, topic, payloadIs(want))
	}
	for _, topic := range []string{"mbus/bridge/bus", "mbus/bridge/bus_state", "mbus/bridge/bus_timeouts"} {
		if n := len(h.rec.Messages(topic)); n != 0 {
			t.Errorf("single-bus topic %s published %d times", topic, n)
		}
	}
	h.rec.Publish("mbus/bridge/bus/stair-a/scan/set", 1, false, []byte("PRESS"))
	if got := h.ctl.waitCalls(t, 1); got[0] != "scan stair-a" {
		t.Errorf("press of stair-a's scan: got %q, want a scan of stair-a", got)
	}
	h.rec.Publish("mbus/bridge/scan/set", 1, false, []byte("PRESS"))
	h.rec.Publish("mbus/bridge/bus/cellar/scan/set", 1, false, []byte("PRESS"))
	if got := h.ctl.waitCalls(t, 2); got[1] != "scan cellar" {
		t.Errorf("after the single-bus topic and cellar's scan: got %q, want only cellar's scan next", got)
	}
}
