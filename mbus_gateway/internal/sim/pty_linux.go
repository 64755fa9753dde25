package sim

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// makeRaw turns off echo, line editing and character translation on the
// slave side, as a serial port in raw mode. Until the master's serial code
// sets its own modes, the default (echo on) would send every answer back
// to the simulator as if it were a request.
func makeRaw(f *os.File) error {
	var t syscall.Termios
	fd := f.Fd()
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&t))); e != 0 { //nolint:gosec // G103: ioctl(2) takes a pointer to the termios
		return fmt.Errorf("tcgets: %w", e)
	}
	t.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON
	t.Oflag &^= syscall.OPOST
	t.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
	t.Cflag &^= syscall.CSIZE | syscall.PARENB
	t.Cflag |= syscall.CS8
	t.Cc[syscall.VMIN] = 1
	t.Cc[syscall.VTIME] = 0
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCSETS, uintptr(unsafe.Pointer(&t))); e != 0 { //nolint:gosec // G103: ioctl(2) takes a pointer to the termios
		return fmt.Errorf("tcsets: %w", e)
	}
	return nil
}

// speeds maps the terminal speed codes to the M-Bus rates.
var speeds = map[uint32]int{
	unix.B300: 300, unix.B600: 600, unix.B1200: 1200, unix.B2400: 2400,
	unix.B4800: 4800, unix.B9600: 9600, unix.B19200: 19200, unix.B38400: 38400,
}

// termiosBaud reads the speed f's terminal is set to; 0 when it cannot be
// read or is not an M-Bus rate.
func termiosBaud(f *os.File) int {
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS) //nolint:gosec // G115: a descriptor fits an int
	if err != nil {
		return 0
	}
	return speeds[t.Cflag&unix.CBAUD]
}

// unreadBytes is how many bytes wait in f's terminal input for a reader
// (TIOCINQ); 0 when it cannot be told.
func unreadBytes(f *os.File) int {
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ) //nolint:gosec // G115: a descriptor fits an int
	if err != nil {
		return 0
	}
	return n
}
