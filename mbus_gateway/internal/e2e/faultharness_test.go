package e2e

// The rig of the fault tests: the gateway binary on three single-telegram
// meters of the demo bus (heat, water, gas) read every second, a real
// Mosquitto, and a recorder of everything the gateway publishes. Every
// telegram the simulator sends carries the next access number of its
// meter, so each reading on mbus/<meter>/reading can be matched with the
// transmission it came from: the tests account for every one, per meter
// (see arrivals.check).

import (
	"context"
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

// answerExtra is added to the gateway's answer window in the fault tests
// (response_timeout_extra). The simulated meters answer from inside the
// test process, which a busy machine can hold up for longer than the
// 59 ms that 38400 baud allow; the master then gives up on a telegram
// that it would have had from a real meter, which no machine holds up.
const answerExtra = 300 * time.Millisecond

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
	// counting: the meters count their transmissions in their energy
	// register (sim.Options.Advance), see identify.
	counting bool
}

// newFaultRig starts the bus, the broker and the recorder and writes the
// options; extra options are added. The gateway is started by start.
func newFaultRig(t *testing.T, setup sim.Setup, extra map[string]any, env ...string) *faultRig {
	t.Helper()
	r := &faultRig{t: t, index: map[string]int{}, first: map[string]byte{}, env: hermeticEnv(env...), counting: setup.Options.Advance}
	setup.Options.Record = true
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
	opts := map[string]any{"meters": meters, "poll_interval": 1, "response_timeout_extra": answerExtra.Milliseconds()}
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
