package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/hass"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// Payloads of the bridge state and availability topics.
const (
	online  = "online"
	offline = "offline"
)

// Timeouts of one connection.
const (
	connectTimeout = 5 * time.Second
	// writeTimeout bounds a network write, and also how long paho's
	// Publish blocks when the connection dies while it waits to hand a
	// message over (paho does not notice that): it is the longest stall
	// before a reconnect.
	writeTimeout = 5 * time.Second
	keepAlive    = 30 * time.Second
	pingTimeout  = 10 * time.Second
	// shutdownGrace bounds the wait for "offline" and outstanding PUBACKs
	// when Run stops, well within the 10 s a service manager allows.
	shutdownGrace = 3 * time.Second
	// disconnectQuiesce is what paho may take to send DISCONNECT (ms).
	disconnectQuiesce = 250
)

var (
	// ErrCredentials means the broker refused the username or password.
	ErrCredentials = errors.New("broker refused credentials")
	// ErrConnectionLost means the connection broke while in use.
	ErrConnectionLost = errors.New("connection lost")
)

// runState is what Run remembers across connections. Only the Run
// goroutine touches it.
type runState struct {
	// announced holds, per meter, the record keys of the discovery
	// published last; a reading with other keys is announced again.
	announced map[string]string
	// statesAt is, per meter, the time of the reading whose states were
	// published last: the retained per-attribute topics must never go
	// back to an older value.
	statesAt map[string]time.Time
}

func newRunState() *runState {
	return &runState{announced: make(map[string]string), statesAt: make(map[string]time.Time)}
}

// entry is one outbox row in flight: its reading and state publications.
type entry struct {
	seq  int64
	toks []paho.Token
}

// session is one connection to the broker.
type session struct {
	c    *Client
	cli  paho.Client
	st   *runState
	lost <-chan struct{}
}

// session connects, publishes until the connection or ctx ends, and
// disconnects. connected tells whether the connection was made.
func (c *Client) session(ctx context.Context, st *runState) (connected bool, err error) {
	lost := make(chan struct{})
	var once sync.Once
	opts, err := c.options(func() { once.Do(func() { close(lost) }) })
	if err != nil {
		return false, err
	}
	cli := paho.NewClient(opts)
	if err := c.connect(ctx, cli); err != nil {
		return false, err
	}
	c.setConnected(true)
	defer c.setConnected(false)
	defer cli.Disconnect(disconnectQuiesce)
	s := &session{c: c, cli: cli, st: st, lost: lost}
	return true, s.run(ctx)
}

// options are the paho settings of one connection.
//
// Clean session is on: the outbox is the durable store and is replayed from
// its oldest row after every reconnect, so a broker-side session would only
// add a second, unbounded queue; and paho completes the tokens of a lost
// clean session with an error, which is how unacknowledged rows are told
// apart. paho's own reconnect is off so that backoff, logging and the
// resume point are in one place (Run).
func (c *Client) options(onLost func()) (*paho.ClientOptions, error) {
	bridge := c.bridgeTopic()
	opts := paho.NewClientOptions().
		AddBroker(c.broker).
		SetClientID(c.cfg.ClientID).
		SetUsername(c.cfg.Username).
		SetPassword(c.cfg.Password).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetWill(bridge, offline, 1, true).
		SetKeepAlive(keepAlive).
		SetPingTimeout(pingTimeout).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(writeTimeout).
		SetConnectionLostHandler(func(paho.Client, error) { onLost() })
	if c.useTLS {
		tc, err := tlsConfig(c.cfg)
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(tc)
	}
	return opts, nil
}

// connect makes one connection attempt.
func (c *Client) connect(ctx context.Context, cli paho.Client) error {
	tok := cli.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		// paho cannot abort an attempt; it ends within connectTimeout.
		<-tok.Done()
		if tok.Error() == nil {
			cli.Disconnect(0)
		}
		return ctx.Err()
	}
	err := tok.Error()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword), errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return fmt.Errorf("mqtt: connect %s as %q: %w (%w)", c.broker, c.cfg.Username, ErrCredentials, err)
	}
	return fmt.Errorf("mqtt: connect %s: %w", c.broker, err)
}

// logSessionEnd says why the connection ended or could not be made, and
// when the next attempt is.
func (c *Client) logSessionEnd(connected bool, err error, retry time.Duration) {
	switch {
	case errors.Is(err, ErrCredentials):
		c.log.Error().Str("broker", c.broker).Str("user", c.cfg.Username).Dur("retry_in", retry).
			Msg(fmt.Sprintf("broker refused credentials for user %q", c.cfg.Username))
	case connected:
		c.log.Warn().Err(err).Str("broker", c.broker).Dur("retry_in", retry).Msg("connection lost")
	default:
		c.log.Warn().Err(err).Str("broker", c.broker).Dur("retry_in", retry).Msg("broker unreachable")
	}
}

func (c *Client) bridgeTopic() string { return c.cfg.TopicPrefix + "/bridge/state" }

func (c *Client) statusTopic() string { return c.cfg.DiscoveryPrefix + "/status" }

func (c *Client) meterTopic(meter, leaf string) string {
	return c.cfg.TopicPrefix + "/" + meter + "/" + leaf
}

// onStatus handles Home Assistant's birth and last-will messages. It runs
// on paho's goroutine and must not block. Anything but exactly "online"
// is ignored: the topic is writable by any client of the broker.
func (c *Client) onStatus(_ paho.Client, m paho.Message) {
	if bytes.Equal(m.Payload(), []byte(online)) {
		signal(c.birth)
		return
	}
	p := m.Payload()
	c.log.Debug().Int("bytes", len(p)).Str("payload", preview(p)).Msg("ignored home assistant status")
}

// preview is the start of a payload, safe to log.
func preview(p []byte) string {
	const n = 32
	if len(p) > n {
		p = p[:n]
	}
	return strings.ToValidUTF8(string(p), "?")
}

// run is the connected part of a session: announce, then drain the outbox
// and react to events until the connection or ctx ends.
func (s *session) run(ctx context.Context) error {
	c := s.c
	// From here on the broker may hold "online": a way out because ctx
	// ended (a wait for a PUBACK cut short) still publishes "offline", as
	// a clean disconnect discards the Last Will.
	if err := s.await(ctx, s.cli.Publish(c.bridgeTopic(), 1, true, online)); err != nil {
		return s.ended(ctx, err, 0, nil, nil)
	}
	// From here the broker holds "online": a stop must replace it.
	if err := s.await(ctx, s.cli.Subscribe(c.statusTopic(), 1, c.onStatus)); err != nil {
		return s.ended(ctx, err, 0, nil, nil)
	}
	defer c.detach()
	if err := s.subscribeAll(ctx); err != nil {
		return s.ended(ctx, err, 0, nil, nil)
	}
	if err := s.announceAll(ctx, false); err != nil {
		return s.ended(ctx, err, 0, nil, nil)
	}
	s.publishAvailability(true)
	c.log.Info().Str("broker", c.broker).Str("client_id", c.cfg.ClientID).Msg("connected")
	c.connected()

	// Store writes of acknowledged rows must not be cut short by the
	// cancellation that stops Run: a row acknowledged but not deleted is
	// sent twice.
	storeCtx := context.WithoutCancel(ctx)
	stop := make(chan struct{})
	inflight := make(chan entry, c.cfg.Window)
	acked := make(chan int)
	failed := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { s.ack(storeCtx, stop, inflight, acked, failed) })
	defer func() { close(stop); wg.Wait() }()

	var (
		afterSeq    int64 // highest row sent in this session
		outstanding int   // rows sent and not yet acknowledged
		idle        bool  // the outbox had no more rows; wait for Notify
		retry       <-chan time.Time
		rediscover  <-chan time.Time
	)
	for {
		var fetch <-chan struct{}
		if !idle && retry == nil && outstanding < c.cfg.Window {
			fetch = ready
		}
		select {
		case <-ctx.Done():
			return s.shutdown(outstanding, acked, failed)
		case <-s.lost:
			return ErrConnectionLost
		case err := <-failed:
			return err
		case n := <-acked:
			outstanding -= n
			if idle && outstanding == 0 {
				c.refreshDepth(ctx)
			}
		case <-c.notify:
			idle = false
		case <-retry:
			retry = nil
		case <-c.avail:
			s.publishAvailability(false)
		case <-c.birth:
			if rediscover == nil {
				rediscover = time.After(c.cfg.RediscoveryDelay())
			}
		case <-rediscover:
			rediscover = nil
			if err := s.announceAll(ctx, true); err != nil {
				return s.ended(ctx, err, outstanding, acked, failed)
			}
		case <-fetch:
			want := c.cfg.Window - outstanding
			rows, err := c.box.Pending(ctx, afterSeq, want)
			n, perr := s.publishRows(ctx, rows, inflight)
			outstanding += n
			if len(rows) > 0 {
				afterSeq = rows[len(rows)-1].Seq
			}
			if perr != nil {
				return s.ended(ctx, perr, outstanding, acked, failed)
			}
			var rowErr *RowError
			switch {
			case errors.As(err, &rowErr):
				s.dropUnreadable(storeCtx, rowErr)
				afterSeq = rowErr.Seq
			case err != nil && ctx.Err() == nil:
				c.log.Error().Err(err).Msg("outbox read failed")
				retry = time.After(c.cfg.MinBackoff)
			case err == nil && len(rows) < want:
				idle = true
			}
		}
	}
}

// ready is a closed channel: a select case on it is always ready.
var ready = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// ended returns err, the reason the session stops; when ctx ended (and
// err is its consequence) it shuts down as at the end of Run.
func (s *session) ended(ctx context.Context, err error, outstanding int, acked <-chan int, failed <-chan error) error {
	if ctx.Err() != nil {
		return s.shutdown(outstanding, acked, failed)
	}
	return err
}

// shutdown publishes "offline" and gives outstanding PUBACKs a moment, so
// that few rows are sent again after the restart.
func (s *session) shutdown(outstanding int, acked <-chan int, failed <-chan error) error {
	grace := time.NewTimer(shutdownGrace)
	defer grace.Stop()
	tok := s.cli.Publish(s.c.bridgeTopic(), 1, true, offline)
	select {
	case <-tok.Done():
	case <-s.lost:
	case <-grace.C:
	}
	for outstanding > 0 {
		select {
		case n := <-acked:
			outstanding -= n
		case err := <-failed:
			return err
		case <-s.lost:
			return nil
		case <-grace.C:
			return nil
		}
	}
	s.c.log.Info().Msg("disconnecting")
	return nil
}

// publishRows sends rows, oldest first, and queues them for the acker. It
// returns how many rows it queued. The states of a row are skipped when a
// newer row of the same meter is in the same batch: the retained topics
// only need to end on the newest value.
func (s *session) publishRows(ctx context.Context, rows []Row, inflight chan<- entry) (int, error) {
	last := make(map[string]int, len(rows))
	for i, r := range rows {
		last[r.Meter] = i
	}
	for i, row := range rows {
		e, err := s.publishRow(ctx, row, last[row.Meter] == i)
		if err != nil {
			return i, err
		}
		inflight <- e // never blocks: at most Window rows are outstanding
	}
	return len(rows), nil
}

// publishRow announces the meter if needed, then sends the reading and,
// with states, the per-attribute values. It does not wait for PUBACKs.
func (s *session) publishRow(ctx context.Context, row Row, states bool) (entry, error) {
	r := row.Reading
	if r.Meter == "" {
		r.Meter = row.Meter
	}
	if err := s.announce(ctx, r, false); err != nil {
		return entry{}, err
	}
	payload := row.Payload
	if len(payload) == 0 {
		var err error
		if payload, err = json.Marshal(r); err != nil {
			return entry{}, fmt.Errorf("mqtt: reading of %s: %w", r.Meter, err)
		}
	}
	e := entry{seq: row.Seq, toks: []paho.Token{s.cli.Publish(s.c.meterTopic(r.Meter, "reading"), 1, false, payload)}}
	if states && !r.Time.Before(s.st.statesAt[r.Meter]) {
		e.toks = s.publishStates(r, e.toks)
	}
	s.c.countPublished(1)
	return e, nil
}

// publishStates sends the retained per-attribute values of r and appends
// their tokens to toks.
func (s *session) publishStates(r reading.Reading, toks []paho.Token) []paho.Token {
	for _, m := range hass.States(s.c.hass, r) {
		toks = append(toks, s.cli.Publish(m.Topic, 1, m.Retain, m.Payload))
	}
	s.st.statesAt[r.Meter] = r.Time
	return toks
}

// announce publishes the discovery of r's meter unless it was published
// with the same record keys already (or force is set), and waits for the
// PUBACK so that Home Assistant knows the entities before their states.
func (s *session) announce(ctx context.Context, r reading.Reading, force bool) error {
	keys := recordKeys(r)
	if !force && s.st.announced[r.Meter] == keys {
		return nil
	}
	s.st.announced[r.Meter] = keys
	m, err := hass.DeviceConfig(s.c.hass, r)
	if err != nil {
		// Not retried per row: the same reading gives the same error.
		s.c.log.Warn().Err(err).Str("meter", r.Meter).Msg("no discovery for meter")
		return nil
	}
	m, save := s.retire(ctx, r.Meter, m)
	if err := s.await(ctx, s.cli.Publish(m.Topic, 1, m.Retain, m.Payload)); err != nil {
		return err
	}
	if save != "" {
		if err := s.c.box.Set(ctx, componentsKey+r.Meter, save); err != nil {
			// The next discovery of the meter tries again.
			s.c.log.Warn().Err(err).Str("meter", r.Meter).Msg("cannot remember announced entities")
		}
	}
	return nil
}

// componentsKey, followed by the meter id, holds in the store the
// discovery components announced for the meter (JSON: id → platform).
const componentsKey = "hass.components."

// retire adds to m, the discovery of meter, the components announced
// earlier that it no longer has, with only their platform, so that Home
// Assistant deletes those entities (hass.Retire). It returns the message
// and, when it changed, the new list of announced components to save
// once the broker has the message.
func (s *session) retire(ctx context.Context, meter string, m hass.Message) (hass.Message, string) {
	stored, ok, err := s.c.box.Get(ctx, componentsKey+meter)
	if err != nil {
		s.c.log.Warn().Err(err).Str("meter", meter).Msg("cannot read announced entities: old ones are not removed this time")
		return m, ""
	}
	var earlier map[string]string
	if ok {
		if err := json.Unmarshal([]byte(stored), &earlier); err != nil {
			s.c.log.Warn().Err(err).Str("meter", meter).Msg("announced entities unreadable: starting afresh")
			earlier = nil
		}
	}
	out, remember, err := hass.Retire(m, earlier)
	if err != nil {
		s.c.log.Warn().Err(err).Str("meter", meter).Msg("cannot remove old entities")
		return m, ""
	}
	if !bytes.Equal(out.Payload, m.Payload) {
		s.c.log.Debug().Str("meter", meter).Msg("discovery removes entities the meter no longer has")
	}
	b, err := json.Marshal(remember)
	if err != nil || string(b) == stored {
		return out, ""
	}
	return out, string(b)
}

// announceAll publishes discovery for the gateway and every meter the
// store knows; with states (Home Assistant restarted) also their newest
// values and the availability, which Home Assistant asked for.
func (s *session) announceAll(ctx context.Context, states bool) error {
	readings, err := s.c.box.LastReadings(ctx)
	if err != nil {
		// Meters are announced again with their next reading.
		s.c.log.Error().Err(err).Msg("reading last values failed")
		return nil
	}
	var toks []paho.Token
	if m, err := hass.BridgeConfig(s.c.hass); err != nil {
		s.c.log.Warn().Err(err).Msg("no discovery for the gateway")
	} else {
		toks = append(toks, s.cli.Publish(m.Topic, 1, m.Retain, m.Payload))
	}
	for _, r := range readings {
		if err := s.announce(ctx, r, true); err != nil {
			return err
		}
		if states && !r.Time.Before(s.st.statesAt[r.Meter]) {
			toks = s.publishStates(r, toks)
		}
	}
	if states {
		s.publishAvailability(true)
		s.c.log.Info().Int("meters", len(readings)).Msg("republished discovery for home assistant")
	}
	return s.await(ctx, toks...)
}

// publishAvailability sends the changed availability values, or all.
// Their PUBACKs are not awaited: a failure means a lost connection, and
// every value is sent again on the next one.
func (s *session) publishAvailability(all bool) {
	for meter, on := range s.c.takeAvailability(all) {
		payload := offline
		if on {
			payload = online
		}
		s.cli.Publish(s.c.meterTopic(meter, "availability"), 1, true, payload)
	}
}

// dropUnreadable deletes an outbox row that cannot be decoded: it would
// stop the outbox forever otherwise.
func (s *session) dropUnreadable(ctx context.Context, rowErr *RowError) {
	s.c.log.Error().Err(rowErr).Int64("seq", rowErr.Seq).Msg("dropping unreadable outbox row")
	if err := s.c.box.Delete(ctx, rowErr.Seq); err != nil {
		s.c.log.Error().Err(err).Int64("seq", rowErr.Seq).Msg("outbox delete failed")
		return
	}
	s.c.countDropped(1)
}

// await waits for tokens; it fails when one fails, the connection is lost
// or ctx ends.
func (s *session) await(ctx context.Context, toks ...paho.Token) error {
	for _, tok := range toks {
		select {
		case <-tok.Done():
		case <-s.lost:
			return ErrConnectionLost
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := tok.Error(); err != nil {
			s.c.countPublishError()
			return fmt.Errorf("mqtt: %w", err)
		}
	}
	return nil
}

// recordKeys identifies the set of record keys of a reading.
func recordKeys(r reading.Reading) string {
	keys := make([]string, len(r.Records))
	for i, rec := range r.Records {
		keys[i] = rec.Key
	}
	slices.Sort(keys)
	return strings.Join(keys, "\x00")
}
