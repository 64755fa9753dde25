package mqtt

import (
	"context"
	"errors"
	"fmt"
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// ErrNotConnected is returned by Publish while there is no connection to
// the broker.
var ErrNotConnected = errors.New("mqtt: not connected")

// Handler receives a message on a subscribed topic. It runs on the MQTT
// client's receive goroutine and must return quickly: hand the work to
// another goroutine.
type Handler func(topic string, payload []byte)

// subscription is a topic filter with its handler, made again on every
// connection (clean sessions forget subscriptions).
type subscription struct {
	filter string
	handle Handler
	// retained passes on messages the broker delivers as retained.
	retained bool
}

// Subscribe registers handle for messages on the topic filter (MQTT
// wildcards allowed), with QoS 1. The subscription is made at once when
// connected and again after every reconnect. Messages the broker delivers
// as retained are not passed on: commands are events, and a retained one
// would run again on every connection.
func (c *Client) Subscribe(filter string, handle Handler) error {
	return c.subscribe(subscription{filter: filter, handle: handle})
}

// SubscribeRetained is Subscribe for state topics: retained messages are
// passed on too, e.g. to find what is left on the broker.
func (c *Client) SubscribeRetained(filter string, handle Handler) error {
	return c.subscribe(subscription{filter: filter, handle: handle, retained: true})
}

func (c *Client) subscribe(sub subscription) error {
	filter := sub.filter
	if err := checkFilter(filter); err != nil {
		return err
	}
	if sub.handle == nil {
		return fmt.Errorf("mqtt: subscribe %q: no handler", filter)
	}
	c.mu.Lock()
	c.subs = append(c.subs, sub)
	cli := c.cur
	c.mu.Unlock()
	if cli != nil {
		// Not awaited: a failure here means the connection is going, and
		// the next one subscribes again.
		cli.Subscribe(filter, 1, c.deliver(sub))
	}
	return nil
}

// OnConnect registers fn to be called after every connection is made and
// the subscriptions are in place, e.g. to publish retained states again
// (a broker without persistence forgets them). fn runs on the client's
// goroutine and must not block.
func (c *Client) OnConnect(fn func()) {
	if fn == nil {
		return
	}
	c.mu.Lock()
	c.onConnect = append(c.onConnect, fn)
	c.mu.Unlock()
}

// Publish sends payload to topic with QoS 1 and waits for the broker's
// acknowledgement or ctx. Without a connection it fails at once with
// ErrNotConnected: callers publishing states keep them and publish again
// from OnConnect, nothing is queued here.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, retain bool) error {
	if topic == "" || strings.ContainsAny(topic, "+#\x00") {
		return fmt.Errorf("mqtt: publish: topic %q: empty or with wildcards or NUL", topic)
	}
	c.mu.Lock()
	cli := c.cur
	c.mu.Unlock()
	if cli == nil {
		return fmt.Errorf("mqtt: publish %s: %w", topic, ErrNotConnected)
	}
	tok := cli.Publish(topic, 1, retain, payload)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return fmt.Errorf("mqtt: publish %s: %w", topic, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt: publish %s: %w", topic, err)
	}
	return nil
}

// deliver wraps a subscription's handler for paho.
func (c *Client) deliver(sub subscription) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		if m.Retained() && !sub.retained {
			c.log.Debug().Str("topic", m.Topic()).Int("bytes", len(m.Payload())).Msg("ignored retained command")
			return
		}
		sub.handle(m.Topic(), m.Payload())
	}
}

// attach makes cli the connection Publish and Subscribe use and returns
// the subscriptions to make on it. Both happen under one lock, so a
// Subscribe call either is in the returned list or sees cli.
func (c *Client) attach(cli paho.Client) []subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = cli
	return append([]subscription(nil), c.subs...)
}

// detach forgets the connection when its session ends.
func (c *Client) detach() {
	c.mu.Lock()
	c.cur = nil
	c.mu.Unlock()
}

// connected runs the OnConnect callbacks.
func (c *Client) connected() {
	c.mu.Lock()
	fns := append([]func(){}, c.onConnect...)
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// subscribeAll makes the registered subscriptions on a new connection.
func (s *session) subscribeAll(ctx context.Context) error {
	for _, sub := range s.c.attach(s.cli) {
		if err := s.await(ctx, s.cli.Subscribe(sub.filter, 1, s.c.deliver(sub))); err != nil {
			return err
		}
	}
	return nil
}

// checkFilter accepts topic filters of MQTT 3.1.1, clause 4.7.1: '#' only
// as the whole last level, '+' only as a whole level, no NUL.
func checkFilter(f string) error {
	if f == "" || strings.ContainsRune(f, 0) {
		return fmt.Errorf("mqtt: subscribe: topic filter %q: empty or with NUL", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i == len(levels)-1, l == "+":
		case strings.ContainsAny(l, "+#"):
			return fmt.Errorf("mqtt: subscribe: topic filter %q: wildcard inside level %q", f, l)
		}
	}
	return nil
}
