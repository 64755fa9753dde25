package sim

import "time"

// Transmission is one new telegram of a meter and what became of it, as
// the meter saw it. With Options.Record the bus keeps one per
// transmission, so that a test can account for every telegram by its
// number: read and delivered, damaged on the line, or lost for a reason
// it can name.
type Transmission struct {
	// N is the meter's transmission number, 0 for its first telegram:
	// the count that stamp writes into the access number and, with
	// Options.Advance, into the first counter register.
	N uint64
	// Access is the telegram's access number (0 for telegrams without one).
	Access byte
	// At is when the request that chose it arrived.
	At time.Time
	// Copies counts the copies put on the line, the master's repeats
	// (same FCB) and damaged copies included.
	Copies int
	// Intact and Late are as in MeterStatus, for this transmission.
	Intact, Late bool
	// Acked is set when the master went on to the next telegram (REQ_UD2
	// with the FCB toggled, EN 13757-2 clause 5.5): it took this one.
	// Abandoned is set when it started over instead (SND_NKE, an
	// application reset, or a request without FCV) and so did not take
	// it. Neither is set while the meter has not been asked again.
	Acked, Abandoned bool
	// Unplugged is when the adapter (PTY.Unplug) was pulled out while
	// bytes of this telegram were still unread on the line: it went
	// with the adapter. Zero otherwise.
	Unplugged time.Time
}

// sentTx names a transmission of a meter.
type sentTx struct {
	m *meter
	n uint64
}

// record is the kept transmission n, nil when none is kept.
func (m *meter) record(n uint64) *Transmission {
	if n >= uint64(len(m.log)) {
		return nil
	}
	return &m.log[n]
}

// begin starts transmission m.cur, chosen for a request at now; acked
// tells what the request said of the one before.
func (m *meter) begin(now time.Time, acked bool) {
	if m.cur > 0 {
		if prev := m.record(m.cur - 1); prev != nil && !prev.Acked && !prev.Abandoned {
			prev.Acked, prev.Abandoned = acked, !acked
		}
	}
	if m.keep {
		m.log = append(m.log, Transmission{N: m.cur, At: now})
	}
}

// Sent returns the transmissions of the meter at position i (in the order
// of Meters), oldest first; nil unless the bus was made with
// Options.Record.
func (b *Bus) Sent(i int) []Transmission {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i < 0 || i >= len(b.meters) {
		return nil
	}
	return append([]Transmission(nil), b.meters[i].log...)
}

// pulled marks the telegrams of the last reply on the line as gone with
// the adapter, pulled out at.
func (b *Bus) pulled(at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.lastReply {
		if r := s.m.record(s.n); r != nil {
			r.Unplugged = at
		}
	}
}
