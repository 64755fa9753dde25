package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// running starts Run on loopback ports and stops it when the test ends.
func running(t *testing.T, f *fixture) (ingress, metrics string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	select {
	case <-f.s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	ingress = "http://" + f.s.Addr().String()
	if a := f.s.MetricsAddr(); a != nil {
		metrics = "http://" + a.String()
	}
	return ingress, metrics
}

func fetch(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(b)
}

func loopbackListens(o *Options) {
	o.Listen, o.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
}

func TestListeners(t *testing.T) {
	f := newFixture(t, loopbackListens, heatMeter(t))
	scrapes := prometheus.NewCounter(prometheus.CounterOpts{Name: "mbus_test_scrapes_total", Help: "Test counter."})
	f.reg.MustRegister(scrapes)
	scrapes.Add(3)
	ingress, metrics := running(t, f)

	tests := []struct {
		name, method, url string
		code              int
		body              string
	}{
		// The test connects from 127.0.0.1, not from the ingress proxy.
		{"ingress page refused", "GET", ingress + "/", 403, "ingress"},
		{"ingress status refused", "GET", ingress + "/status", 403, "ingress"},
		{"ingress unknown refused", "GET", ingress + "/nope", 403, "ingress"},
		{"ingress health from loopback", "GET", ingress + "/health", 200, `"ok"`},
		{"metrics", "GET", metrics + "/metrics", 200, "mbus_test_scrapes_total 3"},
		{"metrics status", "GET", metrics + "/status", 200, `"kam_06855817"`},
		{"metrics health", "GET", metrics + "/health", 200, `"ok"`},
		{"metrics head", "HEAD", metrics + "/status", 200, ""},
		{"metrics post", "POST", metrics + "/metrics", 405, ""},
		{"no page on metrics port", "GET", metrics + "/", 404, ""},
		{"no assets on metrics port", "GET", metrics + "/assets/app.js", 404, ""},
		{"no events on metrics port", "GET", metrics + "/events", 404, ""},
		{"no scan on metrics port", "POST", metrics + "/scan", 404, ""},
		{"no add on metrics port", "POST", metrics + "/meters", 404, ""},
		{"no read on metrics port", "POST", metrics + "/meters/5/read", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := fetch(t, tt.method, tt.url, "")
			if code != tt.code || !strings.Contains(body, tt.body) {
				t.Errorf("got %d %q, want %d containing %q", code, body, tt.code, tt.body)
			}
			if tt.method == "HEAD" && body != "" {
				t.Errorf("HEAD answered with %d bytes", len(body))
			}
		})
	}
}

func TestListenFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tt := range []struct {
		name string
		o    func(*Options)
		want string
	}{
		{"ingress", func(o *Options) { o.Listen = ln.Addr().String() }, "web: listen:"},
		{"metrics", func(o *Options) { o.Listen, o.MetricsListen = "127.0.0.1:0", ln.Addr().String() }, "web: listen metrics:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.o)
			err := f.s.Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	f := newFixture(t, loopbackListens)
	running(t, f)
	if err := f.s.Run(t.Context()); err == nil {
		t.Error("second Run succeeded")
	}
}

// events reads server-sent events from a real connection.
type events struct {
	t   *testing.T
	res *http.Response
	rd  *bufio.Reader
}

func openEvents(t *testing.T, ctx context.Context, url string) *events {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return &events{t: t, res: res, rd: bufio.NewReader(res.Body)}
}

// next returns the next status event.
func (e *events) next() Status {
	e.t.Helper()
	var name, data string
	for {
		line, err := e.rd.ReadString('\n')
		if err != nil {
			e.t.Fatalf("events: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && data != "":
			if name != "status" {
				e.t.Fatalf("event %q, want status", name)
			}
			var st Status
			if err := json.Unmarshal([]byte(data), &st); err != nil {
				e.t.Fatalf("event data: %v", err)
			}
			return st
		}
	}
}

func TestEvents(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		loopbackListens(o)
		o.Allow = []string{"127.0.0.1"}
		o.Refresh = 5 * time.Millisecond
	}, heatMeter(t))
	ingress, _ := running(t, f)
	ev := openEvents(t, t.Context(), ingress+"/events")

	if got := ev.next(); len(got.Meters) != 1 || got.Meters[0].Values[0].Value.Num != 37351 {
		t.Fatalf("first event: %+v", got.Meters)
	}
	f.poller.setEnergy(0, 37352)
	// Unchanged state sends nothing until the keepalive, so the next
	// event is the change.
	if got := ev.next(); got.Meters[0].Values[0].Value.Num != 37352 {
		t.Errorf("after change: got %v, want 37352", got.Meters[0].Values[0].Value)
	}
	f.adder.p.update(func(s *poll.Snapshot) { s.Meters = append(s.Meters, waterMeter()) })
	if got := ev.next(); len(got.Meters) != 2 {
		t.Errorf("after adding: got %d meters, want 2", len(got.Meters))
	}
}

func TestEventsKeepalive(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		loopbackListens(o)
		o.Allow = []string{"127.0.0.1"}
		o.Refresh, o.Keepalive = 5*time.Millisecond, 20*time.Millisecond
	})
	ingress, _ := running(t, f)
	ev := openEvents(t, t.Context(), ingress+"/events")
	first, second := ev.next(), ev.next()
	if !second.Time.After(first.Time) {
		t.Errorf("keepalive event time %v not after %v", second.Time, first.Time)
	}
}

// An event stream outlives the time a request is given to be read and
// answered: the stream clears its read deadline and sets a write deadline
// per event.
func TestEventsOutliveRequestTimeouts(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		loopbackListens(o)
		o.Allow = []string{"127.0.0.1"}
		o.Refresh, o.Keepalive = 5*time.Millisecond, 20*time.Millisecond
	})
	f.s.limits.read, f.s.limits.write = 50*time.Millisecond, 50*time.Millisecond
	ingress, _ := running(t, f)
	ev := openEvents(t, t.Context(), ingress+"/events")
	first := ev.next()
	var last Status
	for last.Time.Sub(first.Time) < 10*f.s.limits.read {
		last = ev.next() // fails the test if the server closed the stream
	}
}

// An open event stream must not hold up shutdown.
func TestShutdownEndsEvents(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		loopbackListens(o)
		o.Allow = []string{"127.0.0.1"}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.s.Run(ctx) }()
	<-f.s.Ready()
	ev := openEvents(t, t.Context(), "http://"+f.s.Addr().String()+"/events")
	ev.next()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(2 * shutdownGrace):
		t.Fatal("Run waited for the event stream")
	}
	if _, err := io.ReadAll(ev.rd); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("stream end: %v", err)
	}
}
