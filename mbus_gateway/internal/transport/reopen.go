package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
)

// OpenFunc opens the underlying port of a Reopening.
type OpenFunc func(ctx context.Context) (Port, error)

// Reopening is a Port that survives its device: after an I/O error it
// closes the underlying port, and the next Ready opens it again. When to
// try is not its own decision: it reports every open, failed open and
// broken port to the bus's Health and waits out the Health's backoff.
// Timeouts are not I/O errors; a quiet bus keeps the port open. A port
// whose bus the Health declared down for garbling is closed too, so that
// the retry starts on a fresh one.
//
// Read, Write and Drain on a closed Reopening fail with ErrNotOpen; the
// owner calls Ready (which blocks, cancellably) before each exchange.
type Reopening struct {
	open   OpenFunc
	health *bushealth.Health
	// Sleep waits; tests replace it. It returns ctx's error when ctx
	// ends first.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnReopen, if set, is called after each successful reopen (not the
	// first open) with the error that broke the previous port.
	OnReopen func(cause error)

	mu       sync.Mutex // guards port against Stats and SetReadDeadline from other goroutines
	port     Port
	base     Stats // counters of ports closed so far
	breakErr error // what broke the last port
	opened   bool  // a port was open at least once
	reopens  atomic.Uint64
	deadline time.Time
	// baud is the speed last set with SetBaud, given to reopened ports
	// too; 0 until then.
	baud   int
	closed bool
}

// ErrNotOpen is the cause of I/O on a Reopening whose port is down; it
// comes as an *Error of kind ErrGone.
var ErrNotOpen = errors.New("port not open")

// NewReopening returns a Reopening that calls open and reports to h (nil:
// a Health of its own with the default backoff); it opens nothing yet.
func NewReopening(open OpenFunc, h *bushealth.Health) *Reopening {
	if h == nil {
		h = bushealth.New(bushealth.Options{})
	}
	return &Reopening{open: open, health: h, Sleep: sleepCtx}
}

// OpenReopening opens dev now (so that a wrong path or a refused port is
// reported at once) and returns a Reopening that reopens dev after errors.
func OpenReopening(ctx context.Context, dev string, opts Options, h *bushealth.Health) (*Reopening, error) {
	r := NewReopening(func(ctx context.Context) (Port, error) { return Open(ctx, dev, opts) }, h)
	if err := r.Ready(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Health returns the state machine the Reopening reports to.
func (r *Reopening) Health() *bushealth.Health { return r.health }

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

// Ready makes sure the port is open. When it is down it waits until the
// Health lets the bus be tried again, then tries once; it returns that
// attempt's error, or ctx's.
func (r *Reopening) Ready(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return &Error{Kind: ErrGone, Err: ErrClosed}
	}
	if r.port != nil && r.health.State() == bushealth.Down {
		r.dropLocked(r.port, errors.New("bus down"))
	}
	if r.port != nil {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	if wait := r.health.Wait(); wait > 0 {
		if err := r.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("reopen: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	r.health.Record(bushealth.Opening, nil)
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
		if !errors.Is(err, ErrOpen) {
			err = openError(err)
		}
		r.health.Record(bushealth.PortFailed, err)
		return err
	}
	if r.closed {
		_ = p.Close()
		return &Error{Kind: ErrGone, Err: ErrClosed}
	}
	r.port = p
	if !r.deadline.IsZero() {
		_ = p.SetReadDeadline(r.deadline)
	}
	r.health.Record(bushealth.Opened, nil)
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
		return nil, &Error{Kind: ErrGone, Err: ErrNotOpen}
	}
	return r.port, nil
}

// check closes the port after an I/O error and reports it to the Health;
// deadline expiry is not one. The error comes back as an *Error whatever
// port gave it.
func (r *Reopening) check(p Port, err error) error {
	if err == nil || errors.Is(err, ErrBaudFixed) {
		return err
	}
	if _, typed := errors.AsType[*Error](err); !typed {
		err = ioError(err)
	}
	if errors.Is(err, ErrTimeout) {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.port == p {
		r.dropLocked(p, err)
		r.health.Record(bushealth.PortFailed, err)
	}
	return err
}

// dropLocked closes p, the current port, keeping its counters and why it
// went.
func (r *Reopening) dropLocked(p Port, why error) {
	st := p.Stats()
	r.base.RxBytes += st.RxBytes
	r.base.TxBytes += st.TxBytes
	_ = p.Close()
	r.port = nil
	r.breakErr = why
}

func (r *Reopening) Read(b []byte) (int, error) {
	p, err := r.current()
	if err != nil {
		return 0, err
	}
	n, err := p.Read(b)
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
