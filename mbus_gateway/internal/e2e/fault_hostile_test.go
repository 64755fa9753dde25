package e2e

import (
	"bytes"
	"context"
	le "encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// hostileText is what a meter (or whoever programmed it) may put in text
// fields: topic wildcards and separators, quotes, control characters.
const hostileText = "a/b+c#d\"e\\f\x00g\x1b[31mh\ti\n/#/+"

// hostileMeter is a meter whose ID has hex digits, whose manufacturer
// code decodes to the letters "[\]" and whose records carry hostileText in
// a plain-text unit (VIF 7C), as a text value, and as a long text.
func hostileMeter(t *testing.T) sim.Meter {
	t.Helper()
	var sa mbus.SecondaryAddress
	copy(sa[:4], []byte{0x4D, 0x3C, 0x2B, 0x1A}) // ID 1A2B3C4D: not BCD
	le.LittleEndian.PutUint16(sa[4:6], 27<<10|28<<5|29)
	sa[6], sa[7] = 1, 0x07          // version 1, water
	text := func(s string) []byte { // plain-text VIF: length, characters last first
		b := []byte{0x7C, byte(len(s))}
		for i := len(s) - 1; i >= 0; i-- {
			b = append(b, s[i])
		}
		return b
	}
	records := []mbus.RecordSpec{
		{Coding: mbus.DataInt32, VIF: []byte{0x13}, Int: 1234},
		{Coding: mbus.DataInt16, VIF: text(hostileText), Int: 7},
		{Coding: mbus.DataVar, VIF: []byte{0xFD, 0x0C}, Text: hostileText},
		{Coding: mbus.DataVar, VIF: []byte{0xFD, 0x11}, Text: strings.Repeat("/+#", 30)},
	}
	raw, err := mbus.EncodeTelegram(9, mbus.Header{Address: sa, Version: 1, Medium: 0x07}, records, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sim.Meter{Name: "hostile", Primary: 9, Telegrams: [][]byte{raw}}
}

// topicLevel is what every level of a topic the gateway publishes may
// hold: no wildcards, separators or control characters smuggled in.
var topicLevel = regexp.MustCompile(`^[a-z0-9_]+$`)

// TestFaultHostileInput: a meter with hostile text in every field it
// controls, a meter name of 10 KB with the same characters, and hostile
// requests to the status page. No foreign topic appears, every discovery
// payload is valid JSON naming only the meter's own topics, the page
// refuses what it should, and the gateway keeps running.
func TestFaultHostileInput(t *testing.T) {
	setup := demoMeters(t, 1)
	setup.Meters = append(setup.Meters, hostileMeter(t))
	longName := strings.Repeat(hostileText, 10<<10/len(hostileText))
	r := newFaultRig(t, setup, map[string]any{
		"web_allow": []string{"127.0.0.1"},
		"meters":    []map[string]any{{"address": "1", "name": longName}, {"address": "9", "name": hostileText}},
	})
	r.start()
	r.waitReadings(15 * time.Second)
	for _, meter := range r.meters {
		r.rec.WaitFor("homeassistant/device/"+meter+"/config", nil, 10*time.Second)
	}

	topics := map[string]bool{}
	for _, m := range r.rec.Messages("") {
		topics[m.Topic] = true
	}
	for topic := range topics {
		for _, level := range strings.Split(topic, "/") {
			if !topicLevel.MatchString(level) {
				t.Errorf("topic %q: level %q is not [a-z0-9_]+", topic, level)
			}
		}
		if !strings.HasPrefix(topic, "mbus/") && !strings.HasPrefix(topic, "homeassistant/") {
			t.Errorf("foreign topic %q", topic)
		}
	}
	for _, m := range r.rec.Messages("") {
		if !strings.HasPrefix(m.Topic, "homeassistant/") || len(m.Payload) == 0 {
			continue
		}
		var disc struct {
			Cmps map[string]map[string]any `json:"cmps"`
		}
		if err := json.Unmarshal(m.Payload, &disc); err != nil {
			t.Errorf("%s: not JSON: %v", m.Topic, err)
			continue
		}
		for id, c := range disc.Cmps {
			for k, v := range c {
				s, ok := v.(string)
				if ok && strings.HasSuffix(k, "_topic") && (strings.ContainsAny(s, "+#\x00") || !strings.HasPrefix(s, "mbus/")) {
					t.Errorf("%s: component %s: %s %q", m.Topic, id, k, s)
				}
			}
		}
	}
	t.Logf("%d topics, all clean", len(topics))

	web := int(readOptions(t, r.options)["web_port"].(float64))
	for _, tt := range []struct {
		name, method, path string
		body               []byte
		want               []int
	}{
		{"path traversal", "GET", "/assets/..%2f..%2f..%2fetc%2fpasswd", nil, []int{400, 404}},
		{"dot segments", "GET", "/../../etc/passwd", nil, []int{400, 404}},
		{"asset that does not exist", "GET", "/assets/nope.js", nil, []int{404}},
		{"bad method", "DELETE", "/status", nil, []int{405}},
		{"trace", "TRACE", "/", nil, []int{405}},
		{"huge body", "POST", "/meters", bytes.Repeat([]byte("a"), 4<<20), []int{400, 413}},
		{"not JSON", "POST", "/scan", []byte("\x00\xff{"), []int{400}},
		{"read of an unknown meter", "POST", "/meters/" + strings.Repeat("x", 300) + "/read", nil, []int{400, 404}},
	} {
		code, body := request(t, tt.method, "http://127.0.0.1:"+strconv.Itoa(web)+tt.path, tt.body)
		ok := false
		for _, w := range tt.want {
			ok = ok || code == w
		}
		if !ok || strings.Contains(body, "root:") {
			t.Errorf("%s: %s %s: got %d %.80q, want one of %v", tt.name, tt.method, tt.path, code, body, tt.want)
		}
	}
	if code, _ := r.health(); code != http.StatusOK {
		t.Errorf("/health after the hostile input: got %d, want 200", code)
	}
	stop(t, r.gw)
}

// request sends one request and returns the status and body; a transport
// error fails the test.
func request(t *testing.T, method, url string, body []byte) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}
