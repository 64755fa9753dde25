package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
)

// PTY serves a bus on a pseudo-terminal, the way a USB M-Bus master
// appears to the gateway: the gateway opens the slave side (Device, or
// the stable Path) with its ordinary serial code.
//
// Unplug and Replug emulate pulling the adapter out and plugging it back
// in: the terminal disappears (the gateway's reads fail), and a new one
// comes up under a new device name, with the link, if any, moved to it
// the way udev moves /dev/serial/by-id links.
type PTY struct {
	bus  *Bus
	ctx  context.Context
	link string

	mu     sync.Mutex
	master *os.File
	slave  *os.File // held open so the master never sees the line hang up
	device string
	line   *line
	done   chan struct{}
}

// line lets Unplug cut the terminal between two writes of the bus, so
// that it can tell what was still unread at that moment.
type line struct {
	mu  sync.Mutex
	cut bool
}

// OpenPTY creates a pseudo-terminal and serves the bus on it until ctx is
// cancelled or Close is called. With link set, a symbolic link of that
// name points at the terminal's device.
func (b *Bus) OpenPTY(ctx context.Context, link string) (*PTY, error) {
	p := &PTY{bus: b, ctx: ctx, link: link}
	if err := p.Replug(); err != nil {
		return nil, err
	}
	return p, nil
}

// Path is where a master opens the bus: the link when there is one, else
// the current device.
func (p *PTY) Path() string {
	if p.link != "" {
		return p.link
	}
	return p.Device()
}

// Device is the current slave device, e.g. /dev/pts/7; empty while
// unplugged.
func (p *PTY) Device() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.device
}

// Replug brings up a new terminal; it does nothing while plugged in.
func (p *PTY) Replug() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.ctx.Err(); err != nil {
		return fmt.Errorf("sim: pty: %w", err)
	}
	if p.master != nil {
		return nil
	}
	master, slave, err := openPTY()
	if err != nil {
		return fmt.Errorf("sim: pty: %w", err)
	}
	if p.link != "" {
		if err := relink(slave.Name(), p.link); err != nil {
			master.Close()
			slave.Close()
			return fmt.Errorf("sim: pty: %w", err)
		}
	}
	p.master, p.slave, p.device = master, slave, slave.Name()
	p.line = &line{}
	p.done = make(chan struct{})
	go func(done chan struct{}, l *line) {
		defer close(done)
		if err := p.bus.Serve(p.ctx, ptyConn{File: master, slave: slave, line: l}); err != nil {
			p.bus.opts.Log.Warn().Err(err).Str("device", slave.Name()).Msg("pty conversation ended")
		}
	}(p.done, p.line)
	return nil
}

// Unplug takes the terminal away: the serving goroutine stops, open
// handles on the device fail, and the link is removed. A telegram whose
// bytes the master had not all read yet goes with it (see
// Transmission.Unplugged).
func (p *PTY) Unplug() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.master == nil {
		return nil
	}
	at := time.Now()
	p.line.mu.Lock()
	p.line.cut = true
	unread := unreadBytes(p.slave)
	p.line.mu.Unlock()
	// Serve closes the master itself when ctx is cancelled.
	err := p.master.Close()
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	<-p.done
	if unread > 0 {
		p.bus.pulled(at)
	}
	err = errors.Join(err, p.slave.Close())
	if p.link != "" {
		if rerr := os.Remove(p.link); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	p.master, p.slave, p.device = nil, nil, ""
	if err != nil {
		return fmt.Errorf("sim: pty: %w", err)
	}
	return nil
}

// Close stops serving and removes the terminal for good.
func (p *PTY) Close() error { return p.Unplug() }

// ptyConn is the controlling side of a terminal, which reads the speed the
// master's serial code set on the other side at each request.
type ptyConn struct {
	*os.File
	slave *os.File
	line  *line
}

// Write puts b on the line unless Unplug has cut it.
func (c ptyConn) Write(b []byte) (int, error) {
	c.line.mu.Lock()
	defer c.line.mu.Unlock()
	if c.line.cut {
		return 0, os.ErrClosed
	}
	return c.File.Write(b)
}

// LineBaud is the speed the terminal side is set to, 0 if unknown.
func (c ptyConn) LineBaud() int { return termiosBaud(c.slave) }

// relink points link at target, replacing an old link in one step.
func relink(target, link string) error {
	tmp := link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// openPTY opens a terminal pair in raw mode. pty.Open leaves the master in
// blocking mode, where neither deadlines nor Close can interrupt a Read;
// a non-blocking duplicate goes through Go's poller and supports both.
func openPTY() (master, slave *os.File, err error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	if err := makeRaw(s); err != nil {
		s.Close()
		return nil, nil, err
	}
	// The duplicate must not leak into processes started later (the
	// gateway under test): an inherited master keeps the terminal alive
	// after Unplug, and the gateway would never see it go. ForkLock keeps
	// a fork from slipping in between the dup and the flag.
	syscall.ForkLock.RLock()
	fd, err := syscall.Dup(int(m.Fd()))
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("dup: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		s.Close()
		return nil, nil, fmt.Errorf("nonblock: %w", err)
	}
	return os.NewFile(uintptr(fd), m.Name()), s, nil
}
