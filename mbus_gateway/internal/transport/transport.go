// Package transport opens the byte pipe to an M-Bus master: a serial port
// (a USB level converter, 8E1 by default) or an M-Bus-to-TCP converter. It
// knows nothing of the protocol; it gives reads bounded by deadlines, a way
// to discard stale input, byte counters, and a wrapper that reopens a port
// after an I/O error.
package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Port is an open connection to the bus.
//
// Read returns an error matching ErrTimeout (and os.ErrDeadlineExceeded)
// when the read deadline passes without data; an error matching ErrGone
// means the connection is broken (device unplugged, converter gone) and
// the port should be closed.
// SetReadDeadline may be called from another goroutine to cut a pending
// Read short. Read, Write, Drain and Close are not safe for concurrent use.
type Port interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	// SetReadDeadline bounds the current and later Reads; zero means none.
	SetReadDeadline(t time.Time) error
	// Drain discards every byte received but not yet read, so that a late
	// answer to an earlier request cannot be taken for the next one.
	Drain() error
	Close() error
	// Stats returns the byte counters; safe to call at any time.
	Stats() Stats
	// SetBaud changes the line speed of the open port, keeping its other
	// settings, for meters that talk at another speed than the rest of
	// the bus. A TCP converter fails with ErrBaudFixed: its serial speed
	// is set on the device, not through the socket.
	SetBaud(baud int) error
}

// Stats are byte counters of a port since it was opened.
type Stats struct {
	RxBytes uint64 // bytes read, including drained ones
	TxBytes uint64 // bytes written
}

// Parity of a serial character.
type Parity uint8

// Parities. The zero value is even parity, the M-Bus default (EN 13757-2,
// clause 5.1: 1 start bit, 8 data bits, even parity, 1 stop bit).
const (
	ParityEven Parity = iota
	ParityNone
	ParityOdd
)

func (p Parity) String() string {
	switch p {
	case ParityEven:
		return "even"
	case ParityNone:
		return "none"
	case ParityOdd:
		return "odd"
	}
	return fmt.Sprintf("Parity(%d)", uint8(p))
}

// ParseParity reads "even", "none" or "odd" (or their first letters).
func ParseParity(s string) (Parity, error) {
	switch strings.ToLower(s) {
	case "even", "e":
		return ParityEven, nil
	case "none", "n":
		return ParityNone, nil
	case "odd", "o":
		return ParityOdd, nil
	}
	return 0, fmt.Errorf("parity %q: want even, none or odd", s)
}

// Bauds are the rates M-Bus defines (EN 13757-2, clause 5.1; the CI codes
// 0xB8-0xBF switch between them).
var Bauds = []int{300, 600, 1200, 2400, 4800, 9600, 19200, 38400}

// DefaultBaud is what most meters ship with.
const DefaultBaud = 2400

// CheckBaud reports whether baud is an M-Bus rate.
func CheckBaud(baud int) error {
	for _, b := range Bauds {
		if b == baud {
			return nil
		}
	}
	return fmt.Errorf("baud rate %d: M-Bus uses 300, 600, 1200, 2400, 4800, 9600, 19200 or 38400", baud)
}

// Options configure Open. The zero value is 2400 baud 8E1.
type Options struct {
	// Baud is the bus speed, 300-38400 (0 means DefaultBaud). A TCP
	// converter ignores it, but timeouts are still derived from it.
	Baud int
	// Parity and StopBits (1 or 2; 0 means 1) apply to serial ports only.
	Parity   Parity
	StopBits int
	// DialTimeout bounds connecting to a TCP converter (0 means 5 s).
	DialTimeout time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.Baud == 0 {
		o.Baud = DefaultBaud
	}
	if err := CheckBaud(o.Baud); err != nil {
		return o, err
	}
	if o.StopBits == 0 {
		o.StopBits = 1
	}
	if o.StopBits != 1 && o.StopBits != 2 {
		return o, fmt.Errorf("stop bits %d: want 1 or 2", o.StopBits)
	}
	if o.Parity > ParityOdd {
		return o, fmt.Errorf("parity %v: want even, none or odd", o.Parity)
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	return o, nil
}

// tcpPrefix marks a converter address in a device string.
const tcpPrefix = "tcp://"

// Errors of a Port. Every failure of a port's I/O or of opening one is
// an *Error of kind ErrOpen, ErrGone or ErrTimeout, so that the layers
// above tell a broken bus from a silent meter without guessing from
// operating-system error types.
var (
	// ErrOpen: the port could not be opened (no such device, refused
	// connection, bad device string).
	ErrOpen = errors.New("cannot open port")
	// ErrGone: the open port failed (device unplugged, converter hung
	// up, port closed or not open); it must be closed and reopened.
	ErrGone = errors.New("port gone")
	// ErrTimeout: the read deadline passed without data. It also matches
	// os.ErrDeadlineExceeded. The port is fine.
	ErrTimeout = errors.New("read timed out")
	// ErrClosed is returned by operations on a closed port.
	ErrClosed = errors.New("port closed")
	// ErrBaudFixed is returned by SetBaud on a port whose speed cannot be
	// switched from here: a transparent TCP converter runs its serial
	// side at the speed configured on the converter itself.
	ErrBaudFixed = errors.New("line speed is fixed by the converter")
)

// Error is a failure of a port: Kind is ErrOpen, ErrGone or ErrTimeout,
// Err the cause. errors.Is matches both; the text is the cause's.
type Error struct {
	Kind error
	Err  error
}

func (e *Error) Error() string   { return e.Err.Error() }
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// Timeout reports whether the error is a read deadline passing.
func (e *Error) Timeout() bool { return errors.Is(e.Kind, ErrTimeout) }

// openError marks err as a failure to open.
func openError(err error) error { return &Error{Kind: ErrOpen, Err: err} }

// ioError marks err, a failure of an open port, by its kind: a passed
// deadline is a timeout, anything else means the port is gone.
func ioError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &Error{Kind: ErrTimeout, Err: err}
	}
	return &Error{Kind: ErrGone, Err: err}
}

// Open connects to dev: "tcp://host:port" for a converter, anything else
// is a serial device path such as /dev/ttyUSB0.
func Open(ctx context.Context, dev string, opts Options) (Port, error) {
	p, err := open(ctx, dev, opts)
	if err != nil {
		return nil, openError(err)
	}
	return p, nil
}

func open(ctx context.Context, dev string, opts Options) (Port, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dev, err)
	}
	if rest, ok := strings.CutPrefix(dev, tcpPrefix); ok {
		return openTCP(ctx, rest, o)
	}
	if dev == "" {
		return nil, errors.New("open: empty device; want a serial path or tcp://host:port")
	}
	if strings.Contains(dev, "://") {
		return nil, fmt.Errorf("open %s: unknown scheme; want a serial path or tcp://host:port", dev)
	}
	return openSerial(dev, o)
}

// counters are the byte counters every port keeps.
type counters struct {
	rx, tx counter
}

// counter counts bytes moved.
type counter struct{ atomic.Uint64 }

// add counts n bytes. Read and Write never return a negative count; the
// guard makes the conversion visibly safe.
func (c *counter) add(n int) {
	if n > 0 {
		c.Add(uint64(n))
	}
}

func (c *counters) Stats() Stats {
	return Stats{RxBytes: c.rx.Load(), TxBytes: c.tx.Load()}
}
