package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestFaultHomeAssistantRestart: Home Assistant goes offline and comes
// back (its birth message "online" on homeassistant/status, not
// retained). Within seconds the gateway announces every meter again, with
// availability and states, once per birth message.
func TestFaultHomeAssistantRestart(t *testing.T) {
	r := newFaultRig(t, demoMeters(t, faultPrimaries...), nil)
	r.start()
	r.waitReadings(15 * time.Second)
	for _, meter := range r.meters {
		r.rec.WaitFor("homeassistant/device/"+meter+"/config", nil, 10*time.Second)
	}

	r.rec.Publish("homeassistant/status", 1, false, []byte("offline"))
	r.rec.Reset()
	born := time.Now()
	r.rec.Publish("homeassistant/status", 1, false, []byte("online"))
	var last time.Time
	for _, meter := range r.meters {
		for _, topic := range []string{"homeassistant/device/" + meter + "/config", "mbus/" + meter + "/availability", "mbus/" + meter + "/energy"} {
			if topic == "mbus/"+meter+"/energy" && meter != heatMeter {
				continue
			}
			m := r.rec.WaitFor(topic, nil, 10*time.Second)
			last = maxTime(last, m.At)
		}
	}
	t.Logf("discovery, states and availability of %d meters back %v after the birth message", len(r.meters), last.Sub(born).Round(time.Millisecond))
	if got := strings.Count(r.gw.stderr.String(), "republished discovery for home assistant"); got != 1 {
		t.Errorf("log: got %d rediscoveries, want 1 for the one birth message (none for offline)", got)
	}
	stop(t, r.gw)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
