package web

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// slowPost connects to addr and sends the headers of a POST that
// declares a body it never sends.
func slowPost(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_, err = io.WriteString(c, "POST /meters HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// get sends one GET on a new connection and returns the status code and
// body; the connection must then be closed by the server when close is
// set.
func get(t *testing.T, addr, path string) (int, string, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b), c
}

// closedByServer reads c until the server closes it; a read deadline
// far beyond the server's timeouts is the test's failure.
func closedByServer(t *testing.T, c net.Conn, what string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: still open, want it closed by the server", what)
	}
}

func floodFixture(t *testing.T, l limits) *fixture {
	f := newFixture(t, func(o *Options) {
		loopbackListens(o)
		o.Allow = []string{"127.0.0.1"}
	}, heatMeter(t))
	f.s.limits = l
	return f
}

// A client that declares a body and never sends it is closed once the
// request's read time is up, and its connection is given back.
func TestSlowBodyClosed(t *testing.T) {
	l := defaultLimits
	l.read = 200 * time.Millisecond
	f := floodFixture(t, l)
	running(t, f)
	addr := f.s.Addr().String()
	conns := make([]net.Conn, 5)
	for i := range conns {
		conns[i] = slowPost(t, addr)
	}
	for i, c := range conns {
		closedByServer(t, c, fmt.Sprintf("slow body %d", i))
	}
	waitFor(t, f.s, "the slots given back", func() bool { return f.s.listeners[0].conns() == 0 })
	if got := f.adder.calls(); len(got) != 0 {
		t.Errorf("half requests added meters: %+v", got)
	}
}

// A flood of slow clients takes every general connection; /health still
// answers on the reserve, other paths get 503 there, and connections
// beyond the reserve are closed at once.
func TestHealthUnderFlood(t *testing.T) {
	l := defaultLimits
	l.read = time.Hour // the flood holds its connections for the whole test
	f := floodFixture(t, l)
	_, metrics := running(t, f)
	addr := f.s.Addr().String()
	for range l.general {
		slowPost(t, addr)
	}
	ln := f.s.listeners[0]
	waitFor(t, f.s, "the flood to hold every general connection", func() bool { return ln.conns() == l.general })

	for i := range 3 { // the reserve is given back after each answer
		code, body, c := get(t, addr, "/health")
		if code != 200 || !strings.Contains(body, `"ok"`) {
			t.Fatalf("/health %d under the flood: got %d %q, want 200 ok", i, code, body)
		}
		closedByServer(t, c, "reserved connection after /health")
	}
	code, body, _ := get(t, addr, "/status")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many connections") {
		t.Errorf("/status on the reserve: got %d %q, want 503 too many connections", code, body)
	}

	// Idle connections take the reserve; the next one is closed at once.
	for range l.reserve {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	waitFor(t, f.s, "the reserve taken", func() bool { return ln.conns() == l.general+l.reserve })
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = extra.Close() })
	closedByServer(t, extra, "connection beyond the reserve")
	if ln.refused.Load() == 0 {
		t.Error("refused connections: got 0, want the one beyond the reserve counted")
	}
	// The metrics listener has limits of its own.
	if code, _, _ := get(t, strings.TrimPrefix(metrics, "http://"), "/health"); code != 200 {
		t.Errorf("metrics /health during the flood: got %d, want 200", code)
	}
}

// Reading a meter may take longer than a request is given to be read
// and answered: the answer still arrives.
func TestSlowReadAnswered(t *testing.T) {
	l := defaultLimits
	l.read, l.write = 50*time.Millisecond, 50*time.Millisecond
	f := floodFixture(t, l)
	f.poller.readTakes = 10 * l.write
	ingress, _ := running(t, f)
	code, _, body := fetch(t, "POST", ingress+"/meters/5/read", "{}")
	if code != 200 || !strings.Contains(body, `"meter":"kam_06855817"`) {
		t.Errorf("slow read: got %d %q, want 200 with the reading", code, body)
	}
}
