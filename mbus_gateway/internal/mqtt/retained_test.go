package mqtt

import (
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// TestSubscribeRetained: a state subscription gets what is retained on
// the broker, where a command subscription on the same topic does not.
func TestSubscribeRetained(t *testing.T) {
	b := mosquittotest.Start(t)
	pub := mosquittotest.Subscribe(t, b.URL(), "unused/#")
	pub.Publish("state/old", 1, true, []byte("left"))

	c, err := New(testConfig(b.URL()), openStore(t), discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	states, gotState := handlerChan()
	cmds, gotCmd := handlerChan()
	if err := c.SubscribeRetained("state/+", states); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("state/#", cmds); err != nil {
		t.Fatal(err)
	}
	runClient(t, c)
	if m := await(t, gotState, "the retained state"); m != (received{"state/old", "left"}) {
		t.Errorf("state subscription: got %+v, want state/old left", m)
	}
	pub.Publish("state/new", 1, false, []byte("live"))
	if m := await(t, gotCmd, "the live message"); m != (received{"state/new", "live"}) {
		t.Errorf("command subscription: got %+v, want state/new live (the retained one skipped)", m)
	}
}
