package mqtt

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging/logtest"
)

// statusMessage is a message on homeassistant/status as paho hands it to
// the handler.
type statusMessage struct{ payload []byte }

func (m statusMessage) Duplicate() bool   { return false }
func (m statusMessage) Qos() byte         { return 1 }
func (m statusMessage) Retained() bool    { return false }
func (m statusMessage) Topic() string     { return "homeassistant/status" }
func (m statusMessage) MessageID() uint16 { return 1 }
func (m statusMessage) Payload() []byte   { return m.payload }
func (m statusMessage) Ack()              {}

// FuzzStatusHandler: whatever any client of the broker writes to
// homeassistant/status, the handler returns without blocking or
// panicking; exactly "online" asks for rediscovery, anything else is
// ignored with one debug line whose payload excerpt is short, valid UTF-8
// and leaves the log line valid JSON.
func FuzzStatusHandler(f *testing.F) {
	for _, seed := range []string{
		"online", "offline", "", "Online", "online\n", " online", "online\x00", "\xff\xfe", "on\"line\\",
		strings.Repeat("online", 2000), strings.Repeat("\u00e9", 40), "\x1b[31monline\x1b[0m",
	} {
		f.Add([]byte(seed))
	}
	var logs logtest.Buffer
	c, err := New(testConfig("tcp://127.0.0.1:1"), openStore(f), zerolog.New(&logs).Level(zerolog.DebugLevel), prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		before := len(logs.String())
		// Twice: the birth signal holds one request, a second must not block.
		for range 2 {
			c.onStatus(nil, statusMessage{payload: payload})
		}
		var birth bool
		select {
		case <-c.birth:
			birth = true
		default:
		}
		if want := string(payload) == "online"; birth != want {
			t.Fatalf("payload %q: rediscovery requested %v, want %v", payload, birth, want)
		}
		logged := logs.String()[before:]
		lines := strings.Split(strings.TrimSuffix(logged, "\n"), "\n")
		if birth {
			if logged != "" {
				t.Errorf("birth logged %q, want nothing", logged)
			}
			return
		}
		if len(lines) != 2 {
			t.Fatalf("payload %q: got %d log lines, want 2 (one per message): %q", payload, len(lines), logged)
		}
		var ev struct {
			Level   string `json:"level"`
			Bytes   int    `json:"bytes"`
			Payload string `json:"payload"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, lines[0])
		}
		if ev.Level != "debug" || ev.Bytes != len(payload) || len(ev.Payload) > 32 || !utf8.ValidString(ev.Payload) {
			t.Errorf("log: got level %q bytes %d payload %q, want debug, %d, at most 32 bytes of valid UTF-8", ev.Level, ev.Bytes, ev.Payload, len(payload))
		}
		if valid := bytes.ToValidUTF8(payload[:min(len(payload), 32)], []byte("?")); utf8.Valid(payload[:min(len(payload), 32)]) && ev.Payload != string(valid) {
			t.Errorf("log excerpt: got %q, want the payload's start %q", ev.Payload, valid)
		}
	})
}
