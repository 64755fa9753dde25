package bridge

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging/logtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// TestDiscoveryDescribesBridgeEntities checks the retained discovery of
// the gateway's device: its identifier carries the installation id, and
// every entity has the platform, classes, category and topics that make
// it work in Home Assistant.
func TestDiscoveryDescribesBridgeEntities(t *testing.T) {
	h := start(t, Options{}, nil)
	const topic = "homeassistant/device/mbus_bridge_0123456789/config"
	h.rec.WaitFor(topic, nil, waitTimeout)
	m := h.retained(t, topic, nil)
	var cfg struct {
		Dev struct {
			Identifiers []string `json:"identifiers"`
			SWVersion   string   `json:"sw_version"`
		} `json:"dev"`
		Cmps map[string]map[string]any `json:"cmps"`
	}
	if err := json.Unmarshal(m.Payload, &cfg); err != nil {
		t.Fatalf("discovery payload: %v\n%s", err, m.Payload)
	}
	if want := []string{"mbus_bridge_0123456789"}; !reflect.DeepEqual(cfg.Dev.Identifiers, want) {
		t.Errorf("identifiers: got %v, want %v", cfg.Dev.Identifiers, want)
	}
	if cfg.Dev.SWVersion != "1.2.3" {
		t.Errorf("sw_version: got %q, want 1.2.3", cfg.Dev.SWVersion)
	}
	// Fields that must be present with these values; "" means absent.
	type want struct {
		platform, deviceClass, stateClass, category, unit, stateTopic, commandTopic string
	}
	tests := map[string]want{
		"connectivity":        {"binary_sensor", "connectivity", "", "diagnostic", "", "mbus/bridge/state", ""},
		"outbox_depth":        {"sensor", "", "measurement", "diagnostic", "", "mbus/bridge/outbox_depth", ""},
		"delivered":           {"sensor", "", "total_increasing", "diagnostic", "", "mbus/bridge/delivered", ""},
		"dropped":             {"sensor", "", "total_increasing", "diagnostic", "", "mbus/bridge/dropped", ""},
		"bus_timeouts":        {"sensor", "", "total_increasing", "diagnostic", "", "mbus/bridge/bus_timeouts", ""},
		"bus_checksum_errors": {"sensor", "", "total_increasing", "diagnostic", "", "mbus/bridge/bus_checksum_errors", ""},
		"bus_collisions":      {"sensor", "", "total_increasing", "diagnostic", "", "mbus/bridge/bus_collisions", ""},
		"bus_echoes":          {"sensor", "", "total_increasing", "diagnostic", "", "mbus/bridge/bus_echoes", ""},
		"bus":                 {"binary_sensor", "connectivity", "", "diagnostic", "", "mbus/bridge/bus", ""},
		"bus_state":           {"sensor", "enum", "", "diagnostic", "", "mbus/bridge/bus_state", ""},
		"response_time":       {"sensor", "duration", "measurement", "diagnostic", "s", "mbus/bridge/response_time", ""},
		"last_scan":           {"sensor", "timestamp", "", "diagnostic", "", "mbus/bridge/last_scan", ""},
		"meters_found":        {"sensor", "", "", "diagnostic", "", "mbus/bridge/meters_found", ""},
		"version":             {"sensor", "", "", "diagnostic", "", "mbus/bridge/version", ""},
		"scan":                {"button", "", "", "config", "", "", "mbus/bridge/scan/set"},
		"read_all":            {"button", "", "", "", "", "", "mbus/bridge/read_all/set"},
		"log_level":           {"select", "", "", "config", "", "mbus/bridge/log_level", "mbus/bridge/log_level/set"},
	}
	str := func(c map[string]any, k string) string { s, _ := c[k].(string); return s }
	for key, w := range tests {
		c, ok := cfg.Cmps[key]
		if !ok {
			t.Errorf("component %q missing", key)
			continue
		}
		got := want{str(c, "p"), str(c, "device_class"), str(c, "state_class"), str(c, "entity_category"),
			str(c, "unit_of_measurement"), str(c, "state_topic"), str(c, "command_topic")}
		if got != w {
			t.Errorf("%s: got %+v, want %+v", key, got, w)
		}
		if uid, want := str(c, "unique_id"), "mbus_bridge_0123456789_"+key; uid != want {
			t.Errorf("%s: unique_id %q, want %q", key, uid, want)
		}
	}
	if n := len(cfg.Cmps); n != len(tests) {
		t.Errorf("%d components, want %d", n, len(tests))
	}
	if got := cfg.Cmps["scan"]["payload_press"]; got != "PRESS" {
		t.Errorf("scan payload_press: got %v, want PRESS", got)
	}
	if got, want := cfg.Cmps["bus_state"]["options"], []any{"up", "suspect", "down", "reopening"}; !reflect.DeepEqual(got, want) {
		t.Errorf("bus_state options: got %v, want %v", got, want)
	}
	opts, _ := cfg.Cmps["log_level"]["options"].([]any)
	if want := []any{"trace", "debug", "info", "warning", "error"}; !reflect.DeepEqual(opts, want) {
		t.Errorf("log_level options: got %v, want %v", opts, want)
	}
}

// TestCommandsDoWhatTheySay presses every button and sets the log level
// through the broker.
func TestCommandsDoWhatTheySay(t *testing.T) {
	h := start(t, Options{}, nil)
	h.rec.WaitFor("mbus/bridge/log_level", payloadIs("info"), waitTimeout)

	presses := []struct {
		topic string
		want  string
	}{
		{"mbus/bridge/scan/set", "scan"},
		{"mbus/bridge/read_all/set", "read_all"},
		{"mbus/kam_00000001/read/set", "read kam_00000001"},
	}
	for i, p := range presses {
		h.rec.Publish(p.topic, 1, false, []byte("PRESS"))
		if got := h.ctl.waitCalls(t, i+1)[i]; got != p.want {
			t.Errorf("press on %s: got call %q, want %q", p.topic, got, p.want)
		}
	}

	// The select changes a real level: debug events pass afterwards, and
	// the select's state follows.
	var out logtest.Buffer
	proc := zerolog.New(&out).Hook(h.level)
	proc.Debug().Msg("before")
	h.rec.Publish("mbus/bridge/log_level/set", 1, false, []byte("debug"))
	h.rec.WaitFor("mbus/bridge/log_level", payloadIs("debug"), waitTimeout)
	proc.Debug().Msg("after")
	if got := out.String(); strings.Contains(got, "before") || !strings.Contains(got, "after") {
		t.Errorf("process log at info then debug: got %q, want only the event after the change", got)
	}
	h.rec.Publish("mbus/bridge/log_level/set", 1, false, []byte("warning"))
	h.rec.WaitFor("mbus/bridge/log_level", payloadIs("warning"), waitTimeout)
	if got, want := h.level.LogLevel(), "warn"; got != want {
		t.Errorf("level after \"warning\": got %q, want %q", got, want)
	}
}

// TestBadCommandsChangeNothing sends every kind of bad command, then one
// good one; the good one must be the only call, and the level unchanged.
// Each distinct bad command is logged once.
func TestBadCommandsChangeNothing(t *testing.T) {
	h := start(t, Options{}, nil)
	h.rec.WaitFor("mbus/bridge/log_level", payloadIs("info"), waitTimeout)
	huge := []byte(strings.Repeat("x", 100*1024))
	bad := []struct {
		topic   string
		payload []byte
	}{
		{"mbus/bridge/log_level/set", []byte("verbose")},
		{"mbus/bridge/log_level/set", []byte("DEBUG")},
		{"mbus/bridge/log_level/set", []byte{0xff, 0x00, 0xfe}},
		{"mbus/bridge/log_level/set", []byte("")},
		{"mbus/bridge/log_level/set", huge},
		{"mbus/bridge/scan/set", []byte("press")},
		{"mbus/bridge/scan/set", []byte("{\"press\":true}")},
		{"mbus/bridge/scan/set", huge},
		{"mbus/bridge/read_all/set", []byte("1")},
		{"mbus/kam_00000001/read/set", []byte("PRESSED")},
		{"mbus/kam_00000001/read/set", huge},
		{"mbus/bridge/read/set", []byte("PRESS")},
	}
	for range 2 { // the second round must not be logged again
		for _, b := range bad {
			h.rec.Publish(b.topic, 1, false, b.payload)
		}
	}
	// A good command after the bad ones, on the same connection: once it
	// is carried out, the bad ones have been handled too.
	h.rec.Publish("mbus/bridge/read_all/set", 1, false, []byte("PRESS"))
	if got := h.ctl.waitCalls(t, 1); !slices.Equal(got, []string{"read_all"}) {
		t.Errorf("calls: got %q, want only read_all", got)
	}
	if got := h.level.LogLevel(); got != "info" {
		t.Errorf("log level: got %q, want info", got)
	}
	if got, want := h.log.Count("command ignored"), len(bad); got != want {
		t.Errorf("%d \"command ignored\" lines, want %d (one per distinct bad command):\n%s", got, want, h.log.String())
	}
	if got := h.rec.Messages("mbus/bridge/log_level"); len(got) != 1 {
		t.Errorf("log_level state published %d times, want once (unchanged)", len(got))
	}
}

// TestUnknownMeterLoggedOnce presses "Read now" of a meter the poller
// does not know, twice.
func TestUnknownMeterLoggedOnce(t *testing.T) {
	h := start(t, Options{}, nil)
	for i := range 2 {
		h.rec.Publish("mbus/xyz_1/read/set", 1, false, []byte("PRESS"))
		h.ctl.waitCalls(t, i+1)
	}
	waitUntil(t, "a log line", func() bool { return h.log.Count("no such meter") > 0 })
	h.rec.Publish("mbus/bridge/read_all/set", 1, false, []byte("PRESS"))
	h.ctl.waitCalls(t, 3)
	if got := h.log.Count("no such meter"); got != 1 {
		t.Errorf("%d lines about the unknown meter, want 1", got)
	}
}

// TestBridgeStatesFollowSources checks the values of the diagnostics and
// that a change is published without waiting for the period.
func TestBridgeStatesFollowSources(t *testing.T) {
	scanned := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := start(t, Options{Watch: 10 * time.Millisecond, Period: time.Hour}, func(s *sources) {
		s.bus = master.Stats{Timeouts: 3, ChecksumErrors: 2, Garbled: 5, Collisions: 1, Echoes: 7}
		s.health = bushealth.Snapshot{State: bushealth.Suspect}
		s.poll = poll.Snapshot{
			Scan: poll.ScanStatus{Finished: scanned, Found: 4},
			Sink: poll.SinkStatus{Dropped: 2},
			Meters: []poll.MeterStatus{
				{Meter: "kam_1", ReadSeconds: 0.5, LastSuccess: scanned},
				{Meter: "kam_2", ReadSeconds: 1.5, LastSuccess: scanned},
				{Meter: "kam_3", ReadSeconds: 9}, // never answered: not in the mean
			},
		}
	})
	for topic, want := range map[string]string{
		"mbus/bridge/version":             "1.2.3",
		"mbus/bridge/bus_timeouts":        "3",
		"mbus/bridge/bus_checksum_errors": "2",
		"mbus/bridge/bus_collisions":      "1",
		"mbus/bridge/bus_echoes":          "7",
		"mbus/bridge/response_time":       "1.000",
		"mbus/bridge/last_scan":           "2026-03-01T12:00:00Z",
		"mbus/bridge/meters_found":        "4",
		"mbus/bridge/dropped":             "2",
		"mbus/bridge/delivered":           "0",
		"mbus/bridge/outbox_depth":        "0",
		"mbus/bridge/bus":                 "ON",
		"mbus/bridge/bus_state":           "suspect",
	} {
		h.rec.WaitFor(topic, payloadIs(want), waitTimeout)
		h.retained(t, topic, payloadIs(want))
	}
	h.src.update(func(s *sources) { s.bus.Timeouts = 4 })
	h.rec.WaitFor("mbus/bridge/bus_timeouts", payloadIs("4"), waitTimeout)
	if n := len(h.rec.Messages("mbus/bridge/bus_collisions")); n != 1 {
		t.Errorf("unchanged bus_collisions published %d times, want once", n)
	}
	h.src.update(func(s *sources) { s.health.State = bushealth.Reopening })
	h.rec.WaitFor("mbus/bridge/bus_state", payloadIs("reopening"), waitTimeout)
	h.rec.WaitFor("mbus/bridge/bus", payloadIs("OFF"), waitTimeout)
}

// TestMeterDiagnosticsOnEveryPoll checks that each poll result publishes
// the meter's last success and failure count, even when they did not
// change; a meter not identified yet has no topics.
func TestMeterDiagnosticsOnEveryPoll(t *testing.T) {
	h := start(t, Options{Watch: 10 * time.Millisecond, Period: time.Hour}, nil)
	t1 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	setMeter := func(m poll.MeterStatus) {
		m.Identified = true
		unknown := poll.MeterStatus{Meter: "addr_7", Address: "7", LastRead: m.LastRead, Failures: 2}
		h.src.update(func(s *sources) { s.poll.Meters = []poll.MeterStatus{m, unknown} })
	}
	defer func() {
		if got := h.rec.Messages("mbus/addr_7/failures"); len(got) != 0 {
			t.Errorf("published %d diagnostics under the placeholder of a meter not identified", len(got))
		}
	}()
	const last, fails = "mbus/kam_00000001/last_success", "mbus/kam_00000001/failures"

	setMeter(poll.MeterStatus{Meter: "kam_00000001"}) // never read yet
	h.rec.WaitFor(last, payloadIs("None"), waitTimeout)
	h.rec.WaitFor(fails, payloadIs("0"), waitTimeout)

	steps := []struct {
		status    poll.MeterStatus
		last, fai string
	}{
		{poll.MeterStatus{Meter: "kam_00000001", LastRead: t1, LastSuccess: t1}, "2026-03-01T12:00:00Z", "0"},
		{poll.MeterStatus{Meter: "kam_00000001", LastRead: t1.Add(time.Minute), LastSuccess: t1, Failures: 1}, "2026-03-01T12:00:00Z", "1"},
		// A poll result that changes neither value: published again.
		{poll.MeterStatus{Meter: "kam_00000001", LastRead: t1.Add(2 * time.Minute), LastSuccess: t1, Failures: 1}, "2026-03-01T12:00:00Z", "1"},
	}
	for i, s := range steps {
		setMeter(s.status)
		got := h.rec.WaitCount(fails, i+2, waitTimeout)
		if p := string(got[i+1].Payload); p != s.fai {
			t.Errorf("step %d: failures %q, want %q", i, p, s.fai)
		}
		gotLast := h.rec.WaitCount(last, i+2, waitTimeout)
		if p := string(gotLast[i+1].Payload); p != s.last {
			t.Errorf("step %d: last_success %q, want %q", i, p, s.last)
		}
	}
}

// TestStatesRepublishedAfterReconnect restarts a broker that no longer
// holds the bridge's retained states: they are published again on the new
// connection, without waiting for the period.
func TestStatesRepublishedAfterReconnect(t *testing.T) {
	h := start(t, Options{Period: time.Hour}, nil)
	h.rec.WaitFor("mbus/bridge/version", payloadIs("1.2.3"), waitTimeout)
	// An empty retained message deletes the retained state; the broker
	// saves its database without it when stopped.
	h.rec.Publish("mbus/bridge/version", 1, true, nil)
	h.broker.Stop()
	h.broker.Start()
	later := mosquittotest.Subscribe(t, h.broker.URL(), "mbus/bridge/version")
	later.WaitFor("mbus/bridge/version", payloadIs("1.2.3"), waitTimeout)
}

func TestNewRejects(t *testing.T) {
	h := start(t, Options{}, nil)
	if _, err := New(Options{TopicPrefix: "a/+"}, h.client, h.ctl, h.level, Sources{}, zerolog.Nop()); err == nil {
		t.Error("New with a wildcard prefix succeeded")
	}
	if _, err := New(Options{}, nil, h.ctl, h.level, Sources{}, zerolog.Nop()); err == nil {
		t.Error("New without a publisher succeeded")
	}
}
