package sim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	serial "github.com/albenik/go-serial/v2"
)

// serialConn gives a go-serial port the deadline-based reads the test
// master uses; go-serial itself counts timeouts per Read in milliseconds,
// and with a first-byte timeout returns as soon as some bytes came.
type serialConn struct {
	*serial.Port
	deadline time.Time
}

func (c *serialConn) SetReadDeadline(t time.Time) error {
	c.deadline = t
	return nil
}

func (c *serialConn) Read(b []byte) (int, error) {
	wait := time.Until(c.deadline)
	if wait <= 0 {
		return 0, os.ErrDeadlineExceeded
	}
	if err := c.SetFirstByteReadTimeout(uint32(wait.Milliseconds()) + 1); err != nil {
		return 0, err
	}
	n, err := c.Port.Read(b)
	if n == 0 && err == nil {
		return 0, os.ErrDeadlineExceeded
	}
	return n, err
}

// openSerial opens path as the gateway does: 2400 baud, 8E1.
func openSerial(t *testing.T, path string) *master {
	t.Helper()
	p, err := serial.Open(path,
		serial.WithBaudrate(2400), serial.WithDataBits(8),
		serial.WithParity(serial.EvenParity), serial.WithStopBits(serial.OneStopBit))
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &master{t: t, conn: &serialConn{Port: p}}
}

func TestPTY(t *testing.T) {
	bus, s := sampleBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	link := filepath.Join(t.TempDir(), "ttyMBUS0")
	p, err := bus.OpenPTY(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Path() != link {
		t.Errorf("Path: got %q, want %q", p.Path(), link)
	}
	if target, err := os.Readlink(link); err != nil || target != p.Device() {
		t.Errorf("link: got %q (%v), want it to point at %q", target, err, p.Device())
	}

	m := openSerial(t, link)
	multi := "heat, three telegrams"
	run(t, m, []step{
		{"reset", sndNKE(t, 6), ack},
		{"first", reqUD2(t, 6, true), sent(t, s, multi, 0, 6)},
		{"second", reqUD2(t, 6, false), sent(t, s, multi, 1, 6)},
		{"retry", reqUD2(t, 6, false), sent(t, s, multi, 1, 6)},
		{"third", reqUD2(t, 6, true), sent(t, s, multi, 2, 6)},
		{"select by hex ID", selectFrame(t, "050002E5FFFFFFFF"), ack},
		{"read selected", reqUD2(t, 253, true), sent(t, s, "electricity 2", 0, 5)},
	})

	// Unplugged: the open port fails, the link is gone.
	if err := p.Unplug(); err != nil {
		t.Fatal(err)
	}
	if err := m.conn.SetReadDeadline(time.Now().Add(readWait)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read from an unplugged terminal: got %v, want an I/O error", err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link after unplug: got %v, want it gone", err)
	}
	if p.Device() != "" {
		t.Errorf("Device while unplugged: got %q, want empty", p.Device())
	}

	// Plugged back in: the same link works again, the meters kept their state.
	if err := p.Replug(); err != nil {
		t.Fatal(err)
	}
	m2 := openSerial(t, link)
	run(t, m2, []step{
		{"sequence goes on after the wrap", reqUD2(t, 6, false), sent(t, s, multi, 0, 6)},
		{"reset", sndNKE(t, 6), ack},
	})
}

// Cancelling the context stops serving; goleak in TestMain checks that
// nothing is left behind.
func TestPTYStopsOnCancel(t *testing.T) {
	bus, _ := sampleBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := bus.OpenPTY(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	m := openSerial(t, p.Path())
	if got := m.ask(sndNKE(t, 1)); !bytes.Equal(got, ack) {
		t.Fatalf("got %X, want E5", got)
	}
	cancel()
	if err := p.Replug(); err == nil {
		t.Error("Replug after cancel: got nil, want an error")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}
