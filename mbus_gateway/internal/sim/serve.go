package sim

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// Conn is one link between the bus and a master: a TCP connection, a
// pseudo-terminal, or one end of net.Pipe in tests.
type Conn interface {
	io.ReadWriteCloser
	SetReadDeadline(t time.Time) error
}

// Serve answers the requests that arrive on c until the master hangs up,
// c fails, ctx is cancelled or a FaultHangUp fires; it closes c when it
// returns. Bytes that
// cannot start a request are skipped, and a partial request is dropped
// byte by byte when the line stays idle for Options.IdleTimeout, so a
// burst of noise never wedges the conversation. A cancelled ctx or a
// hang-up is a normal end and returns nil.
func (b *Bus) Serve(ctx context.Context, c Conn) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var buf []byte
	tmp := make([]byte, 512)
	for {
		for {
			f, raw, ok := b.extract(&buf)
			if !ok {
				break
			}
			end := time.Now()
			r := b.handleAt(f, raw, lineBaud(c))
			b.logRequest(raw, r.segs)
			if err := transmit(ctx, c, end, r.segs, b.opts.Baud); err != nil {
				return b.ended(ctx, err)
			}
			b.noteIntact(r.intact, late(end, r.segs, b.opts.Baud))
			if r.hangUp {
				return nil
			}
		}
		var deadline time.Time
		if len(buf) > 0 {
			deadline = time.Now().Add(b.opts.IdleTimeout)
		}
		if err := c.SetReadDeadline(deadline); err != nil {
			return b.ended(ctx, err)
		}
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			buf = b.skip(buf, 1)
		case err != nil:
			return b.ended(ctx, err)
		}
	}
}

// speedConn is a Conn that knows the speed the master's side of the line
// is set to (a pseudo-terminal); 0 when it cannot tell.
type speedConn interface {
	LineBaud() int
}

// lineBaud is c's line speed, 0 when unknown.
func lineBaud(c Conn) int {
	if s, ok := c.(speedConn); ok {
		return s.LineBaud()
	}
	return 0
}

// ended turns the error that stopped a conversation into Serve's result.
func (b *Bus) ended(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
		return nil
	}
	return fmt.Errorf("sim: serve: %w", err)
}

// extract takes the first complete, valid request off *buf.
func (b *Bus) extract(buf *[]byte) (mbus.Frame, []byte, bool) {
	for len(*buf) > 0 {
		n, err := mbus.FrameLen(*buf)
		if err == nil && (n == 0 || n > len(*buf)) {
			return mbus.Frame{}, nil, false // wait for more
		}
		var f mbus.Frame
		if err == nil {
			f, n, err = mbus.DecodeFrame(*buf)
		}
		if err != nil || f.Type == mbus.FrameAck {
			// Resynchronise one byte further: the start character may
			// have been noise in front of a real request.
			*buf = b.skip(*buf, 1)
			continue
		}
		raw := append([]byte(nil), (*buf)[:n]...)
		*buf = (*buf)[n:]
		return f, raw, true
	}
	return mbus.Frame{}, nil, false
}

func (b *Bus) skip(buf []byte, n int) []byte {
	b.mu.Lock()
	b.garbage += uint64(n) //nolint:gosec // G115: n indexes buf, so it is never negative
	b.mu.Unlock()
	return buf[n:]
}

func (b *Bus) logRequest(raw []byte, segs []segment) {
	ev := b.opts.Log.Debug()
	if ev == nil {
		return
	}
	var out []byte
	for _, s := range segs {
		out = append(out, s.data...)
	}
	ev.Str("request", hex.EncodeToString(raw)).Str("answer", hex.EncodeToString(out)).Msg("request")
}

// transmit writes the segments at their due times. With a baud rate the
// first byte of each goes alone, then each chunk is written when its last
// byte would have left a real line, every
// due time counted from the segment's start, so sleeping late never adds
// up over a long frame.
func transmit(ctx context.Context, w io.Writer, start time.Time, segs []segment, baud int) error {
	chunk := max(1, baud/(11*50)) // about 20 ms of bytes
	for _, s := range segs {
		at := start.Add(s.at)
		if baud == 0 {
			chunk = len(s.data)
		}
		for i, j := 0, 0; i < len(s.data); i = j {
			j = min(i+chunk, len(s.data))
			if i == 0 && baud > 0 {
				j = 1 // the first byte alone: masters time an answer by it
			}
			if err := sleepUntil(ctx, at.Add(byteTimes(j, baud))); err != nil {
				return err
			}
			if _, err := w.Write(s.data[i:j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// late reports whether the last segment went out more than LateSlack
// after it was due (start + its offset + its time on the wire).
func late(start time.Time, segs []segment, baud int) bool {
	if len(segs) == 0 {
		return false
	}
	s := segs[len(segs)-1]
	return time.Since(start.Add(s.at+byteTimes(len(s.data), baud))) > LateSlack
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// ServeTCP accepts masters on ln, like an M-Bus-to-TCP converter, until ctx
// is cancelled; it closes ln. Several connections may be open at once; they
// share the bus and their requests are handled one at a time. It returns
// nil after ctx is cancelled, or the error that stopped Accept, once every
// conversation has ended.
func (b *Bus) ServeTCP(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			ln.Close()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sim: accept: %w", err)
		}
		wg.Go(func() {
			if err := b.Serve(ctx, c); err != nil {
				b.opts.Log.Warn().Err(err).Str("remote", c.RemoteAddr().String()).Msg("conversation ended")
			}
		})
	}
}
