package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// OpenFunc opens the underlying port of a Reopening.
type OpenFunc func(ctx context.Context) (Port, error)

// Backoff is the schedule between reopen attempts: the first attempt after
// a port broke is immediate, then Min, doubling up to Max.
type Backoff struct {
	Min, Max time.Duration
}

// DefaultBackoff waits 500 ms after the first failure, up to a minute.
var DefaultBackoff = Backoff{Min: 500 * time.Millisecond, Max: time.Minute}

// Delay returns the wait after n consecutive failures: 0 for n <= 1 (a
// converter that dropped one connection usually takes the next at once),
// then Min, 2×Min, … up to Max.
func (b Backoff) Delay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := b.Min
	for i := 2; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Reopening is a Port that survives its device: after an I/O error it
// closes the underlying port, and the next Ready opens it again, waiting
// an exponentially growing delay between failed attempts. Timeouts are not
// I/O errors; a quiet bus keeps the port open.
//
// Read, Write and Drain on a closed Reopening fail with ErrNotOpen; the
// owner calls Ready (which blocks, cancellably) before each exchange.
type Reopening struct {
	open    OpenFunc
	backoff Backoff
	// Now and Sleep are the clock; tests replace them. Sleep returns
	// ctx's error when ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// OnReopen, if set, is called after each successful reopen (not the
	// first open) with the error that broke the previous port.
	OnReopen func(cause error)

	mu       sync.Mutex // guards port against Stats and SetReadDeadline from other goroutines
	port     Port
	base     Stats // counters of ports closed so far
	failures int   // consecutive failures (breaks and failed opens) since data last arrived
	nextTry  time.Time
	breakErr error // what broke the last port
	opened   bool  // a port was open at least once
	reopens  atomic.Uint64
	deadline time.Time
	// baud is the speed last set with SetBaud, given to reopened ports
	// too; 0 until then.
	baud   int
	closed bool
}

// ErrNotOpen is returned by I/O on a Reopening whose port is down.
var ErrNotOpen = errors.New("port not open")

// NewReopening returns a Reopening that calls open; it opens nothing yet.
func NewReopening(open OpenFunc, b Backoff) *Reopening {
	if b.Min <= 0 {
		b.Min = DefaultBackoff.Min
	}
	if b.Max < b.Min {
		b.Max = max(b.Min, DefaultBackoff.Max)
	}
	return &Reopening{open: open, backoff: b, Now: time.Now, Sleep: sleepCtx}
}

// OpenReopening opens dev now (so that a wrong path or a refused port is
// reported at once) and returns a Reopening that reopens dev after errors.
func OpenReopening(ctx context.Context, dev string, opts Options, b Backoff) (*Reopening, error) {
	r := NewReopening(func(ctx context.Context) (Port, error) { return Open(ctx, dev, opts) }, b)
	if err := r.Ready(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var _ Port = (*Reopening)(nil)

// Ready makes sure the port is open. When it is down it waits out the
// backoff after the previous failure, then tries once; it returns that
// attempt's error, or ctx's.
func (r *Reopening) Ready(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.port != nil {
		r.mu.Unlock()
		return nil
	}
	wait := r.nextTry.Sub(r.Now())
	r.mu.Unlock()
	if wait > 0 {
		if err := r.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("reopen: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	p, err := r.open(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && r.baud != 0 {
		err = p.SetBaud(r.baud)
		if errors.Is(err, ErrBaudFixed) {
			err = nil
		} else if err != nil {
			_ = p.Close()
		}
	}
	if err != nil {
		r.failures++
		r.nextTry = r.Now().Add(r.backoff.Delay(r.failures))
		return err
	}
	if r.closed {
		_ = p.Close()
		return ErrClosed
	}
	r.port = p
	if !r.deadline.IsZero() {
		_ = p.SetReadDeadline(r.deadline)
	}
	if r.opened {
		r.reopens.Add(1)
		if r.OnReopen != nil {
			r.OnReopen(r.breakErr)
		}
	}
	r.opened = true
	return nil
}

// Reopens counts successful reopens after a failure.
func (r *Reopening) Reopens() uint64 { return r.reopens.Load() }

// Up reports whether the port is open now.
func (r *Reopening) Up() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.port != nil
}

// current returns the open port or ErrNotOpen.
func (r *Reopening) current() (Port, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.port == nil {
		return nil, ErrNotOpen
	}
	return r.port, nil
}

// check closes the port after an I/O error; deadline expiry is not one.
func (r *Reopening) check(p Port, err error) error {
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.port == p {
		st := p.Stats()
		r.base.RxBytes += st.RxBytes
		r.base.TxBytes += st.TxBytes
		_ = p.Close()
		r.port = nil
		r.breakErr = err
		r.failures++
		r.nextTry = r.Now().Add(r.backoff.Delay(r.failures))
	}
	return err
}

func (r *Reopening) Read(b []byte) (int, error) {
	p, err := r.current()
	if err != nil {
		return 0, err
	}
	n, err := p.Read(b)
	if n > 0 {
		r.mu.Lock()
		r.failures = 0
		r.mu.Unlock()
	}
	return n, r.check(p, err)
}

func (r *Reopening) Write(b []byte) (int, error) {
	p, err := r.current()
	if err != nil {
		return 0, err
	}
	n, err := p.Write(b)
	return n, r.check(p, err)
}

// Drain discards unread input of the open port.
func (r *Reopening) Drain() error {
	p, err := r.current()
	if err != nil {
		return err
	}
	return r.check(p, p.Drain())
}

// SetBaud switches the open port's speed; ports opened later start at it
// too. It fails with ErrNotOpen while the port is down, and with
// ErrBaudFixed on a TCP converter. Any other failure is an I/O error and
// closes the port.
func (r *Reopening) SetBaud(baud int) error {
	if err := CheckBaud(baud); err != nil {
		return err
	}
	p, err := r.current()
	if err != nil {
		return err
	}
	err = p.SetBaud(baud)
	if err == nil {
		r.mu.Lock()
		r.baud = baud
		r.mu.Unlock()
		return nil
	}
	if errors.Is(err, ErrBaudFixed) {
		return err
	}
	return r.check(p, err)
}

// SetReadDeadline applies to the open port and to ports opened later.
func (r *Reopening) SetReadDeadline(t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deadline = t
	if r.port == nil {
		return nil
	}
	return r.port.SetReadDeadline(t)
}

// Stats sums the counters of every port opened so far.
func (r *Reopening) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.base
	if r.port != nil {
		st := r.port.Stats()
		s.RxBytes += st.RxBytes
		s.TxBytes += st.TxBytes
	}
	return s
}

// Close closes the port for good; Ready fails afterwards.
func (r *Reopening) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.closed = true
	if r.port == nil {
		return nil
	}
	err := r.port.Close()
	r.port = nil
	return err
}
