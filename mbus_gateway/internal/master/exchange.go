package master

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

const maxFrame = mbus.MaxFrameLen

// answer is what a request expects back.
type answer uint8

const (
	wantAck  answer = iota + 1 // single character E5
	wantData                   // RSP_UD long (or control) frame
)

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
	deadline := time.Now().Add(WireTime(len(req), m.baud) + m.firstByte)
	got, err := m.receive(ctx, req, answerFrom(req, want), deadline)
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
		return mbus.Frame{}, nil, fmt.Errorf("%w [% X]: %w", ErrGarbage, raw, err)
	}
	if err := checkAnswer(f, want); err != nil {
		return mbus.Frame{}, nil, err
	}
	return f, raw, nil
}

// checkAnswer tells whether f is the kind of frame the request asks for.
func checkAnswer(f mbus.Frame, want answer) error {
	switch want {
	case wantAck:
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

// stray reports whether frame is a whole, valid RSP_UD of a meter other
// than from (see answerFrom): the late answer of an earlier exchange,
// which a meter repeats when the master asked again before it arrived.
func stray(frame []byte, from int) bool {
	if from < 0 {
		return false
	}
	f, _, err := mbus.DecodeFrame(frame)
	return err == nil && (f.Type == mbus.FrameLong || f.Type == mbus.FrameControl) && int(f.A) != from
}

// receive reads one answer frame and returns its bytes (aliasing m.buf).
//
// The frame ends when its length field says so; there is no wait for the
// line to go idle. The first byte must come before deadline; later bytes
// each within m.interByte of the previous. An echo of req (converters
// that loop the bus back) is recognised and skipped, and so is a whole
// answer of another meter than from (see stray): taken for this meter's,
// it would deliver that meter's reading twice and lose this one's.
func (m *Master) receive(ctx context.Context, req []byte, from int, deadline time.Time) ([]byte, error) {
	setDeadline, stop := m.cancellableDeadline(ctx)
	defer stop()

	buf := m.buf[:0]
	defer func() { m.buf = buf[:0] }()
	maybeEcho := true // buf so far is a prefix of req
	echoed := false
	var garbage error
	quietUntil := deadline.Add(time.Duration(maxFrame) * WireTime(1, m.baud))
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
		n, err := m.port.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			m.stats.rx.Add(uint64(n))
			buf = buf[:len(buf)+n]
			deadline = time.Now().Add(m.interByte)
			if garbage != nil && deadline.After(quietUntil) {
				deadline = quietUntil
			}
		}
		if maybeEcho && n > 0 {
			k := min(len(buf), len(req))
			switch {
			case !bytes.Equal(buf[:k], req[:k]):
				maybeEcho = false
			case len(buf) >= len(req):
				m.stats.echoes.Add(1)
				echoed = true
				maybeEcho = false
				buf = buf[:copy(buf, buf[len(req):])]
				// Our request has now left the wire: the slave's response
				// time starts here.
				deadline = time.Now().Add(m.firstByte)
			}
		}
		for !maybeEcho && garbage == nil && len(buf) > 0 {
			fl, ferr := mbus.FrameLen(buf)
			if ferr != nil {
				// Not a frame: read on until the line is quiet, so that the
				// rest of the garbage cannot spoil the next exchange.
				garbage = ferr
				break
			}
			if fl == 0 || len(buf) < fl {
				break
			}
			if !stray(buf[:fl], from) {
				return buf[:fl], nil
			}
			m.stats.strays.Add(1)
			buf = buf[:copy(buf, buf[fl:])]
			// This meter's answer usually follows right behind.
			deadline = time.Now().Add(m.firstByte)
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
		switch {
		case garbage != nil:
			m.stats.garbled.Add(1)
			return nil, fmt.Errorf("%w: %w", ErrGarbage, garbage)
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
