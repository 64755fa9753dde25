package addon

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
)

// TestContractIsTheDaemons ties the option list these tests use to the
// daemon's own: same paths, same standalone-only options.
func TestContractIsTheDaemons(t *testing.T) {
	got := leafPaths(sortedKeys(contractDefaults))
	want := leafPaths(config.Keys())
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("option paths: got %v, want config.Keys() %v", got, want)
	}
	if got, want := fmt.Sprint(standaloneOnly), fmt.Sprint(config.StandaloneOnlyKeys()); got != want {
		t.Errorf("standalone-only options: got %s, want config.StandaloneOnlyKeys() %s", got, want)
	}
}

// supervisorWrites converts a value the way the Supervisor stores it in
// /data/options.json after validating it against the option's type
// (supervisor/addons/options.py): int and port become integers, float a
// float, match() and list() the text of the value (str(value)), the rest
// is kept.
func supervisorWrites(typ string, v any) (any, error) {
	ot, err := parseOptionType(typ)
	if err != nil {
		return nil, err
	}
	if err := ot.check(v); err != nil {
		return nil, err
	}
	switch ot.kind {
	case "int", "port":
		return int64(v.(float64)), nil
	case "match", "list":
		return fmt.Sprint(v), nil
	}
	return v, nil
}

// supervisorOptions runs a whole options mapping through supervisorWrites
// along the manifest's schema, nested dicts and lists included.
func supervisorOptions(schema any, v any, path string) (any, error) {
	switch s := schema.(type) {
	case string:
		out, err := supervisorWrites(s, v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return out, nil
	case []any:
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s: want a list", path)
		}
		out := make([]any, len(list))
		for i, el := range list {
			x, err := supervisorOptions(s[0], el, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	case map[string]any:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: want a mapping", path)
		}
		out := make(map[string]any, len(m))
		for k, x := range m {
			sub, ok := s[k]
			if !ok {
				return nil, fmt.Errorf("%s.%s: not in the schema", path, k)
			}
			y, err := supervisorOptions(sub, x, strings.TrimPrefix(path+"."+k, "."))
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: bad schema %T", path, schema)
}

// TestDaemonAcceptsSupervisorOptions writes options.json as the Supervisor
// would — from the manifest's defaults plus what a user enters — and loads
// it with the daemon's own parser. A type the Supervisor stores differently
// than the daemon reads (list() gives text, for example) fails here.
func TestDaemonAcceptsSupervisorOptions(t *testing.T) {
	m := loadYAML(t, "config.yaml")
	schema := mapAt(t, m, "schema")
	tests := []struct {
		name string
		user string // JSON the user sets on top of the defaults
	}{
		{"defaults and a serial port", `{"serial_port": "/dev/ttyUSB0"}`},
		{"TCP converter", `{"tcp_address": "192.168.1.50:10001", "response_timeout_extra": 300}`},
		{"everything set", `{
			"serial_port": "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K2B3C-if00-port0",
			"baudrate": 9600, "poll_interval": 60,
			"meters": [{"address": "5", "name": "Heat"},
			           {"address": "123456782D2C0107", "poll_interval": 300, "baudrate": 2400, "enabled": false}],
			"scan_on_start": false, "scan_mode": "primary",
			"mqtt": {"host": "core-mosquitto", "port": 1883, "username": "u", "password": "p", "tls": false},
			"topic_prefix": "home/mbus", "discovery_prefix": "homeassistant",
			"expire_after": 600, "outbox_max_rows": 1000, "outbox_max_age": 86400,
			"log_level": "debug", "log_format": "json",
			"web_allow": ["172.30.32.2", "192.168.1.0/24"]}`},
		{"several buses", `{
			"baudrate": 2400, "scan_mode": "primary",
			"buses": [{"name": "plant_room", "serial_port": "/dev/ttyUSB0", "baudrate": 9600,
			           "meters": [{"address": "5", "baudrate": 300, "key": "000102030405060708090A0B0C0D0E0F"}]},
			          {"name": "stairwell", "tcp_address": "192.168.1.50:10001", "scan_on_start": false}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := map[string]any{}
			for k, v := range mapAt(t, m, "options") {
				opts[k] = v
			}
			var user map[string]any
			if err := json.Unmarshal([]byte(tt.user), &user); err != nil {
				t.Fatal(err)
			}
			for k, v := range user {
				opts[k] = v
			}
			written, err := supervisorOptions(schema, opts, "")
			if err != nil {
				t.Fatalf("the Supervisor would refuse these options: %v", err)
			}
			data, err := json.Marshal(written)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := config.Parse(data, "options.json"); err != nil {
				t.Errorf("daemon refuses %s:\n%v", data, err)
			}
		})
	}
}

// TestSupervisorWritesListAsText pins why the daemon takes baud rates as
// text too: a list() option reaches options.json as text ("2400").
func TestSupervisorWritesListAsText(t *testing.T) {
	got, err := supervisorWrites("list(300|2400)", 2400.0)
	if err != nil {
		t.Fatal(err)
	}
	if got != "2400" {
		t.Errorf("got %#v, want \"2400\"", got)
	}
}

// TestDaemonRefusesWhatSchemaAllows lists options that pass the add-on's
// schema but not the daemon's checks: the rules a Supervisor schema cannot
// express. The daemon must name the option.
func TestDaemonRefusesWhatSchemaAllows(t *testing.T) {
	tests := []struct{ name, options, want string }{
		{"baud rate between the standard ones", `{"serial_port": "/dev/ttyUSB0", "baudrate": 2401}`, "baudrate"},
		{"serial port and TCP address", `{"serial_port": "/dev/ttyUSB0", "tcp_address": "10.0.0.5:10001"}`, "tcp_address"},
		{"neither serial port nor TCP address", `{}`, "serial_port"},
		{"duplicate meter", `{"serial_port": "/dev/ttyUSB0", "meters": [{"address": "5"}, {"address": "005"}]}`, "meters"},
		{"buses and serial port", `{"serial_port": "/dev/ttyUSB0", "buses": [{"name": "a", "serial_port": "/dev/ttyUSB1"}]}`, "serial_port: buses is set too"},
		{"two buses of one name", `{"buses": [{"name": "a", "serial_port": "/dev/ttyUSB0"}, {"name": "a", "tcp_address": "h:1"}]}`, "buses[1].name"},
		{"short meter key", `{"serial_port": "/dev/ttyUSB0", "meters": [{"address": "5", "key": "0011"}]}`, "meters[0].key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.options), "options.json")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
