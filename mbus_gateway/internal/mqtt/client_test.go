package mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/hass"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// TestPublishesReadingsStatesAndDiscovery drains an outbox of two meters:
// every reading arrives on its reading topic with its own timestamp, the
// outbox empties, and a subscriber that comes later gets retained
// discovery, bridge state and the newest states.
func TestPublishesReadingsStatesAndDiscovery(t *testing.T) {
	b := mosquittotest.Start(t)
	box := openStore(t)
	live := mosquittotest.Subscribe(t, b.URL(), "mbus/#", "homeassistant/#")
	a1 := heatReading("kam_00000001", t0, 100)
	b1 := heatReading("kam_00000002", t0.Add(time.Second), 500)
	a2 := heatReading("kam_00000001", t0.Add(time.Minute), 101.5)
	enqueue(t, box, a1, b1, a2)

	c := start(t, testConfig(b.URL()), box)
	for meter, want := range map[string][]reading.Reading{
		"kam_00000001": {a1, a2},
		"kam_00000002": {b1},
	} {
		got := live.WaitCount("mbus/"+meter+"/reading", len(want), waitTimeout)
		for i, m := range got {
			r := decodeReading(t, m)
			if !r.Time.Equal(want[i].Time) || r.Records[0].Value.Num != want[i].Records[0].Value.Num {
				t.Errorf("%s reading %d: got time %v energy %v, want %v %v",
					meter, i, r.Time, r.Records[0].Value.Num, want[i].Time, want[i].Records[0].Value.Num)
			}
			if m.Retained {
				t.Errorf("%s reading %d retained, want not retained", meter, i)
			}
		}
	}
	waitUntil(t, "empty outbox", func() bool { return depth(t, box) == 0 })

	later := mosquittotest.Subscribe(t, b.URL(), "mbus/#", "homeassistant/#")
	var want []hass.Message
	for _, r := range []reading.Reading{a2, b1} {
		cfg, err := hass.DeviceConfig(c.hass, r)
		if err != nil {
			t.Fatalf("DeviceConfig: %v", err)
		}
		want = append(want, cfg)
		want = append(want, hass.States(c.hass, r)...)
	}
	bridge, err := hass.BridgeConfig(c.hass)
	if err != nil {
		t.Fatalf("BridgeConfig: %v", err)
	}
	want = append(want, bridge, hass.Message{Topic: "mbus/bridge/state", Payload: []byte("online"), Retain: true})
	for _, w := range want {
		m := later.WaitFor(w.Topic, nil, waitTimeout)
		if !bytes.Equal(m.Payload, w.Payload) {
			t.Errorf("%s: got %s, want %s", w.Topic, m.Payload, w.Payload)
		}
		if m.Retained != w.Retain {
			t.Errorf("%s: retained %v, want %v", w.Topic, m.Retained, w.Retain)
		}
	}

	st := c.Snapshot()
	if !st.Connected || st.Published < 3 || st.Acked != 3 || st.Broker != b.URL() {
		t.Errorf("Snapshot: got %+v, want connected, published >= 3, acked 3, broker %s", st, b.URL())
	}
	for name, want := range map[string]float64{
		"mbus_mqtt_connected":            1,
		"mbus_mqtt_acked_total":          3,
		"mbus_mqtt_publish_errors_total": 0,
		"mbus_outbox_dropped_total":      0,
	} {
		if got := metricValue(t, c.reg, name); got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	if got := metricValue(t, c.reg, "mbus_mqtt_published_total"); got < 3 {
		t.Errorf("mbus_mqtt_published_total: got %v, want at least 3", got)
	}
}

// TestNotifyPublishesNewRows checks that rows enqueued while the client
// is idle go out after Notify, and that discovery is published before the
// first state of a meter it has not seen.
func TestNotifyPublishesNewRows(t *testing.T) {
	b := mosquittotest.Start(t)
	box := openStore(t)
	live := mosquittotest.Subscribe(t, b.URL(), "mbus/#", "homeassistant/#")
	c := start(t, testConfig(b.URL()), box)
	live.WaitFor("mbus/bridge/state", payloadIs("online"), waitTimeout)

	r := heatReading("kam_00000009", t0, 42)
	enqueue(t, box, r)
	c.Notify()
	live.WaitFor("mbus/kam_00000009/reading", nil, waitTimeout)
	live.WaitFor("mbus/kam_00000009/energy", nil, waitTimeout)
	all := live.Messages("")
	discovery, state := -1, -1
	for i, m := range all {
		switch m.Topic {
		case "homeassistant/device/kam_00000009/config":
			discovery = i
		case "mbus/kam_00000009/energy":
			if state < 0 {
				state = i
			}
		}
	}
	if discovery < 0 || discovery > state {
		t.Errorf("discovery at %d, first state at %d: want discovery first", discovery, state)
	}
	waitUntil(t, "empty outbox", func() bool { return depth(t, box) == 0 })
}

// TestBrokerRestartDeliversQueuedReadingsInOrder stops the broker, queues
// readings while it is away and checks that each arrives once, in order,
// with its original timestamp after the broker is back.
func TestBrokerRestartDeliversQueuedReadingsInOrder(t *testing.T) {
	b := mosquittotest.Start(t)
	box := openStore(t)
	rec := mosquittotest.Subscribe(t, b.URL(), "mbus/+/reading")
	c := start(t, testConfig(b.URL()), box)

	const meter = "kam_00000003"
	topic := "mbus/" + meter + "/reading"
	var want []reading.Reading
	add := func(n int) {
		for range n {
			r := heatReading(meter, t0.Add(time.Duration(len(want))*time.Minute), float64(len(want)))
			want = append(want, r)
			enqueue(t, box, r)
			c.Notify()
		}
	}
	add(5)
	rec.WaitCount(topic, 5, waitTimeout)
	waitUntil(t, "empty outbox", func() bool { return depth(t, box) == 0 })

	b.Stop()
	waitUntil(t, "client to see the broker gone", func() bool { return !c.Snapshot().Connected })
	add(50)
	if got := depth(t, box); got != 50 {
		t.Fatalf("outbox while broker is down: got %d rows, want 50", got)
	}
	b.Start()

	rec.WaitCount(topic, len(want), waitTimeout)
	waitUntil(t, "empty outbox", func() bool { return depth(t, box) == 0 })
	got := rec.Messages(topic)
	if len(got) != len(want) {
		t.Errorf("readings received: got %d, want %d (no duplicates: every row was acknowledged once)", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		r := decodeReading(t, got[i])
		if !r.Time.Equal(want[i].Time) {
			t.Errorf("reading %d: got time %v, want %v", i, r.Time, want[i].Time)
		}
	}
}

// TestLastWillWhenConnectionDrops cuts the TCP connection under the client:
// the broker publishes the retained last will "offline", and the client
// reconnects and says "online" again, with the meters' availability.
func TestLastWillWhenConnectionDrops(t *testing.T) {
	b := mosquittotest.Start(t)
	p := startProxy(t, b.Addr())
	box := openStore(t)
	rec := mosquittotest.Subscribe(t, b.URL(), "mbus/#")
	c := start(t, testConfig(p.url()), box)
	c.SetAvailability("kam_00000004", true)
	rec.WaitFor("mbus/kam_00000004/availability", payloadIs("online"), waitTimeout)
	rec.Reset()

	p.cut()
	rec.WaitFor("mbus/bridge/state", payloadIs("offline"), waitTimeout)
	rec.WaitFor("mbus/bridge/state", payloadIs("online"), waitTimeout)
	// Republished on reconnect, for brokers that forget retained messages.
	rec.WaitFor("mbus/kam_00000004/availability", payloadIs("online"), waitTimeout)

	later := mosquittotest.Subscribe(t, b.URL(), "mbus/bridge/state")
	if m := later.WaitFor("mbus/bridge/state", nil, waitTimeout); string(m.Payload) != "online" || !m.Retained {
		t.Errorf("retained bridge state: got %q retained=%v, want \"online\" retained", m.Payload, m.Retained)
	}
}

// TestAvailabilityRetainedAndOnChangeOnly publishes availability changes,
// retained, and nothing when the value does not change.
func TestAvailabilityRetainedAndOnChangeOnly(t *testing.T) {
	b := mosquittotest.Start(t)
	box := openStore(t)
	rec := mosquittotest.Subscribe(t, b.URL(), "mbus/+/availability")
	// Set before the connection exists: sent once connected.
	c := start(t, testConfig(b.URL()), box)
	c.SetAvailability("kam_00000005", true)
	rec.WaitFor("mbus/kam_00000005/availability", payloadIs("online"), waitTimeout)
	c.SetAvailability("kam_00000005", true)
	c.SetAvailability("kam_00000005", false)
	rec.WaitFor("mbus/kam_00000005/availability", payloadIs("offline"), waitTimeout)
	if got := len(rec.Messages("mbus/kam_00000005/availability")); got != 2 {
		t.Errorf("availability messages: got %d, want 2 (online, offline; the repeated online is not sent)", got)
	}
	later := mosquittotest.Subscribe(t, b.URL(), "mbus/+/availability")
	if m := later.WaitFor("mbus/kam_00000005/availability", nil, waitTimeout); string(m.Payload) != "offline" || !m.Retained {
		t.Errorf("retained availability: got %q retained=%v, want \"offline\" retained", m.Payload, m.Retained)
	}
}

// TestRediscoveryOnHomeAssistantOnline sends Home Assistant's birth
// message after some garbage on the same topic: only the exact "online"
// triggers one republication of discovery and newest states.
func TestRediscoveryOnHomeAssistantOnline(t *testing.T) {
	b := mosquittotest.Start(t)
	box := openStore(t)
	r := heatReading("kam_00000006", t0, 7)
	enqueue(t, box, r)
	rec := mosquittotest.Subscribe(t, b.URL(), "mbus/#", "homeassistant/#")
	cfg := testConfig(b.URL())
	var births atomic.Int32
	cfg.RediscoveryDelay = func() time.Duration { births.Add(1); return 10 * time.Millisecond }
	c := start(t, cfg, box)
	configTopic := "homeassistant/device/kam_00000006/config"
	// Everything of the first connection has arrived before Reset.
	rec.WaitFor(configTopic, nil, waitTimeout)
	rec.WaitFor("mbus/kam_00000006/reading", nil, waitTimeout)
	for _, s := range hass.States(c.hass, r) {
		rec.WaitFor(s.Topic, nil, waitTimeout)
	}
	rec.Reset()

	garbage := [][]byte{
		[]byte("offline"), []byte("ONLINE"), []byte("online "), []byte(""), {0xff, 0x00, 0xfe},
		bytes.Repeat([]byte("x"), 256<<10),
	}
	for _, g := range garbage {
		rec.Publish("homeassistant/status", 1, false, g)
	}
	rec.Publish("homeassistant/status", 1, false, []byte("online"))

	m := rec.WaitFor(configTopic, nil, waitTimeout)
	wantCfg, err := hass.DeviceConfig(c.hass, r)
	if err != nil {
		t.Fatalf("DeviceConfig: %v", err)
	}
	if !bytes.Equal(m.Payload, wantCfg.Payload) {
		t.Errorf("rediscovery payload: got %s, want %s", m.Payload, wantCfg.Payload)
	}
	for _, s := range hass.States(c.hass, r) {
		if m := rec.WaitFor(s.Topic, nil, waitTimeout); !bytes.Equal(m.Payload, s.Payload) {
			t.Errorf("state %s after rediscovery: got %s, want %s", s.Topic, m.Payload, s.Payload)
		}
	}
	if got := births.Load(); got != 1 {
		t.Errorf("rediscoveries scheduled: got %d, want 1 (garbage must be ignored)", got)
	}
	if got := len(rec.Messages(configTopic)); got != 1 {
		t.Errorf("discovery messages after birth: got %d, want 1", got)
	}
	if !c.Snapshot().Connected {
		t.Errorf("client disconnected after garbage on homeassistant/status")
	}
	if got := len(rec.Messages("mbus/kam_00000006/reading")); got != 0 {
		t.Errorf("readings republished on rediscovery: got %d, want 0 (readings are never replayed)", got)
	}
}

// TestRefusedCredentials: a wrong password is logged clearly (without the
// password), retried with backoff, and readings keep queueing; the right
// one connects.
func TestRefusedCredentials(t *testing.T) {
	b := mosquittotest.Start(t, mosquittotest.WithUsers(map[string]string{"gateway": "right-pass"}))
	box := openStore(t)
	cfg := testConfig(b.URL())
	cfg.Username, cfg.Password = "gateway", "wrong-pass"
	c := start(t, cfg, box)
	waitUntil(t, "two refused attempts", func() bool {
		return c.log.Count("broker refused credentials for user \\\"gateway\\\"") >= 2
	})
	enqueue(t, box, heatReading("kam_00000007", t0, 1))
	c.Notify()
	if st := c.Snapshot(); st.Connected || !strings.Contains(st.LastError, "refused credentials") {
		t.Errorf("Snapshot: got connected=%v last error %q, want disconnected with refused credentials", st.Connected, st.LastError)
	}
	if strings.Contains(c.log.String(), "wrong-pass") {
		t.Errorf("the log contains the password")
	}
	if got := depth(t, box); got != 1 {
		t.Errorf("outbox: got %d rows, want 1", got)
	}
	c.stop(t)

	cfg.Password = "right-pass"
	ok := start(t, cfg, box)
	waitUntil(t, "connection with the right password", func() bool { return ok.Snapshot().Connected })
	waitUntil(t, "queued reading published", func() bool { return depth(t, box) == 0 })
}

// TestShutdownPublishesOffline: cancelling Run leaves "offline" retained
// and returns nil.
func TestShutdownPublishesOffline(t *testing.T) {
	b := mosquittotest.Start(t)
	box := openStore(t)
	rec := mosquittotest.Subscribe(t, b.URL(), "mbus/bridge/state")
	c := start(t, testConfig(b.URL()), box)
	rec.WaitFor("mbus/bridge/state", payloadIs("online"), waitTimeout)
	c.stop(t)
	rec.WaitFor("mbus/bridge/state", payloadIs("offline"), waitTimeout)
	later := mosquittotest.Subscribe(t, b.URL(), "mbus/bridge/state")
	if m := later.WaitFor("mbus/bridge/state", nil, waitTimeout); string(m.Payload) != "offline" || !m.Retained {
		t.Errorf("retained bridge state after shutdown: got %q retained=%v, want \"offline\" retained", m.Payload, m.Retained)
	}
	if st := c.Snapshot(); st.Connected {
		t.Errorf("Snapshot after shutdown: connected")
	}
}

// TestTrimDropsOldestAndLogsOnce bounds the outbox while the broker is
// unreachable: the oldest rows go, are counted, and logged once.
func TestTrimDropsOldestAndLogsOnce(t *testing.T) {
	box := openStore(t)
	var rs []reading.Reading
	for i := range 10 {
		rs = append(rs, heatReading("kam_00000008", t0.Add(time.Duration(i)*time.Minute), float64(i)))
	}
	enqueue(t, box, rs...)
	cfg := testConfig("tcp://127.0.0.1:1") // nothing listens on port 1
	cfg.OutboxMaxRows = 3
	c := start(t, cfg, box)
	waitUntil(t, "outbox trimmed", func() bool { return c.Snapshot().Dropped == 7 })
	waitUntil(t, "depth gauge", func() bool { return c.Snapshot().OutboxDepth == 3 })
	if got := metricValue(t, c.reg, "mbus_outbox_dropped_total"); got != 7 {
		t.Errorf("mbus_outbox_dropped_total: got %v, want 7", got)
	}
	if got := metricValue(t, c.reg, "mbus_outbox_depth"); got != 3 {
		t.Errorf("mbus_outbox_depth: got %v, want 3", got)
	}
	if got := c.log.Count("dropping oldest readings"); got != 1 {
		t.Errorf("drop log lines: got %d, want 1", got)
	}
	rows, err := box.Store.Pending(context.Background(), 0, 10)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	for i, row := range rows {
		if want := rs[7+i].Time; !row.Time.Equal(want) {
			t.Errorf("kept row %d: got time %v, want %v (the newest stay)", i, row.Time, want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty broker", Config{}, "broker address is empty"},
		{"bad scheme", Config{Broker: "http://x:1"}, `scheme "http"`},
		{"no host", Config{Broker: "tcp://:1883"}, "has no host"},
		{"credentials in url", Config{Broker: "tcp://u:p@host:1883"}, "credentials go in username and password"},
		{"path", Config{Broker: "tcp://host:1883/x"}, "want only scheme, host and port"},
		{"wildcard prefix", Config{Broker: "tcp://h", TopicPrefix: "mbus/#"}, `topic prefix "mbus/#"`},
		{"slash discovery prefix", Config{Broker: "tcp://h", DiscoveryPrefix: "ha/"}, `discovery prefix "ha/"`},
		{"negative expire", Config{Broker: "tcp://h", ExpireAfter: -1}, "expire_after -1"},
		{"password without user", Config{Broker: "tcp://h", Password: "p"}, "password given without username"},
		{"missing ca file", Config{Broker: "ssl://h", CAFile: "/nonexistent/ca.pem"}, "ca file"},
		{"negative bound", Config{Broker: "tcp://h", OutboxMaxRows: -1}, "outbox bounds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, openStore(t), discard(), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrConfig) {
				t.Errorf("New: got %v, want ErrConfig containing %q", err, tt.want)
			}
		})
	}
}

func TestBrokerURL(t *testing.T) {
	tests := []struct {
		in      string
		tls     bool
		want    string
		wantTLS bool
	}{
		{"tcp://broker", false, "tcp://broker:1883", false},
		{"mqtt://broker:1884", false, "tcp://broker:1884", false},
		{"tcp://broker", true, "ssl://broker:8883", true},
		{"ssl://broker", false, "ssl://broker:8883", true},
		{"mqtts://broker:443", false, "ssl://broker:443", true},
		{"tcp://[::1]:1883", false, "tcp://[::1]:1883", false},
	}
	for _, tt := range tests {
		got, gotTLS, err := brokerURL(tt.in, tt.tls)
		if err != nil || got != tt.want || gotTLS != tt.wantTLS {
			t.Errorf("brokerURL(%q, %v): got %q, %v, %v; want %q, %v", tt.in, tt.tls, got, gotTLS, err, tt.want, tt.wantTLS)
		}
	}
}

func TestNewClientID(t *testing.T) {
	a, b := NewClientID(), NewClientID()
	if a == b {
		t.Errorf("two client IDs are equal: %s", a)
	}
	if len(a) != 23 || !strings.HasPrefix(a, "mbus-gateway-") {
		t.Errorf("client ID %q: want 23 characters starting mbus-gateway-", a)
	}
}

func TestNewRejectsDuplicateRegistration(t *testing.T) {
	box := openStore(t)
	c := start(t, testConfig("tcp://127.0.0.1:1"), box)
	if _, err := New(testConfig("tcp://127.0.0.1:1"), box, discard(), c.reg); err == nil {
		t.Errorf("second New on the same registry: got nil error, want a registration error")
	}
}

func TestPreview(t *testing.T) {
	tests := []struct{ in, want string }{
		{"online", "online"},
		{strings.Repeat("a", 40), strings.Repeat("a", 32)},
		{"\xff\xfeok", "?ok"},
	}
	for _, tt := range tests {
		if got := preview([]byte(tt.in)); got != tt.want {
			t.Errorf("preview(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func ExampleNewClientID() {
	id := NewClientID()
	fmt.Println(len(id), strings.HasPrefix(id, "mbus-gateway-"))
	// Output: 23 true
}

// TestUnreadableRowIsDroppedNotBlocking: a row whose JSON is damaged is
// dropped and counted; the rows around it are published.
func TestUnreadableRowIsDroppedNotBlocking(t *testing.T) {
	b := mosquittotest.Start(t)
	box := openStore(t)
	rs := []reading.Reading{
		heatReading("kam_00000010", t0, 1),
		heatReading("kam_00000010", t0.Add(time.Minute), 2),
		heatReading("kam_00000010", t0.Add(2*time.Minute), 3),
	}
	seqs, err := box.EnqueueBatch(context.Background(), rs)
	if err != nil {
		t.Fatalf("EnqueueBatch: %v", err)
	}
	damageRow(t, box.Path(), seqs[1])
	rec := mosquittotest.Subscribe(t, b.URL(), "mbus/+/reading")
	c := start(t, testConfig(b.URL()), box)
	got := rec.WaitCount("mbus/kam_00000010/reading", 2, waitTimeout)
	for i, want := range []reading.Reading{rs[0], rs[2]} {
		if r := decodeReading(t, got[i]); !r.Time.Equal(want.Time) {
			t.Errorf("reading %d: got time %v, want %v", i, r.Time, want.Time)
		}
	}
	waitUntil(t, "empty outbox", func() bool { return depth(t, box) == 0 })
	if st := c.Snapshot(); st.Dropped != 1 || st.Acked != 2 {
		t.Errorf("Snapshot: got dropped %d acked %d, want 1 and 2", st.Dropped, st.Acked)
	}
}

// TestConnectionCutMidDrain cuts the connection while a backlog drains:
// after the reconnect every reading arrives, first copies in order, and
// only rows that were in flight (at most Window) arrive twice.
func TestConnectionCutMidDrain(t *testing.T) {
	b := mosquittotest.Start(t)
	p := startProxy(t, b.Addr())
	box := openStore(t)
	const meter, n = "kam_00000011", 1500
	var rs []reading.Reading
	for i := range n {
		rs = append(rs, heatReading(meter, t0.Add(time.Duration(i)*time.Second), float64(i)))
	}
	enqueue(t, box, rs...)
	topic := "mbus/" + meter + "/reading"
	rec := mosquittotest.Subscribe(t, b.URL(), topic)
	cfg := testConfig(p.url())
	c := start(t, cfg, box)
	rec.WaitCount(topic, 100, waitTimeout)
	p.cut()
	waitUntil(t, "empty outbox", func() bool { return depth(t, box) == 0 })
	rec.WaitCount(topic, n, waitTimeout)

	seen := make(map[time.Time]bool, n)
	var first []time.Time
	dups := 0
	for _, m := range rec.Messages(topic) {
		tm := decodeReading(t, m).Time
		if seen[tm] {
			dups++
			continue
		}
		seen[tm] = true
		first = append(first, tm)
	}
	if len(first) != n {
		t.Fatalf("distinct readings: got %d, want %d", len(first), n)
	}
	for i, tm := range first {
		if !tm.Equal(rs[i].Time) {
			t.Fatalf("reading %d (first copies in order): got %v, want %v", i, tm, rs[i].Time)
		}
	}
	if dups > c.cfg.Window {
		t.Errorf("duplicates: got %d, want at most %d (the rows in flight at the cut)", dups, c.cfg.Window)
	}
	t.Logf("duplicates after the cut: %d", dups)
}
