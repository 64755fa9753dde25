package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// notifier speaks systemd's notification protocol (sd_notify(3)): one
// datagram per state change on the unix socket named by NOTIFY_SOCKET.
// Outside systemd (no NOTIFY_SOCKET) every method does nothing, so the
// daemon calls it unconditionally.
type notifier struct {
	addr *net.UnixAddr // nil: not under systemd
	// watchdog is the interval systemd expects keep-alives in
	// (WATCHDOG_USEC); zero: no watchdog.
	watchdog time.Duration
}

// Messages of the protocol (sd_notify(3), "Well-known assignments").
const (
	sdReady    = "READY=1"
	sdStopping = "STOPPING=1"
	sdWatchdog = "WATCHDOG=1"
)

// newNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from
// getenv. A watchdog meant for another process (WATCHDOG_PID not ours) is
// ignored, as sd_watchdog_enabled(3) does.
func newNotifier(getenv func(string) string) (*notifier, error) {
	n := &notifier{}
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return n, nil
	}
	// A leading "@" names a socket in the abstract namespace, spelled with
	// a NUL byte on the wire.
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	} else if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("sd_notify: NOTIFY_SOCKET %q: want an absolute path or @name", path)
	}
	n.addr = &net.UnixAddr{Name: path, Net: "unixgram"}
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return n, nil
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return n, nil
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || us == 0 {
		return nil, fmt.Errorf("sd_notify: WATCHDOG_USEC %q: want a positive number of microseconds", usec)
	}
	n.watchdog = time.Duration(us) * time.Microsecond
	return n, nil
}

// send delivers one message. Each message gets its own connection: the
// socket is datagram based and messages are rare, so there is nothing to
// keep open (and nothing to leak).
func (n *notifier) send(msg string) error {
	if n.addr == nil {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	_, werr := conn.Write([]byte(msg))
	cerr := conn.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// keepAlive sends WATCHDOG=1 at half the watchdog interval (as
// sd_watchdog_enabled(3) advises) for as long as alive reports the bus
// loop healthy; when it is not, the keep-alives stop and systemd restarts
// the service. Without a watchdog it waits for ctx and returns nil.
func (n *notifier) keepAlive(ctx context.Context, alive func() error, report func(error)) error {
	if n.watchdog <= 0 {
		<-ctx.Done()
		return nil
	}
	tick := time.NewTicker(n.watchdog / 2)
	defer tick.Stop()
	var stuck bool
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		err := alive()
		if err != nil {
			if !stuck {
				report(err)
			}
			stuck = true
			continue
		}
		stuck = false
		if err := n.send(sdWatchdog); err != nil {
			report(err)
		}
	}
}
