package transport

import (
	"syscall"
	"unsafe"
)

// recvPeek looks at queued socket bytes without taking them.
func recvPeek(fd int, b []byte) (int, syscall.Sockaddr, error) {
	n, from, err := syscall.Recvfrom(fd, b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return n, from, err
}

// inQueue asks a terminal how many bytes wait to be read (TIOCINQ).
func inQueue(p *pollPort) (int, error) {
	var n int32
	var errno syscall.Errno
	err := p.raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
