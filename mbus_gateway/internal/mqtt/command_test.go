package mqtt

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// received is one message a test handler got.
type received struct{ topic, payload string }

// handlerChan returns a Handler that forwards to a buffered channel.
func handlerChan() (Handler, chan received) {
	ch := make(chan received, 16)
	return func(topic string, payload []byte) {
		ch <- received{topic, string(payload)}
	}, ch
}

// connectSignal returns a channel that gets a value after every
// connection (subscriptions made).
func connectSignal(c *Client) chan struct{} {
	ch := make(chan struct{}, 4)
	c.OnConnect(func() { ch <- struct{}{} })
	return ch
}

// runClient runs c until the test ends.
func runClient(t *testing.T, c *Client) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
	}
	var zero T
	return zero
}

// TestSubscribeKeptAcrossReconnect checks that a subscription made once
// works again after the broker restarted (clean sessions forget it), and
// that a retained command is never handed on.
func TestSubscribeKeptAcrossReconnect(t *testing.T) {
	b := mosquittotest.Start(t)
	box := openStore(t)
	pub := mosquittotest.Subscribe(t, b.URL(), "unused/#")
	// A command left retained by some client must not run on connect.
	pub.Publish("cmd/stale/set", 1, true, []byte("stale"))

	c, err := New(testConfig(b.URL()), box, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, got := handlerChan()
	if err := c.Subscribe("cmd/+/set", h); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	up := connectSignal(c)
	runClient(t, c)

	await(t, up, "first connection")
	pub.Publish("cmd/a/set", 1, false, []byte("one"))
	if m := await(t, got, "first command"); m != (received{"cmd/a/set", "one"}) {
		t.Errorf("got %+v, want cmd/a/set one (the retained command must be skipped)", m)
	}

	b.Stop()
	b.Start()
	await(t, up, "second connection")
	pub.Publish("cmd/b/set", 1, false, []byte("two"))
	if m := await(t, got, "command after reconnect"); m != (received{"cmd/b/set", "two"}) {
		t.Errorf("got %+v, want cmd/b/set two", m)
	}
}

// TestSubscribeWhileConnected checks that a subscription added while
// connected takes effect at once.
func TestSubscribeWhileConnected(t *testing.T) {
	b := mosquittotest.Start(t)
	pub := mosquittotest.Subscribe(t, b.URL(), "unused/#")
	c, err := New(testConfig(b.URL()), openStore(t), discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	up := connectSignal(c)
	runClient(t, c)
	await(t, up, "connection")

	h, got := handlerChan()
	if err := c.Subscribe("late/set", h); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	// The SUBSCRIBE is not awaited by Subscribe: repeat until it works.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitTimeout)
	for {
		pub.Publish("late/set", 1, false, []byte("x"))
		select {
		case m := <-got:
			if m != (received{"late/set", "x"}) {
				t.Errorf("got %+v, want late/set x", m)
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("subscription made while connected never delivered")
		}
	}
}

func TestPublish(t *testing.T) {
	b := mosquittotest.Start(t)
	rec := mosquittotest.Subscribe(t, b.URL(), "state/#")
	c, err := New(testConfig(b.URL()), openStore(t), discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Publish(ctx, "state/x", []byte("v"), true); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Publish before Run: got %v, want ErrNotConnected", err)
	}

	up := connectSignal(c)
	runClient(t, c)
	await(t, up, "connection")

	if err := c.Publish(ctx, "state/x", []byte("v"), true); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	later := mosquittotest.Subscribe(t, b.URL(), "state/#")
	if m := later.WaitFor("state/x", nil, waitTimeout); string(m.Payload) != "v" || !m.Retained {
		t.Errorf("state/x for a new subscriber: got %q retained %v, want \"v\" retained", m.Payload, m.Retained)
	}
	rec.WaitFor("state/x", nil, waitTimeout)

	for _, topic := range []string{"", "a/+", "a/#", "a\x00b"} {
		if err := c.Publish(ctx, topic, nil, false); err == nil {
			t.Errorf("Publish(%q) succeeded, want an error", topic)
		}
	}
}

func TestCheckFilter(t *testing.T) {
	tests := []struct {
		filter string
		ok     bool
	}{
		{"mbus/bridge/scan/set", true},
		{"mbus/+/read/set", true},
		{"mbus/#", true},
		{"#", true},
		{"+", true},
		{"", false},
		{"mbus/#/set", false},
		{"mbus/a+/set", false},
		{"mbus/a#", false},
		{"a\x00b", false},
	}
	for _, tt := range tests {
		if got := checkFilter(tt.filter) == nil; got != tt.ok {
			t.Errorf("checkFilter(%q) ok = %v, want %v", tt.filter, got, tt.ok)
		}
	}
	c, err := New(testConfig("tcp://127.0.0.1:1"), openStore(t), discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("a/set", nil); err == nil {
		t.Error("Subscribe with a nil handler succeeded")
	}
	if err := c.Subscribe("a/#/set", func(string, []byte) {}); err == nil {
		t.Error("Subscribe with a bad filter succeeded")
	}
}

// TestSameValueRepublishedForNewReading checks that every new reading
// publishes its states again even when the values did not change, so that
// Home Assistant's expire_after only fires for a meter that stopped
// answering; a reading older than the one shown does not.
func TestSameValueRepublishedForNewReading(t *testing.T) {
	b := mosquittotest.Start(t)
	box := openStore(t)
	live := mosquittotest.Subscribe(t, b.URL(), "mbus/#")
	c := start(t, testConfig(b.URL()), box)

	const topic = "mbus/kam_00000001/energy"
	for i, at := range []time.Time{t0, t0.Add(time.Minute)} {
		enqueue(t, box, heatReading("kam_00000001", at, 100))
		c.Notify()
		got := live.WaitCount(topic, i+1, waitTimeout)
		if p := string(got[i].Payload); p != "100" {
			t.Errorf("state %d: got %q, want 100", i, p)
		}
	}
	// An older reading (a replay) goes to the reading topic, not to the
	// states; the newer one's states are then sent again as a marker.
	enqueue(t, box, heatReading("kam_00000001", t0.Add(-time.Minute), 99))
	enqueue(t, box, heatReading("kam_00000001", t0.Add(2*time.Minute), 100))
	c.Notify()
	live.WaitCount("mbus/kam_00000001/reading", 4, waitTimeout)
	got := live.WaitCount(topic, 3, waitTimeout)
	for i, m := range got {
		if string(m.Payload) != "100" {
			t.Errorf("state %d: got %q, want 100 (never the older 99)", i, m.Payload)
		}
	}
}
