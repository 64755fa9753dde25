package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// openTCP connects to an M-Bus-to-TCP converter in transparent mode (the
// converter passes bytes between the socket and the bus unchanged).
func openTCP(ctx context.Context, addr string, o Options) (*pollPort, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("open tcp://%s: want tcp://host:port: %w", addr, err)
	}
	d := net.Dialer{Timeout: o.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("open tcp://%s: %w", addr, err)
	}
	tc := c.(*net.TCPConn)
	// Requests are a few bytes; send each at once rather than waiting to
	// coalesce (Go's default, but the timing of the protocol depends on it).
	if err := tc.SetNoDelay(true); err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("open tcp://%s: %w", addr, err)
	}
	name := "tcp://" + addr
	p, err := newPollPort(name, tc, func() error {
		if err := tc.Close(); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return ErrClosed
			}
			return fmt.Errorf("%s: close: %w", name, err)
		}
		return nil
	})
	if err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return p, nil
}
