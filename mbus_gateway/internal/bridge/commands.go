package bridge

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/hass"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// commandKind is what a command asks for.
type commandKind uint8

const (
	cmdScan commandKind = iota
	cmdReadAll
	cmdReadNow
	cmdLogLevel
)

// command is one checked command on its way from the MQTT handler to Run.
type command struct {
	kind  commandKind
	meter string // cmdReadNow
	value string // cmdLogLevel
	bus   string // cmdScan: the bus of several, "" for the only one
}

// key identifies a command for "already running": a second press of the
// same button while the first is carried out is dropped.
func (c command) key() string {
	switch c.kind {
	case cmdScan:
		if c.bus != "" {
			return "scan " + c.bus
		}
		return "scan"
	case cmdReadAll:
		return "read_all"
	case cmdReadNow:
		return "read " + c.meter
	}
	return "log_level"
}

// subscribe registers the handlers of the command topics.
func (b *Bridge) subscribe() error {
	press := func(c command) func(topic string, payload []byte) {
		return func(topic string, payload []byte) {
			if b.checkSize(topic, payload) && b.checkPress(topic, payload) {
				b.enqueue(c)
			}
		}
	}
	type subscription struct {
		filter string
		handle func(string, []byte)
	}
	subs := []subscription{
		{hass.CommandTopic(hass.BridgeTopic(b.hass, hass.BridgeReadAll)), press(command{kind: cmdReadAll})},
		{hass.CommandTopic(hass.BridgeTopic(b.hass, hass.BridgeLogLevel)), b.onLogLevel},
		{hass.CommandTopic(b.opts.TopicPrefix + "/+/" + hass.MeterRead), b.onReadNow},
	}
	if len(b.hass.Buses) == 0 {
		subs = append(subs, subscription{hass.CommandTopic(hass.BridgeTopic(b.hass, hass.BridgeScan)), press(command{kind: cmdScan})})
	}
	for _, bus := range b.hass.Buses {
		subs = append(subs, subscription{hass.CommandTopic(hass.BridgeBusTopic(b.hass, bus, hass.BridgeScan)), press(command{kind: cmdScan, bus: bus})})
	}
	for _, s := range subs {
		if err := b.pub.Subscribe(s.filter, s.handle); err != nil {
			return err
		}
	}
	return nil
}

// onLogLevel checks a log level command: exactly one of the select's
// options.
func (b *Bridge) onLogLevel(topic string, payload []byte) {
	if !b.checkSize(topic, payload) {
		return
	}
	v := string(bytes.TrimSpace(payload))
	if !slices.Contains(hass.LogLevels(), v) {
		b.rejects.note(topic, payload, "unknown log level, want one of "+strings.Join(hass.LogLevels(), ", "))
		return
	}
	b.enqueue(command{kind: cmdLogLevel, value: v})
}

// onReadNow checks a meter's "Read now" press; the meter is the topic
// level before "read/set".
func (b *Bridge) onReadNow(topic string, payload []byte) {
	if !b.checkSize(topic, payload) || !b.checkPress(topic, payload) {
		return
	}
	meter := strings.TrimPrefix(topic, b.opts.TopicPrefix+"/")
	meter = strings.TrimSuffix(meter, "/"+hass.CommandTopic(hass.MeterRead))
	if meter == "" || meter == "bridge" || strings.Contains(meter, "/") {
		b.rejects.note(topic, payload, "not a meter's command topic")
		return
	}
	b.enqueue(command{kind: cmdReadNow, meter: meter})
}

func (b *Bridge) checkSize(topic string, payload []byte) bool {
	if len(payload) > b.opts.MaxPayload {
		// One note per topic: the preview of a flood would differ each time.
		b.rejects.note(topic, nil, "payload too large")
		return false
	}
	return true
}

// checkPress accepts exactly the button's payload_press.
func (b *Bridge) checkPress(topic string, payload []byte) bool {
	if string(bytes.TrimSpace(payload)) != hass.PayloadPress {
		b.rejects.note(topic, payload, "unknown command, want "+hass.PayloadPress)
		return false
	}
	return true
}

// enqueue hands c to Run without blocking the MQTT client's goroutine.
func (b *Bridge) enqueue(c command) {
	select {
	case b.cmds <- c:
	default:
		b.log.Warn().Str("command", c.key()).Msg("too many commands waiting, command dropped")
	}
}

// execute carries out c. The log level changes at once; the others use
// the bus and run on their own goroutine, one of each kind (and meter) at
// a time, so that Run keeps publishing states meanwhile.
func (b *Bridge) execute(ctx context.Context, c command, wg *sync.WaitGroup) {
	if c.kind == cmdLogLevel {
		b.setLogLevel(ctx, c.value)
		return
	}
	key := c.key()
	b.mu.Lock()
	running := b.busy[key]
	b.busy[key] = true
	b.mu.Unlock()
	if running {
		b.log.Info().Str("command", key).Msg("already running, press ignored")
		return
	}
	wg.Go(func() {
		defer func() {
			b.mu.Lock()
			delete(b.busy, key)
			b.mu.Unlock()
		}()
		b.run(ctx, c)
	})
}

// run carries out a bus command and logs its outcome.
func (b *Bridge) run(ctx context.Context, c command) {
	var err error
	switch c.kind {
	case cmdScan:
		b.log.Info().Str("bus", c.bus).Msg("scan requested")
		err = b.ctl.Scan(ctx, c.bus)
	case cmdReadAll:
		b.log.Info().Msg("read of all meters requested")
		err = b.ctl.ReadAll(ctx)
	case cmdReadNow:
		b.log.Info().Str("meter", c.meter).Msg("read requested")
		err = b.ctl.ReadNow(ctx, c.meter)
	}
	switch {
	case err == nil, ctx.Err() != nil:
	case errors.Is(err, poll.ErrUnknownMeter):
		b.rejects.note(c.key(), nil, "no such meter")
	default:
		b.log.Warn().Err(err).Str("command", c.key()).Msg("command failed")
	}
}

// setLogLevel changes the level and publishes the select's new state.
func (b *Bridge) setLogLevel(ctx context.Context, name string) {
	if err := b.level.SetLogLevel(name); err != nil {
		b.log.Warn().Err(err).Str("level", name).Msg("log level not changed")
		return
	}
	b.log.Info().Str("level", name).Msg("log level changed")
	b.publish(ctx, false)
}

// rejectLog logs an ignored command once per topic, payload and reason,
// so that a client repeating a bad command cannot flood the log. It
// remembers at most maxRejects of them.
type rejectLog struct {
	log zerolog.Logger

	mu   sync.Mutex
	seen map[string]bool
	full bool
}

const (
	maxRejects     = 64
	previewBytes   = 32
	maxTopicInLogs = 128
)

func newRejectLog(log zerolog.Logger) *rejectLog {
	return &rejectLog{log: log, seen: make(map[string]bool)}
}

// note logs the rejection of payload on topic for reason, unless it was
// logged already.
func (r *rejectLog) note(topic string, payload []byte, reason string) {
	topic = preview([]byte(topic), maxTopicInLogs)
	p := preview(payload, previewBytes)
	key := topic + "\x00" + p + "\x00" + reason
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.seen[key]:
		return
	case len(r.seen) >= maxRejects:
		if !r.full {
			r.full = true
			r.log.Warn().Int("distinct", maxRejects).Msg("many distinct bad commands; no longer logging them")
		}
		return
	}
	r.seen[key] = true
	r.log.Warn().Str("topic", topic).Str("payload", p).Int("bytes", len(payload)).Str("reason", reason).
		Msg("command ignored")
}

// preview is the start of b, safe to log.
func preview(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.ToValidUTF8(string(b), "?")
}
