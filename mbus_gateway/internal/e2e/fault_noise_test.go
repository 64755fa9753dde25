package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// noiseBaud is the bus speed the gateway assumes in the noise scenario:
// at 2400 baud the response window (330 bit times + 50 ms) is long enough
// for a meter that takes its time.
const noiseBaud = 2400

// noisyMeter is one meter of the noisy bus and how it misbehaves.
type noisyMeter struct {
	role   string
	faults []sim.Fault
	delay  time.Duration
	// clean meters must keep their schedule.
	clean bool
}

// noisyBus: two well-behaved meters and one of each kind of trouble; the
// last two share primary address 9 and always collide.
var noisyBus = []noisyMeter{
	{role: "clean", clean: true},
	{role: "clean", clean: true},
	{role: "corrupted bytes", faults: []sim.Fault{{Kind: sim.FaultCorrupt, Probability: 0.3}}},
	{role: "wrong checksums", faults: []sim.Fault{{Kind: sim.FaultChecksum, Every: 2}}},
	{role: "truncated frames", faults: []sim.Fault{{Kind: sim.FaultTruncate, Probability: 0.3}}},
	{role: "echo", faults: []sim.Fault{{Kind: sim.FaultEcho}}, clean: true},
	{role: "slow, within the response window", delay: master.AnswerTimeout(noiseBaud) * 2 / 3, clean: true},
	{role: "never answering", faults: []sim.Fault{{Kind: sim.FaultNoAnswer}}},
	{role: "collision", clean: false},
	{role: "collision", clean: false},
}

// TestFaultNoisyBus: corrupted bytes, wrong checksums, truncated frames,
// an echo, a slow meter, a silent one and two meters that always collide
// share the bus. The silent meter and the colliding address turn
// unavailable; every whole telegram of the others is read and arrives,
// once, in order; and the well-behaved meters keep their schedule: no gap
// between two of their reads is longer than an interval plus one failed
// read (three attempts, each with a garbled telegram and the quiet after
// it) and the jitter.
func TestFaultNoisyBus(t *testing.T) {
	setup := countingMeters(t, len(noisyBus))
	var meters []map[string]any
	for i, nm := range noisyBus {
		m := &setup.Meters[i]
		m.Faults, m.Delay, m.Name = nm.faults, nm.delay, nm.role
		if nm.role == "collision" {
			m.Primary = 9
			if len(meters) > 0 && meters[len(meters)-1]["address"] == "9" {
				continue
			}
		}
		meters = append(meters, map[string]any{"address": strconv.Itoa(int(m.Primary))})
	}
	// The gateway's own answer window (187 ms at 2400 baud), no extra:
	// the schedule of the clean meters is measured against it.
	r := newFaultRig(t, setup, map[string]any{"meters": meters, "baudrate": noiseBaud, "response_timeout_extra": 0})
	r.start()
	// The troublemakers give up: the silent meter and the colliding
	// address open their breakers. They are never identified, so no
	// topic names them (no addr_<N> placeholders).
	eventually(t, 30*time.Second, "the meters at 8 and 9 open their breakers", func() bool {
		var st struct {
			Meters []struct{ Address, Breaker string } `json:"meters"`
		}
		getJSON(t, endpoint(r.port, "/status"), &st)
		open := 0
		for _, m := range st.Meters {
			if (m.Address == "8" || m.Address == "9") && m.Breaker == "open" {
				open++
			}
		}
		return open == 2
	})
	window := time.Now()
	const rounds = 10
	before := r.sent()
	eventually(t, time.Minute, fmt.Sprintf("the clean meters send %d more telegrams", rounds), func() bool {
		now := r.sent()
		return now[0] >= before[0]+rounds && now[1] >= before[1]+rounds
	})
	t.Logf("telegrams sent per meter: %v", r.sent())

	var st struct {
		Bus struct {
			Requests, Timeouts, Garbled, Collisions uint64
		} `json:"bus"`
	}
	if code := getJSON(t, endpoint(r.port, "/status"), &st); code != http.StatusOK {
		t.Fatalf("/status: got %d", code)
	}
	t.Logf("bus: %d requests, %d timeouts, %d garbled, %d collisions", st.Bus.Requests, st.Bus.Timeouts, st.Bus.Garbled, st.Bus.Collisions)
	if st.Bus.Timeouts == 0 || st.Bus.Garbled == 0 {
		t.Errorf("/status bus counters: got %d timeouts, %d garbled; want both above 0", st.Bus.Timeouts, st.Bus.Garbled)
	}

	arr := drain(r, 30*time.Second)
	f := arr.check(events{})
	t.Logf("whole telegrams %d of %d, readings delivered %d, lost %d, duplicates %d",
		f.produced, f.transmissions, f.delivered, f.lost, f.duplicates)

	// A failed attempt: the request, the answer window and a whole
	// telegram (garbled), and the quiet the master then waits for.
	attempt := master.WireTime(5, noiseBaud) + master.AnswerTimeout(noiseBaud) +
		master.WireTime(len(setup.Meters[0].Telegrams[0]), noiseBaud) + master.GapTimeout(noiseBaud)
	allowed := pollInterval + time.Duration(master.DefaultRetries+1)*attempt + 2*pollInterval/10 + 100*time.Millisecond
	for i, nm := range noisyBus {
		meter := r.meters[i]
		reads := arr.meters[meter].reads()
		if nm.role != "collision" && nm.role != "never answering" && len(reads) == 0 {
			t.Errorf("%s (%s): no reading", meter, nm.role)
		}
		if !nm.clean {
			continue
		}
		var longest time.Duration
		for k := 1; k < len(reads); k++ {
			if reads[k].Before(window) {
				continue
			}
			longest = max(longest, reads[k].Sub(reads[k-1]))
		}
		msg := fmt.Sprintf("%s (%s): longest gap between reads %v", meter, nm.role, longest.Round(time.Millisecond))
		if longest > allowed {
			t.Errorf("%s, want at most %v", msg, allowed)
		} else {
			t.Log(msg)
		}
	}
	for _, m := range r.rec.Messages("") {
		if strings.Contains(m.Topic, "addr_") {
			t.Errorf("published under a placeholder: %s = %q", m.Topic, m.Payload)
		}
	}
	stop(t, r.gw)
}
