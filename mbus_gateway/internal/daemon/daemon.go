// Package daemon is the gateway as `mbus-gateway run` runs it: per bus
// the port, master, health and poller (buses are read in parallel), the
// store, the MQTT client, the Home
// Assistant bridge device, the status page and the metrics, wired together
// and run under one errgroup by Run. It opens the web side first and
// everything that needs the database once the database opens, applies
// reloaded options and shuts down in order.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bridge"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mqtt"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/outbox"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/supervisor"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/web"
)

// storeFile is the name of the database in the data directory.
const storeFile = "mbus-gateway.db"

// clientIDKey holds the MQTT client ID in the store's key/value table: a
// broker that sees the same ID after a restart replaces the old session
// instead of keeping a ghost client with our Last Will.
const clientIDKey = "mqtt.client_id"

// Deps is what the daemon needs besides the options: who it is, where it
// logs, where the web side listens when that differs from the options
// (the demo serves loopback only), and how to re-read the options on
// SIGHUP. The zero value of every field is usable.
type Deps struct {
	// Version is the gateway's version, as `mbus-gateway version` prints it.
	Version string
	// LogOut receives the log; nil means os.Stderr.
	LogOut io.Writer
	// WebListen and MetricsListen replace ":<web_port>" and
	// ":<metrics_port>" when set; WebAllow replaces web_allow when not nil.
	WebListen, MetricsListen string
	WebAllow                 []string
	// Reload re-reads the options; nil when there is nothing to re-read.
	Reload func() (*config.Options, error)
	// Hup delivers SIGHUP; nil when reloading is not offered.
	Hup <-chan os.Signal
	// Ready, if set, is called once everything listens, with the web
	// server's address (the demo prints it).
	Ready func(webAddr, metricsAddr net.Addr)
	// Getenv reads the environment (NOTIFY_SOCKET, WATCHDOG_USEC, GOGC,
	// MBUS_DIAG_DB_MAX_PAGES); nil means os.Getenv.
	Getenv func(string) string
}

// ErrLogged marks an error of Run that is already in the log: the gateway
// ran and stopped because of it. Other errors of Run come before the
// logger exists and are for the caller to report.
var ErrLogged = errors.New("stopped with an error")

// Run is the gateway: it builds the daemon from o (an error names the
// option or setting at fault) and runs it until ctx ends. It returns nil
// after a clean stop.
func Run(ctx context.Context, o *config.Options, deps Deps) error {
	if deps.Getenv == nil {
		deps.Getenv = os.Getenv
	}
	if deps.LogOut == nil {
		deps.LogOut = os.Stderr
	}
	tuneGC(deps.Getenv)
	d, err := newDaemon(ctx, o, deps)
	if err != nil {
		return err
	}
	if err := d.run(ctx); err != nil {
		d.log.Error().Err(err).Msg("stopped with an error")
		return fmt.Errorf("%w: %w", ErrLogged, err)
	}
	return nil
}

// daemon is the running gateway: newDaemon builds what does not need the
// database, Run serves the web side at once and builds and runs the rest
// (parts) as soon as the database opens.
type daemon struct {
	deps Deps
	opts *config.Options // in effect: reloads change the live ones
	// initial are the options at the start, which the restart options
	// keep until the next one.
	initial config.Options
	log     zerolog.Logger
	level   *levelFilter
	reg     *prometheus.Registry
	notify  *notifier
	broker  mqtt.Config // without ClientID, which is kept in the store
	// maxPages caps the database (dbMaxPagesEnv); 0 means no cap.
	maxPages int

	buses []*bus // in the order of the options; at least one
	web   *web.Server
	notes *notices
	wait  *storeWait

	// parts is nil until the database is open.
	parts atomic.Pointer[parts]
}

// parts are the components that need the database. None of them exists
// before it opens: a reading that cannot be committed must not be taken,
// and the MQTT client keeps its ID and outbox there.
type parts struct {
	store  *store.Store
	mqtt   *mqtt.Client
	buses  []*busParts // as daemon.buses
	bridge *bridge.Bridge
}

// newDaemon builds what the options decide alone. Nothing that can fail
// because of the options happens later: a broker the Supervisor does not
// know or a bad diagnostic setting end here, with an error naming the
// cause, before the data directory is touched. The log level and format
// were checked with the options; log goes to deps.LogOut from here on.
func newDaemon(ctx context.Context, o *config.Options, deps Deps) (d *daemon, err error) {
	log, level, err := newLogger(deps.LogOut, o.LogLevel, o.LogFormat)
	if err != nil {
		return nil, err
	}
	d = &daemon{deps: deps, opts: o, initial: *o, log: log, level: level}
	if d.notify, err = newNotifier(deps.Getenv); err != nil {
		return nil, err
	}
	if d.broker, err = resolveBroker(ctx, o); err != nil {
		return nil, err
	}
	d.broker.TopicPrefix = o.TopicPrefix
	d.broker.DiscoveryPrefix = o.DiscoveryPrefix
	d.broker.ExpireAfter = int(o.ExpireAfter / time.Second)
	d.broker.Version = deps.Version
	d.broker.OutboxMaxRows = o.OutboxMaxRows
	d.broker.OutboxMaxAge = o.OutboxMaxAge
	if d.maxPages, err = parseMaxPages(deps.Getenv(dbMaxPagesEnv)); err != nil {
		return nil, err
	}
	if d.reg, err = newRegistry(deps.Version); err != nil {
		return nil, err
	}

	d.broker.Buses = busNames(o)
	if d.buses, err = newBuses(o, d.log, d.reg); err != nil {
		return nil, err
	}
	d.notes = newNotices(o)
	d.wait = newStoreWait(time.Now)
	if d.web, err = d.newWeb(); err != nil {
		return nil, err
	}
	return d, nil
}

// newWeb builds the status page and API server. It starts before the
// database opens, so it reads everything through webSide and closures
// that look at d.parts.
func (d *daemon) newWeb() (*web.Server, error) {
	o := d.opts
	listen := d.deps.WebListen
	if listen == "" {
		listen = ":" + strconv.Itoa(o.WebPort)
	}
	metrics := d.deps.MetricsListen
	if metrics == "" && o.MetricsPort != 0 {
		metrics = net.JoinHostPort(o.MetricsBind, strconv.Itoa(o.MetricsPort))
	}
	allow := d.deps.WebAllow
	if allow == nil {
		allow = make([]string, len(o.WebAllow))
		for i, p := range o.WebAllow {
			allow[i] = p.String()
		}
	}
	side := webSide{d}
	buses := make([]web.Bus, len(d.buses))
	for i, b := range d.buses {
		bs := busSide{d: d, i: i}
		buses[i] = web.Bus{Name: b.cfg.Name, Poller: bs, Adder: bs, Info: b.info}
	}
	return web.New(web.Options{
		Listen:        listen,
		Allow:         allow,
		MetricsListen: metrics,
		Version:       d.deps.Version,
		Buses:         buses,
		Broker:        d.brokerStatus,
		OutboxDepth:   side.depth,
		Alive:         d.alive,
		Warnings:      d.notes.list,
		Salvage:       d.notes.salvaged,
		Gatherer:      d.reg,
		Log:           d.log,
	}, buses[0].Poller, buses[0].Adder, side)
}

// brokerStatus is the MQTT client's snapshot in the page's terms; only
// the broker's address before the database opens (no connection is made
// before).
func (d *daemon) brokerStatus() web.BrokerStatus {
	p := d.parts.Load()
	if p == nil {
		return web.BrokerStatus{Broker: d.broker.Broker, LastError: "not connected until the database is open"}
	}
	s := p.mqtt.Snapshot()
	return web.BrokerStatus{
		Broker:    s.Broker,
		Connected: s.Connected,
		Since:     s.Since,
		LastError: s.LastError,
		Published: count(s.Published),
		Delivered: count(s.Acked),
	}
}

// alive reports on the loops that matter now: the bus loops once running,
// the attempts to open the database before. The health check and the
// systemd watchdog share it. Waiting for the database counts as alive:
// the process does what it should (serve /health with the reason, retry),
// and a restart by systemd would not make a directory writable.
func (d *daemon) alive() error {
	if p := d.parts.Load(); p != nil {
		return p.alive()
	}
	return d.wait.alive()
}

// count converts a counter that never goes below zero.
func count(n int64) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}

// run serves the web side, opens the database (waiting as long as it
// takes, see serve) and runs every long-lived part under one errgroup
// until ctx ends, then lets each finish its own way (the poller its frame
// in flight, the MQTT client its "offline" and outstanding
// acknowledgements, the web server its requests) and closes the store
// last, when nothing uses it any more.
func (d *daemon) run(ctx context.Context) error {
	defer d.close()
	d.log.Info().Str("version", d.deps.Version).Object("options", d.opts).Msg("starting")
	for _, w := range d.opts.Warnings() {
		d.log.Warn().Msg(w)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.web.Run(gctx) })
	g.Go(func() error { return d.started(gctx) })
	g.Go(func() error { return d.serve(gctx) })
	g.Go(func() error {
		return d.notify.keepAlive(gctx, d.alive, func(err error) {
			d.log.Error().Err(err).Str("component", "watchdog").Msg("gateway loop not alive: watchdog keep-alives withheld")
		})
	})
	err := g.Wait()
	if nerr := d.notify.send(sdStopping); nerr != nil {
		d.log.Warn().Err(nerr).Msg("cannot tell systemd")
	}
	if err != nil {
		return err
	}
	d.log.Info().Msg("stopped")
	return nil
}

// started waits for the web listeners, then reports readiness (systemd,
// the demo's printout). It does not wait for the database: /health must
// be there to say why it does not open.
func (d *daemon) started(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-d.web.Ready():
	}
	if err := d.notify.send(sdReady); err != nil {
		d.log.Warn().Err(err).Msg("cannot tell systemd")
	}
	if d.deps.Ready != nil {
		d.deps.Ready(d.web.Addr(), d.web.MetricsAddr())
	}
	return nil
}

// serve opens the database, retrying with storeBackoff while it cannot,
// then builds the parts that need it and runs them until ctx ends. A
// database that opens at once and one that opens after an hour take the
// same path.
func (d *daemon) serve(ctx context.Context) error {
	log := logging.Component(d.log, "store")
	tries := 0
	o, err := retry(ctx, storeBackoff, func(ctx context.Context) (opened, error) {
		tries++
		d.wait.trying()
		return d.open(ctx, log)
	}, func(err error, _ int, wait time.Duration) {
		problem := openProblem(err)
		d.notes.setStore(problem)
		if d.wait.failed(problem) {
			log.Error().Str("problem", problem).Stringer("retry_in", wait).
				Msg("cannot open the database: nothing is read or published until it opens; retrying")
			return
		}
		log.Debug().Str("problem", problem).Stringer("retry_in", wait).Msg("database still cannot be opened")
	})
	if err != nil {
		return nil // ctx ended while waiting
	}
	d.notes.setStore("")
	if tries > 1 {
		log.Info().Int("attempts", tries).Str("file", o.store.Path()).Msg("database opened: recovered, starting to read meters")
	}
	p, err := d.build(ctx, o)
	if err != nil {
		if cerr := o.store.Close(); cerr != nil {
			log.Error().Err(cerr).Msg("closing the store")
		}
		return err
	}
	d.parts.Store(p)
	g, gctx := errgroup.WithContext(ctx)
	for _, b := range p.buses {
		b.log.Info().Str("device", b.cfg.Device()).Int("meters", len(b.poller.Snapshot().Meters)).Bool("scan", b.scan).Msg("started")
		g.Go(func() error { return b.poller.Run(gctx) })
		if b.scan {
			g.Go(func() error { d.scanOnStart(gctx, b); return nil })
		}
	}
	g.Go(func() error { return p.mqtt.Run(gctx) })
	g.Go(func() error { return p.bridge.Run(gctx) })
	if d.deps.Hup != nil && d.deps.Reload != nil {
		g.Go(func() error { d.reloads(gctx, p); return nil })
	}
	return g.Wait()
}

// opened is a database ready for the parts: open, capped, with the
// installation's MQTT client ID.
type opened struct {
	store    *store.Store
	clientID string
}

// open makes one attempt to open the database in data_dir (moving a
// corrupt one aside, see openStore) and to read what the start needs
// from it. On failure nothing stays open.
func (d *daemon) open(ctx context.Context, log zerolog.Logger) (o opened, err error) {
	st, moved, err := openStore(ctx, d.opts.DataDir, log)
	if err != nil {
		return o, err
	}
	defer func() {
		if err != nil {
			_ = st.Close() // the error that made us give up matters
		}
	}()
	if moved != "" {
		d.notes.setSalvage(salvage(ctx, st, moved, log))
	}
	if err := limitStore(ctx, st, d.maxPages, log); err != nil {
		return o, err
	}
	note, err := quarantineNote(ctx, st, moved, time.Now())
	if err != nil {
		log.Warn().Err(err).Msg("the warning about the corrupt database will not survive a restart")
	}
	d.notes.setQuarantined(note)
	id, err := clientID(ctx, st)
	if err != nil {
		return o, err
	}
	return opened{store: st, clientID: id}, nil
}

// build makes the parts on the open database. Its failures come from the
// options or the store's content, not from the file: they end the run.
func (d *daemon) build(ctx context.Context, o opened) (*parts, error) {
	p := &parts{store: o.store}
	cfg := d.broker
	cfg.ClientID = o.clientID
	var err error
	if p.mqtt, err = mqtt.New(cfg, outbox.Outbox{Store: p.store}, d.log, d.reg); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	sink := &outboxSink{store: p.store, notify: p.mqtt}
	previous, err := storedReadings(ctx, p.store)
	if err != nil {
		return nil, err
	}
	ids := poll.NewRegistry()
	for _, b := range d.buses {
		bp, err := d.buildBus(ctx, b, p.store, sink, p.mqtt, ids, previous)
		if err != nil {
			return nil, err
		}
		p.buses = append(p.buses, bp)
	}
	d.notes.setLive(p.warnings)
	p.bridge, err = bridge.New(bridge.Options{TopicPrefix: d.opts.TopicPrefix, Version: d.deps.Version},
		p.mqtt, bridgeControl{d: d, p: p}, d.level, p.bridgeSources(),
		logging.Component(d.log, "bridge"))
	if err != nil {
		return nil, err
	}
	return p, nil
}

// close releases the bus ports and the store after Run's goroutines ended.
func (d *daemon) close() {
	for _, b := range d.buses {
		if err := b.port.Close(); err != nil {
			b.log.Warn().Err(err).Msg("closing the bus port")
		}
	}
	if p := d.parts.Load(); p != nil {
		if err := p.store.Close(); err != nil {
			d.log.Error().Err(err).Msg("closing the store")
		}
	}
}

// resolveBroker gives the MQTT connection: the options' broker, or with an
// empty mqtt.host the one the Supervisor hands out to add-ons. User name
// and password in the options take precedence over the Supervisor's.
func resolveBroker(ctx context.Context, o *config.Options) (mqtt.Config, error) {
	m := o.MQTT
	cfg := mqtt.Config{Username: m.Username, Password: string(m.Password), TLS: m.TLS,
		CAFile: m.CAFile, CertFile: m.CertFile, KeyFile: m.KeyFile}
	host, port := m.Host, m.Port
	if host == "" {
		c, err := supervisor.FromEnv()
		if errors.Is(err, supervisor.ErrNoToken) {
			return cfg, errors.New("mqtt.host: empty, and not running as a Home Assistant add-on (no SUPERVISOR_TOKEN) to ask for the broker: set mqtt.host")
		}
		if err != nil {
			return cfg, fmt.Errorf("mqtt.host: %w", err)
		}
		svc, err := c.MQTT(ctx)
		if err != nil {
			return cfg, fmt.Errorf("mqtt.host: empty, and asking the Supervisor failed: %w", err)
		}
		host, port = svc.Host, svc.Port
		cfg.TLS = cfg.TLS || svc.SSL
		if cfg.Username == "" {
			cfg.Username, cfg.Password = svc.Username, string(svc.Password)
		}
	}
	cfg.Broker = "tcp://" + net.JoinHostPort(host, strconv.Itoa(port))
	return cfg, nil
}

// openStore opens the database in dir. A corrupt file is moved aside,
// never deleted, and the gateway starts with an empty one: a gateway that
// refuses to start loses every reading from now on, while the old file
// only held readings not yet published. moved is where the corrupt file
// went, "" if there was none. Other failures (an unwritable directory, a
// file from a newer version, a corrupt file that cannot be moved) come as
// *store.OpenError; the caller retries.
func openStore(ctx context.Context, dir string, log zerolog.Logger) (s *store.Store, moved string, err error) {
	path := filepath.Join(dir, storeFile)
	s, err = store.Open(ctx, path)
	var oe *store.OpenError
	if errors.Is(err, store.ErrCorrupt) && errors.As(err, &oe) {
		var qerr error
		if moved, qerr = store.QuarantineCorrupt(path); qerr != nil {
			return nil, "", &store.OpenError{Path: oe.Path, Err: fmt.Errorf("%w; moving it aside failed: %w", oe.Err, qerr)}
		}
		log.Error().Err(err).Str("moved_to", moved).
			Msg("database file is corrupt: moved aside for inspection, starting with a new database and what can still be read from the old one")
		s, err = store.Open(ctx, path)
	}
	if err != nil {
		return nil, moved, err
	}
	return s, moved, nil
}

// salvage takes the queued readings and added meters that can still be
// read from the corrupt database moved to moved into st, and says how
// many were saved and lost.
func salvage(ctx context.Context, st *store.Store, moved string, log zerolog.Logger) *web.Salvage {
	got, err := store.Salvage(ctx, moved, st)
	out := &web.Salvage{File: moved, Saved: got.Readings, Lost: got.Lost, LostKnown: got.Complete}
	ev := log.Info()
	switch {
	case err != nil:
		out.Error = err.Error()
		log.Error().Err(err).Str("file", moved).Msg("taking over the queued readings of the corrupt database failed: they stay in that file")
		return out
	case !got.Complete || got.Lost > 0:
		ev = log.Warn()
	}
	ev.Str("file", moved).Int("saved", got.Readings).Int("lost", got.Lost).Bool("lost_known", got.Complete).
		Int("added_meters", got.Meters).Msg("took over what could be read from the corrupt database")
	return out
}

// dbMaxPagesEnv caps the database at that many pages (of 4 KiB): a
// diagnostic knob to try what the gateway does on a full disk without
// filling one. It is not an option (and not MBUS_GATEWAY_…, which are
// options) because nobody should run with it.
const dbMaxPagesEnv = "MBUS_DIAG_DB_MAX_PAGES"

// parseMaxPages reads dbMaxPagesEnv's value: 0 when unset.
func parseMaxPages(value string) (int, error) {
	if value == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(value)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: want a positive number of pages, got %q", dbMaxPagesEnv, value)
	}
	return n, nil
}

// limitStore caps s at n pages; 0 leaves it alone.
func limitStore(ctx context.Context, s *store.Store, n int, log zerolog.Logger) error {
	if n == 0 {
		return nil
	}
	got, err := s.LimitPages(ctx, n)
	if err != nil {
		return fmt.Errorf("%s: %w", dbMaxPagesEnv, err)
	}
	log.Warn().Int("max_pages", got).Msg("database size limited for diagnosis (" + dbMaxPagesEnv + ")")
	return nil
}

// clientID returns the installation's MQTT client ID, made once and kept
// in the store.
func clientID(ctx context.Context, s *store.Store) (string, error) {
	id, ok, err := s.Get(ctx, clientIDKey)
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	if ok && id != "" {
		return id, nil
	}
	id = mqtt.NewClientID()
	if err := s.Set(ctx, clientIDKey, id); err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	return id, nil
}

// newRegistry is the one metrics registry: Go runtime and process
// collectors, the build info, and whatever the components register.
func newRegistry(version string) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mbus_build_info",
		Help: "Always 1; the labels give the gateway's version and the Go version it was built with.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return reg, nil
}
