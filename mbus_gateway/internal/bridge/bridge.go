// Package bridge makes the gateway itself a device in Home Assistant. It
// publishes the gateway's diagnostics (outbox depth, readings delivered and
// dropped, bus errors by kind, response time, last scan, version, log
// level) to retained topics under <prefix>/bridge/, and per meter the time
// of the last successful read and the count of consecutive failures; and it
// carries out the commands Home Assistant's buttons and select send over
// MQTT: scan the bus, read every meter now, read one meter now, change the
// log level.
//
// The discovery payloads are built by package hass and published by
// package mqtt, which also keeps the command subscriptions across
// reconnects. Any client of the broker may write to the command topics, so
// every payload is checked (size, exact value); anything else is logged
// once per distinct value and ignored.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/hass"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mqtt"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// Publisher is the MQTT connection; *mqtt.Client implements it.
type Publisher interface {
	// Publish sends one message with QoS 1 and waits for the broker's
	// acknowledgement; it fails at once while disconnected.
	Publish(ctx context.Context, topic string, payload []byte, retain bool) error
	// Subscribe registers a handler for a topic filter, kept across
	// reconnects. The handler must not block.
	Subscribe(filter string, handle mqtt.Handler) error
	// SubscribeRetained is Subscribe with retained messages passed on.
	SubscribeRetained(filter string, handle mqtt.Handler) error
	// OnConnect registers fn to run after every (re)connection.
	OnConnect(fn func())
}

// Controller carries out the commands. Each call may block while the bus
// is busy and returns early when ctx ends.
type Controller interface {
	// ReadAll queues a read of every enabled meter.
	ReadAll(ctx context.Context) error
	// ReadNow reads one meter, given by its identifier, ahead of the
	// schedule; poll.ErrUnknownMeter when there is no such meter.
	ReadNow(ctx context.Context, meter string) error
	// Scan searches the bus named bus ("" for the only one) for meters,
	// in its configured mode, and starts reading the new ones; it returns
	// when the scan is over.
	Scan(ctx context.Context, bus string) error
}

// LogLevel is the process's log level, adjustable while it runs. Names are
// those of the log_level option: trace, debug, info, warning, error.
type LogLevel interface {
	LogLevel() string
	SetLogLevel(name string) error
}

// Sources give snapshots of the components the diagnostics come from.
// A nil source leaves its entities without state.
type Sources struct {
	Poll func() poll.Snapshot
	MQTT func() mqtt.Status
	Bus  func() master.Stats
	// Health is the bus health, the one owner of whether the bus works.
	Health func() bushealth.Snapshot
	// Buses, when set, are the gateway's several buses: each has bus
	// entities of its own, the meters are those of all buses, and Poll,
	// Bus and Health above are not used.
	Buses []BusSources
}

// BusSources give the snapshots of one of several buses, named Name.
type BusSources struct {
	Name   string
	Poll   func() poll.Snapshot
	Bus    func() master.Stats
	Health func() bushealth.Snapshot
}

// Defaults of Options.
const (
	DefaultPeriod     = 30 * time.Second
	DefaultWatch      = time.Second
	DefaultMaxPayload = 64
	// publishTimeout bounds one round of state publications.
	publishTimeout = 10 * time.Second
	// queueLen is how many commands may wait; more are dropped (and
	// logged): a button pressed twenty times is pressed once.
	queueLen = 16
)

// Options configure a Bridge. Zero fields take the defaults.
type Options struct {
	// TopicPrefix roots the state and command topics, as in package mqtt
	// ("mbus" when empty).
	TopicPrefix string
	// Version is the gateway's version, the state of the version entity.
	Version string
	// Period is how often every state is published again, changed or not
	// (default 30 s), so a broker that lost its retained messages gets
	// them back and Home Assistant's expire_after never fires while the
	// gateway runs.
	Period time.Duration
	// Watch is how often the sources are compared with what was
	// published (default 1 s); a change, or a new poll result of a meter,
	// is published at once.
	Watch time.Duration
	// MaxPayload bounds a command payload in bytes (default 64); larger
	// ones are ignored.
	MaxPayload int
}

func (o Options) withDefaults() Options {
	if o.TopicPrefix == "" {
		o.TopicPrefix = hass.DefaultTopicPrefix
	}
	if o.Period <= 0 {
		o.Period = DefaultPeriod
	}
	if o.Watch <= 0 {
		o.Watch = DefaultWatch
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	return o
}

// Bridge publishes the gateway's states and carries out commands. Create
// it with New, which subscribes to the command topics, and run it with Run.
type Bridge struct {
	opts  Options
	hass  hass.Options
	pub   Publisher
	ctl   Controller
	level LogLevel
	src   Sources
	log   zerolog.Logger

	cmds      chan command  // from the MQTT handlers to Run
	reconnect chan struct{} // capacity 1: publish everything again
	rejects   *rejectLog

	// Only Run's goroutine touches these.
	sent   map[string]string    // topic → payload last acknowledged
	polled map[string]time.Time // meter → LastRead whose states were sent

	mu   sync.Mutex
	busy map[string]bool // commands running, by key
	// leftovers are retained placeholder topics to clear: topic → meter.
	leftovers map[string]string
}

var _ Publisher = (*mqtt.Client)(nil)

// New checks the options and subscribes to the command topics on pub;
// nothing is carried out before Run. ctl and level may not be nil.
func New(opts Options, pub Publisher, ctl Controller, level LogLevel, src Sources, log zerolog.Logger) (*Bridge, error) {
	if pub == nil || ctl == nil || level == nil {
		return nil, errors.New("bridge: publisher, controller and log level are required")
	}
	opts = opts.withDefaults()
	ho := hass.Options{TopicPrefix: opts.TopicPrefix, OriginSW: opts.Version}
	for _, bus := range src.Buses {
		if bus.Poll == nil {
			return nil, fmt.Errorf("bridge: bus %s: no poll source", bus.Name)
		}
		ho.Buses = append(ho.Buses, bus.Name)
	}
	if _, err := hass.BridgeConfig(ho); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	b := &Bridge{
		opts:      opts,
		hass:      ho,
		pub:       pub,
		ctl:       ctl,
		level:     level,
		src:       src,
		log:       log.With().Str("component", "bridge").Logger(),
		cmds:      make(chan command, queueLen),
		reconnect: make(chan struct{}, 1),
		sent:      make(map[string]string),
		polled:    make(map[string]time.Time),
		busy:      make(map[string]bool),
		leftovers: make(map[string]string),
	}
	b.rejects = newRejectLog(b.log)
	if err := b.subscribe(); err != nil {
		return nil, err
	}
	if err := b.subscribeLeftovers(); err != nil {
		return nil, err
	}
	pub.OnConnect(func() {
		select {
		case b.reconnect <- struct{}{}:
		default:
		}
	})
	return b, nil
}

// Run publishes the states and carries out commands until ctx ends; then
// it waits for commands in progress, which end with ctx, and returns nil.
func (b *Bridge) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	period := time.NewTicker(b.opts.Period)
	defer period.Stop()
	watch := time.NewTicker(b.opts.Watch)
	defer watch.Stop()
	// No publication before the first connection: OnConnect signals it,
	// also when the connection was made before Run started. Until then
	// the tickers do nothing; they used to try (and fail) before, or
	// publish every state just ahead of the round the connection asks for.
	connected := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.reconnect:
			connected = true
			b.publish(ctx, true)
		case <-period.C:
			if connected {
				b.publish(ctx, true)
			}
		case <-watch.C:
			if connected {
				b.publish(ctx, false)
			}
		case c := <-b.cmds:
			b.execute(ctx, c, &wg)
		}
	}
}
