package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// problems splits a joined error into its lines.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func readFixture(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseBadFiles(t *testing.T) {
	const address = `want a primary address "0" to "250" or a 16-hex-digit secondary address`
	const bauds = "want one of 300, 600, 1200, 2400, 4800, 9600, 19200, 38400"
	tests := []struct {
		file string
		want []string
	}{
		{"unknown-key.json", []string{`unknown option "pol_interval" (did you mean "poll_interval"?)`}},
		{"wrong-type.json", []string{
			`unknown option "mqtt.pasword" (did you mean "mqtt.password"?)`,
			`mqtt.port: want an integer, got "abc"`,
		}},
		{"address-range.yaml", []string{`meters[2].address: "251" is out of range: primary addresses go from 0 to 250`}},
		{"duplicate-meter.yaml", []string{`meters[2].address: 5 is already meters[0]: each meter may appear once`}},
		{"both-ports.json", []string{`tcp_address: serial_port is set too: give only one of serial_port and tcp_address`}},
		{"no-port.json", []string{`serial_port: set serial_port (a device such as /dev/ttyUSB0) or tcp_address (host:port of an M-Bus-to-TCP converter)`}},
		{"malformed.json", []string{`malformed.json: line 4, column 1: invalid character '}' looking for beginning of object key string`}},
		{"duplicate-key.json", []string{`duplicate-key.json: line 4, column 3: "baudrate" is given twice`}},
		{"empty.json", []string{`empty.json: the file is empty`}},
		{"top-list.yaml", []string{`top-list.yaml: want a mapping of options at the top level, got a list`}},
		{"yaml-syntax.yaml", []string{`yaml-syntax.yaml: line 4: mapping values are not allowed in this context`}},
		{"shapes.json", []string{
			`meters: want a list, got an object`,
			`mqtt: want an object, got "broker"`,
			`serial_port: "tcp://10.0.0.5:10001" is a network address: put host:port in tcp_address instead`,
		}},
		{"password-without-user.yaml", []string{
			`mqtt.password: is set but mqtt.username is empty: MQTT sends a password only with a user name; set mqtt.username too`,
		}},
		{"tcp-no-port.yaml", []string{`tcp_address: "10.0.0.5" is not host:port: want e.g. 192.168.1.50:10001`}},
		{"numbers.yaml", []string{
			`poll_interval: 100000000000 is too large: want at most 31622400 (seconds)`,
			`tcp_address: port "99999" is out of range: want 1 to 65535`,
		}},
		{"network.yaml", []string{
			`web_allow[3]: want a string, got 5`,
			`tcp_address: "tcp://10.0.0.5:10001": want host:port without "tcp://", e.g. 10.0.0.5:10001`,
			`mqtt.host: "broker:1883" has a port: put 1883 in mqtt.port`,
			`metrics_port: 9105 is web_port too: give it another port, or 0 to turn it off`,
			`metrics_bind: "localhost" is not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for every interface)`,
		}},
		{"meters.json", []string{
			`meters[1]: want an object, got "7"`,
			`unknown option "meters[6].adress" (did you mean "address"?)`, //nolint:misspell // the typo is the test
			`meters[0].address: want a string, got 5 (write it in quotes: "5")`,
			`meters[2].address: is missing: ` + address,
			`meters[3].address: "12345678FFFFFFFF" has wildcards (F): give the full secondary address of one meter`,
			`meters[4].address: "1234567XA511040C" is not a secondary address: want 16 hex digits`,
			`meters[5].address: "abc" is not an address: ` + address,
			`meters[6].enabled: want true or false, got "no"`,
			`meters[6].poll_interval: 0 is too small: want at least 1 (seconds)`,
			`meters[6].baudrate: 1000 is not supported: ` + bauds,
		}},
		{"buses.yaml", []string{
			`unknown option "buses[0].meters[2].kee" (did you mean "key"?)`,
			`buses[2].name: is missing: give each bus a name (e.g. plant_room)`,
			`buses[3].baudrate: "fast" is not supported: ` + bauds,
			`serial_port: buses is set too: give the bus either in buses or at the top level, not both`,
			`meters: buses is set too: list each meter under its bus (buses[…].meters)`,
			`buses[0].meters[1].address: 5 is already buses[0].meters[0]: each meter may appear once`,
			`buses[1].name: "plant_room" is already buses[0]: each bus needs a name of its own`,
			`buses[1].tcp_address: "10.0.0.5" is not host:port: want e.g. 192.168.1.50:10001`,
			`buses[2].scan_mode: "tertiary" is not allowed: want primary or secondary`,
			`buses[3].name: "Stair Well" is not a bus name: want 1 to 32 lower-case letters, digits, _ or - (e.g. plant_room)`,
			`buses[4].serial_port: set buses[4].serial_port (a device such as /dev/ttyUSB0) or buses[4].tcp_address (host:port of an M-Bus-to-TCP converter)`,
		}},
		{"secret-types.yaml", []string{
			`mqtt.password: want a string, got a number`,
			`meters[0].key: want a string, got a number`,
			`meters[2].key: want a string, got a list`,
			`meters[1].key: is not an AES-128 key: want 32 hex digits`,
		}},
		{"many-problems.yaml", []string{
			`scan_on_start: want true or false, got "yes"`,
			`serial_port: "ttyUSB0" is not a device path: want e.g. /dev/ttyUSB0 or /dev/serial/by-id/…`,
			`baudrate: 2401 is not supported: ` + bauds,
			`poll_interval: 0 is too small: want at least 1 (seconds)`,
			`scan_mode: "tertiary" is not allowed: want primary or secondary`,
			`mqtt.port: 70000 is out of range: want 1 to 65535`,
			`mqtt.host: "mqtt://broker.local" has a scheme: want a host name or IP address only (the port goes in mqtt.port, TLS in mqtt.tls)`,
			`topic_prefix: "mbus/#" must not contain + or #`,
			`discovery_prefix: "/homeassistant" must not start or end with /`,
			`expire_after: -1 is negative: want 0 (never) or a number of seconds`,
			`outbox_max_rows: 10 is too small: want at least 100`,
			`outbox_max_age: 30 is too small: want at least 60 (seconds)`,
			`response_timeout_extra: 20000 is out of range: want 0 to 10000 (milliseconds)`,
			`log_level: "verbose" is not allowed: want trace, debug, info, warning or error`,
			`log_format: "xml" is not allowed: want text or json`,
			`web_port: 0 is out of range: want 1 to 65535`,
			`metrics_port: 70000 is out of range: want 0 to 65535 (0 = off)`,
			`data_dir: must not be empty (e.g. /data)`,
		}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			opts, err := Parse(readFixture(t, filepath.Join("testdata", "bad", tt.file)), tt.file)
			if opts != nil {
				t.Errorf("got options %+v, want nil", opts)
			}
			if got := problems(err); !slices.Equal(got, tt.want) {
				t.Errorf("got problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	// Every fixture is in the table, so none is left untested.
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("fixture %s has no row in the table", f)
		}
	}
}

// TestParseProblemTypes: callers can tell the kinds of problems apart.
func TestParseProblemTypes(t *testing.T) {
	_, err := Parse(readFixture(t, "testdata/bad/wrong-type.json"), "wrong-type.json")
	var unknown *UnknownOptionError
	if !errors.As(err, &unknown) || unknown.Path != "mqtt.pasword" || unknown.Suggestion != "mqtt.password" {
		t.Errorf("got %#v, want an UnknownOptionError for mqtt.pasword", unknown)
	}
	var opt *OptionError
	if !errors.As(err, &opt) || opt.Path != "mqtt.port" {
		t.Errorf("got %#v, want an OptionError for mqtt.port", opt)
	}
	_, err = Parse(readFixture(t, "testdata/bad/malformed.json"), "malformed.json")
	var syn *SyntaxError
	if !errors.As(err, &syn) || syn.Line != 4 || syn.Column != 1 {
		t.Errorf("got %#v, want a SyntaxError at line 4, column 1", syn)
	}
}

func TestParseDefaults(t *testing.T) {
	got, err := Parse([]byte(`{"serial_port": "/dev/ttyUSB0"}`), "options.json")
	if err != nil {
		t.Fatal(err)
	}
	want := &Options{
		SerialPort:      "/dev/ttyUSB0",
		Baudrate:        2400,
		PollInterval:    15 * time.Second,
		Meters:          []Meter{},
		ScanOnStart:     true,
		ScanMode:        "secondary",
		MQTT:            MQTT{Port: 1883},
		TopicPrefix:     "mbus",
		DiscoveryPrefix: "homeassistant",
		OutboxMaxRows:   100000,
		OutboxMaxAge:    30 * 24 * time.Hour,
		LogLevel:        "info",
		LogFormat:       "text",
		WebPort:         8099,
		WebAllow:        []netip.Prefix{netip.MustParsePrefix("172.30.32.2/32")},
		MetricsPort:     9105,
		MetricsBind:     "127.0.0.1",
		DataDir:         "/data",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func mustAddress(t *testing.T, s string) mbus.Address {
	t.Helper()
	a, err := mbus.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseEveryOption(t *testing.T) {
	got, err := Parse(readFixture(t, "testdata/good/options.json"), "options.json")
	if err != nil {
		t.Fatal(err)
	}
	want := &Options{
		SerialPort:   "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0",
		Baudrate:     9600,
		PollInterval: time.Minute,
		Meters: []Meter{
			{Address: mustAddress(t, "5"), Name: "Heat meter", PollInterval: 15 * time.Minute, Baudrate: 9600, Enabled: true, Guard: true, Key: "0F1E2D3C4B5A69788796A5B4C3D2E1F0"},
			{Address: mustAddress(t, "12345678A511040C"), PollInterval: time.Minute, Baudrate: 2400, Enabled: false, Guard: false},
			{Address: mustAddress(t, "7"), PollInterval: time.Minute, Baudrate: 9600, Enabled: true, Guard: true},
		},
		ScanOnStart:          false,
		ScanMode:             "primary",
		MQTT:                 MQTT{Host: "core-mosquitto", Port: 8883, Username: "mbus", Password: "hunter2-secret", TLS: true},
		TopicPrefix:          "home/mbus",
		DiscoveryPrefix:      "ha",
		ExpireAfter:          time.Hour,
		OutboxMaxRows:        500,
		OutboxMaxAge:         24 * time.Hour,
		ResponseTimeoutExtra: 250 * time.Millisecond,
		LogLevel:             "debug",
		LogFormat:            "json",
		WebPort:              8100,
		WebAllow: []netip.Prefix{
			netip.MustParsePrefix("172.30.32.2/32"),
			netip.MustParsePrefix("192.168.1.0/24"),
			netip.MustParsePrefix("::1/128"),
		},
		MetricsPort: 0,
		MetricsBind: "127.0.0.1",
		DataDir:     "/var/lib/mbus-gateway",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if d := got.Device(); d != want.SerialPort {
		t.Errorf("got device %q, want %q", d, want.SerialPort)
	}
}

func TestParseYAMLLikeJSON(t *testing.T) {
	got, err := Parse(readFixture(t, "testdata/good/standalone.yaml"), "standalone.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got.TCPAddress != "192.168.1.50:10001" || got.MQTT.Host != "192.168.1.10" || got.MQTT.Port != 1883 {
		t.Errorf("got tcp %q, mqtt %s:%d; want 192.168.1.50:10001, 192.168.1.10:1883", got.TCPAddress, got.MQTT.Host, got.MQTT.Port)
	}
	if d := got.Device(); d != "tcp://192.168.1.50:10001" {
		t.Errorf("got device %q, want tcp://192.168.1.50:10001", d)
	}
}

// TestParseFormatByContent: without a telling extension, '{' means JSON.
func TestParseFormatByContent(t *testing.T) {
	tests := []struct {
		data, want string
	}{
		{`{"serial_port": "/dev/ttyUSB0", "poll_interval": 7}`, ""},
		{"serial_port: /dev/ttyUSB0\npoll_interval: 7\n", ""},
		{`{"serial_port": "/dev/ttyUSB0",}`, "options: line 1, column 32: invalid character '}' looking for beginning of object key string"},
	}
	for _, tt := range tests {
		o, err := Parse([]byte(tt.data), "options")
		got := ""
		if err != nil {
			got = err.Error()
		} else if o.PollInterval != 7*time.Second {
			t.Errorf("%q: got poll interval %v, want 7s", tt.data, o.PollInterval)
		}
		if got != tt.want {
			t.Errorf("%q: got error %q, want %q", tt.data, got, tt.want)
		}
	}
}

func writeOptions(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadEnvironment(t *testing.T) {
	path := writeOptions(t, "options.yaml", "serial_port: /dev/ttyUSB0\nmqtt:\n  host: from-file\n  port: 1883\npoll_interval: 30\n")
	t.Setenv("MBUS_GATEWAY_MQTT_HOST", "from-env")
	t.Setenv("MBUS_GATEWAY_POLL_INTERVAL", "45")
	t.Setenv("MBUS_GATEWAY_SCAN_ON_START", "false")
	t.Setenv("MBUS_GATEWAY_WEB_ALLOW", "127.0.0.1, 10.0.0.0/8")
	t.Setenv("MBUS_GATEWAY_METERS", `[{"address": "3", "name": "env meter"}]`)
	t.Setenv("MBUS_GATEWAY_LOG_LEVEL", "") // empty counts as unset
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"mqtt.host", got.MQTT.Host, "from-env"},
		{"mqtt.port", got.MQTT.Port, 1883},
		{"poll_interval", got.PollInterval, 45 * time.Second},
		{"scan_on_start", got.ScanOnStart, false},
		{"web_allow", got.WebAllow, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}},
		{"meters", got.Meters, []Meter{{Address: mustAddress(t, "3"), Name: "env meter", PollInterval: 45 * time.Second, Baudrate: 2400, Enabled: true, Guard: true}}},
		{"log_level", got.LogLevel, "info"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadEnvironmentProblems(t *testing.T) {
	path := writeOptions(t, "options.json", `{"serial_port": "/dev/ttyUSB0"}`)
	t.Setenv("MBUS_GATEWAY_MQTT_PORT", "abc")
	t.Setenv("MBUS_GATEWAY_POL_INTERVAL", "5")
	t.Setenv("MBUS_GATEWAY_METERS", `[{"address": 5`)
	_, err := Load(path)
	want := []string{
		"unknown environment variable MBUS_GATEWAY_POL_INTERVAL (did you mean MBUS_GATEWAY_POLL_INTERVAL?)",
		"meters: MBUS_GATEWAY_METERS is not a JSON list of meters: MBUS_GATEWAY_METERS: line 1, column 15: unexpected end of file",
		`mqtt.port: want an integer, got "abc" (from MBUS_GATEWAY_MQTT_PORT)`,
	}
	if got := problems(err); !slices.Equal(got, want) {
		t.Errorf("got problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestParseIgnoresEnvironment: Parse checks the file as written.
func TestParseIgnoresEnvironment(t *testing.T) {
	t.Setenv("MBUS_GATEWAY_POLL_INTERVAL", "45")
	o, err := Parse([]byte(`{"serial_port": "/dev/ttyUSB0"}`), "options.json")
	if err != nil {
		t.Fatal(err)
	}
	if o.PollInterval != 15*time.Second {
		t.Errorf("got poll interval %v, want the default 15s", o.PollInterval)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nothing.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want an error wrapping fs.ErrNotExist", err)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "read options: ") {
		t.Errorf("got %q, want the prefix %q", err, "read options: ")
	}
}

func validOptions(t *testing.T) *Options {
	t.Helper()
	o, err := Parse([]byte(`{"serial_port": "/dev/ttyUSB0", "meters": [{"address": "1"}, {"address": "2"}]}`), "options.json")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestValidate covers Validate on options built in code rather than read.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(o *Options)
		want   []string
	}{
		{"valid", func(*Options) {}, nil},
		{"serial and tcp", func(o *Options) { o.TCPAddress = "h:1" }, []string{
			"tcp_address: serial_port is set too: give only one of serial_port and tcp_address"}},
		{"duplicate secondary", func(o *Options) {
			a := mustAddress(t, "12345678A511040C")
			o.Meters[0].Address, o.Meters[1].Address = a, a
		}, []string{"meters[1].address: 12345678A511040C is already meters[0]: each meter may appear once"}},
		{"meter interval", func(o *Options) { o.Meters[1].PollInterval = 500 * time.Millisecond }, []string{
			"meters[1].poll_interval: 0 is too small: want at least 1 (seconds)"}},
		{"topic levels", func(o *Options) { o.TopicPrefix = "a//b" }, []string{
			`topic_prefix: "a//b" must not contain an empty level (//)`}},
		{"empty discovery", func(o *Options) { o.DiscoveryPrefix = "" }, []string{
			"discovery_prefix: must not be empty (e.g. homeassistant)"}},
		{"host with space", func(o *Options) { o.MQTT.Host = "my broker" }, []string{
			`mqtt.host: "my broker" is not a host name or IP address`}},
		{"ipv6 host", func(o *Options) { o.MQTT.Host = "fd00::1" }, nil},
		{"password without user", func(o *Options) { o.MQTT.Host, o.MQTT.Password = "broker", "pw" }, []string{
			"mqtt.password: is set but mqtt.username is empty: MQTT sends a password only with a user name; set mqtt.username too"}},
		// The Supervisor's login replaces it; Warnings says so.
		{"password without user or host", func(o *Options) { o.MQTT.Password = "pw" }, nil},
		{"user without password", func(o *Options) { o.MQTT.Host, o.MQTT.Username = "broker", "mbus" }, nil},
		{"tls files", func(o *Options) {
			o.MQTT.TLS, o.MQTT.CAFile, o.MQTT.CertFile, o.MQTT.KeyFile = true, "/config/ca.pem", "/config/c.pem", "/config/c.key"
		}, nil},
		{"ca file without tls", func(o *Options) { o.MQTT.CAFile = "/config/ca.pem" }, []string{
			"mqtt.ca_file: is set but mqtt.tls is off: turn mqtt.tls on to use it"}},
		{"relative certificate", func(o *Options) {
			o.MQTT.TLS, o.MQTT.CertFile, o.MQTT.KeyFile = true, "client.pem", "/config/c.key"
		}, []string{`mqtt.cert_file: "client.pem" is not an absolute path: give the whole path (in the add-on, files of its config folder are under /config/)`}},
		{"key without certificate", func(o *Options) { o.MQTT.TLS, o.MQTT.KeyFile = true, "/config/c.key" }, []string{
			"mqtt.key_file: is set but mqtt.cert_file is empty: give the client certificate too"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions(t)
			tt.change(o)
			err := o.Validate()
			if got := problems(err); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			var opt *OptionError
			if err != nil && !errors.As(err, &opt) {
				t.Errorf("got %T, want *OptionError inside", err)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	o := validOptions(t)
	o.ExpireAfter = 10 * time.Second
	o.Meters[1].PollInterval = time.Minute
	want := []string{
		"expire_after: 10 s is shorter than poll_interval (15 s): its entities will turn unavailable between reads",
		"expire_after: 10 s is shorter than meters[1].poll_interval (60 s): its entities will turn unavailable between reads",
	}
	if got := o.Warnings(); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	o = validOptions(t)
	o.MQTT.Password = "pw"
	want = []string{"mqtt.password: is set without mqtt.username and is ignored: with mqtt.host empty the broker login comes from the Supervisor"}
	if got := o.Warnings(); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	o = validOptions(t)
	o.Meters, o.ScanOnStart = nil, false
	want = []string{"meters: no meters and scan_on_start is false: nothing will be read until a scan is started"}
	if got := o.Warnings(); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	// A meter's own speed: switched to on a serial port, not on a TCP
	// converter; a disabled meter is not read at all.
	o = validOptions(t)
	o.Meters[0].Baudrate, o.Meters[1].Baudrate = 9600, 300
	if got := o.Warnings(); len(got) != 0 {
		t.Errorf("serial port: got %q, want no warnings", got)
	}
	o.SerialPort, o.TCPAddress = "", "127.0.0.1:10001"
	o.Meters[1].Enabled = false
	want = []string{"meters[0].baudrate: meter 1 talks at 9600 baud, but the TCP converter's speed is fixed on the device: it is read at the converter's speed (baudrate 2400) and answers only if that is its speed too"}
	if got := o.Warnings(); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestKeys(t *testing.T) {
	want := []string{
		"baudrate",
		"buses.baudrate", "buses.meters.address", "buses.meters.baudrate", "buses.meters.enabled",
		"buses.meters.guard", "buses.meters.key", "buses.meters.name", "buses.meters.poll_interval", "buses.name",
		"buses.scan_mode", "buses.scan_on_start", "buses.serial_port", "buses.tcp_address",
		"data_dir", "discovery_prefix", "expire_after", "log_format", "log_level",
		"meters.address", "meters.baudrate", "meters.enabled", "meters.guard", "meters.key", "meters.name", "meters.poll_interval",
		"metrics_bind", "metrics_port", "mqtt.ca_file", "mqtt.cert_file", "mqtt.host", "mqtt.key_file",
		"mqtt.password", "mqtt.port", "mqtt.tls", "mqtt.username",
		"outbox_max_age", "outbox_max_rows", "poll_interval", "response_timeout_extra",
		"scan_mode", "scan_on_start", "serial_port", "tcp_address", "topic_prefix",
		"web_allow", "web_port",
	}
	if got := Keys(); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	for _, k := range StandaloneOnlyKeys() {
		if !slices.Contains(want, k) {
			t.Errorf("standalone key %q is not a key", k)
		}
	}
}

func TestSuggest(t *testing.T) {
	candidates := []string{"poll_interval", "port", "host", "meters"}
	tests := []struct{ in, want string }{
		{"pol_interval", "poll_interval"},
		{"hots", "host"},
		{"meter", "meters"},
		{"x", ""},
		{"completely_different", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, candidates); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseLimits(t *testing.T) {
	var many strings.Builder
	many.WriteString("serial_port: /dev/ttyUSB0\n")
	for i := range 60 {
		fmt.Fprintf(&many, "unknown_%d: 1\n", i)
	}
	_, err := Parse([]byte(many.String()), "many.yaml")
	got := problems(err)
	if len(got) != 51 || got[50] != "… and 10 more problems" {
		t.Errorf("got %d problems ending in %q, want 50 and \"… and 10 more problems\"", len(got), got[len(got)-1])
	}
	_, err = Parse(bytes.Repeat([]byte(" "), 1<<20+1), "huge.yaml")
	if want := "huge.yaml: the file is larger than 1048576 bytes: not an options file"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	_, err = Parse([]byte(`{"meters": `+deep+`}`), "deep.json")
	if want := "deep.json: line 1, column 43: nested too deeply"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}
