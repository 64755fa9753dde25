package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
)

// Port is the byte pipe the master talks through; transport.Port and
// transport.Reopening satisfy it. Read must fail with an error matching
// os.ErrDeadlineExceeded when the deadline passes, and SetReadDeadline
// must be safe to call while a Read is pending (it is how a cancelled ctx
// cuts a wait short).
type Port interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
	// Drain discards input received but not read.
	Drain() error
}

// speeder is a Port whose line speed can be switched, such as a serial
// transport.Port or transport.Reopening. SetBaud fails with
// transport.ErrBaudFixed where the speed is set elsewhere (a TCP
// converter). A Port without it runs at Options.Baud only.
type speeder interface {
	SetBaud(baud int) error
}

// readier is a Port that may be down and can be brought up again, such as
// transport.Reopening. The master calls Ready before each attempt.
type readier interface {
	Ready(ctx context.Context) error
}

// Errors of an exchange. Checksum and framing problems also match the
// sentinels of package mbus (mbus.ErrChecksum, mbus.ErrTruncated, …).
var (
	// ErrTimeout: no answer within the response time of EN 13757-2.
	ErrTimeout = errors.New("no answer")
	// ErrGarbage: bytes came back but not a valid frame (bad start,
	// checksum, stop byte, or cut short).
	ErrGarbage = errors.New("garbled answer")
	// ErrCollision: several meters answered at once, which garbles the
	// answer; reported by probes, where more than one meter may match.
	ErrCollision = errors.New("collision: several meters answered")
	// ErrUnexpected: a valid frame of the wrong kind, e.g. an ACK where
	// data was requested, or data from another meter.
	ErrUnexpected = errors.New("unexpected answer")
	// ErrTooManyTelegrams: the meter still announced more records after
	// Options.MaxTelegrams telegrams.
	ErrTooManyTelegrams = errors.New("too many telegrams")
	// ErrPortDown: the port under the master failed or could not be
	// opened; the bus, not a meter. Errors matching it are *PortError.
	ErrPortDown = errors.New("port down")
)

// DefaultTCPExtra is the extra answer time of a TCP converter unless
// one is configured: it forwards the bus in packets, over a network.
const DefaultTCPExtra = 20 * time.Millisecond

// ExtraFor is the extra answer time (Options.Extra) for device: extra
// when it is set, else DefaultTCPExtra for a TCP converter (tcp://…) and
// none for a serial port.
func ExtraFor(device string, extra time.Duration) time.Duration {
	if extra == 0 && strings.HasPrefix(device, "tcp://") {
		return DefaultTCPExtra
	}
	return extra
}

// PortError is a failure of the port during an exchange; it reads as the
// port's own error and matches ErrPortDown (and the transport's kinds).
type PortError struct{ Err error }

func (e *PortError) Error() string { return e.Err.Error() }
func (e *PortError) Unwrap() error { return e.Err }

// Is makes every PortError match ErrPortDown.
func (e *PortError) Is(target error) bool { return target == ErrPortDown }

// portError marks err as the port's unless it is the master's own verdict
// on the answer (no answer, garbled) or the caller's context ending:
// everything else an exchange meets comes from the port.
func portError(err error) error {
	switch {
	case err == nil, errors.Is(err, ErrTimeout), errors.Is(err, ErrGarbage), errors.Is(err, ErrPortDown),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return &PortError{Err: err}
}

// Defaults of Options.
const (
	DefaultBaud         = transport.DefaultBaud
	DefaultRetries      = 2
	DefaultScanRetries  = 0
	DefaultMaxTelegrams = 16
)

// Options tune the master. The zero value gives the defaults.
type Options struct {
	// Baud is the bus speed, from which every timeout derives
	// (0 = DefaultBaud). Scans and Read use it; ReadAt reads a meter at
	// a speed of its own.
	Baud int
	// Extra is added to the first-byte and inter-byte timeouts: converters
	// (TCP, radio, some USB masters) add latency of their own. See
	// ExtraFor for the default over TCP.
	Extra time.Duration
	// Retries is the number of repeats after a failed exchange of a read
	// (0 = DefaultRetries, negative = none).
	Retries int
	// ScanRetries is the number of repeats of an unanswered or garbled
	// probe during a scan (0 = DefaultScanRetries, negative = none). Scans
	// probe mostly empty addresses, so each repeat costs a full timeout.
	ScanRetries int
	// MaxTelegrams bounds one read of a multi-telegram meter
	// (0 = DefaultMaxTelegrams).
	MaxTelegrams int
	// AppReset sends an application reset (SND_UD, CI 0x50) before each
	// read; some meters need it to start over at their first telegram.
	AppReset bool
	// Health is the bus's state machine: the master feeds it the outcome
	// of every read and asks it whether to repeat after a broken port.
	// Nil means the port's (transport.Reopening has one), else one of the
	// master's own.
	Health *bushealth.Health
}

func (o Options) withDefaults() Options {
	if o.Baud <= 0 {
		o.Baud = DefaultBaud
	}
	o.Retries = orDefault(o.Retries, DefaultRetries)
	o.ScanRetries = orDefault(o.ScanRetries, DefaultScanRetries)
	if o.MaxTelegrams <= 0 {
		o.MaxTelegrams = DefaultMaxTelegrams
	}
	return o
}

func orDefault(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// Timing (EN 13757-2, clause 5.2 and annex): a slave starts its answer
// 11 to 330 bit times after the end of the request, plus up to 50 ms.
const (
	bitsPerChar    = 11 // start, 8 data, parity, stop
	answerBits     = 330
	answerSlack    = 50 * time.Millisecond
	interCharChars = 2 // tolerated gap inside a frame, in characters
	// schedulingSlack covers gaps the wire does not make: OS scheduling,
	// USB latency timers, and TCP converters that forward a frame in
	// several packets (ser2net and Moxa packing timers, Wi-Fi links).
	// A complete frame ends by its length field, so this only lengthens
	// the wait for a frame that really was cut off.
	schedulingSlack = 150 * time.Millisecond
	// idleBits is the line-idle interval between two frames
	// (IEC 60870-5-1, format FT 1.2, on which EN 13757-2 builds): bytes
	// that follow an answer closer than that belong to another sender.
	idleBits = 33
	// quietSlack is added to idleBits where the master waits for the line
	// to go quiet: converters and USB adapters deliver bytes in packets
	// (an FTDI latency timer is 16 ms). A converter's latency (Extra)
	// delays every byte alike and does not widen the gaps.
	quietSlack = 20 * time.Millisecond
)

// bits is the duration of n bit times at baud, exact to the nanosecond.
func bits(n, baud int) time.Duration {
	return time.Duration(int64(n) * int64(time.Second) / int64(baud))
}

// WireTime is how long n characters take on the bus at baud.
func WireTime(n, baud int) time.Duration { return bits(n*bitsPerChar, baud) }

// AnswerTimeout is the longest a slave may take to start its answer after
// the request has left the wire: 330 bit times + 50 ms.
func AnswerTimeout(baud int) time.Duration {
	return bits(answerBits, baud) + answerSlack
}

// GapTimeout is the longest silence tolerated between two bytes of one
// frame, and how long the line must stay quiet after a garbled answer
// before the next request.
func GapTimeout(baud int) time.Duration {
	return WireTime(interCharChars, baud) + schedulingSlack
}

// Stats are the master's counters since it was created.
type Stats struct {
	Requests       uint64 // frames sent, repeats included
	Retries        uint64 // repeats after a failed exchange
	Timeouts       uint64 // exchanges without an answer
	ChecksumErrors uint64 // answers with a wrong checksum
	Garbled        uint64 // answers that were not a valid frame, checksum errors included
	Collisions     uint64 // probes answered by several meters
	Echoes         uint64 // our own requests read back (echoing converters)
	Strays         uint64 // whole answers of another meter, skipped (late answers to earlier requests)
	TxBytes        uint64
	RxBytes        uint64 // echoes and garbage included
}

type stats struct {
	requests, retries, timeouts, checksum, garbled, collisions, echoes, strays, tx, rx atomic.Uint64
}

// Master drives one bus. It is not safe for concurrent use: one goroutine
// owns a bus (reads, scans and set-address calls queue for it); Stats may
// be read from anywhere.
type Master struct {
	port   Port
	opts   Options
	health *bushealth.Health

	// baud is the speed of the operation under way: Options.Baud, or a
	// meter's own in ReadAt. line is the speed the port is set to; the
	// port is switched lazily, before the first request that needs
	// another speed. fixed records a port that cannot be switched.
	baud, line int
	fixed      bool
	firstByte  time.Duration // answer timeout after the request left, at baud
	interByte  time.Duration // longest gap between bytes of one frame, at baud
	quiet      time.Duration // silence after which no answer is on the line, at baud

	// link state per primary address (253 is not kept: it stands for
	// whichever meter is selected).
	linked map[byte]bool // a SND_NKE was answered and nothing failed since
	fcb    map[byte]bool // FCB of the next REQ_UD2/SND_UD; absent means 1
	// fcbSec is the FCB state of meters read by secondary address.
	fcbSec map[[8]byte]bool

	buf []byte // receive buffer, reused
	// prev is the request sent before the one under way: on a converter
	// that echoes late, the drain before a request can cut its echo.
	prev  []byte
	stats stats
}

// healthOwner is a Port that reports to a bus health of its own, such as
// transport.Reopening; the master then reports to the same one.
type healthOwner interface {
	Health() *bushealth.Health
}

// New returns a master on port. It does not touch the bus.
func New(port Port, opts Options) *Master {
	o := opts.withDefaults()
	if o.Health == nil {
		if h, ok := port.(healthOwner); ok {
			o.Health = h.Health()
		} else {
			o.Health = bushealth.New(bushealth.Options{})
		}
	}
	m := &Master{
		port:   port,
		opts:   o,
		health: o.Health,
		line:   o.Baud,
		linked: map[byte]bool{},
		fcb:    map[byte]bool{},
		fcbSec: map[[8]byte]bool{},
		buf:    make([]byte, 0, 2*maxFrame),
	}
	m.at(o.Baud)
	return m
}

// at sets the speed of the next operation and the timeouts that derive
// from it; 0 means Options.Baud. On a port that cannot be switched every
// operation runs at Options.Baud.
func (m *Master) at(baud int) {
	if baud <= 0 || m.fixed {
		baud = m.opts.Baud
	}
	m.baud = baud
	m.firstByte = AnswerTimeout(baud) + m.opts.Extra
	m.interByte = GapTimeout(baud) + m.opts.Extra
	m.quiet = bits(idleBits, baud) + quietSlack
}

// switchLine sets the port to the speed of the operation under way. A
// port that cannot switch (transport.ErrBaudFixed, or no SetBaud at all)
// is remembered as fixed, and the operation goes on at Options.Baud, the
// speed the port runs at.
func (m *Master) switchLine() error {
	if m.line == m.baud {
		return nil
	}
	s, ok := m.port.(speeder)
	var err error
	if ok {
		err = s.SetBaud(m.baud)
	}
	switch {
	case !ok || errors.Is(err, transport.ErrBaudFixed):
		m.fixed = true
		m.at(m.opts.Baud)
		return nil
	case err != nil:
		return fmt.Errorf("switch to %d baud: %w", m.baud, err)
	}
	m.line = m.baud
	return nil
}

// Options returns the options in effect, defaults filled in.
func (m *Master) Options() Options { return m.opts }

// Stats returns a snapshot of the counters.
func (m *Master) Stats() Stats {
	s := &m.stats
	return Stats{
		Requests:       s.requests.Load(),
		Retries:        s.retries.Load(),
		Timeouts:       s.timeouts.Load(),
		ChecksumErrors: s.checksum.Load(),
		Garbled:        s.garbled.Load(),
		Collisions:     s.collisions.Load(),
		Echoes:         s.echoes.Load(),
		Strays:         s.strays.Load(),
		TxBytes:        s.tx.Load(),
		RxBytes:        s.rx.Load(),
	}
}

// String names the counters for logs.
func (s Stats) String() string {
	return fmt.Sprintf("requests=%d retries=%d timeouts=%d checksum=%d garbled=%d collisions=%d echoes=%d strays=%d tx=%d rx=%d",
		s.Requests, s.Retries, s.Timeouts, s.ChecksumErrors, s.Garbled, s.Collisions, s.Echoes, s.Strays, s.TxBytes, s.RxBytes)
}
