package bridge

import (
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// TestLeftoverPlaceholdersCleared: retained topics under addr_<N> that an
// earlier version left are deleted, except those of a meter really known
// by that name (its answers carry no identification).
func TestLeftoverPlaceholdersCleared(t *testing.T) {
	broker := mosquittotest.Start(t)
	before := mosquittotest.Subscribe(t, broker.URL(), "mbus/#")
	before.Publish("mbus/addr_7/availability", 1, true, []byte("offline"))
	before.Publish("mbus/addr_8/availability", 1, true, []byte("online"))
	h := startOn(t, broker, Options{}, func(s *sources) {
		s.poll.Meters = []poll.MeterStatus{
			{Meter: "kam_00000007", Address: "7", Identified: true},
			{Meter: "addr_8", Address: "8", Identified: true},
		}
	})
	// One left on the broker before the start, one arriving while it runs.
	h.rec.Publish("mbus/addr_7/last_success", 1, true, []byte("None"))
	for _, topic := range []string{"mbus/addr_7/availability", "mbus/addr_7/last_success"} {
		h.rec.WaitFor(topic, func(m mosquittotest.Message) bool { return len(m.Payload) == 0 }, waitTimeout)
	}
	later := mosquittotest.Subscribe(t, h.broker.URL(), "mbus/+/availability", "mbus/+/last_success")
	later.WaitFor("mbus/addr_8/availability", payloadIs("online"), waitTimeout)
	later.WaitFor("mbus/kam_00000007/last_success", nil, waitTimeout)
	for _, m := range later.Messages("") {
		if m.Topic == "mbus/addr_7/availability" || m.Topic == "mbus/addr_7/last_success" {
			t.Errorf("still retained: %s = %q", m.Topic, m.Payload)
		}
	}
}
