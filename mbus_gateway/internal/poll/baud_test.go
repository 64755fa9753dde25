package poll

import (
	"context"
	"encoding/hex"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// baudBus is a fakeBus that can read at another speed and with a key; it
// notes the speed of every read (0: Read, at the bus speed) and the key.
type baudBus struct {
	*fakeBus

	mu    sync.Mutex
	bauds map[string][]int
	keys  map[string][]string
}

var _ MeterReader = (*baudBus)(nil)

// newBaudBus is a baudBus whose meters all answer good(time.Second);
// make it inside the test's bubble.
func newBaudBus() *baudBus {
	return &baudBus{fakeBus: &fakeBus{epoch: time.Now(), answer: good(time.Second)}, bauds: map[string][]int{}, keys: map[string][]string{}}
}

// runOnBus runs a poller of ms on bus, at 2400 Bd, inside the test's
// bubble, and returns once every meter was read for the first time;
// stop ends the poller.
func runOnBus(t *testing.T, bus *baudBus, ms []Meter) (p *Poller, ctx context.Context, stop func()) {
	t.Helper()
	p, err := New(Options{Meters: ms, Baud: 2400, Jitter: -1, Seed: 1, StartSpread: -1},
		bus, &fakeSink{epoch: bus.epoch}, &fakeAvail{epoch: bus.epoch}, zeroLog, newRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	time.Sleep(10 * time.Second) // the first read of every meter
	return p, ctx, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func (b *baudBus) note(addr mbus.Address, o master.ReadOptions) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bauds[addr.String()] = append(b.bauds[addr.String()], o.Baud)
	if o.Key != nil {
		b.keys[addr.String()] = append(b.keys[addr.String()], hex.EncodeToString(o.Key))
	}
}

func (b *baudBus) Read(ctx context.Context, addr mbus.Address) (master.Result, error) {
	b.note(addr, master.ReadOptions{})
	return b.fakeBus.Read(ctx, addr)
}

func (b *baudBus) ReadWith(ctx context.Context, addr mbus.Address, o master.ReadOptions) (master.Result, error) {
	b.note(addr, o)
	return b.fakeBus.Read(ctx, addr)
}

func (b *baudBus) of(addr string) []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.bauds[addr])
}

// TestMeterBaudReachesBus: a meter whose speed differs from the bus's is
// read at its own (also after SetMeters changes it); the others, at the
// bus speed, with plain Read.
func TestMeterBaudReachesBus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBaudBus()
		ms := meters(3, time.Hour)
		ms[1].Baud = 9600
		ms[2].Baud = 2400 // the bus speed, given explicitly
		p, ctx, stop := runOnBus(t, bus, ms)
		ms[0].Baud, ms[1].Baud = 300, 0
		if _, err := p.SetMeters(ms...); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"1", "2", "3"} {
			if _, err := p.ReadNow(ctx, key); err != nil {
				t.Fatalf("ReadNow(%s): %v", key, err)
			}
		}
		stop()
		tests := []struct {
			addr string
			want []int
		}{
			{"1", []int{0, 300}},
			{"2", []int{9600, 0}},
			{"3", []int{0, 0}},
		}
		for _, tt := range tests {
			if got := bus.of(tt.addr); !slices.Equal(got, tt.want) {
				t.Errorf("meter %s: got speeds %v, want %v", tt.addr, got, tt.want)
			}
		}
	})
}
