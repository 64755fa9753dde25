// Package mqtt publishes the outbox to an MQTT broker for Home Assistant:
// readings on <prefix>/<meter>/reading, the newest value of each record on
// retained per-attribute topics, device discovery, bridge and meter
// availability, and rediscovery when Home Assistant restarts.
//
// A reading leaves the outbox only after the broker acknowledged it (QoS 1
// PUBACK); the SQLite outbox, not paho's in-memory store, is what survives
// a restart, so the client uses clean sessions and after every reconnect
// resumes from the oldest row still in the outbox.
package mqtt

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/backoff"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/hass"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// Queue is the durable outbox the client drains.
type Queue interface {
	// Pending returns up to limit rows with Seq > afterSeq, oldest first.
	// A row that cannot be decoded ends the list with a *RowError.
	Pending(ctx context.Context, afterSeq int64, limit int) ([]Row, error)
	// Delete removes acknowledged rows.
	Delete(ctx context.Context, seqs ...int64) error
	// MarkAcked records that rows up to seq were acknowledged, so that
	// Pending leaves them out when Delete failed.
	MarkAcked(seq int64) error
	// Depth is the number of rows waiting.
	Depth(ctx context.Context) (int, error)
}

// History gives the newest reading of every meter, for discovery on
// connect and for Home Assistant restarts.
type History interface {
	LastReadings(ctx context.Context) ([]reading.Reading, error)
}

// Trimmer bounds the outbox: it drops rows older than now-maxAge and the
// oldest beyond maxRows, and says how many it dropped.
type Trimmer interface {
	Trim(ctx context.Context, maxRows int, maxAge time.Duration, now time.Time) (int, error)
}

// Memory keeps small values across restarts: here, the discovery
// components announced per meter (see session.retire).
type Memory interface {
	Get(ctx context.Context, key string) (string, bool, error)
	Set(ctx context.Context, key, value string) error
}

// Outbox is everything the client needs from the store.
type Outbox interface {
	Queue
	History
	Trimmer
	Memory
}

// Status is a snapshot of the client for the status page.
type Status struct {
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"` // when Connected last changed
	Broker    string    `json:"broker"`
	LastError string    `json:"last_error,omitempty"`
	// Published and Acked count readings; Acked ones left the outbox.
	Published     int64 `json:"published"`
	Acked         int64 `json:"acked"`
	PublishErrors int64 `json:"publish_errors"`
	Dropped       int64 `json:"dropped"`
	OutboxDepth   int   `json:"outbox_depth"`
}

// Client publishes the outbox to one broker. Create it with New and run it
// with Run; Notify, SetAvailability, Snapshot, Publish, Subscribe and
// OnConnect may be called from any goroutine.
type Client struct {
	cfg     Config
	broker  string // normalised URL
	useTLS  bool
	box     Outbox
	log     zerolog.Logger
	metrics *metrics
	hass    hass.Options

	notify chan struct{} // new outbox rows; capacity 1
	avail  chan struct{} // availability changed; capacity 1
	birth  chan struct{} // Home Assistant said "online"; capacity 1

	mu         sync.Mutex
	status     Status
	undeleted  []int64         // acknowledged rows whose delete failed; see deleteAcked
	available  map[string]bool // last availability per meter
	availDirty map[string]bool // not yet published

	// cur is the live connection, nil between sessions; subs and
	// onConnect are made again on every connection (see command.go).
	cur       paho.Client
	subs      []subscription
	onConnect []func()
}

// New checks cfg, fills its defaults and registers the metrics on reg
// (none if reg is nil). It does not connect: Run does.
func New(cfg Config, box Outbox, log zerolog.Logger, reg prometheus.Registerer) (*Client, error) {
	if box == nil {
		return nil, errors.New("mqtt: no outbox")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	broker, useTLS, err := brokerURL(cfg.Broker, cfg.TLS)
	if err != nil {
		return nil, err
	}
	if useTLS {
		if _, err := tlsConfig(cfg); err != nil {
			return nil, err
		}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Client{
		cfg:     cfg,
		broker:  broker,
		useTLS:  useTLS,
		box:     box,
		log:     log.With().Str("component", "mqtt").Logger(),
		metrics: m,
		hass: hass.Options{
			DiscoveryPrefix: cfg.DiscoveryPrefix,
			TopicPrefix:     cfg.TopicPrefix,
			ExpireAfter:     cfg.ExpireAfter,
			OriginName:      originName,
			OriginSW:        cfg.Version,
			OriginURL:       originURL,
			InstallationID:  installationID(cfg.ClientID),
			Buses:           cfg.Buses,
		},
		notify:     make(chan struct{}, 1),
		avail:      make(chan struct{}, 1),
		birth:      make(chan struct{}, 1),
		status:     Status{Broker: broker},
		available:  make(map[string]bool),
		availDirty: make(map[string]bool),
	}, nil
}

// installationID is the part of the client ID that tells installations
// apart: the random suffix of NewClientID, or a client ID of the user's
// own as a whole. It names the gateway's device in Home Assistant.
func installationID(clientID string) string {
	if id, ok := strings.CutPrefix(clientID, originName+"-"); ok && id != "" {
		return id
	}
	return clientID
}

// Notify tells the client that new outbox rows exist. It never blocks.
func (c *Client) Notify() { signal(c.notify) }

// SetAvailability records whether a meter answers and publishes it,
// retained, on <prefix>/<meter>/availability as soon as the client is
// connected. The last value of every meter is published again after each
// reconnect, since a broker without persistence forgets retained messages.
func (c *Client) SetAvailability(meter string, online bool) {
	c.mu.Lock()
	old, known := c.available[meter]
	if !known || old != online {
		c.available[meter] = online
		c.availDirty[meter] = true
	}
	c.mu.Unlock()
	signal(c.avail)
}

// Snapshot returns the current status.
func (c *Client) Snapshot() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Run keeps a connection to the broker and publishes the outbox until ctx
// is cancelled. Then it publishes the bridge state "offline", waits a short
// while for outstanding acknowledgements and disconnects. Connection
// failures are retried with exponential backoff; Run returns nil once ctx is
// done.
func (c *Client) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { c.maintain(ctx) })
	defer wg.Wait()

	st := newRunState()
	schedule := backoff.Backoff{Min: c.cfg.MinBackoff, Max: c.cfg.MaxBackoff}
	wait := schedule.Min
	for ctx.Err() == nil {
		connected, err := c.session(ctx, st)
		if ctx.Err() != nil {
			break
		}
		if connected {
			wait = schedule.Min
		}
		c.setError(err)
		c.logSessionEnd(connected, err, wait)
		if !sleep(ctx, wait) {
			break
		}
		wait = schedule.Next(wait)
	}
	return nil
}

// maintain trims the outbox and refreshes its depth every Maintenance
// period. It runs whether or not the broker is reachable: that is when the
// outbox grows.
func (c *Client) maintain(ctx context.Context) {
	t := time.NewTicker(c.cfg.Maintenance)
	defer t.Stop()
	var episode int // rows dropped in the current overflow episode
	for {
		c.retryDelete(ctx)
		episode = c.trim(ctx, episode)
		c.refreshDepth(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// trim applies the outbox bounds. Drops are logged once when an episode
// starts and once when it ends, never per row.
func (c *Client) trim(ctx context.Context, episode int) int {
	if c.cfg.OutboxMaxRows == 0 && c.cfg.OutboxMaxAge == 0 {
		return 0
	}
	n, err := c.box.Trim(ctx, c.cfg.OutboxMaxRows, c.cfg.OutboxMaxAge, c.cfg.Now())
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error().Err(err).Msg("outbox trim failed")
		}
		return episode
	}
	c.countDropped(n)
	switch {
	case n > 0 && episode == 0:
		c.log.Warn().Int("dropped", n).Int("max_rows", c.cfg.OutboxMaxRows).
			Dur("max_age", c.cfg.OutboxMaxAge).Msg("outbox over its bounds, dropping oldest readings")
	case n == 0 && episode > 0:
		c.log.Info().Int("dropped", episode).Msg("outbox back within its bounds")
	}
	if n == 0 {
		return 0
	}
	return episode + n
}

func (c *Client) countDropped(n int) {
	if n <= 0 {
		return
	}
	c.metrics.dropped.Add(float64(n))
	c.mu.Lock()
	c.status.Dropped += int64(n)
	c.mu.Unlock()
}

func (c *Client) refreshDepth(ctx context.Context) {
	n, err := c.box.Depth(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error().Err(err).Msg("outbox depth failed")
		}
		return
	}
	c.metrics.depth.Set(float64(n))
	c.mu.Lock()
	c.status.OutboxDepth = n
	c.mu.Unlock()
}

func (c *Client) setConnected(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status.Connected == on {
		return
	}
	c.status.Connected = on
	c.status.Since = c.cfg.Now()
	if on {
		c.status.LastError = ""
		c.metrics.connected.Set(1)
	} else {
		c.metrics.connected.Set(0)
	}
}

func (c *Client) setError(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	c.status.LastError = err.Error()
	c.mu.Unlock()
}

func (c *Client) countPublished(n int) {
	c.metrics.published.Add(float64(n))
	c.mu.Lock()
	c.status.Published += int64(n)
	c.mu.Unlock()
}

func (c *Client) countAcked(n int) {
	c.metrics.acked.Add(float64(n))
	c.mu.Lock()
	c.status.Acked += int64(n)
	c.mu.Unlock()
}

func (c *Client) countPublishError() {
	c.metrics.publishErrors.Inc()
	c.mu.Lock()
	c.status.PublishErrors++
	c.mu.Unlock()
}

// takeAvailability returns the availability values to publish: the
// changed ones, or all of them.
func (c *Client) takeAvailability(all bool) map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]bool)
	for meter, online := range c.available {
		if all || c.availDirty[meter] {
			out[meter] = online
		}
	}
	clear(c.availDirty)
	return out
}

// signal sends on a channel of capacity 1 without blocking: one pending
// signal is as good as many.
func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sleep waits for d or ctx, whichever comes first; false means ctx.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
