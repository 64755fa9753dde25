package e2e

// The rig of the fault tests: the gateway binary on three single-telegram
// meters of the demo bus (heat, water, gas) read every second, a real
// Mosquitto, and a recorder of everything the gateway publishes. Every
// telegram the simulator sends carries the next access number of its
// meter, so each reading on mbus/<meter>/reading can be matched with the
// answer it came from: the tests count readings exactly, per meter.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/demo"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// faultPrimaries are the meters of the demo bus the fault tests read:
// heat, water and gas, one telegram each, so that one reading is one
// telegram.
var faultPrimaries = []byte{1, 2, 3}

// faultRig is one gateway with its bus, broker and recorder.
type faultRig struct {
	t       *testing.T
	bus     *sim.Bus
	broker  *mosquittotest.Broker
	rec     *mosquittotest.Recorder
	dir     string
	options string
	port    int // metrics port: /health, /status, /metrics
	env     []string
	gw      *process

	meters []string        // topic IDs, in bus order
	index  map[string]int  // topic ID → position on the bus
	first  map[string]byte // access number of a meter's first telegram
}

// newFaultRig starts the bus, the broker and the recorder and writes the
// options; extra options are added. The gateway is started by start.
func newFaultRig(t *testing.T, setup sim.Setup, extra map[string]any, env ...string) *faultRig {
	t.Helper()
	r := &faultRig{t: t, index: map[string]int{}, first: map[string]byte{}, env: hermeticEnv(env...)}
	var err error
	if r.bus, err = setup.NewBus(); err != nil {
		t.Fatal(err)
	}
	for i, m := range r.bus.Meters() {
		id := topicID(m.Secondary)
		r.meters = append(r.meters, id)
		r.index[id] = i
		r.first[id] = m.AccessNumber
	}
	r.broker = mosquittotest.Start(t)
	r.rec = mosquittotest.Subscribe(t, r.broker.URL(), "mbus/#", "homeassistant/#")
	meters := make([]map[string]any, len(setup.Meters))
	for i, m := range setup.Meters {
		meters[i] = map[string]any{"address": strconv.Itoa(int(m.Primary))}
	}
	opts := map[string]any{"meters": meters, "poll_interval": 1}
	for k, v := range extra {
		opts[k] = v
	}
	r.dir = t.TempDir()
	r.options, r.port = gatewayOptions(t, r.dir, serveBus(t, r.bus), r.broker, opts)
	return r
}

// demoMeters is the demo bus's meters at primaries, served without pacing.
func demoMeters(t *testing.T, primaries ...byte) sim.Setup {
	t.Helper()
	setup, err := demo.Setup()
	if err != nil {
		t.Fatal(err)
	}
	var out sim.Setup
	for _, p := range primaries {
		for _, m := range setup.Meters {
			if m.Primary == p {
				out.Meters = append(out.Meters, m)
			}
		}
	}
	if len(out.Meters) != len(primaries) {
		t.Fatalf("demo bus: got %d of the meters %v", len(out.Meters), primaries)
	}
	return out
}

// topicID is the <meter> part of the topics of the meter at a.
func topicID(a mbus.SecondaryAddress) string {
	return reading.MeterID(mbus.Header{ID: a.ID(), Manufacturer: mbus.ManufacturerName(a.ManufacturerCode())}, "")
}

// start runs the gateway (again) on the rig's options and data.
func (r *faultRig) start() *process {
	r.t.Helper()
	r.gw = start(r.t, r.env, "run", "--config", r.options)
	return r.gw
}

// sent is the number of telegrams each meter has sent so far.
func (r *faultRig) sent() []uint64 {
	st := r.bus.Meters()
	out := make([]uint64, len(st))
	for i, m := range st {
		out[i] = m.TelegramsSent
	}
	return out
}

// waitSent waits until every meter has sent at least more telegrams than
// in since, and returns the counts then.
func (r *faultRig) waitSent(since []uint64, more uint64, timeout time.Duration) []uint64 {
	r.t.Helper()
	var now []uint64
	eventually(r.t, timeout, fmt.Sprintf("every meter sends %d more telegrams", more), func() bool {
		now = r.sent()
		for i := range now {
			if now[i] < since[i]+more {
				return false
			}
		}
		return true
	})
	return now
}

// delivered is one reading as the broker delivered it.
type delivered struct {
	access byte
	time   time.Time
	at     time.Time // when the recorder got it
}

// readings are the readings received so far, per meter, in arrival order.
func (r *faultRig) readings() map[string][]delivered {
	r.t.Helper()
	out := map[string][]delivered{}
	for _, m := range r.rec.Messages("") {
		meter, ok := strings.CutSuffix(strings.TrimPrefix(m.Topic, "mbus/"), "/reading")
		if !ok || !strings.HasPrefix(m.Topic, "mbus/") {
			continue
		}
		var rd reading.Reading
		if err := json.Unmarshal(m.Payload, &rd); err != nil {
			r.t.Fatalf("%s: %v in %s", m.Topic, err, m.Payload)
		}
		if rd.Meter != meter {
			r.t.Errorf("%s carries meter %q", m.Topic, rd.Meter)
		}
		out[meter] = append(out[meter], delivered{access: rd.Header.AccessNumber, time: rd.Time, at: m.At})
	}
	return out
}

// seq is the position of a reading in its meter's answers: 0 for the
// first telegram. The tests stay below 256 answers per meter, so the
// one-byte access number does not wrap back onto an earlier one.
func (r *faultRig) seq(meter string, d delivered) int { return int(d.access - r.first[meter]) }

// waitDelivered waits until the broker has delivered, for every meter,
// the reading of each telegram counted in sent (its last one at least).
func (r *faultRig) waitDelivered(sent []uint64, timeout time.Duration) {
	r.t.Helper()
	for i, meter := range r.meters {
		if sent[i] > 200 {
			r.t.Fatalf("%s sent %d telegrams: too many to tell apart by access number", meter, sent[i])
		}
		want := int(sent[i]) - 1
		r.rec.WaitFor("mbus/"+meter+"/reading", func(m mosquittotest.Message) bool {
			var rd reading.Reading
			return json.Unmarshal(m.Payload, &rd) == nil && r.seq(meter, delivered{access: rd.Header.AccessNumber}) >= want
		}, timeout)
	}
}

// tally is what the broker delivered for one meter, against what it sent.
type tally struct {
	unique     int // readings, each counted once
	duplicates int // readings delivered more than once
	// firstOfDup is when the first copy of each duplicate arrived.
	firstOfDup []time.Time
	missing    []int // answers (by seq) whose reading never arrived
	disorder   []string
}

// count checks the readings of every meter against the telegrams it sent
// (sent): which arrived, how often, and in which order. Order means: the
// first delivery of each reading comes after that of every earlier
// reading, with a later read time.
func (r *faultRig) count(sent []uint64) map[string]tally {
	r.t.Helper()
	got := r.readings()
	out := map[string]tally{}
	for i, meter := range r.meters {
		var tl tally
		seen := map[int]time.Time{}
		last, lastTime := -1, time.Time{}
		for _, d := range got[meter] {
			s := r.seq(meter, d)
			if at, ok := seen[s]; ok {
				tl.duplicates++
				tl.firstOfDup = append(tl.firstOfDup, at)
				continue
			}
			seen[s] = d.at
			if s < last || !d.time.After(lastTime) {
				tl.disorder = append(tl.disorder, fmt.Sprintf("reading %d (%v) after reading %d (%v)", s, d.time, last, lastTime))
			}
			last, lastTime = s, d.time
		}
		for s := range int(sent[i]) {
			if _, ok := seen[s]; !ok {
				tl.missing = append(tl.missing, s)
			}
		}
		tl.unique = len(seen)
		out[meter] = tl
	}
	return out
}

// metric reads one unlabelled sample from /metrics; a missing one is 0.
func (r *faultRig) metric(name string) float64 {
	r.t.Helper()
	body := r.get("/metrics")
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				r.t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	return 0
}

// get fetches path from the metrics port and returns the body; a
// transport error fails the test.
func (r *faultRig) get(path string) string {
	r.t.Helper()
	return getText(r.t, endpoint(r.port, path))
}

// getText fetches url and returns the body; a transport error fails the
// test.
func getText(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return string(b)
}

// health is /health's status code and problems.
func (r *faultRig) health() (int, []string) {
	r.t.Helper()
	var h struct{ Problems []string }
	code := getJSON(r.t, endpoint(r.port, "/health"), &h)
	return code, h.Problems
}

// waitReadings waits until each meter has at least one reading on the
// broker.
func (r *faultRig) waitReadings(timeout time.Duration) {
	r.t.Helper()
	for _, meter := range r.meters {
		r.rec.WaitFor("mbus/"+meter+"/reading", nil, timeout)
	}
}
