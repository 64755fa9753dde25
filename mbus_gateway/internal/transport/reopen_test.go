package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/backoff"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
)

// stubPort fails reads with err (nil: reads time out) and counts bytes.
type stubPort struct {
	counters
	err    error
	closed bool
	baud   int // set by SetBaud
}

func (s *stubPort) Read(b []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	return 0, os.ErrDeadlineExceeded
}
func (s *stubPort) Write(b []byte) (int, error)     { s.tx.Add(uint64(len(b))); return len(b), nil }
func (s *stubPort) SetReadDeadline(time.Time) error { return nil }
func (s *stubPort) Drain() error                    { return nil }
func (s *stubPort) Close() error                    { s.closed = true; return nil }
func (s *stubPort) SetBaud(baud int) error          { s.baud = baud; return nil }

// fakeClock records the sleeps a Reopening asks for.
type fakeClock struct {
	t      time.Time
	sleeps []time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	return nil
}

// quickHealth is a bus health that retries a failed port after a
// millisecond.
func quickHealth() *bushealth.Health {
	return bushealth.New(bushealth.Options{Backoff: backoff.Backoff{Min: time.Millisecond, Max: time.Millisecond}})
}

func TestReopening(t *testing.T) {
	eio := fmt.Errorf("read: %w", syscall.EIO)
	var ports []*stubPort
	openErrs := []error{nil, errors.New("no such device"), errors.New("no such device"), nil}
	clock := &fakeClock{t: time.Unix(1000, 0)}
	r := NewReopening(func(context.Context) (Port, error) {
		err := openErrs[0]
		openErrs = openErrs[1:]
		if err != nil {
			return nil, err
		}
		p := &stubPort{}
		ports = append(ports, p)
		return p, nil
	}, bushealth.New(bushealth.Options{Now: clock.now, Backoff: backoff.Backoff{Min: time.Second, Max: time.Minute}}))
	r.Sleep = clock.sleep
	var causes []error
	r.OnReopen = func(err error) { causes = append(causes, err) }
	ctx := t.Context()

	if err := r.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	// A timeout leaves the port open.
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want a timeout", err)
	}
	if !r.Up() {
		t.Fatal("a timeout closed the port")
	}
	if _, err := r.Write([]byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	// An I/O error closes it; I/O fails until Ready reopens it.
	ports[0].err = eio
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("got %v, want EIO", err)
	}
	if r.Up() || !ports[0].closed {
		t.Fatal("port still open after an I/O error")
	}
	if got := r.Health().State(); got != bushealth.Down {
		t.Fatalf("bus after an I/O error: got %v, want down", got)
	}
	if _, err := r.Write([]byte{1}); !errors.Is(err, ErrNotOpen) || !errors.Is(err, ErrGone) {
		t.Fatalf("write while down: got %v, want ErrNotOpen, ErrGone", err)
	}
	// Reopen: immediately, then after 1 s and 2 s of backoff.
	for i, wantErr := range []bool{true, true, false} {
		err := r.Ready(ctx)
		if (err != nil) != wantErr {
			t.Fatalf("attempt %d: got %v, want error=%v", i, err, wantErr)
		}
	}
	if got, want := fmt.Sprint(clock.sleeps), fmt.Sprint([]time.Duration{time.Second, 2 * time.Second}); got != want {
		t.Errorf("backoff sleeps: got %s, want %s", got, want)
	}
	if got, want := r.Reopens(), uint64(1); got != want {
		t.Errorf("reopens: got %d, want %d", got, want)
	}
	if got := r.Health().State(); got != bushealth.Up {
		t.Errorf("bus after the reopen: got %v, want up", got)
	}
	if len(causes) != 1 || !errors.Is(causes[0], syscall.EIO) {
		t.Errorf("OnReopen causes: got %v, want [EIO]", causes)
	}
	if _, err := r.Write([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	// Counters survive reopening.
	if got, want := r.Stats().TxBytes, uint64(5); got != want {
		t.Errorf("tx bytes: got %d, want %d", got, want)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Ready after Close: got %v, want ErrClosed", err)
	}
}

// TestReopeningKeepsBaud: a speed switched with SetBaud survives a reopen,
// and switching is refused while the port is down.
func TestReopeningKeepsBaud(t *testing.T) {
	var ports []*stubPort
	r := NewReopening(func(context.Context) (Port, error) {
		p := &stubPort{}
		ports = append(ports, p)
		return p, nil
	}, quickHealth())
	ctx := t.Context()
	if err := r.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ports[0].baud; got != 0 {
		t.Fatalf("first open: got baud %d set, want none (the port opens at the bus speed)", got)
	}
	if err := r.SetBaud(9600); err != nil {
		t.Fatal(err)
	}
	if err := r.SetBaud(1000); err == nil || !strings.Contains(err.Error(), "baud rate 1000") {
		t.Fatalf("SetBaud(1000): got %v, want an error naming the rate", err)
	}
	if !r.Up() {
		t.Fatal("a rejected rate closed the port")
	}
	ports[0].err = syscall.EIO
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("got %v, want EIO", err)
	}
	if err := r.SetBaud(300); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("SetBaud while down: got %v, want ErrNotOpen", err)
	}
	if err := r.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := ports[1].baud, 9600; got != want {
		t.Errorf("reopened port: got baud %d, want %d", got, want)
	}
}

// TestReopeningClosesADownBus: when the bus health gives up on a bus
// that garbles every answer, the next Ready drops the open port and
// starts on a fresh one once the wait is over.
func TestReopeningClosesADownBus(t *testing.T) {
	var ports []*stubPort
	clock := &fakeClock{t: time.Unix(1000, 0)}
	h := bushealth.New(bushealth.Options{Now: clock.now, SuspectAfter: 1, DownAfter: 2,
		Backoff: backoff.Backoff{Min: time.Second, Max: time.Minute}})
	r := NewReopening(func(context.Context) (Port, error) {
		p := &stubPort{}
		ports = append(ports, p)
		return p, nil
	}, h)
	r.Sleep = clock.sleep
	if err := r.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.Record(bushealth.Answered, nil)
	garbled := errors.New("garbled")
	h.Record(bushealth.Garbled, garbled)
	if err := r.Ready(t.Context()); err != nil || !r.Up() || ports[0].closed {
		t.Fatalf("suspect bus: got %v, up=%v; want the port kept", err, r.Up())
	}
	h.Record(bushealth.Garbled, garbled)
	if err := r.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 || !ports[0].closed {
		t.Fatalf("down bus: got %d ports opened, first closed=%v; want a second port", len(ports), ports[0].closed)
	}
	if got := h.State(); got != bushealth.Up {
		t.Errorf("bus after the reopen: got %v, want up", got)
	}
}

func TestReopeningCancelledBackoff(t *testing.T) {
	r := NewReopening(func(context.Context) (Port, error) { return nil, errors.New("gone") }, bushealth.New(bushealth.Options{Backoff: backoff.Backoff{Min: time.Hour}}))
	ctx := t.Context()
	_ = r.Ready(ctx) // first failure: the next try waits
	_ = r.Ready(ctx) // second: an hour
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.Ready(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestReopeningTCP: a converter that drops the connection is dialled again.
func TestReopeningTCP(t *testing.T) {
	dev, conns := tcpPeer(t)
	r, err := OpenReopening(t.Context(), dev, Options{}, quickHealth())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	(<-conns).Close()
	if err := r.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want the hang-up", err)
	}
	// The listener's backlog takes the new connection.
	if err := r.Ready(t.Context()); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if got, want := r.Reopens(), uint64(1); got != want {
		t.Errorf("reopens: got %d, want %d", got, want)
	}
}
