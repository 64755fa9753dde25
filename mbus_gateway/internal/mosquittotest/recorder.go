package mosquittotest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// opTimeout bounds connecting, subscribing and publishing of test clients.
const opTimeout = 10 * time.Second

// Message is one message a Recorder received.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
	QoS      byte
	Dup      bool
	// At is when the message arrived.
	At time.Time
}

// Recorder is a subscriber that keeps every message it receives, in order.
//
// It uses a persistent session (clean session off) and reconnects on its
// own, so that with the broker's queue_qos0_messages it misses nothing while
// the broker is stopped and started again. It subscribes with QoS 0: the
// broker then never delivers a message to it twice, so duplicates a test
// sees come from the publisher.
type Recorder struct {
	t      testing.TB
	client paho.Client
	topics []string
	// connects counts connections, see onConnect.
	connects  atomic.Int32
	handlerMu sync.Mutex
	closed    bool // guarded by handlerMu

	mu      sync.Mutex
	msgs    []Message
	changed chan struct{} // closed and replaced on every new message
}

// Subscribe connects a Recorder to the broker at url and subscribes to the
// topic filters (wildcards allowed). It disconnects when the test ends.
func Subscribe(t testing.TB, url string, topics ...string) *Recorder {
	t.Helper()
	r := &Recorder{t: t, topics: topics, changed: make(chan struct{})}
	opts := paho.NewClientOptions().
		AddBroker(url).
		SetClientID("recorder-" + randomID()).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(100 * time.Millisecond).
		SetConnectTimeout(opTimeout).
		// A subscription sent just as the connection breaks waits this long
		// in paho; close waits for it.
		SetWriteTimeout(time.Second).
		SetOnConnectHandler(r.onConnect)
	r.client = paho.NewClient(opts)
	if err := wait(r.client.Connect()); err != nil {
		t.Fatalf("mosquittotest: recorder connect %s: %v", url, err)
	}
	if err := r.subscribe(r.client); err != nil {
		t.Fatalf("mosquittotest: %v", err)
	}
	t.Cleanup(r.close)
	return r
}

// onConnect subscribes again after a reconnect, in case the broker lost
// the session (a Kill before its autosave). The first connect is left to
// Subscribe, which must not return before the subscription is in place.
// Subscribing again makes the broker send retained messages again.
//
// An error is dropped: it means the connection broke again, and the next
// connect subscribes once more. (This runs on paho's goroutine, possibly
// after the test ended, when reporting to t is no longer allowed.)
func (r *Recorder) onConnect(c paho.Client) {
	if r.connects.Add(1) == 1 {
		return
	}
	// Holding handlerMu lets close wait for this handler to return.
	r.handlerMu.Lock()
	defer r.handlerMu.Unlock()
	if r.closed {
		return
	}
	_ = r.subscribe(c)
}

// close disconnects and waits for a running onConnect: paho starts it on a
// goroutine of its own, which must not outlive the test.
func (r *Recorder) close() {
	r.client.Disconnect(250)
	r.handlerMu.Lock()
	r.closed = true
	r.handlerMu.Unlock()
}

func (r *Recorder) subscribe(c paho.Client) error {
	filters := make(map[string]byte, len(r.topics))
	for _, topic := range r.topics {
		filters[topic] = 0
	}
	if err := wait(c.SubscribeMultiple(filters, r.record)); err != nil {
		return fmt.Errorf("recorder subscribe %v: %w", r.topics, err)
	}
	return nil
}

func (r *Recorder) record(_ paho.Client, m paho.Message) {
	msg := Message{
		Topic:    m.Topic(),
		Payload:  append([]byte(nil), m.Payload()...),
		Retained: m.Retained(),
		QoS:      m.Qos(),
		Dup:      m.Duplicate(),
		At:       time.Now(),
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, msg)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Messages returns the messages received on topic so far, oldest first.
// An empty topic returns all of them.
func (r *Recorder) Messages(topic string) []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Message
	for _, m := range r.msgs {
		if topic == "" || m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// Reset forgets the messages received so far, so that a following WaitFor
// sees only newer ones.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.msgs = nil
	r.mu.Unlock()
}

// WaitFor returns the first message received on topic (since the start or
// the last Reset) for which match returns true; a nil match accepts any,
// and an empty topic stands for every topic.
// It fails the test if none arrives within timeout.
func (r *Recorder) WaitFor(topic string, match func(Message) bool, timeout time.Duration) Message {
	r.t.Helper()
	m, ok := r.Await(topic, match, timeout)
	if !ok {
		var seen strings.Builder
		for _, m := range r.Messages(topic) {
			fmt.Fprintf(&seen, "\n  retained=%v %q", m.Retained, truncate(m.Payload, 200))
		}
		r.t.Fatalf("mosquittotest: no matching message on %s within %v; received:%s", topic, timeout, seen.String())
	}
	return m
}

// Await is WaitFor without failing the test: ok is false on timeout.
func (r *Recorder) Await(topic string, match func(Message) bool, timeout time.Duration) (m Message, ok bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		changed := r.changed
		for _, m := range r.msgs {
			if (topic == "" || m.Topic == topic) && (match == nil || match(m)) {
				r.mu.Unlock()
				return m, true
			}
		}
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return Message{}, false
		}
	}
}

// WaitCount waits until at least n messages arrived on topic and returns
// them. It fails the test if they do not arrive within timeout.
func (r *Recorder) WaitCount(topic string, n int, timeout time.Duration) []Message {
	r.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if got := r.Messages(topic); len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline.C:
			r.t.Fatalf("mosquittotest: %d of %d messages on %s within %v", len(r.Messages(topic)), n, topic, timeout)
			return nil
		}
	}
}

// Publish sends one message with the Recorder's connection and waits until
// the broker has it (for QoS 1 and 2).
func (r *Recorder) Publish(topic string, qos byte, retained bool, payload []byte) {
	r.t.Helper()
	if err := wait(r.client.Publish(topic, qos, retained, payload)); err != nil {
		r.t.Fatalf("mosquittotest: publish %s: %v", topic, err)
	}
}

// wait waits for a paho token with the operation timeout.
func wait(tok paho.Token) error {
	if !tok.WaitTimeout(opTimeout) {
		return fmt.Errorf("no answer within %v", opTimeout)
	}
	return tok.Error()
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// randomID gives client IDs that do not collide between tests.
func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
