package bridge

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging/logtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mqtt"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/outbox"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait for the broker, the client or the bridge.
const waitTimeout = 15 * time.Second

// clientID gives the installation id "0123456789".
const clientID = "mbus-gateway-0123456789"

// fakeCtl records the commands it was asked to carry out.
type fakeCtl struct {
	mu    sync.Mutex
	calls []string
	// changed gets a value after every call.
	changed chan struct{}
}

func newFakeCtl() *fakeCtl { return &fakeCtl{changed: make(chan struct{}, 64)} }

func (f *fakeCtl) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
	f.changed <- struct{}{}
}

func (f *fakeCtl) ReadAll(context.Context) error { f.record("read_all"); return nil }

func (f *fakeCtl) Scan(_ context.Context, bus string) error {
	f.record(strings.TrimSpace("scan " + bus))
	return nil
}

func (f *fakeCtl) ReadNow(_ context.Context, meter string) error {
	f.record("read " + meter)
	if meter != "kam_00000001" {
		return poll.ErrUnknownMeter
	}
	return nil
}

func (f *fakeCtl) snapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// waitCalls waits until n calls were made and returns them.
func (f *fakeCtl) waitCalls(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		if got := f.snapshot(); len(got) >= n {
			return got
		}
		select {
		case <-f.changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %d controller calls; got %q", n, f.snapshot())
		}
	}
}

// levelVar is a real, adjustable zerolog level: a hook that discards
// events below it, as the daemon's logger has.
type levelVar struct{ l atomic.Int32 }

func (v *levelVar) Run(e *zerolog.Event, level zerolog.Level, _ string) {
	if level < zerolog.Level(v.l.Load()) {
		e.Discard()
	}
}

func (v *levelVar) LogLevel() string { return zerolog.Level(v.l.Load()).String() }

func (v *levelVar) SetLogLevel(name string) error {
	l, err := logging.ParseLevel(name)
	if err != nil {
		return err
	}
	v.l.Store(int32(l))
	return nil
}

// sources are snapshots the test changes while the bridge runs.
type sources struct {
	mu     sync.Mutex
	poll   poll.Snapshot
	bus    master.Stats
	health bushealth.Snapshot
	// buses, when set by init, make the bridge one of several buses.
	buses []BusSources
}

func (s *sources) pollSnapshot() poll.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.poll
	out.Meters = append([]poll.MeterStatus(nil), s.poll.Meters...)
	return out
}

func (s *sources) busStats() master.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bus
}

func (s *sources) healthSnapshot() bushealth.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

func (s *sources) update(fn func(*sources)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

// harness is a bridge on a real MQTT client, connected to a real
// Mosquitto, with a recorder subscribed to everything.
type harness struct {
	broker *mosquittotest.Broker
	rec    *mosquittotest.Recorder
	client *mqtt.Client
	ctl    *fakeCtl
	level  *levelVar
	src    *sources
	log    *logtest.Buffer
	bridge *Bridge
}

// start runs a bridge and its MQTT client until the test ends, and waits
// until they are connected and subscribed. init, if not nil, sets the
// sources before the bridge first reads them.
func start(t *testing.T, opts Options, init func(*sources)) *harness {
	t.Helper()
	return startOn(t, mosquittotest.Start(t), opts, init)
}

// startOn is start on a broker the test started.
func startOn(t *testing.T, broker *mosquittotest.Broker, opts Options, init func(*sources)) *harness {
	t.Helper()
	h := &harness{
		broker: broker,
		ctl:    newFakeCtl(),
		level:  &levelVar{},
		src:    &sources{},
		log:    &logtest.Buffer{},
	}
	h.level.l.Store(int32(zerolog.InfoLevel))
	if init != nil {
		init(h.src)
	}
	h.rec = mosquittotest.Subscribe(t, h.broker.URL(), "mbus/#", "homeassistant/#")
	box, err := store.Open(context.Background(), t.TempDir()+"/gateway.db")
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { _ = box.Close() })
	var names []string
	for _, b := range h.src.buses {
		names = append(names, b.Name)
	}
	h.client, err = mqtt.New(mqtt.Config{
		Buses:            names,
		Broker:           h.broker.URL(),
		ClientID:         clientID,
		Version:          "1.2.3",
		MinBackoff:       20 * time.Millisecond,
		MaxBackoff:       200 * time.Millisecond,
		RediscoveryDelay: func() time.Duration { return 10 * time.Millisecond },
	}, outbox.Outbox{Store: box}, zerolog.New(h.log), nil)
	if err != nil {
		t.Fatalf("mqtt.New: %v", err)
	}
	connected := make(chan struct{}, 4)
	h.client.OnConnect(func() { connected <- struct{}{} })
	if opts.Version == "" {
		opts.Version = "1.2.3"
	}
	src := Sources{
		Poll:   h.src.pollSnapshot,
		MQTT:   h.client.Snapshot,
		Bus:    h.src.busStats,
		Health: h.src.healthSnapshot,
	}
	if len(h.src.buses) > 0 {
		src = Sources{MQTT: h.client.Snapshot, Buses: h.src.buses}
	}
	h.bridge, err = New(opts, h.client, h.ctl, h.level, src, zerolog.New(h.log))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- h.client.Run(ctx) }()
	go func() { done <- h.bridge.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("log:\n%s", h.log.String())
		}
	})
	select {
	case <-connected:
	case <-time.After(waitTimeout):
		t.Fatalf("not connected within %v", waitTimeout)
	}
	return h
}

// retained waits for a retained message on topic, as a new subscriber
// gets it, that match accepts (nil: any).
func (h *harness) retained(t *testing.T, topic string, match func(mosquittotest.Message) bool) mosquittotest.Message {
	t.Helper()
	later := mosquittotest.Subscribe(t, h.broker.URL(), topic)
	return later.WaitFor(topic, func(m mosquittotest.Message) bool {
		return m.Retained && (match == nil || match(m))
	}, waitTimeout)
}

// payloadIs matches a message by its payload.
func payloadIs(want string) func(mosquittotest.Message) bool {
	return func(m mosquittotest.Message) bool { return string(m.Payload) == want }
}

// waitUntil polls cond until it holds or the timeout passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		case <-tick.C:
		}
	}
}
