package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestLevels(t *testing.T) {
	tests := []struct {
		level string
		want  []string // messages that pass
	}{
		{"trace", []string{"t", "d", "i", "w", "e"}},
		{"debug", []string{"d", "i", "w", "e"}},
		{"info", []string{"i", "w", "e"}},
		{"warning", []string{"w", "e"}},
		{"WARN", []string{"w", "e"}},
		{"error", []string{"e"}},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log, err := New(&buf, tt.level, "json")
		if err != nil {
			t.Fatal(err)
		}
		log.Trace().Msg("t")
		log.Debug().Msg("d")
		log.Info().Msg("i")
		log.Warn().Msg("w")
		log.Error().Msg("e")
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var ev struct {
				Message string `json:"message"`
				Time    string `json:"time"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%s: line %q is not JSON: %v", tt.level, line, err)
			}
			if ev.Time == "" {
				t.Errorf("%s: line %q has no time", tt.level, line)
			}
			got = append(got, ev.Message)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("level %s: got %v, want %v", tt.level, got, tt.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct{ level, format, want string }{
		{"verbose", "text", `logging: log level "verbose": want trace, debug, info, warning or error`},
		{"info", "xml", `logging: log format "xml": want text or json`},
	}
	for _, tt := range tests {
		_, err := New(&bytes.Buffer{}, tt.level, tt.format)
		if err == nil || err.Error() != tt.want {
			t.Errorf("New(%q, %q): got %v, want %q", tt.level, tt.format, err, tt.want)
		}
	}
}

// TestTextPlain: text output has no colour codes when it does not go to a
// terminal (the Supervisor's log panel shows them as garbage), and carries
// level, message, fields and a timestamp.
func TestTextPlain(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	poll := Component(log, "poll")
	poll.Warn().Str("meter", "kam_06855817").Msg("meter stopped answering")
	got := buf.String()
	for _, want := range []string{"WRN", "meter stopped answering", "component=poll", "meter=kam_06855817"} {
		if !strings.Contains(got, want) {
			t.Errorf("got %q, want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "\x1b[") {
		t.Errorf("got colour codes in %q", got)
	}
	if _, err := fmt.Sscanf(got[:4], "%4d", new(int)); err != nil {
		t.Errorf("got %q, want a line starting with the year", got)
	}
}

// TestTextFileNoColour: a regular file (as docker's log capture) is no terminal.
func TestTextFileNoColour(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log, err := New(f, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("hello")
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "hello") || strings.Contains(string(data), "\x1b[") {
		t.Errorf("got %q, want a plain line with hello", data)
	}
}

func TestComponent(t *testing.T) {
	var buf bytes.Buffer
	mqtt := Component(zerolog.New(&buf), "mqtt")
	mqtt.Info().Msg("connected")
	if got, want := strings.TrimSpace(buf.String()), `{"level":"info","component":"mqtt","message":"connected"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestSecretMasked(t *testing.T) {
	type holder struct {
		User     string
		Password Secret
	}
	s := Secret("hunter2")
	h := holder{"mbus", s}
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	log.Info().Stringer("password", s).Interface("holder", h).Msg("")
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{
		// The verbs are the point here: each must go through the mask.
		fmt.Sprintf("%v", s),
		fmt.Sprintf("%s", s), //nolint:staticcheck // S1025: tests the %s verb, not String
		fmt.Sprintf("%+v", h), fmt.Sprintf("%#v", h),
		fmt.Sprint(h), string(js), buf.String(),
	}
	for _, got := range outputs {
		if strings.Contains(got, "hunter2") {
			t.Errorf("got the secret in %q", got)
		}
		if !strings.Contains(got, "***") {
			t.Errorf("got %q, want the mask ***", got)
		}
	}
	if got := Secret("").String(); got != "" {
		t.Errorf("empty secret: got %q, want empty", got)
	}
	if string(s) != "hunter2" {
		t.Errorf("got %q, want the value back with string()", string(s))
	}
}
