package config

import (
	"bytes"
	"encoding/json"
	"fmt"
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
