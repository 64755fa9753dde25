package transport

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"
)

// conn is the part of net.TCPConn and os.File a pollPort uses: both go
// through Go's poller, so deadlines work and may be moved by another
// goroutine while a Read waits.
type conn interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
	SyscallConn() (syscall.RawConn, error)
}

// pollPort is a Port over a pollable descriptor: a TCP connection or a
// terminal opened non-blocking.
type pollPort struct {
	counters
	name  string // for messages: "tcp://host:port" or the device path
	c     conn
	raw   syscall.RawConn
	close func() error
	// setBaud switches the line speed; nil where the speed is fixed.
	setBaud func(baud int) error
}

var _ Port = (*pollPort)(nil)

func newPollPort(name string, c conn, closeFn func() error) (*pollPort, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &pollPort{name: name, c: c, raw: raw, close: closeFn}, nil
}

func (p *pollPort) Read(b []byte) (int, error) {
	n, err := p.c.Read(b)
	p.rx.add(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("the other side closed the line: %w", err)
		}
		return n, ioError(fmt.Errorf("%s: read: %w", p.name, err))
	}
	return n, nil
}

func (p *pollPort) Write(b []byte) (int, error) {
	n, err := p.c.Write(b)
	p.tx.add(n)
	if err != nil {
		return n, ioError(fmt.Errorf("%s: write: %w", p.name, err))
	}
	return n, nil
}

func (p *pollPort) SetReadDeadline(t time.Time) error {
	if err := p.c.SetReadDeadline(t); err != nil {
		return ioError(fmt.Errorf("%s: %w", p.name, err))
	}
	return nil
}

// Drain reads whatever the kernel holds without waiting: the descriptor
// is non-blocking underneath, so a raw read returns EAGAIN once it is
// empty. A deadline-based drain would cost a wait on every request, and
// tcflush on a terminal can, racing with the delivery of new input, leave
// that input parked in the driver until the next byte arrives. Control,
// unlike RawConn.Read, ignores the (usually expired) read deadline.
func (p *pollPort) Drain() error {
	var buf [512]byte
	var rerr error
	eof := false
	err := p.raw.Control(func(fd uintptr) {
		for {
			n, err := syscall.Read(int(fd), buf[:])
			switch {
			case n > 0:
				p.rx.add(n)
			case errors.Is(err, syscall.EINTR):
			case errors.Is(err, syscall.EAGAIN):
				return
			case err != nil:
				rerr = err
				return
			default:
				eof = true
				return
			}
		}
	})
	switch {
	case err != nil:
		return ioError(fmt.Errorf("%s: drain: %w", p.name, err))
	case rerr != nil:
		return ioError(fmt.Errorf("%s: drain: %w", p.name, rerr))
	case eof:
		return ioError(fmt.Errorf("%s: drain: the other side closed the line: %w", p.name, io.EOF))
	}
	return nil
}

func (p *pollPort) Close() error { return p.close() }

// SetBaud switches the line speed, or fails with ErrBaudFixed on a TCP
// converter.
func (p *pollPort) SetBaud(baud int) error {
	if err := CheckBaud(baud); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if p.setBaud == nil {
		return fmt.Errorf("%s: set baud rate %d: %w", p.name, baud, ErrBaudFixed)
	}
	if err := p.setBaud(baud); err != nil {
		return ioError(fmt.Errorf("%s: set baud rate %d: %w", p.name, baud, err))
	}
	return nil
}
