package poll

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
)

// IsBusError reports whether err means the bus itself failed (adapter
// unplugged, port closed, TCP converter unreachable) rather than one meter
// (no answer in time, a garbled frame). A bus error backs off the whole
// bus instead of asking the next meter straight away.
//
// The rules, in order:
//   - an error in the chain with a method BusError() bool decides; the
//     link and transport layers use it to mark their errors explicitly;
//   - timeouts are a silent meter: master.ErrTimeout,
//     os.ErrDeadlineExceeded, context.DeadlineExceeded and errors with
//     Timeout() true;
//   - a bad frame (mbus.FrameError) is a meter talking garbage;
//   - a port that is closed or being reopened (transport.ErrNotOpen,
//     transport.ErrClosed) is the bus;
//   - operating-system and connection failures are the bus: io.EOF,
//     closed pipes and connections, missing devices, refused or reset
//     connections, and any remaining *os.PathError, *os.SyscallError,
//     *net.OpError or syscall.Errno;
//   - everything else is blamed on the meter.
func IsBusError(err error) bool {
	if err == nil {
		return false
	}
	var marked interface{ BusError() bool }
	if errors.As(err, &marked) {
		return marked.BusError()
	}
	if isTimeout(err) {
		return false
	}
	var fe *mbus.FrameError
	if errors.As(err, &fe) {
		return false
	}
	for _, target := range busSentinels {
		if errors.Is(err, target) {
			return true
		}
	}
	var (
		pathErr *os.PathError
		sysErr  *os.SyscallError
		opErr   *net.OpError
		errno   syscall.Errno
	)
	return errors.As(err, &pathErr) || errors.As(err, &sysErr) ||
		errors.As(err, &opErr) || errors.As(err, &errno)
}

// busSentinels are errors that only a failing port or connection gives.
var busSentinels = []error{
	transport.ErrNotOpen, transport.ErrClosed,
	io.EOF, io.ErrClosedPipe, net.ErrClosed, os.ErrClosed, os.ErrNotExist,
	os.ErrPermission,
}

// isTimeout reports whether err is a timeout of some layer.
func isTimeout(err error) bool {
	if errors.Is(err, master.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
