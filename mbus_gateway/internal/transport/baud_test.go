package transport

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// lineSettings reads what the terminal side of a pseudo-terminal is set
// to: the speed code (B2400, …) and the character format bits.
func lineSettings(t *testing.T, tty interface{ Fd() uintptr }) (speed, format uint32) {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS) //nolint:gosec // G115: a descriptor fits an int
	if err != nil {
		t.Fatalf("tcgets: %v", err)
	}
	return tio.Cflag & unix.CBAUD, tio.Cflag & (unix.CSIZE | unix.PARENB | unix.PARODD | unix.CSTOPB)
}

// TestSerialSetBaud: SetBaud changes the speed the terminal is set to and
// keeps the character format (8 data bits, odd parity, 2 stop bits here).
func TestSerialSetBaud(t *testing.T) {
	p, ctl, tty := openPTYTerminal(t, Options{Baud: 2400, Parity: ParityOdd, StopBits: 2})
	defer ctl.Close()
	defer tty.Close()
	defer p.Close()
	speed, format := lineSettings(t, tty)
	if speed != unix.B2400 {
		t.Fatalf("after open: got speed code %#o, want B2400 (%#o)", speed, unix.B2400)
	}
	// Linux pseudo-terminals clear PARENB (they carry no parity bit), so
	// only the other format bits can be seen here.
	if want := uint32(unix.CS8 | unix.PARODD | unix.CSTOPB); format&^unix.PARENB != want {
		t.Fatalf("after open: got format %#o, want %#o", format&^unix.PARENB, want)
	}
	tests := []struct {
		baud int
		want uint32
	}{
		{300, unix.B300},
		{9600, unix.B9600},
		{38400, unix.B38400},
		{2400, unix.B2400},
	}
	for _, tt := range tests {
		if err := p.SetBaud(tt.baud); err != nil {
			t.Fatalf("SetBaud(%d): %v", tt.baud, err)
		}
		gotSpeed, gotFormat := lineSettings(t, tty)
		if gotSpeed != tt.want {
			t.Errorf("SetBaud(%d): got speed code %#o, want %#o", tt.baud, gotSpeed, tt.want)
		}
		if gotFormat != format {
			t.Errorf("SetBaud(%d): got format %#o, want it kept at %#o", tt.baud, gotFormat, format)
		}
	}
	if err := p.SetBaud(115200); err == nil {
		t.Error("SetBaud(115200): got success, want an error (not an M-Bus rate)")
	}
	// The port still works at the new speed.
	if _, err := p.Write([]byte{0x10, 0x40, 0x01, 0x41, 0x16}); err != nil {
		t.Fatalf("write after SetBaud: %v", err)
	}
}

// TestTCPSetBaud: a converter's speed cannot be switched from the socket.
func TestTCPSetBaud(t *testing.T) {
	dev, conns := tcpPeer(t)
	r, err := OpenReopening(t.Context(), dev, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	peer := <-conns
	defer peer.Close()
	if err := r.SetBaud(9600); !errors.Is(err, ErrBaudFixed) {
		t.Fatalf("SetBaud on a TCP converter: got %v, want ErrBaudFixed", err)
	}
	if !r.Up() {
		t.Error("ErrBaudFixed closed the connection")
	}
}
