package hass

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
)

func TestRetire(t *testing.T) {
	r := frameReading(t, "kamstrup_multical_601")
	m, err := DeviceConfig(Options{}, r)
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]string{}
	for id, c := range decoded(t, m)["cmps"].(map[string]any) {
		own[id] = c.(map[string]any)["p"].(string)
	}

	t.Run("nothing earlier", func(t *testing.T) {
		got, remember, err := Retire(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Payload, m.Payload) {
			t.Errorf("payload changed:\n%s", got.Payload)
		}
		if !maps.Equal(remember, own) {
			t.Errorf("remember %v, want the message's own %v", remember, own)
		}
	})

	t.Run("gone components become platform-only", func(t *testing.T) {
		earlier := maps.Clone(own)
		earlier["current_2"] = "sensor"
		earlier["old_button"] = "button"
		got, remember, err := Retire(m, earlier)
		if err != nil {
			t.Fatal(err)
		}
		if got.Topic != m.Topic || !got.Retain {
			t.Errorf("topic %q retain %v", got.Topic, got.Retain)
		}
		var cfg struct {
			Dev  map[string]any             `json:"dev"`
			Cmps map[string]json.RawMessage `json:"cmps"`
		}
		if err := json.Unmarshal(got.Payload, &cfg); err != nil {
			t.Fatal(err)
		}
		if string(cfg.Cmps["current_2"]) != `{"p":"sensor"}` || string(cfg.Cmps["old_button"]) != `{"p":"button"}` {
			t.Errorf("retired components: %s, %s", cfg.Cmps["current_2"], cfg.Cmps["old_button"])
		}
		if len(cfg.Cmps) != len(own)+2 || cfg.Dev["name"] == nil {
			t.Errorf("got %d components and device %v, want %d and the device kept", len(cfg.Cmps), cfg.Dev, len(own)+2)
		}
		if len(remember) != len(earlier) {
			t.Errorf("remember %d components, want %d", len(remember), len(earlier))
		}
	})

	t.Run("not a device config", func(t *testing.T) {
		if _, _, err := Retire(Message{Topic: "x", Payload: []byte("nope")}, nil); err == nil {
			t.Error("no error for a broken payload")
		}
	})
}
