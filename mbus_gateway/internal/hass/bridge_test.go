package hass

import (
	"reflect"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// TestBridgeDeviceID checks that the installation id keeps two gateways
// apart, and that meters point at their own gateway.
func TestBridgeDeviceID(t *testing.T) {
	r := frameReading(t, "kamstrup_multical_601")
	tests := []struct {
		install, wantID string
	}{
		{"", "mbus_bridge"},
		{"0a1b2c3d4e", "mbus_bridge_0a1b2c3d4e"},
		{"My-Gateway/1", "mbus_bridge_my_gateway_1"},
	}
	for _, tt := range tests {
		o := Options{InstallationID: tt.install}
		if got := BridgeDeviceID(o); got != tt.wantID {
			t.Errorf("BridgeDeviceID(%q) = %q, want %q", tt.install, got, tt.wantID)
		}
		msg, err := BridgeConfig(o)
		if err != nil {
			t.Fatal(err)
		}
		if want := "homeassistant/device/" + tt.wantID + "/config"; msg.Topic != want {
			t.Errorf("install %q: topic %q, want %q", tt.install, msg.Topic, want)
		}
		m := decoded(t, msg)
		if ids := m["dev"].(map[string]any)["identifiers"]; !reflect.DeepEqual(ids, []any{tt.wantID}) {
			t.Errorf("install %q: identifiers %v, want [%s]", tt.install, ids, tt.wantID)
		}
		for key, c := range m["cmps"].(map[string]any) {
			cm := c.(map[string]any)
			if got, want := cm["unique_id"], tt.wantID+"_"+key; got != want {
				t.Errorf("install %q: %s unique_id %v, want %s", tt.install, key, got, want)
			}
			// Two gateways on one broker must not both claim
			// sensor.mbus_bridge_version.
			if got, want := cm["default_entity_id"], cm["p"].(string)+"."+tt.wantID+"_"+key; got != want {
				t.Errorf("install %q: %s default_entity_id %v, want %s", tt.install, key, got, want)
			}
		}
		meter, err := DeviceConfig(o, r)
		if err != nil {
			t.Fatal(err)
		}
		if via := decoded(t, meter)["dev"].(map[string]any)["via_device"]; via != tt.wantID {
			t.Errorf("install %q: meter via_device %v, want %s", tt.install, via, tt.wantID)
		}
	}
}

// TestBridgeEntities checks each of the gateway's entities.
func TestBridgeEntities(t *testing.T) {
	msg, err := BridgeConfig(Options{TopicPrefix: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	cmps := decoded(t, msg)["cmps"].(map[string]any)
	bridgeOnly := []any{map[string]any{"topic": "gw/bridge/state"}}
	tests := map[string]map[string]any{
		"outbox_depth": {"p": "sensor", "state_topic": "gw/bridge/outbox_depth", "state_class": "measurement", "entity_category": "diagnostic"},
		"delivered":    {"p": "sensor", "state_topic": "gw/bridge/delivered", "state_class": "total_increasing"},
		"response_time": {"p": "sensor", "state_topic": "gw/bridge/response_time", "device_class": "duration",
			"unit_of_measurement": "s", "suggested_display_precision": float64(2)},
		"last_scan": {"p": "sensor", "device_class": "timestamp", "suggested_display_precision": nil},
		"version":   {"p": "sensor", "state_topic": "gw/bridge/version", "state_class": nil, "unit_of_measurement": nil},
		"scan":      {"p": "button", "command_topic": "gw/bridge/scan/set", "payload_press": "PRESS", "state_topic": nil},
		"read_all":  {"p": "button", "command_topic": "gw/bridge/read_all/set", "entity_category": nil},
		"log_level": {"p": "select", "state_topic": "gw/bridge/log_level", "command_topic": "gw/bridge/log_level/set",
			"options": []any{"trace", "debug", "info", "warning", "error"}, "entity_category": "config"},
	}
	for key, fields := range tests {
		c, ok := cmps[key].(map[string]any)
		if !ok {
			t.Errorf("%s missing", key)
			continue
		}
		for f, want := range fields {
			if got := c[f]; !reflect.DeepEqual(got, want) {
				t.Errorf("%s.%s = %v, want %v", key, f, got, want)
			}
		}
		if got := c["availability"]; !reflect.DeepEqual(got, bridgeOnly) {
			t.Errorf("%s.availability = %v, want %v", key, got, bridgeOnly)
		}
	}
	if _, ok := cmps["connectivity"].(map[string]any)["availability"]; ok {
		t.Error("connectivity has an availability: it would be unavailable exactly when it should say offline")
	}
}

// TestMeterExtras checks the gateway's entities on a meter's device: they
// depend on the bridge only, never expire, and a record with the same key
// wins.
func TestMeterExtras(t *testing.T) {
	r := frameReading(t, "kamstrup_multical_601")
	msg, err := DeviceConfig(Options{TopicPrefix: "gw", ExpireAfter: 900}, r)
	if err != nil {
		t.Fatal(err)
	}
	cmps := decoded(t, msg)["cmps"].(map[string]any)
	bridgeOnly := []any{map[string]any{"topic": "gw/bridge/state"}}
	tests := map[string]map[string]any{
		MeterRead: {"p": "button", "name": "Read now", "command_topic": "gw/kam_06855817/read/set",
			"payload_press": "PRESS", "unique_id": "mbus_kam_06855817_read", "default_entity_id": "button.mbus_kam_06855817_read"},
		MeterLastSuccess: {"p": "sensor", "device_class": "timestamp", "state_topic": "gw/kam_06855817/last_success",
			"entity_category": "diagnostic", "unique_id": "mbus_kam_06855817_last_success"},
		MeterFailures: {"p": "sensor", "state_class": "measurement", "state_topic": "gw/kam_06855817/failures",
			"entity_category": "diagnostic", "suggested_display_precision": float64(0)},
	}
	for key, fields := range tests {
		c, ok := cmps[key].(map[string]any)
		if !ok {
			t.Errorf("%s missing", key)
			continue
		}
		fields["availability"] = bridgeOnly
		fields["expire_after"] = nil
		fields["availability_mode"] = nil
		for f, want := range fields {
			if got := c[f]; !reflect.DeepEqual(got, want) {
				t.Errorf("%s.%s = %v, want %v", key, f, got, want)
			}
		}
	}

	// A record keyed "failures" keeps its own entity.
	r.Records = append(r.Records, mbus.Record{Key: MeterFailures, Quantity: "failures",
		Value: mbus.Value{Kind: mbus.KindNumber, Num: 3}, DIF: "\x01", VIF: "\x7F"})
	msg, err = DeviceConfig(Options{}, r)
	if err != nil {
		t.Fatal(err)
	}
	c := decoded(t, msg)["cmps"].(map[string]any)[MeterFailures].(map[string]any)
	if c["name"] != "Failures" || c["availability_mode"] != "all" {
		t.Errorf("record \"failures\" replaced by the gateway's entity: %v", c)
	}
}

func TestMeterTopic(t *testing.T) {
	tests := []struct {
		meter, want string
		ok          bool
	}{
		{"kam_06855817", "mbus/kam_06855817/failures", true},
		{"a/b", "", false},
		{"+", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := MeterTopic(Options{}, tt.meter, MeterFailures)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("MeterTopic(%q) = %q, %v; want %q, ok %v", tt.meter, got, err, tt.want, tt.ok)
		}
	}
	if got, want := BridgeTopic(Options{TopicPrefix: "gw"}, BridgeLogLevel), "gw/bridge/log_level"; got != want {
		t.Errorf("BridgeTopic = %q, want %q", got, want)
	}
	if got, want := CommandTopic("gw/bridge/log_level"), "gw/bridge/log_level/set"; got != want {
		t.Errorf("CommandTopic = %q, want %q", got, want)
	}
}
