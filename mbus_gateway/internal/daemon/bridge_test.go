package daemon

import (
	"net/http"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/daemon/daemontest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim/simtest"
)

// TestBridgeCommands: the gateway device's controls in Home Assistant
// reach the running parts: the log level select, "Read all now" and a
// meter's "Read now" each lead to what they say.
func TestBridgeCommands(t *testing.T) {
	broker := mosquittotest.Start(t)
	rec := mosquittotest.Subscribe(t, broker.URL(), "mbus/#")
	// One meter read once a minute: a reading within seconds of a press
	// comes from the press.
	gw := startGateway(t, testOptions(t, simtest.ServeDemo(t), broker.Addr(), t.TempDir(), map[string]any{
		"poll_interval": 60,
		"meters":        []map[string]any{{"address": "1"}},
	}), Deps{})
	var st status
	daemontest.Eventually(t, 20*time.Second, "the meter read", func() bool {
		return gw.get("status", &st) == http.StatusOK && st.read() == 1
	})
	const heat = "mbus/kam_06855817/reading"
	rec.WaitFor(heat, nil, 10*time.Second)

	rec.Publish("mbus/bridge/log_level/set", 1, false, []byte("debug"))
	rec.WaitFor("mbus/bridge/log_level", func(m mosquittotest.Message) bool { return string(m.Payload) == "debug" }, 10*time.Second)

	for _, press := range []string{"mbus/bridge/read_all/set", "mbus/kam_06855817/read/set"} {
		before := len(rec.Messages(heat))
		rec.Publish(press, 1, false, []byte("PRESS"))
		daemontest.Eventually(t, 10*time.Second, press+": the heat meter read again", func() bool {
			return len(rec.Messages(heat)) > before
		})
	}
	if n := gw.log.Count("command failed"); n != 0 {
		t.Errorf("log: %d failed commands", n)
	}
	if err := gw.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}
