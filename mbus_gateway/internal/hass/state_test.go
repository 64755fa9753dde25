package hass

import (
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// TestStatesNeverEmpty: a blank text or an empty binary value is sent as
// "None" (unknown in Home Assistant), never as a zero-length retained
// message, which would delete the topic.
func TestStatesNeverEmpty(t *testing.T) {
	r := reading.Reading{Meter: "kam_06855817", Address: "5", Time: time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC), Records: []mbus.Record{
		{Key: "customer", Quantity: "customer", Value: mbus.Value{Kind: mbus.KindText}},
		{Key: "fabrication_block", Quantity: "fabrication_block", Value: mbus.Value{Kind: mbus.KindBytes}},
		{Key: "energy", Quantity: "energy", Unit: "kWh", Value: mbus.Value{Kind: mbus.KindNumber, Num: 1}},
	}}
	got := map[string]string{}
	for _, m := range States(Options{}, r) {
		if len(m.Payload) == 0 {
			t.Errorf("%s: zero-length payload", m.Topic)
		}
		got[m.Topic] = string(m.Payload)
	}
	for topic, want := range map[string]string{
		"mbus/kam_06855817/customer":          "None",
		"mbus/kam_06855817/fabrication_block": "None",
		"mbus/kam_06855817/energy":            "1",
	} {
		if got[topic] != want {
			t.Errorf("%s = %q, want %q", topic, got[topic], want)
		}
	}
}
