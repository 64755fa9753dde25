package bridge

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/hass"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mqtt"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// state is one retained state message.
type state struct {
	topic   string
	payload string
	// force publishes it even when the payload is the one sent last.
	force bool
}

// publish sends the states that changed since they were last sent, and
// with all every state. A meter's diagnostics are sent on every new poll
// result, changed or not: they say the gateway still polls. A failure
// ends the round (the connection is gone); what was not sent is sent
// with the next round or after the reconnect.
func (b *Bridge) publish(ctx context.Context, all bool) {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	snap, buses := b.snapshots()
	states := b.bridgeStates(snap, buses)
	if snap != nil {
		states = b.meterStates(snap, states)
	}
	for _, s := range states {
		if !all && !s.force && b.sent[s.topic] == s.payload {
			continue
		}
		if err := b.pub.Publish(ctx, s.topic, []byte(s.payload), true); err != nil {
			b.logPublishError(err)
			return
		}
		b.sent[s.topic] = s.payload
	}
	if snap == nil {
		return
	}
	// Every state went out: remember the poll results they showed (and
	// forget meters that are gone or were renamed).
	polled := make(map[string]time.Time, len(snap.Meters))
	for _, m := range snap.Meters {
		polled[m.Meter] = m.LastRead
	}
	b.polled = polled
	b.clearLeftovers(ctx, snap)
}

// snapshots are the poll snapshot of all meters (nil without a source)
// and, with several buses, each bus's own.
func (b *Bridge) snapshots() (*poll.Snapshot, []poll.Snapshot) {
	if len(b.src.Buses) == 0 {
		if b.src.Poll == nil {
			return nil, nil
		}
		s := b.src.Poll()
		return &s, nil
	}
	all := &poll.Snapshot{}
	buses := make([]poll.Snapshot, len(b.src.Buses))
	for i, bus := range b.src.Buses {
		buses[i] = bus.Poll()
		all.Meters = append(all.Meters, buses[i].Meters...)
		all.Sink.Dropped += buses[i].Sink.Dropped
	}
	return all, buses
}

// logPublishError notes a failed publication. Being disconnected is
// normal during a broker outage (the MQTT client logs that itself).
func (b *Bridge) logPublishError(err error) {
	if errors.Is(err, mqtt.ErrNotConnected) || errors.Is(err, context.Canceled) {
		b.log.Debug().Err(err).Msg("states not published")
		return
	}
	b.log.Warn().Err(err).Msg("states not published")
}

// bridgeStates are the states of the gateway's own entities; buses are
// the snapshots of several buses (see Sources.Buses), nil for one.
func (b *Bridge) bridgeStates(snap *poll.Snapshot, buses []poll.Snapshot) []state {
	var out []state
	add := func(key, payload string) {
		out = append(out, state{topic: hass.BridgeTopic(b.hass, key), payload: payload})
	}
	add(hass.BridgeVersion, b.opts.Version)
	if lvl, ok := levelName(b.level.LogLevel()); ok {
		add(hass.BridgeLogLevel, lvl)
	}
	var sinkDropped uint64
	if snap != nil {
		sinkDropped = snap.Sink.Dropped
		add(hass.BridgeResponseTime, responseTime(snap.Meters))
	}
	if b.src.MQTT != nil {
		st := b.src.MQTT()
		add(hass.BridgeOutboxDepth, strconv.Itoa(st.OutboxDepth))
		add(hass.BridgeDelivered, strconv.FormatInt(st.Acked, 10))
		add(hass.BridgeDropped, strconv.FormatUint(uint64(max(st.Dropped, 0))+sinkDropped, 10))
	}
	if buses == nil {
		busStates(add, snap, b.src.Bus, b.src.Health)
		return out
	}
	for i, bus := range b.src.Buses {
		addBus := func(key, payload string) {
			out = append(out, state{topic: hass.BridgeBusTopic(b.hass, bus.Name, key), payload: payload})
		}
		busStates(addBus, &buses[i], bus.Bus, bus.Health)
	}
	return out
}

// busStates adds the states of one bus's entities: its last scan (from
// snap, when there is one), health and link-layer counters.
func busStates(add func(key, payload string), snap *poll.Snapshot, stats func() master.Stats, health func() bushealth.Snapshot) {
	if snap != nil {
		add(hass.BridgeLastScan, timestamp(snap.Scan.Finished))
		found := hass.PayloadNone
		if !snap.Scan.Finished.IsZero() {
			found = strconv.Itoa(snap.Scan.Found)
		}
		add(hass.BridgeMetersFound, found)
	}
	if health != nil {
		st := health().State
		conn := hass.PayloadOff
		if st.Working() {
			conn = hass.PayloadOn
		}
		add(hass.BridgeBus, conn)
		add(hass.BridgeBusState, st.String())
	}
	if stats != nil {
		st := stats()
		add(hass.BridgeTimeouts, strconv.FormatUint(st.Timeouts, 10))
		add(hass.BridgeChecksum, strconv.FormatUint(st.ChecksumErrors, 10))
		add(hass.BridgeCollisions, strconv.FormatUint(st.Collisions, 10))
		add(hass.BridgeEchoes, strconv.FormatUint(st.Echoes, 10))
	}
}

// meterStates appends each identified meter's diagnostics to out; they
// are forced when the meter was polled since they were last sent. A meter
// whose identity is not known yet has no topics: its name in the snapshot
// is only a placeholder.
func (b *Bridge) meterStates(snap *poll.Snapshot, out []state) []state {
	for _, m := range snap.Meters {
		if !m.Identified {
			continue
		}
		last, err := hass.MeterTopic(b.hass, m.Meter, hass.MeterLastSuccess)
		if err != nil {
			continue // not a safe topic level; hass reports it with the discovery
		}
		fails, _ := hass.MeterTopic(b.hass, m.Meter, hass.MeterFailures)
		seen, known := b.polled[m.Meter]
		force := !known || !seen.Equal(m.LastRead)
		out = append(out,
			state{topic: last, payload: timestamp(m.LastSuccess), force: force},
			state{topic: fails, payload: strconv.Itoa(m.Failures), force: force},
		)
	}
	return out
}

// responseTime is the mean time of the last successful read of each meter
// that has one, in seconds, or "None".
func responseTime(meters []poll.MeterStatus) string {
	var sum float64
	var n int
	for _, m := range meters {
		if !m.LastSuccess.IsZero() && m.ReadSeconds > 0 {
			sum += m.ReadSeconds
			n++
		}
	}
	if n == 0 {
		return hass.PayloadNone
	}
	return strconv.FormatFloat(sum/float64(n), 'f', 3, 64)
}

// timestamp is t for a timestamp sensor, or "None" (unknown) when zero.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return hass.PayloadNone
	}
	return t.UTC().Format(time.RFC3339)
}

// levelName turns a level as the process reports it ("warn", "WARNING",
// "info") into the select's option name; false when it is none of them.
func levelName(s string) (string, bool) {
	l, err := logging.ParseLevel(s)
	if err != nil {
		return "", false
	}
	switch l {
	case zerolog.TraceLevel:
		return "trace", true
	case zerolog.DebugLevel:
		return "debug", true
	case zerolog.InfoLevel:
		return "info", true
	case zerolog.WarnLevel:
		return "warning", true
	case zerolog.ErrorLevel:
		return "error", true
	}
	return "", false
}
