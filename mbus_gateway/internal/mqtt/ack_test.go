package mqtt

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
)

// deleteFails is the store with a Delete that fails while full is set,
// as on a full disk.
type deleteFails struct {
	testBox
	full  atomic.Bool
	tries atomic.Int32
}

func (d *deleteFails) Delete(ctx context.Context, seqs ...int64) error {
	d.tries.Add(1)
	if d.full.Load() {
		return errors.New("store: delete: database or disk is full")
	}
	return d.testBox.Delete(ctx, seqs...)
}

// An acknowledged reading whose delete fails is never published again,
// not after a reconnect either, and is deleted once the store can.
func TestAckedNotRepublishedWhenDeleteFails(t *testing.T) {
	b := mosquittotest.Start(t)
	p := startProxy(t, b.Addr())
	box := &deleteFails{testBox: openStore(t)}
	box.full.Store(true)
	rec := mosquittotest.Subscribe(t, b.URL(), "mbus/+/reading")
	enqueue(t, box.testBox, heatReading("kam_00000001", t0, 1), heatReading("kam_00000001", t0.Add(time.Minute), 2))
	c := start(t, testConfig(p.url()), box)
	waitUntil(t, "both readings acknowledged", func() bool { return len(rec.Messages("mbus/kam_00000001/reading")) == 2 && depth(t, box.testBox) == 0 })
	tries := box.tries.Load()
	waitUntil(t, "the delete retried", func() bool { return box.tries.Load() > tries })

	p.cut() // a new session starts again from the oldest row in the outbox
	enqueue(t, box.testBox, heatReading("kam_00000001", t0.Add(2*time.Minute), 3))
	waitUntil(t, "the third reading", func() bool { return len(rec.Messages("mbus/kam_00000001/reading")) >= 3 })
	box.full.Store(false)
	waitUntil(t, "all deleted", func() bool { return c.Snapshot().Acked == 3 })
	if got := len(rec.Messages("mbus/kam_00000001/reading")); got != 3 {
		t.Errorf("readings published: got %d, want 3 (none of the acknowledged sent again)", got)
	}
	log := c.log.String()
	for _, msg := range []string{"outbox delete failed", "outbox delete works again"} {
		if n := strings.Count(log, msg); n != 1 {
			t.Errorf("log lines %q: got %d, want 1", msg, n)
		}
	}
}

// A stop while the client waits for a PUBACK (here of a new meter's
// discovery) still publishes "offline": a clean disconnect sends no Last
// Will, so without it the bridge would stay "online".
func TestStopWhileWaitingPublishesOffline(t *testing.T) {
	b := mosquittotest.Start(t)
	p := startProxy(t, b.Addr())
	box := openStore(t)
	rec := mosquittotest.Subscribe(t, b.URL(), "mbus/bridge/state", "homeassistant/device/+/config")
	c := start(t, testConfig(p.url()), box)
	rec.WaitFor("mbus/bridge/state", payloadIs("online"), waitTimeout)

	p.hold(t) // the broker's PUBACKs no longer arrive
	enqueue(t, box, heatReading("kam_00000009", t0, 1))
	c.Notify()
	rec.WaitFor("homeassistant/device/kam_00000009/config", nil, waitTimeout)
	c.stop(t)
	rec.WaitFor("mbus/bridge/state", payloadIs("offline"), waitTimeout)
}
