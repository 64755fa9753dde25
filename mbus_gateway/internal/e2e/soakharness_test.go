package e2e

// Helpers of the fault scenarios and of the soak run: a bus of many
// meters whose energy register counts their transmissions, and the
// account of every transmission the simulator recorded (sim.Bus.Sent)
// against the readings that arrived, by number: a telegram that was
// damaged, cut or drowned in a collision was never a reading; one that
// went out whole arrives, once and in order, or the test names why it
// could not.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
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

// sample is what the tests read of a reading on mbus/<meter>/reading.
type sample struct {
	Meter  string    `json:"meter"`
	Time   time.Time `json:"time"`
	Header struct {
		AccessNumber byte `json:"access_number"`
	} `json:"header"`
	Records []struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	} `json:"records"`
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

// identify reads which transmission of its meter a reading came from:
// with the energy register the simulator advances (countingMeters), or
// else with the access number, counted from the meter's first telegram
// (the tests that count that way stay below 256 transmissions a meter).
func (r *faultRig) identify(payload []byte) (n uint64, rd sample, err error) {
	if err := json.Unmarshal(payload, &rd); err != nil {
		return 0, rd, fmt.Errorf("reading: %w", err)
	}
	if !r.counting {
		return uint64(rd.Header.AccessNumber - r.first[rd.Meter]), rd, nil
	}
	for _, rec := range rd.Records {
		if rec.Key == "energy" {
			v, err := strconv.ParseFloat(string(rec.Value), 64)
			if err != nil || v < 0 {
				return 0, rd, fmt.Errorf("reading of %s: energy %s is no transmission number", rd.Meter, rec.Value)
			}
			return uint64(math.Round(v)), rd, nil
		}
	}
	return 0, rd, fmt.Errorf("reading of %s: no energy record", rd.Meter)
}

// arrivals are the readings on mbus/<meter>/reading by transmission, as
// they come in; the recorder is read incrementally, so that it can be
// asked often during a long run.
type arrivals struct {
	r      *faultRig
	cursor int
	meters map[string]*arrival
}

// arrival is what arrived for one meter.
type arrival struct {
	got        map[uint64]copyOf // transmission → its first copy
	order      []uint64          // transmissions in order of first arrival
	duplicates []duplicate
	disorder   []string
}

// reads are the read times of the readings, in order of arrival.
func (ar *arrival) reads() []time.Time {
	out := make([]time.Time, len(ar.order))
	for i, n := range ar.order {
		out[i] = ar.got[n].read
	}
	return out
}

// copyOf is a reading as it arrived: when it was read, when it arrived.
type copyOf struct{ read, at time.Time }

// duplicate is a reading that came again: when each copy arrived.
type duplicate struct {
	n            uint64
	first, again time.Time
}

func newArrivals(r *faultRig) *arrivals {
	a := &arrivals{r: r, meters: map[string]*arrival{}}
	for _, m := range r.meters {
		a.meters[m] = &arrival{got: map[uint64]copyOf{}}
	}
	return a
}

// update takes in the messages that arrived since the last call. Each
// reading must come after the one before it: a later transmission, read
// later.
func (a *arrivals) update() {
	a.r.t.Helper()
	msgs := a.r.rec.Messages("")
	for _, m := range msgs[a.cursor:] {
		meter, ok := strings.CutSuffix(strings.TrimPrefix(m.Topic, "mbus/"), "/reading")
		if !ok || !strings.HasPrefix(m.Topic, "mbus/") {
			continue
		}
		n, rd, err := a.r.identify(m.Payload)
		if err != nil {
			a.r.t.Fatalf("%s: %v in %s", m.Topic, err, m.Payload)
		}
		ar := a.meters[meter]
		if ar == nil || rd.Meter != meter {
			a.r.t.Fatalf("%s: a reading of meter %q on an unknown topic", m.Topic, rd.Meter)
		}
		if first, ok := ar.got[n]; ok {
			ar.duplicates = append(ar.duplicates, duplicate{n: n, first: first.at, again: m.At})
			continue
		}
		if k := len(ar.order); k > 0 {
			prev := ar.order[k-1]
			if n < prev || !rd.Time.After(ar.got[prev].read) {
				ar.disorder = append(ar.disorder, fmt.Sprintf("transmission %d (read %v) after %d (read %v)", n, rd.Time, prev, ar.got[prev].read))
			}
		}
		ar.got[n] = copyOf{read: rd.Time, at: m.At}
		ar.order = append(ar.order, n)
	}
	a.cursor = len(msgs)
}

// settled reports whether every whole telegram of every meter has either
// arrived or been given up by the master (see sim.Transmission): what
// the gateway took is on the broker, the rest can be accounted for.
func (a *arrivals) settled() bool {
	a.update()
	for i, meter := range a.r.meters {
		got := a.meters[meter].got
		for _, tx := range a.r.bus.Sent(i) {
			if _, ok := got[tx.N]; !ok && tx.Intact && !tx.Abandoned {
				return false
			}
		}
	}
	return true
}

// events are what happened to the gateway during a run, by which the
// test explains readings it lost or got twice.
type events struct {
	outages []time.Time // the broker had exited
	kills   []time.Time // the gateway was killed (SIGKILL)
}

// figures are the totals of a run: every transmission of every meter is
// counted in exactly one of damaged, delivered, late, unplugged, killed
// and lost.
type figures struct {
	transmissions int // new telegrams the meters sent
	damaged       int // no copy went on the line whole: never a reading
	produced      int // whole: transmissions - damaged
	delivered     int
	late          int // whole, but only late (a held-up simulator), and the master gave up on it
	unplugged     int // on the wire, unread, when the adapter was pulled out
	killed        int // taken by the gateway just before it was killed
	lost          int // none of the above: the test fails
	duplicates    int
}

// check accounts for every transmission the simulator made, by number:
// each whole telegram arrived on the broker, in order, or is accounted
// for by name (sent late and given up by the master, unread on the line
// at an unplug, read by a gateway that was killed before it could
// commit it). It fails the test for any other telegram that did not
// arrive (lost), for readings out of order, for readings of telegrams
// that never went out whole, and for duplicates that no broker outage
// explains: a reading may come twice only when the broker went away
// between its two copies (its PUBACK never came).
func (a *arrivals) check(ev events) figures {
	t := a.r.t
	t.Helper()
	a.update()
	var f figures
	for i, meter := range a.r.meters {
		ar := a.meters[meter]
		sent := a.r.bus.Sent(i)
		f.transmissions += len(sent)
		f.duplicates += len(ar.duplicates)
		for n := range ar.got {
			if n >= uint64(len(sent)) {
				t.Errorf("%s: a reading of transmission %d, but the meter made only %d", meter, n, len(sent))
			}
		}
		for _, tx := range sent {
			name := fmt.Sprintf("%s: transmission %d (access number %d, asked for at %s, %d copies)",
				meter, tx.N, tx.Access, tx.At.Format("15:04:05.000"), tx.Copies)
			_, arrived := ar.got[tx.N]
			switch {
			case arrived && !tx.Intact:
				t.Errorf("%s arrived, but no copy of it went out whole", name)
			case arrived:
				f.delivered++
			case !tx.Intact:
				f.damaged++
			case tx.Acked:
				f.lost++
				t.Errorf("lost: %s was taken by the master (it asked for the next telegram) but never arrived", name)
			case !tx.Unplugged.IsZero():
				f.unplugged++
				t.Logf("lost: %s was on the wire, unread, at the unplug at %s", name, tx.Unplugged.Format("15:04:05.000"))
			case lastBefore(sent, tx, ev.kills):
				f.killed++
				t.Logf("lost: %s was the last the gateway took before it was killed", name)
			case tx.Late:
				f.late++
				t.Logf("not read: %s left the simulator late (held up) and the master gave up on it", name)
			default:
				f.lost++
				t.Errorf("lost: %s went out whole and in time, but never arrived (abandoned by the master: %v)", name, tx.Abandoned)
			}
		}
		if len(ar.disorder) > 0 {
			t.Errorf("%s: readings out of order: %v", meter, ar.disorder)
		}
		for _, d := range ar.duplicates {
			if !outageBetween(ev.outages, d.first, d.again) {
				t.Errorf("%s: transmission %d first delivered at %v came again at %v with no broker outage in between", meter, d.n, d.first, d.again)
			}
		}
	}
	f.produced = f.transmissions - f.damaged
	if limit := publishWindow * len(ev.outages); f.duplicates > limit {
		t.Errorf("duplicates: got %d, want at most a publish window (%d) per broker outage (%d)", f.duplicates, publishWindow, len(ev.outages))
	}
	if f.killed > len(ev.kills) {
		t.Errorf("readings lost to %d kills: got %d, want at most the one read in flight at each", len(ev.kills), f.killed)
	}
	return f
}

// lastBefore reports whether tx is its meter's last transmission before
// one of the kills.
func lastBefore(sent []sim.Transmission, tx sim.Transmission, kills []time.Time) bool {
	for _, k := range kills {
		if tx.At.Before(k) && (tx.N+1 == uint64(len(sent)) || !sent[tx.N+1].At.Before(k)) {
			return true
		}
	}
	return false
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

// drain spoils the bus and waits until every whole telegram is settled
// (see arrivals.settled); it returns the arrivals for check.
func drain(r *faultRig, timeout time.Duration) *arrivals {
	r.t.Helper()
	spoil(r.t, r.bus)
	arr := newArrivals(r)
	deadline := time.Now().Add(timeout)
	for !arr.settled() {
		if time.Now().After(deadline) {
			r.t.Errorf("readings still missing %v after the bus went quiet (outbox depth %v)", timeout, r.metric("mbus_outbox_depth"))
			break
		}
		<-time.After(200 * time.Millisecond) // polling the recorder: each look copies its whole list
	}
	return arr
}

// spoil gives every answer a wrong checksum, so that no telegram goes out
// whole any more and the deliveries can catch up with the count. The
// master still asks each meter again, which tells whether it took the
// meter's last telegram; a spoiled answer fails at once, where silence
// would hold the bus for the whole answer window, three times a meter.
func spoil(t *testing.T, bus *sim.Bus) {
	t.Helper()
	for _, m := range bus.Meters() {
		if err := bus.SetFault(m.Primary, sim.Fault{Kind: sim.FaultChecksum}); err != nil {
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
