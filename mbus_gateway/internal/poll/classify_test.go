package poll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
)

// markedErr is how the link layer can classify an error explicitly.
type markedErr struct{ bus bool }

func (e markedErr) Error() string  { return "marked" }
func (e markedErr) BusError() bool { return e.bus }

func TestIsBusError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"marked bus error", fmt.Errorf("read: %w", markedErr{bus: true}), true},
		{"marked meter error wins over an os error", errors.Join(markedErr{bus: false}, io.EOF), false},
		{"no answer from the meter", fmt.Errorf("read: %w", master.ErrTimeout), false},
		{"garbled answer", fmt.Errorf("read: %w", master.ErrGarbage), false},
		{"deadline on the port", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), false},
		{"context deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), false},
		{"net timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, false},
		{"bad checksum", &mbus.FrameError{Offset: 9, Err: mbus.ErrChecksum}, false},
		{"port being reopened", fmt.Errorf("read 5: %w", transport.ErrNotOpen), true},
		{"port closed", fmt.Errorf("read 5: %w", transport.ErrClosed), true},
		{"converter closed the connection", fmt.Errorf("read: %w", io.EOF), true},
		{"adapter unplugged", &os.PathError{Op: "read", Path: "/dev/ttyUSB0", Err: syscall.EIO}, true},
		{"device gone", fmt.Errorf("open: %w", os.ErrNotExist), true},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}, true},
		{"closed port", net.ErrClosed, true},
		{"plain errno", syscall.ENXIO, true},
		{"errno timeout", syscall.ETIMEDOUT, false},
		{"unknown error", errors.New("collision"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsBusError(tt.err); got != tt.want {
				t.Errorf("IsBusError(%v): got %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
