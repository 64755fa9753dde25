package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestOptionsNeverShowPassword logs and prints options every way a caller
// might, and looks for the password in the output.
func TestOptionsNeverShowPassword(t *testing.T) {
	o, err := Parse(readFixture(t, "testdata/good/options.json"), "options.json")
	if err != nil {
		t.Fatal(err)
	}
	const password = "hunter2-secret"
	if string(o.MQTT.Password) != password {
		t.Fatalf("got password %q, want the fixture's", string(o.MQTT.Password))
	}
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	log.Info().Object("options", o).Msg("object")
	log.Info().Interface("options", o).Msg("interface")
	log.Info().Interface("mqtt", o.MQTT).Msg("mqtt")
	log.Info().Interface("meters", o.Meters).Interface("buses", o.AllBuses()).Msg("meters")
	fmt.Fprintf(&buf, "%v %+v %#v %s %v %+v\n", o, *o, o.MQTT, o.MQTT.Password, o.Meters, o.AllBuses())
	js, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(js)
	if strings.Contains(buf.String(), password) {
		t.Errorf("password found in:\n%s", buf.String())
	}
	const key = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
	if string(o.Meters[0].Key) != key {
		t.Fatalf("got key %q, want the fixture's", string(o.Meters[0].Key))
	}
	if strings.Contains(buf.String(), key) {
		t.Errorf("meter key found in:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), `"password":"***"`) {
		t.Errorf("got no masked password field in:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), `"device":"/dev/serial/by-id/`) {
		t.Errorf("got no device field in:\n%s", buf.String())
	}
}

// TestOptionsLogReadable: the options log line gives durations as
// durations, not as bare numbers in zerolog's unit.
func TestOptionsLogReadable(t *testing.T) {
	o, err := Parse(readFixture(t, "testdata/good/options.json"), "options.json")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	log.Info().Object("options", o).Msg("starting")
	var line struct {
		Options map[string]any `json:"options"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v in %s", err, buf.String())
	}
	for key, want := range map[string]any{
		"poll_interval":          "1m0s",
		"expire_after":           "1h0m0s",
		"outbox_max_age":         "24h0m0s",
		"response_timeout_extra": "250ms",
		"baudrate":               float64(9600),
		"meters":                 float64(3),
	} {
		if got := line.Options[key]; got != want {
			t.Errorf("%s: got %#v, want %#v", key, got, want)
		}
	}
	if got, want := line.Options["mqtt"], map[string]any{"host": "core-mosquitto", "port": float64(8883),
		"username": "mbus", "password": "***", "tls": true,
		"ca_file": "", "cert_file": "", "key_file": ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("mqtt: got %#v, want %#v", got, want)
	}
}

// TestSecretsNeverInMessages: a secret of the wrong type or form is
// reported without its value, from a file and from the environment.
func TestSecretsNeverInMessages(t *testing.T) {
	secrets := []string{"987654321", "12345678901234567890123456789012", "1.2345678901234568e+31", "00112233445566778899AABBCCDDEEXX", "hunter2"}
	check := func(name string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: got no error, want one", name)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: secret %q in the message:\n%s", name, s, err)
			}
		}
	}
	_, err := Parse(readFixture(t, "testdata/bad/secret-types.yaml"), "secret-types.yaml")
	check("yaml", err)
	_, err = Parse([]byte(`{"serial_port": "/dev/ttyUSB0", "mqtt": {"username": "u", "password": 987654321},
		"meters": [{"address": "1", "key": true}, {"address": "2", "key": "hunter2"}]}`), "options.json")
	check("json", err)
	want := []string{
		"mqtt.password: want a string, got a number",
		"meters[0].key: want a string, got true or false",
		"meters[1].key: is not an AES-128 key: want 32 hex digits",
	}
	if got := problems(err); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	path := writeOptions(t, "options.yaml", "serial_port: /dev/ttyUSB0\n")
	t.Setenv("MBUS_GATEWAY_METERS", `[{"address": "1", "key": 987654321}]`)
	_, err = Load(path)
	check("environment", err)
}
