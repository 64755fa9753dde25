package web

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// limits bound what one client can hold on the server. A connection
// counts from Accept to Close.
type limits struct {
	// general connections are served fully; reserve more are served
	// /health only; beyond both a new connection is closed at once.
	general, reserve int
	// header is the time to send the request headers, read the time to
	// send the whole request, write the time to take the answer, idle the
	// time a kept-alive connection may wait for its next request.
	header, read, write, idle time.Duration
}

// defaultLimits leave room for a few browser tabs (one event stream
// each) and scrapers, and keep /health answering when a flood of slow
// clients holds every general connection: they hold it at most read
// long, and the reserve is for the health check.
var defaultLimits = limits{
	general: 64,
	reserve: 8,
	header:  10 * time.Second,
	read:    30 * time.Second,
	write:   30 * time.Second,
	idle:    2 * time.Minute,
}

// limitListener caps the connections served at once; see limits.
type limitListener struct {
	net.Listener
	general, reserve int

	mu   sync.Mutex
	open int
	// refused counts connections closed at once because both the general
	// and the reserved capacity were in use.
	refused atomic.Uint64
}

func newLimitListener(ln net.Listener, l limits) *limitListener {
	return &limitListener{Listener: ln, general: l.general, reserve: l.reserve}
}

// Accept returns the next connection within the limits, closing those
// beyond them.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		n := l.open
		if n >= l.general+l.reserve {
			l.mu.Unlock()
			l.refused.Add(1) // before Close: whoever sees the close sees the count
			_ = c.Close()
			continue
		}
		l.open++
		l.mu.Unlock()
		return &limitedConn{Conn: c, l: l, reserved: n >= l.general}, nil
	}
}

// conns is the number of connections open now.
func (l *limitListener) conns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

func (l *limitListener) release() {
	l.mu.Lock()
	l.open--
	l.mu.Unlock()
}

// limitedConn gives its slot back once closed.
type limitedConn struct {
	net.Conn
	l        *limitListener
	reserved bool
	once     sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}

// reservedKey marks, in a request's context, a connection taken from the
// reserve.
type reservedKey struct{}

// connContext marks the requests of reserved connections.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitedConn); ok && lc.reserved {
		return context.WithValue(ctx, reservedKey{}, true)
	}
	return ctx
}

// reserved serves only /health on connections taken from the reserve,
// and closes them after one answer, so that the reserve stays free.
func reserved(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(reservedKey{}) == nil {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		if r.URL.Path == "/health" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "too many connections to the gateway; try again shortly")
	})
}
