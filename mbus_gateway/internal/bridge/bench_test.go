package bridge

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mqtt"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// countingPublisher accepts everything and counts publications.
type countingPublisher struct{ n int }

func (p *countingPublisher) Publish(context.Context, string, []byte, bool) error {
	p.n++
	return nil
}

func (*countingPublisher) Subscribe(string, mqtt.Handler) error         { return nil }
func (*countingPublisher) SubscribeRetained(string, mqtt.Handler) error { return nil }

func (*countingPublisher) OnConnect(func()) {}

// BenchmarkWatchRound measures one watch tick (run every second by
// default) with 100 meters and nothing changed: the cost the bridge adds
// to an idle gateway. Reproduce with
//
//	go test -run '^$' -bench WatchRound -benchmem ./mbus_gateway/internal/bridge/
func BenchmarkWatchRound(b *testing.B) {
	snap := poll.Snapshot{}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 100 {
		snap.Meters = append(snap.Meters, poll.MeterStatus{
			Meter: "kam_" + strconv.Itoa(10000000+i), Identified: true, LastRead: at, LastSuccess: at, ReadSeconds: 0.4,
		})
	}
	pub := &countingPublisher{}
	br, err := New(Options{}, pub, newFakeCtl(), &levelVar{}, Sources{
		Poll: func() poll.Snapshot { return snap },
		MQTT: func() mqtt.Status { return mqtt.Status{} },
		Bus:  func() master.Stats { return master.Stats{} },
	}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	br.publish(ctx, true)
	first := pub.n
	b.ReportAllocs()
	for b.Loop() {
		br.publish(ctx, false)
	}
	if pub.n != first {
		b.Fatalf("%d publications of unchanged states", pub.n-first)
	}
}
