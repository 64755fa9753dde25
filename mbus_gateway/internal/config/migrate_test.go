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
	for _, old := range []string{"old-v1.json", "old-v2.yaml", "old-v1-tcp.json"} {
		t.Run(old, func(t *testing.T) {
			path := filepath.Join("testdata", "migrate", old)
			out, notes, err := Migrate(readFixture(t, path), path)
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(path, filepath.Ext(path))
			golden(t, base+".options.yaml", out)
			golden(t, base+".notes.txt", []byte(strings.Join(notes, "\n")+"\n"))

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
	for _, old := range []string{"old-v1.json", "old-v2.yaml"} {
		path := filepath.Join("testdata", "migrate", old)
		data := readFixture(t, path)
		out, notes, err := Migrate(data, path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(out) + strings.Join(notes, "\n")
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
				if strings.Contains(text, "dropped: "+p+" ") {
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
		{"plain.json", `{"mbus_port": "10.0.0.9:4001", "mbus_baudrate": "9600", "known_devices": [{"secondary_address": "12345678A511040C", "enabled": "maybe"}, 5]}`, []string{
			`mbus_port: "10.0.0.9:4001" is not a device path, taken as tcp_address`,
			`known_devices[0].secondary_address → address "12345678A511040C"`,
			`dropped: known_devices[0].enabled ("maybe" is not true or false)`,
			"dropped: known_devices[1] (want a device object, got 5)",
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
