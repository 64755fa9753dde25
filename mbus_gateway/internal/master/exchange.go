package master

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

const maxFrame = mbus.MaxFrameLen

// lookAgain and maxLooks bound the extra looks at the line of a read
// that started too late to look before its deadline (see receive).
const (
	lookAgain = 10 * time.Millisecond
	maxLooks  = 3
)

// answer is what a request expects back.
type answer uint8

const (
	wantAck  answer = iota + 1 // single character E5
	wantData                   // RSP_UD long (or control) frame
	// wantSoleAck is an E5 after which the line stays quiet (m.quiet):
	// a scan probe, where more bytes behind the E5 mean a second meter.
	wantSoleAck
)

// prm is the bit of the control field set in frames from the master
// (EN 13757-2, table 4): a frame with it is never an answer.
const prm = 0x40

// exchange sends req and waits for the answer, repeating up to retries
// times when the answer is missing or bad. It returns the answer frame and
// a copy of its bytes.
//
// Whether to repeat after a broken port is the bus health's call: a port
// that broke during an attempt is reopened by the next one at once (a TCP
// converter that hung up mid-frame takes the next connection at once),
// but once the health holds the bus back (a port that cannot be opened)
// repeating would only wait out its backoff again, and the exchange ends.
func (m *Master) exchange(ctx context.Context, req []byte, want answer, retries int) (mbus.Frame, []byte, error) {
	var err error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			m.stats.retries.Add(1)
		}
		var f mbus.Frame
		var raw []byte
		f, raw, err = m.once(ctx, req, want)
		if err == nil {
			return f, raw, nil
		}
		if ctx.Err() != nil {
			return mbus.Frame{}, nil, err
		}
		if errors.Is(err, ErrPortDown) {
			m.health.Record(bushealth.PortFailed, err)
			if m.health.Wait() > 0 {
				return mbus.Frame{}, nil, err
			}
		}
	}
	return mbus.Frame{}, nil, err
}

// once is a single request and answer.
func (m *Master) once(ctx context.Context, req []byte, want answer) (mbus.Frame, []byte, error) {
	if r, ok := m.port.(readier); ok {
		if err := r.Ready(ctx); err != nil {
			return mbus.Frame{}, nil, portError(err)
		}
	}
	if err := ctx.Err(); err != nil {
		return mbus.Frame{}, nil, err
	}
	if err := m.switchLine(); err != nil {
		return mbus.Frame{}, nil, err
	}
	// Whatever is still in the input belongs to an earlier exchange (a late
	// answer, line noise); left there it would be taken for this answer.
	if err := m.port.Drain(); err != nil {
		return mbus.Frame{}, nil, portError(err)
	}
	// The window counts from the moment the request is handed over, not
	// from when Write returns: a master held up in between (a busy
	// machine) would otherwise stretch it and take a late answer.
	sent := time.Now()
	n, err := m.port.Write(req)
	if n > 0 {
		m.stats.tx.Add(uint64(n))
	}
	m.stats.requests.Add(1)
	if err != nil {
		return mbus.Frame{}, nil, portError(err)
	}
	// Write returns once the bytes are queued; they still have to cross
	// the wire before the slave's response time starts.
	deadline := sent.Add(WireTime(len(req), m.baud) + m.firstByte)
	got, err := m.receive(ctx, req, want, deadline)
	m.prev = req
	if err != nil {
		return mbus.Frame{}, nil, portError(err)
	}
	// The copy outlives the receive buffer: decoded telegrams keep slices
	// of the frame's data.
	raw := bytes.Clone(got)
	f, _, err := mbus.DecodeFrame(raw)
	if err != nil {
		m.stats.garbled.Add(1)
		if errors.Is(err, mbus.ErrChecksum) {
			m.stats.checksum.Add(1)
		}
		err = fmt.Errorf("%w [% X]: %w", ErrGarbage, raw, err)
	} else {
		err = checkAnswer(f, want)
	}
	if err != nil {
		// The frame ended by its length field, but a garbled or
		// unexpected one may have more behind it (the longer of two
		// colliding telegrams, a late answer): left on the line it would
		// spoil the next exchange.
		if serr := m.settle(ctx); serr != nil && ctx.Err() == nil {
			return mbus.Frame{}, nil, portError(serr)
		}
		return mbus.Frame{}, nil, err
	}
	return f, raw, nil
}

// settle reads and discards bytes until the line has been quiet as long
// as a gap inside a frame may last (m.interByte, which allows for
// converters that deliver in packets), but no longer than a whole frame
// and an answer time: a talking meter stops by then.
func (m *Master) settle(ctx context.Context) error {
	setDeadline, stop := m.cancellableDeadline(ctx)
	defer stop()
	limit := time.Now().Add(WireTime(maxFrame, m.baud) + m.firstByte)
	buf := m.buf[:cap(m.buf)]
	for {
		d := time.Now().Add(m.interByte)
		if d.After(limit) {
			d = limit
		}
		if !setDeadline(d) {
			return ctx.Err()
		}
		n, err := m.port.Read(buf)
		m.stats.rx.Add(uint64(n)) //nolint:gosec // G115: n is a byte count, never negative
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil
		case err != nil:
			return err
		case !time.Now().Before(limit):
			return nil
		}
	}
}

// echoTail tells whether b starts with the end of the echo of the
// previous request (m.prev), its start cut off by the drain before this
// request: the length of that end, -1 while b may still grow into one, 0
// when it is not one. Only on a converter that echoes, and only for bytes
// that cannot start a frame.
func (m *Master) echoTail(b []byte) int {
	if m.stats.echoes.Load() == 0 || len(b) == 0 || b[0] == 0xE5 || b[0] == 0x10 || b[0] == 0x68 {
		return 0
	}
	for i := 1; i < len(m.prev); i++ {
		tail := m.prev[i:]
		switch k := min(len(b), len(tail)); {
		case !bytes.Equal(b[:k], tail[:k]):
			continue
		case k < len(tail):
			return -1
		default:
			return k
		}
	}
	return 0
}

// checkAnswer tells whether f is the kind of frame the request asks for.
func checkAnswer(f mbus.Frame, want answer) error {
	switch want {
	case wantAck, wantSoleAck:
		if f.Type != mbus.FrameAck {
			return fmt.Errorf("%w: %v frame where an acknowledgement (E5) was due", ErrUnexpected, f.Type)
		}
	case wantData:
		if f.Type != mbus.FrameLong && f.Type != mbus.FrameControl {
			return fmt.Errorf("%w: %v frame where data (RSP_UD) was due", ErrUnexpected, f.Type)
		}
		// RSP_UD is function 8 with PRM = 0; ACD and DFC may be set
		// (EN 13757-2, table 4).
		if f.C&^(mbus.ACD|mbus.DFC) != mbus.CRspUD {
			return fmt.Errorf("%w: control field 0x%02X is not RSP_UD", ErrUnexpected, f.C)
		}
	}
	return nil
}

// answerFrom is the primary address whose RSP_UD answers req, or -1 when
// the answer cannot be told apart by its address: acknowledgements carry
// none, and a meter selected at 253 (or asked at 254) answers with
// whatever primary address it has.
func answerFrom(req []byte, want answer) int {
	if want != wantData || len(req) != 5 || req[0] != 0x10 || req[2] > mbus.AddrMaxPrimary {
		return -1
	}
	return int(req[2])
}

// stray reports whether frame, whole and valid, cannot be the answer to a
// request that wants want from the meter at from (see answerFrom): a
// request (the echo of an earlier one, which an echoing converter sent
// late), data where only an acknowledgement is due, or data of another
// meter than from. These are late answers to earlier exchanges, which a
// meter repeats when the master asked again before they arrived.
func stray(frame []byte, want answer, from int) bool {
	f, _, err := mbus.DecodeFrame(frame)
	switch {
	case err != nil || f.Type == mbus.FrameAck:
		return false
	case f.C&prm != 0:
		return true
	case want != wantData:
		return true
	}
	return (f.Type == mbus.FrameLong || f.Type == mbus.FrameControl) && from >= 0 && int(f.A) != from
}

// receive reads one answer frame and returns its bytes (aliasing m.buf).
//
// The frame ends when its length field says so; there is no wait for the
// line to go idle, except for wantSoleAck, where the line must then stay
// quiet for m.quiet. The first byte must come before deadline; later bytes
// each within m.interByte of the previous. The echo of req (converters
// that loop the bus back) is stripped once, before or after the answer,
// and whole frames that cannot be this answer are skipped (see stray):
// taken for it, a late answer of another meter would deliver that meter's
// reading twice and lose this one's, and an echo that came late would
// pass for a collision.
func (m *Master) receive(ctx context.Context, req []byte, want answer, deadline time.Time) ([]byte, error) {
	setDeadline, stop := m.cancellableDeadline(ctx)
	defer stop()

	from := answerFrom(req, want)
	buf := m.buf[:0]
	defer func() { m.buf = buf[:0] }()
	echoed := false
	got := 0 // length of the answer at the start of buf, once it is whole
	var garbage error
	quietUntil := deadline.Add(time.Duration(maxFrame) * WireTime(1, m.baud))
	looks := 0 // looks again after a deadline, see below
	for {
		if !setDeadline(deadline) {
			return nil, ctx.Err()
		}
		if len(buf) == cap(buf) {
			if garbage != nil {
				buf = buf[:0] // keep discarding until the line is quiet
			} else {
				buf = append(buf, 0)[:len(buf)]
			}
		}
		began := time.Now()
		n, err := m.port.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			looks = 0
			m.stats.rx.Add(uint64(n))
			buf = buf[:len(buf)+n]
			deadline = time.Now().Add(m.interByte)
			if garbage != nil && deadline.After(quietUntil) {
				deadline = quietUntil
			}
		}
		for garbage == nil && len(buf) > got {
			rest := buf[got:]
			if k := min(len(rest), len(req)); !echoed && bytes.Equal(rest[:k], req[:k]) {
				if len(rest) < len(req) {
					break // maybe the echo: wait for the rest
				}
				m.stats.echoes.Add(1)
				echoed = true
				buf = slices.Delete(buf, got, got+len(req))
				if got == 0 {
					// Our request has now left the wire: the slave's
					// response time starts here.
					deadline = time.Now().Add(m.firstByte)
				}
				continue
			}
			if k := m.echoTail(rest); got == 0 && k < 0 {
				break // maybe the rest of an echo: wait for more
			} else if got == 0 && k > 0 {
				m.stats.strays.Add(1)
				buf = slices.Delete(buf, 0, k)
				continue
			}
			fl, ferr := mbus.FrameLen(rest)
			if ferr != nil {
				// Not a frame: read on until the line is quiet, so that the
				// rest of the garbage cannot spoil the next exchange.
				garbage = ferr
				break
			}
			if fl == 0 || len(rest) < fl {
				break
			}
			if stray(rest[:fl], want, from) {
				m.stats.strays.Add(1)
				buf = slices.Delete(buf, got, got+fl)
				if got == 0 {
					// The answer usually follows right behind.
					deadline = time.Now().Add(m.firstByte)
				}
				continue
			}
			if got > 0 {
				garbage = errors.New("a second answer followed the first")
				break
			}
			got = fl
			if want != wantSoleAck {
				return buf[:got], nil
			}
		}
		if got > 0 && len(buf) == got && garbage == nil && n > 0 {
			deadline = time.Now().Add(m.quiet)
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, err
		}
		// A Read that starts after its deadline fails without looking at
		// the line: a gateway held up on a busy machine between its
		// request and the read would take an answer that came in time
		// for a missing one, and a meter that is given up on moves on to
		// its next telegram, so the reading is lost. Such a read looks
		// again, briefly; one that waited on the line until its deadline
		// does not, so a late answer stays late.
		if looks < maxLooks && !began.Before(deadline.Add(-lookAgain)) {
			looks++
			deadline = time.Now().Add(lookAgain)
			continue
		}
		switch {
		case garbage != nil:
			m.stats.garbled.Add(1)
			return nil, fmt.Errorf("%w: %w", ErrGarbage, garbage)
		case got > 0 && len(buf) == got:
			return buf[:got], nil // and the line stayed quiet
		case got > 0:
			m.stats.garbled.Add(1)
			return nil, fmt.Errorf("%w [% X]: more bytes after the answer", ErrGarbage, buf)
		case len(buf) == 0 && echoed:
			m.stats.timeouts.Add(1)
			return nil, fmt.Errorf("%w (only the echo of the request came back)", ErrTimeout)
		case len(buf) == 0:
			m.stats.timeouts.Add(1)
			return nil, ErrTimeout
		}
		// Part of a frame (or of an echo), then silence.
		m.stats.garbled.Add(1)
		return nil, fmt.Errorf("%w [% X]: %w", ErrGarbage, buf,
			&mbus.FrameError{Offset: len(buf), Err: mbus.ErrTruncated})
	}
}

// cancellableDeadline returns a function that sets the port's read
// deadline unless ctx has ended, and arranges for a cancelled ctx to cut a
// pending Read short by moving the deadline into the past. The mutex keeps
// a late setDeadline from undoing the cancellation.
func (m *Master) cancellableDeadline(ctx context.Context) (set func(time.Time) bool, stop func() bool) {
	var mu sync.Mutex
	cancelled := false
	stop = context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		cancelled = true
		_ = m.port.SetReadDeadline(time.Unix(1, 0))
	})
	set = func(t time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		if cancelled {
			return false
		}
		_ = m.port.SetReadDeadline(t)
		return true
	}
	return set, stop
}

// shortFrame encodes a short frame (SND_NKE, REQ_UD2).
func shortFrame(c, a byte) []byte {
	return []byte{0x10, c, a, c + a, 0x16}
}

// longFrame encodes a control or long frame (SND_UD).
func longFrame(c, a, ci byte, data []byte) ([]byte, error) {
	t := mbus.FrameLong
	if len(data) == 0 {
		t = mbus.FrameControl
	}
	return mbus.Frame{Type: t, C: c, A: a, CI: ci, Data: data}.Encode()
}
