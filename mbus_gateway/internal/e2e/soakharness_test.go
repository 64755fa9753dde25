package e2e

// Helpers of the scenarios that fault the bus (adapter unplugged, TCP
// converter gone, noise) and of the soak run: a bus of many meters whose
// energy register counts their transmissions, and the count of what
// arrived against what the simulator put on the line whole
// (sim.MeterStatus.Intact): a telegram that was damaged, cut or drowned
// in a collision was never a reading, one that went out whole must
// arrive.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// countingMeters are n single-telegram meters at primaries 1…n with
// secondary IDs 70000001…: each telegram carries an energy register (kWh,
// integer) that the simulator (Options.Advance) raises by one per
// transmission, so its value is the transmission's number, with no wrap
// as with the one-byte access number.
func countingMeters(t *testing.T, n int) sim.Setup {
	t.Helper()
	setup := sim.Setup{Options: sim.Options{Advance: true}}
	for i := range n {
		setup.Meters = append(setup.Meters, countingMeter(t, byte(i+1), 70000001+i))
	}
	return setup
}

// countingMeter is a heat meter ABB <id> at primary whose energy register
// counts its transmissions (with sim.Options.Advance).
func countingMeter(t *testing.T, primary byte, id int) sim.Meter {
	t.Helper()
	h := mbus.Header{ID: fmt.Sprintf("%08d", id), Manufacturer: "ABB", Version: 1, Medium: 0x04}
	raw, err := mbus.EncodeTelegram(primary, h, []mbus.RecordSpec{
		{Coding: mbus.DataInt32, VIF: []byte{0x06}, Int: 0},                         // energy, kWh: the transmission counter
		{Coding: mbus.DataInt32, VIF: []byte{0x13}, Int: int64(1000 + id%1000 - 1)}, // volume, L: fixed
	}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sim.Meter{Name: fmt.Sprintf("soak %d", primary), Primary: primary, Telegrams: [][]byte{raw}}
}

// transmission is the number of the simulator's transmission a reading
// came from, read from its energy register.
func transmission(payload []byte) (seq int, at time.Time, meter string, err error) {
	var rd struct {
		Meter   string    `json:"meter"`
		Time    time.Time `json:"time"`
		Records []struct {
			Key   string  `json:"key"`
			Value float64 `json:"value"`
		} `json:"records"`
	}
	if err := json.Unmarshal(payload, &rd); err != nil {
		return 0, time.Time{}, "", fmt.Errorf("reading: %w", err)
	}
	for _, r := range rd.Records {
		if r.Key == "energy" {
			return int(math.Round(r.Value)), rd.Time, rd.Meter, nil
		}
	}
	return 0, time.Time{}, "", fmt.Errorf("reading of %s: no energy record", rd.Meter)
}

// arrivals counts the readings on mbus/<meter>/reading by transmission
// number as they come in; it reads the recorder incrementally, so that it
// can be asked often during a long run.
type arrivals struct {
	r      *faultRig
	cursor int
	meters map[string]*arrival
}

// arrival is what arrived for one meter.
type arrival struct {
	seen       map[int]time.Time // transmission → arrival of its first copy
	reads      []time.Time       // read times, in order of arrival, without duplicates
	last       int               // highest transmission so far
	lastTime   time.Time         // its read time
	duplicates []duplicate
	disorder   []string
}

// duplicate is a reading that came again: when each copy arrived.
type duplicate struct{ first, again time.Time }

func newArrivals(r *faultRig) *arrivals {
	a := &arrivals{r: r, meters: map[string]*arrival{}}
	for _, m := range r.meters {
		a.meters[m] = &arrival{seen: map[int]time.Time{}, last: -1}
	}
	return a
}

// update takes in the messages that arrived since the last call.
func (a *arrivals) update() {
	a.r.t.Helper()
	msgs := a.r.rec.Messages("")
	for _, m := range msgs[a.cursor:] {
		meter, ok := strings.CutSuffix(strings.TrimPrefix(m.Topic, "mbus/"), "/reading")
		if !ok || !strings.HasPrefix(m.Topic, "mbus/") {
			continue
		}
		seq, readAt, inside, err := transmission(m.Payload)
		if err != nil {
			a.r.t.Fatalf("%s: %v in %s", m.Topic, err, m.Payload)
		}
		ar := a.meters[meter]
		if ar == nil || inside != meter {
			a.r.t.Fatalf("%s: a reading of meter %q on an unknown topic", m.Topic, inside)
		}
		if first, ok := ar.seen[seq]; ok {
			ar.duplicates = append(ar.duplicates, duplicate{first: first, again: m.At})
			continue
		}
		ar.seen[seq] = m.At
		ar.reads = append(ar.reads, readAt)
		if seq < ar.last || !readAt.After(ar.lastTime) {
			ar.disorder = append(ar.disorder, fmt.Sprintf("transmission %d (read %v) after %d (read %v)", seq, readAt, ar.last, ar.lastTime))
		}
		ar.last, ar.lastTime = seq, readAt
	}
	a.cursor = len(msgs)
}

// complete reports whether, for every meter, as many readings arrived
// as the simulator sent whole telegrams in time.
func (a *arrivals) complete() bool {
	a.update()
	for i, st := range a.r.bus.Meters() {
		if len(a.meters[a.r.meters[i]].seen) < int(st.Intact-st.Late) {
			return false
		}
	}
	return true
}

// figures are the totals of a run.
type figures struct {
	produced, delivered, lost, duplicates int
	transmissions                         int // including those damaged on the line
	late                                  int // of produced: sent late by a held-up simulator, see sim.MeterStatus.Late
}

// check fails the test for readings lost beyond allowLost in total, out
// of order, and for duplicates that no broker outage explains: a reading
// may come twice only when the broker went away between its two copies
// (its PUBACK never came). outages are the times the broker had exited.
func (a *arrivals) check(outages []time.Time, allowLost int) figures {
	t := a.r.t
	t.Helper()
	a.update()
	var f figures
	for i, st := range a.r.bus.Meters() {
		meter := a.r.meters[i]
		ar := a.meters[meter]
		f.produced += int(st.Intact)
		f.transmissions += int(st.Transmissions)
		f.delivered += len(ar.seen)
		f.duplicates += len(ar.duplicates)
		f.late += int(st.Late)
		// A late telegram may or may not have been taken by the master.
		if n := int(st.Intact-st.Late) - len(ar.seen); n > 0 {
			f.lost += n
			t.Logf("%s: %d whole telegrams sent in time, %d readings arrived: %d lost; transmissions seen: %s",
				meter, st.Intact-st.Late, len(ar.seen), n, ranges(ar.seen))
		} else if len(ar.seen) > int(st.Intact) {
			t.Errorf("%s: %d readings arrived for %d whole telegrams sent", meter, len(ar.seen), st.Intact)
		}
		for seq := range ar.seen {
			if seq >= int(st.Transmissions) {
				t.Errorf("%s: a reading of transmission %d, but the meter made only %d", meter, seq, st.Transmissions)
			}
		}
		if len(ar.disorder) > 0 {
			t.Errorf("%s: readings out of order: %v", meter, ar.disorder)
		}
		for _, d := range ar.duplicates {
			if !outageBetween(outages, d.first, d.again) {
				t.Errorf("%s: a reading first delivered at %v came again at %v with no broker outage in between", meter, d.first, d.again)
			}
		}
	}
	if f.lost > allowLost {
		t.Errorf("readings lost: got %d, want at most %d", f.lost, allowLost)
	}
	if limit := publishWindow * len(outages); f.duplicates > limit {
		t.Errorf("duplicates: got %d, want at most a publish window (%d) per broker outage (%d)", f.duplicates, publishWindow, len(outages))
	}
	return f
}

// ranges writes the transmissions in seen as ranges ("0-41 43-97"), to
// show where readings are missing.
func ranges(seen map[int]time.Time) string {
	seqs := slices.Sorted(maps.Keys(seen))
	var b strings.Builder
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		fmt.Fprintf(&b, " %d-%d (last arrived %s)", seqs[i], seqs[j], seen[seqs[j]].Format("15:04:05.000"))
		i = j + 1
	}
	return strings.TrimSpace(b.String())
}

// outageBetween reports whether the broker exited after a first copy
// arrived at from and before the second at to.
func outageBetween(outages []time.Time, from, to time.Time) bool {
	for _, o := range outages {
		if from.Before(o) && o.Before(to) {
			return true
		}
	}
	return false
}

// drain silences the bus and waits until the readings of every whole
// telegram have arrived; it returns the count.
func drain(r *faultRig, timeout time.Duration) *arrivals {
	r.t.Helper()
	silence(r.t, r.bus)
	arr := newArrivals(r)
	deadline := time.Now().Add(timeout)
	for !arr.complete() {
		if time.Now().After(deadline) {
			r.t.Errorf("readings still missing %v after the bus went quiet (outbox depth %v)", timeout, r.metric("mbus_outbox_depth"))
			break
		}
		<-time.After(200 * time.Millisecond) // polling the recorder: each look copies its whole list
	}
	return arr
}

// silence stops every meter from answering, so that the count of whole
// telegrams stops growing and the deliveries can catch up with it.
func silence(t *testing.T, bus *sim.Bus) {
	t.Helper()
	for _, m := range bus.Meters() {
		if err := bus.SetFault(m.Primary, sim.Fault{Kind: sim.FaultNoAnswer}); err != nil {
			t.Fatal(err)
		}
	}
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	return int64(procField(t, pid, "VmHWM")) << 10
}

// procField reads a "Name:  value kB" line of /proc/PID/status, in kB.
func procField(t *testing.T, pid int, name string) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("/proc/%d/status: no %s", pid, name)
	return 0
}
