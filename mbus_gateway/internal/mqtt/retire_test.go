package mqtt

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading/readingtest"
)

// threePhase is a read of a meter whose current records carry the keys
// given (before and after the decoder named phases instead of counting).
func threePhase(at time.Time, keys ...string) reading.Reading {
	r := heatReading("kam_00000001", at, 100)
	for _, k := range keys {
		r.Records = append(r.Records, readingtest.Number(k, "current", "A", 1.5))
	}
	return r
}

// components returns the "cmps" of a retained discovery message.
func components(t *testing.T, m mosquittotest.Message) map[string]json.RawMessage {
	t.Helper()
	var cfg struct {
		Cmps map[string]json.RawMessage `json:"cmps"`
	}
	if err := json.Unmarshal(m.Payload, &cfg); err != nil {
		t.Fatalf("discovery payload: %v", err)
	}
	return cfg.Cmps
}

// TestDiscoveryRetiresGoneKeys checks against a real broker that when a
// meter's record keys change, the retained discovery keeps the old
// components with only their platform (Home Assistant deletes those
// entities) and the new ones in full, also after the gateway restarts.
func TestDiscoveryRetiresGoneKeys(t *testing.T) {
	b := mosquittotest.Start(t)
	box := openStore(t)
	const topic = "homeassistant/device/kam_00000001/config"
	hasCmp := func(id string) func(mosquittotest.Message) bool {
		return func(m mosquittotest.Message) bool {
			var cfg struct{ Cmps map[string]any }
			return json.Unmarshal(m.Payload, &cfg) == nil && cfg.Cmps[id] != nil
		}
	}

	enqueue(t, box, threePhase(t0, "current", "current_2"))
	c := start(t, testConfig(b.URL()), box)
	live := mosquittotest.Subscribe(t, b.URL(), "homeassistant/#")
	live.WaitFor(topic, hasCmp("current_2"), waitTimeout)

	enqueue(t, box, threePhase(t0.Add(time.Minute), "current", "current_l1"))
	c.Notify()
	live.WaitFor(topic, hasCmp("current_l1"), waitTimeout)
	c.stop(t)

	// What Home Assistant finds on the broker, also after a restart of
	// the gateway that announces everything again.
	for run := range 2 {
		var m mosquittotest.Message
		if run == 0 {
			m = mosquittotest.Subscribe(t, b.URL(), topic).WaitFor(topic, nil, waitTimeout)
		} else {
			// The restarted gateway's own announcement, not the
			// retained copy of the first run's.
			again := mosquittotest.Subscribe(t, b.URL(), topic)
			again.WaitFor(topic, nil, waitTimeout)
			again.Reset()
			start(t, testConfig(b.URL()), box)
			m = again.WaitFor(topic, func(m mosquittotest.Message) bool { return !m.Retained }, waitTimeout)
		}
		cmps := components(t, m)
		if got := string(cmps["current_2"]); got != `{"p":"sensor"}` {
			t.Errorf("run %d: gone component current_2 = %s, want platform only", run, got)
		}
		var l1 map[string]any
		if err := json.Unmarshal(cmps["current_l1"], &l1); err != nil || l1["unique_id"] != "mbus_kam_00000001_current_l1" || l1["state_topic"] != "mbus/kam_00000001/current_l1" {
			t.Errorf("run %d: new component current_l1 = %s", run, cmps["current_l1"])
		}
		if len(cmps["current"]) < 20 {
			t.Errorf("run %d: kept component current = %s", run, cmps["current"])
		}
	}
}
