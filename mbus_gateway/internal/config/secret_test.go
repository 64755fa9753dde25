package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
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
	fmt.Fprintf(&buf, "%v %+v %#v %s\n", o, *o, o.MQTT, o.MQTT.Password)
	js, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(js)
	if strings.Contains(buf.String(), password) {
		t.Errorf("password found in:\n%s", buf.String())
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
		"username": "mbus", "password": "***", "tls": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("mqtt: got %#v, want %#v", got, want)
	}
}
