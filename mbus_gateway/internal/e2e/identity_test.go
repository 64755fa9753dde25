package e2e

// A meter's identity is its address on the bus: two meters with the same
// manufacturer and ID stay two devices, a swapped meter becomes a new
// device, and nothing but the topics of the contract (no placeholders,
// not even those an earlier version left; no zero-length states) stays on
// the broker.

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// identityMeter is a meter at primary whose header says ABB and id: an
// energy register the simulator advances, a fixed volume, and a customer
// text left blank (an empty value).
func identityMeter(t *testing.T, primary byte, id string, volume int64) sim.Meter {
	t.Helper()
	h := mbus.Header{ID: id, Manufacturer: "ABB", Version: 1, Medium: 0x04}
	raw, err := mbus.EncodeTelegram(primary, h, []mbus.RecordSpec{
		{Coding: mbus.DataInt32, VIF: []byte{0x06}, Int: 0},      // energy, kWh
		{Coding: mbus.DataInt32, VIF: []byte{0x13}, Int: volume}, // volume, L
		{Coding: mbus.DataVar, VIF: []byte{0xFD, 0x11}, Text: "x"},
	}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The encoder writes no empty text: cut the customer text to zero
	// characters (LVAR 0), then mend the length fields and the checksum.
	i := bytes.Index(raw, []byte{0x0D, 0xFD, 0x11, 0x01, 'x'})
	if i < 0 {
		t.Fatalf("customer record not found in % X", raw)
	}
	raw = slices.Concat(raw[:i+3], []byte{0x00}, raw[i+5:])
	raw[1], raw[2] = byte(len(raw)-6), byte(len(raw)-6)
	var sum byte
	for _, b := range raw[4 : len(raw)-2] {
		sum += b
	}
	raw[len(raw)-2] = sum
	return sim.Meter{Name: "abb " + id, Primary: primary, Telegrams: [][]byte{raw}}
}

// legacyTopics are what an earlier version left retained for a meter at
// address 9 that never answered: its availability and diagnostics under
// the placeholder addr_9.
var legacyTopics = map[string]string{"mbus/addr_9/availability": "offline", "mbus/addr_9/failures": "3"}

// identityRig runs the gateway on setup, read every second, with one more
// configured address (9) where no meter answers and legacyTopics on the
// broker.
func identityRig(t *testing.T, setup sim.Setup) *faultRig {
	t.Helper()
	setup.Options.Advance = true
	meters := []map[string]any{}
	for _, m := range setup.Meters {
		meters = append(meters, map[string]any{"address": strconv.Itoa(int(m.Primary))})
	}
	meters = append(meters, map[string]any{"address": "9"})
	r := newFaultRig(t, setup, map[string]any{"meters": meters})
	for topic, payload := range legacyTopics {
		r.rec.Publish(topic, 1, true, []byte(payload))
	}
	r.start()
	return r
}

// values are the distinct payloads published on topic.
func values(r *faultRig, topic string) []string {
	var out []string
	for _, m := range r.rec.Messages(topic) {
		if p := string(m.Payload); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// checkBroker subscribes afresh and checks what the broker holds once
// the meters were read: the legacy placeholders were cleared, the
// retained topics of meters are all named by the contract (no addr_<N>
// placeholder), and the gateway sent no empty message on a state topic.
func checkBroker(t *testing.T, r *faultRig, meters ...string) {
	t.Helper()
	for topic := range legacyTopics {
		r.rec.WaitFor(topic, func(m mosquittotest.Message) bool { return len(m.Payload) == 0 }, 10*time.Second)
	}
	fresh := mosquittotest.Subscribe(t, r.broker.URL(), "mbus/#", "homeassistant/#")
	fresh.WaitFor("mbus/bridge/state", nil, 10*time.Second)
	for _, m := range meters {
		fresh.WaitFor("mbus/"+m+"/availability", nil, 10*time.Second)
		fresh.WaitFor("homeassistant/device/"+m+"/config", nil, 10*time.Second)
	}
	for _, m := range fresh.Messages("") {
		if strings.Contains(m.Topic, "addr_") {
			t.Errorf("retained on the broker: %s = %q (a placeholder)", m.Topic, m.Payload)
		}
	}
	for _, m := range r.rec.Messages("") {
		if _, legacy := legacyTopics[m.Topic]; legacy {
			continue
		}
		if strings.HasPrefix(m.Topic, "mbus/") && len(m.Payload) == 0 {
			t.Errorf("zero-length message on %s", m.Topic)
		}
		if strings.Contains(m.Topic, "addr_") {
			t.Errorf("published under a placeholder: %s = %q", m.Topic, m.Payload)
		}
	}
}

// TestIdentityTwins: two meters with the same manufacturer and ID at
// primary addresses 1 and 2 are two devices: distinct ids, each device's
// discovery published once over several reads (not flipping between
// their sets of entities), each meter's values on its own topics, and a
// warning on /status. A configured address where nobody answers leaves
// nothing on the broker.
func TestIdentityTwins(t *testing.T) {
	r := identityRig(t, sim.Setup{Meters: []sim.Meter{
		identityMeter(t, 1, "70000001", 1001),
		identityMeter(t, 2, "70000001", 2002),
	}})
	const first, twin = "abb_70000001", "abb_70000001_at_2"
	for _, m := range []string{first, twin} {
		r.rec.WaitCount("mbus/"+m+"/reading", 5, time.Minute)
	}
	for _, m := range []string{first, twin} {
		if n := len(r.rec.Messages("homeassistant/device/" + m + "/config")); n != 1 {
			t.Errorf("discovery of %s published %d times over 5 reads, want once", m, n)
		}
		var cfg struct {
			Dev struct{ Identifiers []string } `json:"dev"`
		}
		msg := r.rec.WaitFor("homeassistant/device/"+m+"/config", nil, time.Second)
		if err := json.Unmarshal(msg.Payload, &cfg); err != nil || !slices.Equal(cfg.Dev.Identifiers, []string{"mbus_" + m}) {
			t.Errorf("device of %s: identifiers %q (%v), want [mbus_%s]", m, cfg.Dev.Identifiers, err, m)
		}
	}
	for m, want := range map[string]string{first: "1.001", twin: "2.002"} {
		if got := values(r, "mbus/"+m+"/volume"); !slices.Equal(got, []string{want}) {
			t.Errorf("volume of %s: got %q, want only %q", m, got, want)
		}
		if got := values(r, "mbus/"+m+"/customer"); !slices.Equal(got, []string{"None"}) {
			t.Errorf("blank customer record of %s: got %q, want only \"None\"", m, got)
		}
	}
	for _, m := range r.rec.Messages("mbus/" + twin + "/reading") {
		var rd struct{ Address string }
		if err := json.Unmarshal(m.Payload, &rd); err != nil || rd.Address != "2" {
			t.Fatalf("reading on %s from address %q (%v), want 2", m.Topic, rd.Address, err)
		}
	}
	var st struct{ Warnings []string }
	getJSON(t, endpoint(r.port, "/status"), &st)
	want := "meters at addresses 1 and 2 both identify as ABB 70000001 (heat_outlet): the one at 2 is published as " + twin
	if !slices.Contains(st.Warnings, want) {
		t.Errorf("/status warnings: got %q, want %q among them", st.Warnings, want)
	}
	if !strings.Contains(r.gw.stdout.String()+r.gw.stderr.String(), "two meters with the same manufacturer and ID") {
		t.Error("the log does not warn about the twins")
	}
	checkBroker(t, r, first, twin)
}

// TestIdentitySwap: the meter at address 1 is swapped for another one
// mid-run. The new one becomes a device of its own, the old one turns
// offline and is named in a notice, and no reading of the new meter is
// published as the old one's.
func TestIdentitySwap(t *testing.T) {
	r := identityRig(t, sim.Setup{Meters: []sim.Meter{identityMeter(t, 1, "70000001", 1001)}})
	const old, next = "abb_70000001", "abb_70000099"
	r.rec.WaitCount("mbus/"+old+"/reading", 2, time.Minute)
	if err := r.bus.ReplaceMeter(identityMeter(t, 1, "70000099", 9009)); err != nil {
		t.Fatal(err)
	}
	r.rec.WaitCount("mbus/"+next+"/reading", 2, time.Minute)
	r.rec.WaitFor("mbus/"+old+"/availability", func(m mosquittotest.Message) bool { return string(m.Payload) == "offline" }, 10*time.Second)
	r.rec.WaitFor("mbus/"+next+"/availability", func(m mosquittotest.Message) bool { return string(m.Payload) == "online" }, 10*time.Second)
	if got := values(r, "mbus/"+old+"/volume"); !slices.Equal(got, []string{"1.001"}) {
		t.Errorf("volume of the old meter: got %q, want only 1.001", got)
	}
	if got := values(r, "mbus/"+next+"/volume"); !slices.Equal(got, []string{"9.009"}) {
		t.Errorf("volume of the new meter: got %q, want only 9.009", got)
	}
	for _, m := range r.rec.Messages("mbus/" + old + "/reading") {
		var rd struct{ Header struct{ ID string } }
		if err := json.Unmarshal(m.Payload, &rd); err != nil || rd.Header.ID != "70000001" {
			t.Errorf("reading on %s of meter %q (%v)", m.Topic, rd.Header.ID, err)
		}
	}
	var st struct{ Warnings []string }
	getJSON(t, endpoint(r.port, "/status"), &st)
	notice := "meter " + old + " (ABB 70000001 (heat_outlet)) at address 1 was replaced by ABB 70000099 (heat_outlet)"
	if !slices.ContainsFunc(st.Warnings, func(w string) bool { return strings.HasPrefix(w, notice) }) {
		t.Errorf("/status warnings: got %q, want one starting %q", st.Warnings, notice)
	}
	checkBroker(t, r, old, next)
}
