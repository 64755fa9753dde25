package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// TestRunBridgeDevice drives the gateway device in Home Assistant through
// the built binary and a real broker: its discovery is published, "Read
// all now" and a meter's "Read now" read ahead of the schedule, the log
// level select changes the level and reports it, and a bad command
// changes nothing.
func TestRunBridgeDevice(t *testing.T) {
	broker := mosquittotest.Start(t)
	rec := mosquittotest.Subscribe(t, broker.URL(), "#")
	// A long interval: every reading after the first comes from a command.
	path, _ := gatewayOptions(t, t.TempDir(), startBus(t), broker, map[string]any{
		"poll_interval": 3600,
		"meters":        []map[string]any{{"address": "1"}},
	})
	gw := start(t, hermeticEnv(), "run", "--config", path)

	rec.WaitFor("mbus/"+heatMeter+"/reading", nil, 15*time.Second)
	var disc struct {
		Cmps map[string]struct {
			P            string   `json:"p"`
			CommandTopic string   `json:"command_topic"`
			Options      []string `json:"options"`
			Category     string   `json:"entity_category"`
		} `json:"cmps"`
	}
	m := rec.WaitFor("", func(m mosquittotest.Message) bool {
		return strings.HasPrefix(m.Topic, "homeassistant/device/mbus_bridge") &&
			strings.Contains(string(m.Payload), `"mbus/bridge/read_all/set"`)
	}, 10*time.Second)
	if err := json.Unmarshal(m.Payload, &disc); err != nil {
		t.Fatalf("bridge discovery: %v", err)
	}
	platforms := map[string]string{}
	for _, c := range disc.Cmps {
		if c.CommandTopic != "" {
			platforms[c.CommandTopic] = c.P
		}
	}
	for topic, want := range map[string]string{
		"mbus/bridge/scan/set": "button", "mbus/bridge/read_all/set": "button", "mbus/bridge/log_level/set": "select",
	} {
		if got := platforms[topic]; got != want {
			t.Errorf("bridge discovery: command topic %s: got platform %q, want %q", topic, got, want)
		}
	}

	readings := func() int { return len(rec.Messages("mbus/" + heatMeter + "/reading")) }
	before := readings()
	rec.Publish("mbus/bridge/read_all/set", 1, false, []byte("PRESS"))
	rec.WaitCount("mbus/"+heatMeter+"/reading", before+1, 10*time.Second)
	rec.Publish("mbus/"+heatMeter+"/read/set", 1, false, []byte("PRESS"))
	rec.WaitCount("mbus/"+heatMeter+"/reading", before+2, 10*time.Second)

	if out := gw.stdout.String() + gw.stderr.String(); strings.Contains(out, " DBG ") {
		t.Fatalf("debug lines at log level info:\n%s", out)
	}
	rec.Publish("mbus/bridge/log_level/set", 1, false, []byte("loud"))
	rec.Publish("mbus/bridge/log_level/set", 1, false, []byte("debug"))
	rec.WaitFor("mbus/bridge/log_level", func(m mosquittotest.Message) bool {
		return string(m.Payload) == "debug"
	}, 10*time.Second)
	rec.Publish("mbus/bridge/read_all/set", 1, false, []byte("PRESS"))
	rec.WaitCount("mbus/"+heatMeter+"/reading", before+3, 10*time.Second)
	// At debug level the read shows in the log; before, it did not.
	eventually(t, 10*time.Second, "a debug line in the log", func() bool {
		return strings.Contains(gw.stdout.String()+gw.stderr.String(), " DBG ")
	})
	for _, m := range rec.Messages("mbus/bridge/log_level") {
		if string(m.Payload) == "loud" {
			t.Errorf("mbus/bridge/log_level: got %q, an invalid command was taken", m.Payload)
		}
	}
	stop(t, gw)
}
