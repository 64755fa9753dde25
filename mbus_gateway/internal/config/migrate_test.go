package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/migrate")

// TestMigrateGolden converts every old configuration in testdata/migrate
// and compares output and notes with the golden files next to it
// (regenerate with go test ./mbus_gateway/internal/config -run Golden -update).
// The output must load.
func TestMigrateGolden(t *testing.T) {
	for _, old := range []string{"old-v1.json", "old-v2.yaml", "old-v1-tcp.json", "old-v2-mixed.json"} {
		t.Run(old, func(t *testing.T) {
			path := filepath.Join("testdata", "migrate", old)
			out, notes, err := Migrate(readFixture(t, path), path)
			base := strings.TrimSuffix(path, filepath.Ext(path))
			golden(t, base+".options.yaml", out)
			golden(t, base+".notes.txt", []byte(strings.Join(notes, "\n")+"\n"))
			// What could not be converted is an error; a file without
			// such problems has no golden error.
			if err != nil {
				golden(t, base+".error.txt", []byte(err.Error()+"\n"))
			} else if _, statErr := os.Stat(base + ".error.txt"); statErr == nil && !*update {
				t.Errorf("got no error, want the one in %s.error.txt", base)
			}

			loaded, err := Load(writeOptions(t, "options.yaml", string(out)))
			if err != nil {
				t.Fatalf("converted options do not load: %v", err)
			}
			if len(loaded.Meters) == 0 {
				t.Error("got no meters, want the old known devices")
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readFixture(t, path)
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update after checking):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestMigrateKeepsEveryOldKey: every key of the old files is either
// converted or named in a note, none disappears silently.
func TestMigrateKeepsEveryOldKey(t *testing.T) {
	for _, old := range []string{"old-v1.json", "old-v2.yaml", "old-v2-mixed.json"} {
		path := filepath.Join("testdata", "migrate", old)
		data := readFixture(t, path)
		out, notes, err := Migrate(data, path)
		text := string(out) + strings.Join(notes, "\n")
		if err != nil {
			text += "\n" + err.Error()
		}
		tree, err := readTree(data, path)
		if err != nil {
			t.Fatal(err)
		}
		// Every key must show up by name (in the output or a note), unless
		// its new name differs or a note dropped its whole section.
		walkKeys(tree, "", func(path, key string) {
			if converted[key] || strings.Contains(text, key) {
				return
			}
			for p := path; p != ""; p = parent(p) {
				if strings.Contains(text, "dropped: "+p+" ") || strings.Contains(text, "\n"+p+": ") {
					return
				}
			}
			t.Errorf("%s: old key %q is neither converted nor noted", old, path)
		})
	}
}

func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// converted are old key names whose new name differs.
var converted = map[string]bool{
	"mqtt_broker": true, "broker": true, "mqtt_port": true, "mqtt_username": true, "mqtt_password": true,
	"mbus_port": true, "mbus_baudrate": true, "known_devices": true, "devices": true, "enabled": true,
	"read_interval": true, "poll_interval_seconds": true, "level": true, "format": true, "mqtt_topic": true,
	"mqtt": true, "mbus": true, "logging": true, "health": true,
}

// walkKeys calls fn with the path and name of every key in v.
func walkKeys(v any, prefix string, fn func(path, key string)) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			fn(prefix+k, k)
			walkKeys(e, prefix+k+".", fn)
		}
	case []any:
		for i, e := range t {
			walkKeys(e, index(strings.TrimSuffix(prefix, "."), i)+".", fn)
		}
	}
}

func TestMigrateErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"options.json", `{"serial_port": "/dev/ttyUSB0"}`,
			"migrate: options.json is already in the options format: check it with validate-config"},
		{"other.yaml", "foo: 1\n",
			"migrate: other.yaml is not a configuration of the older gateway: want v1 (mqtt_broker, mbus_port, known_devices, …) or v2 (sections mqtt:, mbus:)"},
		{"broken.json", `{"mqtt_broker": }`,
			"migrate: broken.json: line 1, column 17: invalid character '}' looking for beginning of value"},
		{"no-bus.json", `{"mqtt_broker": "10.0.0.2", "known_devices": [{"address": 1}]}`,
			"migrate: the converted options need fixing:\n" +
				"serial_port: set serial_port (a device such as /dev/ttyUSB0) or tcp_address (host:port of an M-Bus-to-TCP converter)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := Migrate([]byte(tt.data), tt.name)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got error %q, want %q", got, tt.want)
			}
			// An incomplete result is still handed out for the user to fix.
			if tt.name == "no-bus.json" && !bytes.Contains(out, []byte("host: 10.0.0.2")) {
				t.Errorf("got output %q, want the converted options", out)
			}
		})
	}
}

func TestMigrateNotes(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string
	}{
		{"pyserial.json", `{"mbus_port": "rfc2217://10.0.0.9:4001", "log_level": "CRITICAL", "mqtt_qos": 2}`, []string{
			`mbus_port: "rfc2217://10.0.0.9:4001" → tcp_address 10.0.0.9:4001`,
			"mbus_port: RFC 2217 is not spoken; the converter must also accept raw TCP on that port",
			"dropped: mqtt_qos (readings are always published with QoS 1)",
		}},
		{"plain.json", `{"mbus_port": "10.0.0.9:4001", "mbus_baudrate": "9600", "known_devices": [{"secondary_address": "12345678A511040C"}]}`, []string{
			`mbus_port: "10.0.0.9:4001" is not a device path, taken as tcp_address`,
			`known_devices[0].secondary_address → address "12345678A511040C"`,
		}},
		{"health-off.yaml", "mbus:\n  device: /dev/ttyAMA0\nhealth:\n  enabled: false\n  port: 8080\nlogging:\n  format: colored\n", []string{
			`logging.format: "colored" → text`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, notes, err := Migrate([]byte(tt.data), tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(notes, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got notes\n%s\nwant\n%s", strings.Join(notes, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestMigrateNeverDropsSilently: whatever cannot be converted (a meter
// above all) makes an error that names it; the rest is still converted.
func TestMigrateNeverDropsSilently(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string // the lines after "migrate: could not convert:"
		meters     int      // meters in the output
	}{
		{"meters.json", `{"mbus_port": "/dev/ttyUSB0", "known_devices": [
			{"address": 5}, {"address": "005"}, {"address": 251}, {"name": "no address"}, 7, {"address": "abc"},
			{"address": "6", "enabled": "maybe"}]}`, []string{
			`known_devices[1]: address 5 repeats known_devices[0]: keep one of them`,
			`known_devices[2]: address "251" is out of range: primary addresses go from 0 to 250`,
			`known_devices[3]: the meter has no address`,
			`known_devices[4]: want a meter (an object with an address), got 7`,
			`known_devices[5]: address "abc" is not an address: want a primary address "0" to "250" or a 16-hex-digit secondary address`,
			`known_devices[6].enabled: "maybe" is not true or false`,
		}, 2},
		{"two lists.yaml", "mbus:\n  port: /dev/ttyUSB0\n  devices:\n    - address: 1\nmeters:\n  - address: \"1\"\n  - address: \"2\"\ndevices: oops\n", []string{
			`devices: want a list of meters, got "oops"`,
			`meters[0]: address 1 repeats mbus.devices[0]: keep one of them`,
		}, 2},
		{"conflict.json", `{"mqtt": {"broker": "a"}, "mqtt_broker": "b", "mbus": {"port": "/dev/ttyUSB0", "baudrate": 2400}, "mbus_baudrate": "2400", "log_level": "LOUD"}`, []string{
			`mqtt_broker: mqtt.broker is set too, to another value: keep one of them`,
			`log_level: "LOUD" is not a log level`,
		}, 0},
		{"unknown.yaml", "mbus:\n  port: /dev/ttyUSB0\n  colour: blue\nmqtt:\n  password: [1, 2]\n", []string{
			"mqtt.password: want text, got a list",
			"mbus.colour: no setting of the older gateway that migrate-config knows: convert it by hand or remove it",
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := Migrate([]byte(tt.data), tt.name)
			want := "migrate: could not convert:\n" + strings.Join(tt.want, "\n")
			if err == nil || err.Error() != want {
				t.Errorf("got error\n%v\nwant\n%s", err, want)
			}
			o, perr := Parse(out, "converted.yaml")
			if perr != nil {
				t.Fatalf("the rest does not load: %v\n%s", perr, out)
			}
			if len(o.Meters) != tt.meters {
				t.Errorf("got %d meters, want %d:\n%s", len(o.Meters), tt.meters, out)
			}
		})
	}
}

// TestMigrateMixedShapes: a v2 file with flat keys beside its sections
// (issue: top-level meters and log_level were dropped as unknown).
func TestMigrateMixedShapes(t *testing.T) {
	out, notes, err := Migrate([]byte(`{"mqtt": {"broker": "10.0.0.2"}, "mbus": {"port": "/dev/ttyUSB0"},
		"meters": [{"address": "3", "name": "a"}], "log_level": "warn", "mqtt_port": 1884, "web_allow": ["10.0.0.0/8"]}`), "mixed.json")
	if err != nil {
		t.Fatalf("%v (notes %q)", err, notes)
	}
	o, err := Parse(out, "converted.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Meters) != 1 || o.Meters[0].Name != "a" || o.LogLevel != "warning" || o.MQTT.Port != 1884 || o.MQTT.Host != "10.0.0.2" ||
		len(o.WebAllow) != 1 || o.WebAllow[0].String() != "10.0.0.0/8" {
		t.Errorf("got %+v from\n%s", o, out)
	}
}
