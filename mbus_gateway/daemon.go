package main

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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mqtt"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/supervisor"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/web"
)

// storeFile is the name of the database in the data directory.
const storeFile = "mbus-gateway.db"

// clientIDKey holds the MQTT client ID in the store's key/value table: a
// broker that sees the same ID after a restart replaces the old session
// instead of keeping a ghost client with our Last Will.
const clientIDKey = "mqtt.client_id"

// settings is what the daemon needs besides the options: where it logs,
// where the web side listens when that differs from the options (the demo
// serves loopback only), and how to re-read the options on SIGHUP.
type settings struct {
	version string
	logOut  io.Writer
	// webListen and metricsListen replace ":<web_port>" and
	// ":<metrics_port>" when set; webAllow replaces web_allow when not nil.
	webListen, metricsListen string
	webAllow                 []string
	// reload re-reads the options; nil when there is nothing to re-read.
	reload func() (*config.Options, error)
	// hup delivers SIGHUP; nil when reloading is not offered.
	hup <-chan os.Signal
	// ready, if set, is called once everything listens, with the web
	// server's address (the demo prints it).
	ready func(webAddr, metricsAddr net.Addr)
	// getenv reads the environment (NOTIFY_SOCKET, WATCHDOG_USEC).
	getenv func(string) string
}

// daemon is the running gateway: every component, built and wired by
// newDaemon, run by Run.
type daemon struct {
	set    settings
	opts   *config.Options
	log    zerolog.Logger
	level  *levelFilter
	reg    *prometheus.Registry
	notify *notifier

	store  *store.Store
	port   *transport.Reopening
	master *master.Master
	mqtt   *mqtt.Client
	poller *poll.Poller
	web    *web.Server
	watch  *busWatch
	adder  *meterAdder
	notes  *notices

	// scan is true when the meters are unknown and scan_on_start asks
	// for a scan.
	scan bool
}

// newDaemon builds every component from the options. Nothing that can
// fail because of the options happens later: a broker the Supervisor does
// not know, an unwritable data directory or a port taken end here, with
// an error naming the cause. The log level and format were checked with
// the options; log goes to set.logOut from here on.
func newDaemon(ctx context.Context, o *config.Options, set settings) (d *daemon, err error) {
	if set.getenv == nil {
		set.getenv = os.Getenv
	}
	log, level, err := newLogger(set.logOut, o.LogLevel, o.LogFormat)
	if err != nil {
		return nil, err
	}
	d = &daemon{set: set, opts: o, log: log, level: level}
	if d.notify, err = newNotifier(set.getenv); err != nil {
		return nil, err
	}
	brokerCfg, err := resolveBroker(ctx, o)
	if err != nil {
		return nil, err
	}
	st, quarantined, err := openStore(ctx, o.DataDir, logging.Component(log, "store"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = st.Close()
		}
	}()
	d.store = st
	if err := limitStore(ctx, st, set.getenv(dbMaxPagesEnv), log); err != nil {
		return nil, err
	}
	if brokerCfg.ClientID, err = clientID(ctx, d.store); err != nil {
		return nil, err
	}

	if d.reg, err = newRegistry(set.version); err != nil {
		return nil, err
	}
	brokerCfg.TopicPrefix = o.TopicPrefix
	brokerCfg.DiscoveryPrefix = o.DiscoveryPrefix
	brokerCfg.ExpireAfter = int(o.ExpireAfter / time.Second)
	brokerCfg.Version = set.version
	brokerCfg.OutboxMaxRows = o.OutboxMaxRows
	brokerCfg.OutboxMaxAge = o.OutboxMaxAge
	if d.mqtt, err = mqtt.New(brokerCfg, d.store, log, d.reg); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}

	dev := o.Device()
	d.port = transport.NewReopening(func(ctx context.Context) (transport.Port, error) {
		return transport.Open(ctx, dev, transport.Options{Baud: o.Baudrate})
	}, transport.DefaultBackoff)
	d.master = master.New(d.port, master.Options{Baud: o.Baudrate, Extra: o.ResponseTimeoutExtra})

	meters, err := startMeters(ctx, o, d.store)
	if err != nil {
		return nil, err
	}
	d.scan = len(meters) == 0 && o.ScanOnStart
	sink := &outboxSink{store: d.store, notify: d.mqtt}
	if d.poller, err = poll.New(poll.Options{Meters: meters, Baud: o.Baudrate}, d.master, sink, d.mqtt, log, d.reg); err != nil {
		return nil, err
	}
	d.watch = newBusWatch(d.poller.Snapshot, time.Now, stuckAfter)
	d.adder = &meterAdder{poller: d.poller, store: d.store, interval: o.PollInterval}
	d.notes = newNotices(quarantined, o, d.poller.Warnings)
	if d.web, err = d.newWeb(); err != nil {
		return nil, err
	}
	return d, nil
}

// newWeb builds the status page and API server.
func (d *daemon) newWeb() (*web.Server, error) {
	o := d.opts
	listen := d.set.webListen
	if listen == "" {
		listen = ":" + strconv.Itoa(o.WebPort)
	}
	metrics := d.set.metricsListen
	if metrics == "" && o.MetricsPort != 0 {
		metrics = ":" + strconv.Itoa(o.MetricsPort)
	}
	allow := d.set.webAllow
	if allow == nil {
		allow = make([]string, len(o.WebAllow))
		for i, p := range o.WebAllow {
			allow[i] = p.String()
		}
	}
	return web.New(web.Options{
		Listen:        listen,
		Allow:         allow,
		MetricsListen: metrics,
		Version:       d.set.version,
		Bus:           d.busInfo,
		Broker:        d.brokerStatus,
		OutboxDepth:   d.store.Depth,
		Alive:         d.watch.Alive,
		Warnings:      d.notes.list,
		Gatherer:      d.reg,
		Log:           d.log,
	}, d.poller, d.adder, d.store)
}

// busInfo describes the adapter for the status page.
func (d *daemon) busInfo() web.BusInfo {
	st := d.master.Stats()
	return web.BusInfo{
		Device:     d.opts.Device(),
		Baud:       d.opts.Baudrate,
		TxBytes:    st.TxBytes,
		RxBytes:    st.RxBytes,
		Requests:   st.Requests,
		Timeouts:   st.Timeouts,
		Garbled:    st.Garbled,
		Collisions: st.Collisions,
	}
}

// brokerStatus is the MQTT client's snapshot in the page's terms.
func (d *daemon) brokerStatus() web.BrokerStatus {
	s := d.mqtt.Snapshot()
	return web.BrokerStatus{
		Broker:    s.Broker,
		Connected: s.Connected,
		Since:     s.Since,
		LastError: s.LastError,
		Published: count(s.Published),
		Delivered: count(s.Acked),
	}
}

// count converts a counter that never goes below zero.
func count(n int64) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}

// Run runs every long-lived part under one errgroup until ctx ends, then
// lets each finish its own way (the poller its frame in flight, the MQTT
// client its "offline" and outstanding acknowledgements, the web server
// its requests) and closes the store last, when nothing uses it any more.
func (d *daemon) Run(ctx context.Context) error {
	defer d.close()
	d.log.Info().Str("version", d.set.version).Object("options", d.opts).Msg("starting")
	for _, w := range d.opts.Warnings() {
		d.log.Warn().Msg(w)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.poller.Run(gctx) })
	g.Go(func() error { return d.mqtt.Run(gctx) })
	g.Go(func() error { return d.web.Run(gctx) })
	g.Go(func() error { return d.started(gctx) })
	g.Go(func() error {
		return d.notify.keepAlive(gctx, d.watch.Alive, func(err error) {
			d.log.Error().Err(err).Str("component", "watchdog").Msg("bus loop not alive: watchdog keep-alives withheld")
		})
	})
	if d.scan {
		g.Go(func() error { d.scanOnStart(gctx); return nil })
	}
	if d.set.hup != nil && d.set.reload != nil {
		g.Go(func() error { d.reloads(gctx); return nil })
	}
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
// the demo's printout).
func (d *daemon) started(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-d.web.Ready():
	}
	if err := d.notify.send(sdReady); err != nil {
		d.log.Warn().Err(err).Msg("cannot tell systemd")
	}
	if d.set.ready != nil {
		d.set.ready(d.web.Addr(), d.web.MetricsAddr())
	}
	d.log.Info().Int("meters", len(d.poller.Snapshot().Meters)).Bool("scan", d.scan).Msg("started")
	return nil
}

// close releases the bus port and the store after Run's goroutines ended.
func (d *daemon) close() {
	if err := d.port.Close(); err != nil {
		d.log.Warn().Err(err).Msg("closing the bus port")
	}
	if err := d.store.Close(); err != nil {
		d.log.Error().Err(err).Msg("closing the store")
	}
}

// resolveBroker gives the MQTT connection: the options' broker, or with an
// empty mqtt.host the one the Supervisor hands out to add-ons. User name
// and password in the options take precedence over the Supervisor's.
func resolveBroker(ctx context.Context, o *config.Options) (mqtt.Config, error) {
	m := o.MQTT
	cfg := mqtt.Config{Username: m.Username, Password: string(m.Password), TLS: m.TLS}
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
// file from a newer version) stop the start.
func openStore(ctx context.Context, dir string, log zerolog.Logger) (s *store.Store, moved string, err error) {
	path := filepath.Join(dir, storeFile)
	s, err = store.Open(ctx, path)
	if errors.Is(err, store.ErrCorrupt) {
		var qerr error
		if moved, qerr = store.QuarantineCorrupt(path); qerr != nil {
			return nil, "", fmt.Errorf("data_dir: %w (and moving it aside failed: %w)", err, qerr)
		}
		log.Error().Err(err).Str("moved_to", moved).
			Msg("database file is corrupt: moved aside for inspection, starting with an empty database; readings not yet published were in it")
		s, err = store.Open(ctx, path)
	}
	if err != nil {
		return nil, "", fmt.Errorf("data_dir: %w", err)
	}
	return s, moved, nil
}

// dbMaxPagesEnv caps the database at that many pages (of 4 KiB): a
// diagnostic knob to try what the gateway does on a full disk without
// filling one. It is not an option (and not MBUS_GATEWAY_…, which are
// options) because nobody should run with it.
const dbMaxPagesEnv = "MBUS_DIAG_DB_MAX_PAGES"

// limitStore applies dbMaxPagesEnv's value, if any.
func limitStore(ctx context.Context, s *store.Store, value string, log zerolog.Logger) error {
	if value == "" {
		return nil
	}
	n, err := strconv.Atoi(value)
	if err != nil || n <= 0 {
		return fmt.Errorf("%s: want a positive number of pages, got %q", dbMaxPagesEnv, value)
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
