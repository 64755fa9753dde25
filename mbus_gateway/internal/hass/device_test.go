package hass

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading/readingtest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

var readTime = time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)

// frameReading decodes a libmbus test frame into the reading the poller
// would store for it.
func frameReading(t *testing.T, name string) reading.Reading {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "mbus", "testdata", "libmbus", "test-frames", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := mbus.ParseHex(string(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	tg, err := mbus.ParseTelegram(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(tg.Records) == 0 {
		t.Fatalf("%s: no records decoded", name)
	}
	addr := strconv.Itoa(int(tg.A))
	return reading.Reading{
		Meter:   reading.MeterID(tg.Header, addr),
		Address: addr,
		Time:    readTime,
		Header:  tg.Header,
		Records: tg.Records,
	}
}

var goldenOptions = Options{OriginSW: "1.0.0", OriginURL: "https://github.com/mbus-gateway/mbus-gateway"}

func TestGoldenDeviceConfig(t *testing.T) {
	frames := []struct{ golden, frame string }{
		{"heat_kamstrup_multical_601", "kamstrup_multical_601"},
		{"water_itron_cyble", "itron_cyble_m-bus_v1.4_water"},
		{"gas_itron_cyble", "itron_cyble_m-bus_v1.4_gas"},
		{"electricity_kamstrup_382", "kamstrup_382_005"},
		{"hca_relay_padpuls3", "rel_padpuls3"},
	}
	for _, f := range frames {
		t.Run(f.golden, func(t *testing.T) {
			r := frameReading(t, f.frame)
			msg, err := DeviceConfig(goldenOptions, r)
			if err != nil {
				t.Fatal(err)
			}
			if want := "homeassistant/device/" + r.Meter + "/config"; msg.Topic != want || !msg.Retain {
				t.Errorf("topic %q retain %v, want %q retained", msg.Topic, msg.Retain, want)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, msg.Payload, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", "golden", f.golden+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, pretty.Bytes(), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("payload differs from %s (run with -update after checking):\n%s", path, pretty.Bytes())
			}
		})
	}
}

// decoded unmarshals a discovery payload.
func decoded(t *testing.T, msg Message) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(msg.Payload, &m); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, msg.Payload)
	}
	return m
}

func TestDeviceConfigContents(t *testing.T) {
	r := frameReading(t, "kamstrup_multical_601")
	for _, expire := range []int{0, 900} {
		o := Options{TopicPrefix: "site/mbus", ExpireAfter: expire, OriginSW: "2.1.0"}
		msg, err := DeviceConfig(o, r)
		if err != nil {
			t.Fatal(err)
		}
		m := decoded(t, msg)
		dev := m["dev"].(map[string]any)
		wantDev := map[string]any{
			"identifiers": []any{"mbus_kam_06855817"}, "name": "Kamstrup heat meter 06855817",
			"manufacturer": "Kamstrup", "model": "heat meter (version 8)", "serial_number": "06855817",
			"sw_version": "8", "via_device": "mbus_bridge",
		}
		if !reflect.DeepEqual(dev, wantDev) {
			t.Errorf("dev = %v\nwant %v", dev, wantDev)
		}
		if got, want := m["o"], map[string]any{"name": "mbus-gateway", "sw": "2.1.0"}; !reflect.DeepEqual(got, want) {
			t.Errorf("o = %v, want %v", got, want)
		}
		cmps := m["cmps"].(map[string]any)
		states := States(o, r)
		// The gateway's own per-meter entities are checked in
		// TestMeterExtras.
		extras := map[string]bool{MeterRead: true, MeterLastSuccess: true, MeterFailures: true}
		if len(cmps) != len(states)+len(extras) {
			t.Errorf("%d components, %d state messages and %d extras", len(cmps), len(states), len(extras))
		}
		stateTopics := map[string]bool{}
		for _, s := range states {
			stateTopics[s.Topic] = true
		}
		for key, v := range cmps {
			if extras[key] {
				continue
			}
			c := v.(map[string]any)
			id := "mbus_kam_06855817_" + key
			checks := []struct {
				field string
				want  any
			}{
				{"p", "sensor"},
				{"unique_id", id},
				{"default_entity_id", "sensor." + id},
				{"state_topic", "site/mbus/kam_06855817/" + key},
				{"availability_mode", "all"},
				{"availability", []any{
					map[string]any{"topic": "site/mbus/bridge/state"},
					map[string]any{"topic": "site/mbus/kam_06855817/availability"},
				}},
			}
			for _, ch := range checks {
				if !reflect.DeepEqual(c[ch.field], ch.want) {
					t.Errorf("%s.%s = %v, want %v", key, ch.field, c[ch.field], ch.want)
				}
			}
			if got, ok := c["expire_after"]; expire == 0 && ok || expire > 0 && got != float64(expire) {
				t.Errorf("%s.expire_after = %v, want %d (absent for 0)", key, got, expire)
			}
			if !stateTopics[c["state_topic"].(string)] {
				t.Errorf("%s: no state message on %s", key, c["state_topic"])
			}
		}
		names := map[string]string{
			"energy": "Energy", "energy_t1": "Energy (tariff 1)", "volume_s1": "Volume (storage 1)",
			"flow_temperature": "Flow temperature", "power_max": "Power (maximum)",
			"volume_u1": "Volume (subunit 1)", "last_read": "Last read",
		}
		for key, want := range names {
			if got := cmps[key].(map[string]any)["name"]; got != want {
				t.Errorf("%s.name = %v, want %q", key, got, want)
			}
		}
		lastRead := cmps["last_read"].(map[string]any)
		if lastRead["device_class"] != "timestamp" || lastRead["entity_category"] != "diagnostic" {
			t.Errorf("last_read = %v, want a diagnostic timestamp", lastRead)
		}
	}
}

func TestStates(t *testing.T) {
	r := frameReading(t, "kamstrup_multical_601")
	got := map[string]string{}
	for _, m := range States(Options{}, r) {
		if !m.Retain {
			t.Errorf("%s not retained", m.Topic)
		}
		got[m.Topic] = string(m.Payload)
	}
	want := map[string]string{
		"mbus/kam_06855817/energy":           "37351",
		"mbus/kam_06855817/volume":           "561.08",
		"mbus/kam_06855817/flow_temperature": "101.69",
		"mbus/kam_06855817/date_s1":          "2010-12-31",
		"mbus/kam_06855817/date_time":        "2011-01-05T15:26:00",
		"mbus/kam_06855817/last_read":        "2026-03-01T12:30:00Z",
		"mbus/kam_06855817/access_number":    strconv.Itoa(int(r.Header.AccessNumber)),
	}
	for topic, w := range want {
		if got[topic] != w {
			t.Errorf("%s = %q, want %q", topic, got[topic], w)
		}
	}
}

// TestSameConfigAfterStore checks that a reading read back from the store
// (through its JSON form, where dates become text) gives the same entities.
func TestSameConfigAfterStore(t *testing.T) {
	for _, name := range []string{"kamstrup_multical_601", "rel_padpuls3"} {
		r := frameReading(t, name)
		back := readingtest.RoundTrip(t, r)
		a, errA := DeviceConfig(Options{}, r)
		c, errC := DeviceConfig(Options{}, back)
		if errA != nil || errC != nil || !bytes.Equal(a.Payload, c.Payload) {
			t.Errorf("%s: config differs after a JSON round trip (%v, %v)", name, errA, errC)
		}
	}
}

func TestRemoveDevice(t *testing.T) {
	tests := []struct {
		opts  Options
		meter string
		want  Message
	}{
		{Options{}, "kam_06855817", Message{Topic: "homeassistant/device/kam_06855817/config", Payload: []byte{}, Retain: true}},
		{Options{DiscoveryPrefix: "ha"}, "addr_5", Message{Topic: "ha/device/addr_5/config", Payload: []byte{}, Retain: true}},
		{Options{}, "a/b", Message{}},
		{Options{}, "#", Message{}},
		{Options{}, "", Message{}},
		{Options{DiscoveryPrefix: "ha/+"}, "kam_1", Message{}},
	}
	for _, tt := range tests {
		if got := RemoveDevice(tt.opts, tt.meter); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("RemoveDevice(%+v, %q) = %+v, want %+v", tt.opts, tt.meter, got, tt.want)
		}
	}
}

func TestBridgeConfig(t *testing.T) {
	msg, err := BridgeConfig(Options{TopicPrefix: "gw", OriginSW: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	if msg.Topic != "homeassistant/device/mbus_bridge/config" || !msg.Retain {
		t.Errorf("topic %q retain %v", msg.Topic, msg.Retain)
	}
	m := decoded(t, msg)
	c := m["cmps"].(map[string]any)["connectivity"].(map[string]any)
	want := map[string]any{
		"p": "binary_sensor", "name": "Connectivity", "unique_id": "mbus_bridge_connectivity",
		"default_entity_id": "binary_sensor.mbus_bridge_connectivity", "state_topic": "gw/bridge/state",
		"device_class": "connectivity", "payload_on": "online", "payload_off": "offline",
		"entity_category": "diagnostic",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("connectivity = %v\nwant %v", c, want)
	}
	if ids := m["dev"].(map[string]any)["identifiers"]; !reflect.DeepEqual(ids, []any{BridgeID}) {
		t.Errorf("bridge identifiers = %v", ids)
	}
}

func TestBadOptions(t *testing.T) {
	r := frameReading(t, "kamstrup_multical_601")
	for _, o := range []Options{
		{DiscoveryPrefix: "home/+/x"},
		{DiscoveryPrefix: "#"},
		{TopicPrefix: "mbus/"},
		{TopicPrefix: "/mbus"},
		{TopicPrefix: "$SYS"},
		{TopicPrefix: "a\x00b"},
		{ExpireAfter: -1},
	} {
		if _, err := DeviceConfig(o, r); err == nil {
			t.Errorf("DeviceConfig(%+v) succeeded", o)
		}
		if _, err := BridgeConfig(o); err == nil {
			t.Errorf("BridgeConfig(%+v) succeeded", o)
		}
		if got := States(o, r); got != nil {
			t.Errorf("States(%+v) = %d messages, want none", o, len(got))
		}
	}
}

func TestHostileReadings(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	base := frameReading(t, "kamstrup_multical_601")
	unsafeMeters := []string{"", "a/b", "kam+1", "kam#", "kam\n1", "$SYS", long}
	for _, meter := range unsafeMeters {
		r := base
		r.Meter = meter
		if _, err := DeviceConfig(Options{}, r); !errors.Is(err, ErrUnsafeTopic) {
			t.Errorf("DeviceConfig(meter %.20q) = %v, want ErrUnsafeTopic", meter, err)
		}
		if got := States(Options{}, r); got != nil {
			t.Errorf("States(meter %.20q) = %d messages, want none", meter, len(got))
		}
	}

	unsafeKeys := []string{"a/b", "+", "#", "x\x00", "$x", long}
	for _, key := range unsafeKeys {
		r := base
		r.Records = append([]mbus.Record{numRec("energy", "kWh")}, base.Records...)
		r.Records[0].Key = key
		if _, err := DeviceConfig(Options{}, r); !errors.Is(err, ErrUnsafeTopic) {
			t.Errorf("DeviceConfig(key %.20q) = %v, want ErrUnsafeTopic", key, err)
		}
		for _, m := range States(Options{}, r) {
			checkMeterTopic(t, m.Topic, r.Meter)
		}
	}

	// Text fields are cleaned and cut, and the JSON stays valid.
	r := base
	r.Name = "Boiler\x00 \"room\"\n" + long
	r.Header.Manufacturer = "K\"A\\M\x07"
	r.Header.ID = "</script>\u2028"
	r.Records = append([]mbus.Record{{
		Key: "text", Quantity: "cust_id", Value: mbus.Value{Kind: mbus.KindText, Text: long + "\x1b[2J"},
	}}, base.Records...)
	msg, err := DeviceConfig(Options{}, r)
	if err != nil {
		t.Fatal(err)
	}
	m := decoded(t, msg)
	dev := m["dev"].(map[string]any)
	name := dev["name"].(string)
	if n := utf8.RuneCountInString(name); n > maxNameLen || !strings.HasPrefix(name, `Boiler "room"`) || !strings.HasSuffix(name, "…") {
		t.Errorf("device name %q (%d runes): want cleaned, cut to %d with an ellipsis", name, n, maxNameLen)
	}
	for _, field := range []string{"manufacturer", "serial_number", "name"} {
		if s := dev[field].(string); strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) {
			t.Errorf("dev.%s = %q keeps control characters", field, s)
		}
	}
	for _, s := range States(Options{}, r) {
		checkMeterTopic(t, s.Topic, r.Meter)
	}
}

// checkMeterTopic fails unless topic is mbus/<meter>/<one safe level>.
func checkMeterTopic(t *testing.T, topic, meter string) {
	t.Helper()
	rest, ok := strings.CutPrefix(topic, "mbus/"+meter+"/")
	if !ok || checkLevel(rest) != nil {
		t.Errorf("state topic %q outside mbus/%s/<key>", topic, meter)
	}
}

func TestDeviceNames(t *testing.T) {
	short := reading.Reading{Meter: "addr_5", Address: "5", Time: readTime, Records: []mbus.Record{numRec("energy", "kWh")}}
	named := frameReading(t, "kamstrup_382_005")
	named.Name = "  Main supply  "
	unknown := frameReading(t, "kamstrup_382_005")
	unknown.Header.Manufacturer = "XYZ"
	tests := []struct {
		name string
		r    reading.Reading
		want map[string]any
	}{
		{"short header", short, map[string]any{
			"identifiers": []any{"mbus_addr_5"}, "name": "M-Bus meter at address 5", "via_device": "mbus_bridge",
		}},
		{"user name", named, map[string]any{
			"identifiers": []any{"mbus_kam_14839120"}, "name": "Main supply", "manufacturer": "Kamstrup",
			"model": "electricity meter (version 1)", "serial_number": "14839120", "sw_version": "1",
			"via_device": "mbus_bridge",
		}},
		{"unknown manufacturer", unknown, map[string]any{
			"identifiers": []any{"mbus_kam_14839120"}, "name": "XYZ electricity meter 14839120", "manufacturer": "XYZ",
			"model": "electricity meter (version 1)", "serial_number": "14839120", "sw_version": "1",
			"via_device": "mbus_bridge",
		}},
	}
	for _, tt := range tests {
		msg, err := DeviceConfig(Options{}, tt.r)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := decoded(t, msg)["dev"]; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: dev = %v\nwant %v", tt.name, got, tt.want)
		}
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"Energy", 64, "Energy"},
		{"a\x00b\nc", 64, "abc"},
		{"abcdef", 4, "abc…"},
		{"abcd", 4, "abcd"},
		{"äöüßé", 3, "äö…"},
		{"bad \xff utf8", 64, "bad  utf8"},
		{"  padded  ", 64, "padded"},
	}
	for _, tt := range tests {
		if got := cleanText(tt.in, tt.max); got != tt.want {
			t.Errorf("cleanText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func FuzzDeviceConfig(f *testing.F) {
	f.Add("kam_06855817", "Heat", "KAM", "06855817", "energy", "energy", "kWh", "x")
	f.Add("a/b", "\x00", "K/M", "+", "#", "", "m³", "2026-01-01")
	f.Fuzz(func(t *testing.T, meter, name, mfr, id, key, quantity, unit, text string) {
		r := reading.Reading{
			Meter: meter, Name: name, Time: readTime,
			Header: mbus.Header{Manufacturer: mfr, ID: id, Medium: mediumWater},
			Records: []mbus.Record{
				{Key: key, Quantity: quantity, Unit: unit, Value: mbus.Value{Kind: mbus.KindNumber, Num: 1}},
				{Key: key + "_t", Quantity: quantity, Value: mbus.Value{Kind: mbus.KindText, Text: text}},
			},
		}
		msg, err := DeviceConfig(Options{}, r)
		if err == nil {
			if !json.Valid(msg.Payload) {
				t.Fatalf("invalid JSON for %+v", r)
			}
			if msg.Topic != "homeassistant/device/"+meter+"/config" || checkLevel(meter) != nil {
				t.Fatalf("topic %q for meter %q", msg.Topic, meter)
			}
		}
		for _, s := range States(Options{}, r) {
			checkMeterTopic(t, s.Topic, meter)
		}
	})
}
