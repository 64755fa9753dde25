package sim

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// Meter describes one simulated meter.
type Meter struct {
	// Name identifies the meter in logs and snapshots; empty means
	// "meter N" by position on the bus.
	Name string
	// Primary is the primary address (0-250).
	Primary byte
	// Secondary is the secondary address. All zeros (never a real
	// address: manufacturer 0 is no manufacturer) means: take it from the
	// long header of the first telegram. When set, the long headers of all
	// telegrams are rewritten to carry it, as the meter's own would.
	Secondary mbus.SecondaryAddress
	// Telegrams are complete RSP_UD long frames (68 L L 68 … 16), answered
	// in turn as the master toggles FCB. All but the last normally end
	// with DIF 1F (more records follow).
	Telegrams [][]byte
	// Delay is added to the bus's response delay for this meter.
	Delay time.Duration
	// Baud is the speed the meter talks at; 0 means any. A meter with a
	// speed of its own hears only requests sent at that speed, as on a
	// bus with meters at mixed speeds. Only a pseudo-terminal tells the
	// speed of a request (the one the master set on its side); over TCP
	// every meter hears every request.
	Baud int
	// Faults are active from the start.
	Faults []Fault
	// Key, when set (16 bytes, AES-128), encrypts every telegram in
	// security mode 5 (EN 13757-7) as it is sent, after its access number
	// and register are stamped, as an encrypting meter does. Telegrams
	// with a long header only.
	Key []byte
}

// MeterStatus is a snapshot of one meter on the bus.
type MeterStatus struct {
	Name      string
	Primary   byte
	Secondary mbus.SecondaryAddress
	Telegrams int
	// Next is the index of the telegram a new request (toggled FCB) gets.
	Next int
	// AccessNumber is the access number of the telegram sent last (of
	// the first telegram when none was sent yet), 0 for telegrams
	// without one.
	AccessNumber byte
	Selected     bool
	Faults       []Fault
	// Requests counts frames that reached the meter (addressed to it, to
	// 253 while it was selected, to 254/255, and secondary selections).
	Requests uint64
	// Answers counts answers the meter put on the wire (E5 and RSP_UD,
	// faulty ones included, silence excluded).
	Answers uint64
	// Telegrams sent: RSP_UD answers, faulty ones included.
	TelegramsSent uint64
	// Transmissions counts new telegrams (each access number once; a
	// repeat for an unchanged FCB is the same transmission).
	Transmissions uint64
	// Intact counts the transmissions of which at least one copy went
	// on the line undamaged, within the response window and without
	// colliding: what a master can have read. A fault test compares it
	// with the readings that arrived.
	Intact uint64
	// Late counts those of Intact whose whole copies all left more than
	// LateSlack after they were due, because the simulator itself was
	// held up (a busy test machine): a master may have given up on them.
	Late uint64
}

// meter is a Meter with its link-layer state; guarded by Bus.mu.
type meter struct {
	name      string
	primary   byte
	secondary mbus.SecondaryAddress
	telegrams [][]byte
	delay     time.Duration
	baud      int
	faults    []faultState
	key       []byte

	selected bool
	// seq is the index of the telegram last sent (or to send first).
	seq int
	// answered is false after a reset: no request has been answered since.
	answered bool
	lastFCB  bool

	requests, answers, sent uint64
	// intact counts transmissions that went out whole; intactTx is the
	// transmission number (cur) plus one of the last one counted.
	intact, intactTx uint64
	// late counts intact transmissions sent only late; lateTx is whether
	// the last one counted is such.
	late   uint64
	lateTx bool

	// fixedAccess and advance are the bus's Options of the same names.
	fixedAccess, advance bool
	// tx counts new telegrams chosen (retries excluded); cur is the
	// transmission number of the telegram chosen last, see stamp.
	tx, cur uint64
	// keep is the bus's Options.Record; log holds one Transmission per
	// transmission number when it is set.
	keep bool
	log  []Transmission
}

type faultState struct {
	Fault
	count int // answers seen since the fault was set, for Every
	fired int // times the fault fired, for Times
}

// Errors of AddMeter and the loaders.
var (
	ErrNoTelegram   = errors.New("meter has no telegram")
	ErrNotRSPUD     = errors.New("not a response telegram")
	ErrNoSecondary  = errors.New("no secondary address")
	ErrBadPrimary   = errors.New("primary address out of range")
	ErrUnknownMeter = errors.New("no such meter")
)

// dataOff is the offset of the user data in a long frame: 68 L L 68 C A CI.
const dataOff = 7

// newMeter checks m and copies what it needs.
func newMeter(m Meter) (*meter, error) {
	if m.Primary > mbus.AddrMaxPrimary {
		return nil, fmt.Errorf("meter %q: %d: %w (0-%d)", m.Name, m.Primary, ErrBadPrimary, mbus.AddrMaxPrimary)
	}
	if len(m.Telegrams) == 0 {
		return nil, fmt.Errorf("meter %q: %w", m.Name, ErrNoTelegram)
	}
	mt := &meter{name: m.Name, primary: m.Primary, secondary: m.Secondary, delay: m.Delay, baud: m.Baud, key: bytes.Clone(m.Key)}
	var first *mbus.Frame
	for i, raw := range m.Telegrams {
		f, err := checkTelegram(raw)
		if err != nil {
			return nil, fmt.Errorf("meter %q: telegram %d: %w", m.Name, i+1, err)
		}
		if i == 0 {
			first = &f
		}
		if len(m.Key) > 0 {
			if _, err := mbus.EncryptFrame(f, m.Key); err != nil {
				return nil, fmt.Errorf("meter %q: telegram %d: %w", m.Name, i+1, err)
			}
		}
		mt.telegrams = append(mt.telegrams, append([]byte(nil), raw...))
	}
	if mt.secondary == (mbus.SecondaryAddress{}) {
		if !hasLongHeader(first.CI) {
			return nil, fmt.Errorf("meter %q: %w: first telegram has CI 0x%02X without long header; set the secondary address", m.Name, ErrNoSecondary, first.CI)
		}
		copy(mt.secondary[:], first.Data[:8])
	}
	for _, f := range m.Faults {
		if err := f.Validate(); err != nil {
			return nil, fmt.Errorf("meter %q: %w", m.Name, err)
		}
		mt.faults = append(mt.faults, faultState{Fault: f})
	}
	return mt, nil
}

// checkTelegram accepts a complete RSP_UD long frame with a response CI.
func checkTelegram(raw []byte) (mbus.Frame, error) {
	f, n, err := mbus.DecodeFrame(raw)
	if err != nil {
		return f, err
	}
	if n != len(raw) {
		return f, fmt.Errorf("%d bytes after the frame", len(raw)-n)
	}
	if f.Type != mbus.FrameLong {
		return f, fmt.Errorf("%v frame: %w", f.Type, ErrNotRSPUD)
	}
	switch f.CI {
	case mbus.CIRespVarLong, mbus.CIRespVarLong2:
		if len(f.Data) < 12 {
			return f, fmt.Errorf("long header needs 12 bytes, have %d: %w", len(f.Data), mbus.ErrTruncated)
		}
	case mbus.CIRespVarShort, mbus.CIRespVarNone, mbus.CIRespFixed, mbus.CIRespFixed2:
	default:
		return f, fmt.Errorf("CI 0x%02X: %w", f.CI, ErrNotRSPUD)
	}
	return f, nil
}

func hasLongHeader(ci byte) bool { return ci == mbus.CIRespVarLong || ci == mbus.CIRespVarLong2 }

// telegram returns telegram i as the meter sends it now: C = RSP_UD, A =
// its primary address, its secondary address in a long header, the
// access number and register of its current transmission (see stamp),
// and the checksum to match.
func (m *meter) telegram(i int) []byte {
	out := append([]byte(nil), m.telegrams[i]...)
	out[4] = mbus.CRspUD
	out[5] = m.primary
	if hasLongHeader(out[6]) {
		copy(out[dataOff:dataOff+8], m.secondary[:])
	}
	stamp(out, m.cur, m.fixedAccess, m.advance)
	if len(m.key) > 0 {
		out = m.encrypt(out)
	}
	var cs byte
	for _, b := range out[4 : len(out)-2] {
		cs += b
	}
	out[len(out)-2] = cs
	return out
}

// encrypt returns the long frame out (checksum not yet fixed) with its
// records encrypted with the meter's key; newMeter made sure it can be.
func (m *meter) encrypt(out []byte) []byte {
	f := mbus.Frame{Type: mbus.FrameLong, C: out[4], A: out[5], CI: out[6], Data: out[dataOff : len(out)-2]}
	enc, err := mbus.EncryptFrame(f, m.key)
	if err != nil {
		return out
	}
	b, err := enc.Encode()
	if err != nil {
		return out
	}
	return b
}

// reset is SND_NKE or an application reset: back to the first telegram.
func (m *meter) reset() {
	m.seq = 0
	m.answered = false
	m.lastFCB = false
}

// next picks the telegram for a REQ_UD2 with control field c, arrived
// at now.
func (m *meter) next(c byte, now time.Time) []byte {
	fcv, fcb := c&mbus.FCV != 0, c&mbus.FCB != 0
	if !fcv || !m.answered || fcb != m.lastFCB {
		// A new transmission, not the repeat of the last one; with FCV
		// after an answer, the toggled FCB acknowledges that answer.
		m.cur = m.tx
		m.tx++
		m.begin(now, fcv && m.answered)
	}
	switch {
	case !fcv:
		m.reset()
	case !m.answered:
		m.seq = 0
	case fcb != m.lastFCB:
		m.seq = (m.seq + 1) % len(m.telegrams)
	}
	if fcv {
		m.answered = true
		m.lastFCB = fcb
	}
	t := m.telegram(m.seq)
	if r := m.record(m.cur); r != nil {
		r.Access = accessIn(t)
	}
	return t
}

// noteIntact counts transmission n as intact, once however often it is
// repeated.
func (m *meter) noteIntact(n uint64, late bool) {
	r := m.record(n)
	switch {
	case m.intactTx != n+1:
		m.intact++
		m.intactTx = n + 1
		m.lateTx = late
		if late {
			m.late++
		}
		if r != nil {
			r.Intact, r.Late = true, late
		}
	case m.lateTx && !late: // a repeat in time makes up for a late copy
		m.late--
		m.lateTx = false
		if r != nil {
			r.Late = false
		}
	}
}

// hears reports whether a request sent at lineBaud (0: unknown) reaches
// the meter: at any other speed than its own it sees only garbage.
func (m *meter) hears(lineBaud int) bool {
	return m.baud <= 0 || lineBaud <= 0 || m.baud == lineBaud
}

// status copies the meter's state.
func (m *meter) status() MeterStatus {
	s := MeterStatus{
		Name: m.name, Primary: m.primary, Secondary: m.secondary,
		Telegrams: len(m.telegrams), Selected: m.selected,
		Requests: m.requests, Answers: m.answers, TelegramsSent: m.sent,
		Transmissions: m.tx, Intact: m.intact, Late: m.late,
	}
	s.Next = m.seq
	s.AccessNumber = m.accessNumber()
	if m.answered {
		s.Next = (m.seq + 1) % len(m.telegrams)
	}
	for _, f := range m.faults {
		s.Faults = append(s.Faults, f.Fault)
	}
	return s
}

// accessNumber is the access number the meter sent last.
func (m *meter) accessNumber() byte { return accessIn(m.telegram(m.seq)) }

// accessIn is the access number of the long frame t, 0 when it has none.
func accessIn(t []byte) byte {
	off, ok := accessOffset(t[dataOff-1])
	if !ok || dataOff+off >= len(t)-2 {
		return 0
	}
	return t[dataOff+off]
}
