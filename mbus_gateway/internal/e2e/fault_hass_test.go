package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFaultHomeAssistantRestart: Home Assistant goes offline and comes
// back (its birth message "online" on homeassistant/status, not
// retained). Within seconds the gateway announces every meter again, with
// availability and states, once per birth message. The meter is read once
// at start and then not for an hour (the first reads of several meters
// would be spread over a minute), so what arrives after the birth message
// is there because Home Assistant came back, not because of a poll.
func TestFaultHomeAssistantRestart(t *testing.T) {
	r := newFaultRig(t, demoMeters(t, faultPrimaries[0]), map[string]any{"poll_interval": 3600})
	if r.meters[0] != heatMeter {
		t.Fatalf("the first fault meter is %s, want the heat meter %s", r.meters[0], heatMeter)
	}
	// announced waits for discovery, availability and the heat meter's
	// energy state of every meter and returns when the last came.
	announced := func() time.Time {
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
		return last
	}
	r.start()
	r.waitReadings(15 * time.Second)
	// What the start announced has all arrived before the recorder is
	// reset, so none of it can pass for an answer to the birth message.
	announced()

	before := r.sent()
	r.rec.Publish("homeassistant/status", 1, false, []byte("offline"))
	r.rec.Reset()
	born := time.Now()
	r.rec.Publish("homeassistant/status", 1, false, []byte("online"))
	last := announced()
	t.Logf("discovery, states and availability of %d meters back %v after the birth message", len(r.meters), last.Sub(born).Round(time.Millisecond))
	const rediscovered = "republished discovery for home assistant"
	if err := r.gw.stderr.WaitCount(rediscovered, 1, 10*time.Second); err != nil {
		t.Errorf("log: %v", err)
	}
	stop(t, r.gw)
	if got := strings.Count(r.gw.stderr.String(), rediscovered); got != 1 {
		t.Errorf("log: got %d rediscoveries, want 1 for the one birth message (none for offline)", got)
	}
	if after := r.sent(); !slices.Equal(after, before) {
		t.Errorf("telegrams sent per meter: %v before the birth message, %v at the end: a poll ran, so the states prove nothing", before, after)
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
