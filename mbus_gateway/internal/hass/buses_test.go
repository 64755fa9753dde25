package hass

import (
	"slices"
	"sort"
	"testing"
)

// A gateway with several buses has the bus entities once per bus, each
// on the bus's own topics, and the gateway-wide ones once.
func TestBridgeConfigBuses(t *testing.T) {
	msg, err := BridgeConfig(Options{TopicPrefix: "gw", Buses: []string{"cellar", "stair-a"}})
	if err != nil {
		t.Fatal(err)
	}
	cmps := decoded(t, msg)["cmps"].(map[string]any)
	var keys []string
	for k := range cmps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range []string{"bus_cellar", "bus_stair_a", "bus_state_cellar", "bus_timeouts_stair_a", "scan_cellar", "scan_stair_a", "last_scan_cellar", "outbox_depth", "read_all", "log_level", "connectivity"} {
		if !slices.Contains(keys, k) {
			t.Errorf("components lack %s: %q", k, keys)
		}
	}
	for _, k := range []string{"bus", "bus_state", "scan", "bus_timeouts", "last_scan", "meters_found"} {
		if slices.Contains(keys, k) {
			t.Errorf("components have the single-bus %s: %q", k, keys)
		}
	}
	scan := cmps["scan_stair_a"].(map[string]any)
	if got, want := scan["command_topic"], "gw/bridge/bus/stair-a/scan/set"; got != want {
		t.Errorf("scan of stair-a: command topic %v, want %s", got, want)
	}
	if got, want := scan["name"], "Scan bus (stair-a)"; got != want {
		t.Errorf("scan of stair-a: name %v, want %s", got, want)
	}
	state := cmps["bus_state_cellar"].(map[string]any)
	if got, want := state["state_topic"], "gw/bridge/bus/cellar/bus_state"; got != want {
		t.Errorf("bus state of cellar: state topic %v, want %s", got, want)
	}
	if got, want := state["unique_id"], "mbus_bridge_bus_state_cellar"; got != want {
		t.Errorf("bus state of cellar: unique_id %v, want %s", got, want)
	}
	if _, err := BridgeConfig(Options{Buses: []string{"a/b"}}); err == nil {
		t.Error("BridgeConfig with a bus name that is no topic level succeeded")
	}
}
