package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

func TestOpenRejects(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "ttyUSB9")
	tests := []struct {
		dev  string
		opts Options
		want string // in the error
	}{
		{"/dev/ttyUSB0", Options{Baud: 115200}, "baud rate 115200"},
		{"/dev/ttyUSB0", Options{Baud: 1000}, "baud rate 1000"},
		{"/dev/ttyUSB0", Options{StopBits: 3}, "stop bits 3"},
		{"/dev/ttyUSB0", Options{Parity: 7}, "parity"},
		{"", Options{}, "empty device"},
		{"udp://127.0.0.1:1", Options{}, "unknown scheme"},
		{"tcp://127.0.0.1", Options{}, "want tcp://host:port"},
		{missing, Options{}, "no such file"},
		{"/dev/null", Options{}, "/dev/null"},
	}
	for _, tt := range tests {
		p, err := Open(t.Context(), tt.dev, tt.opts)
		if err == nil {
			p.Close()
			t.Errorf("Open(%q, %+v): got success, want an error with %q", tt.dev, tt.opts, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q, %+v): got %q, want it to mention %q", tt.dev, tt.opts, err, tt.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q): error spans lines: %q", tt.dev, err)
		}
		if !errors.Is(err, ErrOpen) || errors.Is(err, ErrGone) {
			t.Errorf("Open(%q): got %v, want it to match ErrOpen only", tt.dev, err)
		}
	}
}

func TestOpenTCPRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Open(t.Context(), "tcp://"+addr, Options{})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("got %v, want connection refused", err)
	}
}

func TestParseParity(t *testing.T) {
	tests := []struct {
		in   string
		want Parity
		ok   bool
	}{
		{"even", ParityEven, true}, {"E", ParityEven, true}, {"none", ParityNone, true},
		{"n", ParityNone, true}, {"Odd", ParityOdd, true}, {"mark", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseParity(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseParity(%q): got %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// portSuite checks what every Port must do; peer is the far end (the
// converter or the other side of the pseudo-terminal).
func portSuite(t *testing.T, p Port, peer io.ReadWriter, queued func(Port) int) {
	t.Helper()
	buf := make([]byte, 64)

	// A read with a passed deadline fails with ErrDeadlineExceeded.
	if err := p.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, ErrTimeout) || errors.Is(err, ErrGone) {
		t.Fatalf("read on a quiet line: got %v, want ErrDeadlineExceeded and ErrTimeout", err)
	}

	// Bytes both ways, counted.
	if _, err := p.Write([]byte{0x10, 0x40, 0x01, 0x41, 0x16}); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x10, 0x40, 0x01, 0x41, 0x16}; !bytes.Equal(got, want) {
		t.Fatalf("peer got % X, want % X", got, want)
	}
	if _, err := peer.Write([]byte{0xE5}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := p.Read(buf)
	if err != nil || n != 1 || buf[0] != 0xE5 {
		t.Fatalf("read: got % X, %v; want E5", buf[:n], err)
	}

	// Drain drops what arrived unread.
	if _, err := peer.Write([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return queued(p) == 3 })
	if err := p.Drain(); err != nil {
		t.Fatal(err)
	}
	if err := p.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after drain: got % X, %v; want nothing", buf[:n], err)
	}
	st := p.Stats()
	if st.TxBytes != 5 || st.RxBytes != 4 {
		t.Errorf("stats: got %+v, want tx 5, rx 4", st)
	}

	// A deadline moved by another goroutine cuts a pending read short.
	if err := p.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(buf)
		done <- err
	}()
	if err := p.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("interrupted read: got %v, want ErrDeadlineExceeded", err)
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// tcpPeer accepts one connection on a loopback listener.
func tcpPeer(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			ch <- c
		}
		close(ch)
	}()
	return "tcp://" + ln.Addr().String(), ch
}

func TestTCPPort(t *testing.T) {
	dev, conns := tcpPeer(t)
	p, err := Open(t.Context(), dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	peer := <-conns
	defer peer.Close()
	portSuite(t, p, peer, tcpQueued)

	// The converter hanging up is an error, not a timeout and not a hang.
	peer.Close()
	if err := p.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = p.Read(make([]byte, 8))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, io.EOF) {
		t.Fatalf("read after hang-up: got %v, want EOF", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second close: got %v, want ErrClosed", err)
	}
}

// tcpQueued tells how many bytes wait in the socket (MSG_PEEK).
func tcpQueued(p Port) int {
	buf := make([]byte, 256)
	got := 0
	_ = p.(*pollPort).raw.Read(func(fd uintptr) bool {
		got, _, _ = recvPeek(int(fd), buf)
		return true
	})
	return got
}

// serialQueued tells how many bytes wait in the terminal's input queue.
func serialQueued(p Port) int {
	n, err := inQueue(p.(*pollPort))
	if err != nil {
		return 0
	}
	return n
}

// openPTY returns a serial Port on the terminal side of a new
// pseudo-terminal and the controlling side as its peer.
func openPTY(t *testing.T, opts Options) (Port, *os.File) {
	t.Helper()
	p, ctl, tty := openPTYTerminal(t, opts)
	tty.Close()
	return p, ctl
}

// openPTYTerminal is openPTY that also returns a handle on the terminal
// side, opened before the Port takes the device for itself, through which
// a test reads the line settings the Port made.
func openPTYTerminal(t *testing.T, opts Options) (p Port, ctl, tty *os.File) {
	t.Helper()
	ctl, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("pseudo-terminal: %v", err)
	}
	p, err = Open(t.Context(), tty.Name(), opts)
	if err != nil {
		ctl.Close()
		tty.Close()
		t.Fatal(err)
	}
	return p, ctl, tty
}

func TestSerialPortOnPTY(t *testing.T) {
	p, ctl := openPTY(t, Options{Baud: 2400})
	defer p.Close()
	defer ctl.Close()
	portSuite(t, p, ctl, serialQueued)
}

// TestSerialVanishes: a device that goes away (USB unplugged; here the
// pseudo-terminal's controlling side closes) makes Read fail with an
// error, not hang and not time out.
func TestSerialVanishes(t *testing.T) {
	p, ctl := openPTY(t, Options{})
	defer p.Close()
	ctl.Close()
	if err := p.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := p.Read(make([]byte, 8))
	if !errors.Is(err, ErrGone) || errors.Is(err, ErrTimeout) {
		t.Fatalf("read from a vanished device: got %v, want ErrGone", err)
	}
}

func TestSerialSettings(t *testing.T) {
	for _, o := range []Options{
		{Baud: 300, Parity: ParityEven},
		{Baud: 38400, Parity: ParityNone, StopBits: 2},
		{Baud: 9600, Parity: ParityOdd},
	} {
		p, ctl := openPTY(t, o)
		if err := p.Close(); err != nil {
			t.Errorf("%+v: close: %v", o, err)
		}
		ctl.Close()
	}
}

func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// 192.0.2.1 (TEST-NET-1) is never dialled: the context ends first.
	if _, err := Open(ctx, "tcp://192.0.2.1:10001", Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
