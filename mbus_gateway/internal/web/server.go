// Package web serves the gateway's HTTP side: /health for the container
// health check, /status as JSON, /metrics for Prometheus, and the status
// page shown in Home Assistant through ingress.
//
// Two listeners share the handlers. The ingress listener (port 8099)
// serves everything, but only to the addresses in Options.Allow (the
// Supervisor's ingress proxy, 172.30.32.2, by default); /health is also
// served to loopback so that the image's HEALTHCHECK works. Requests that
// change something must be addressed to the gateway and come from its own
// page (see guard). The metrics listener serves /health, /status and
// /metrics to anyone who can reach its address and nothing else.
//
// Both listeners bound the time a client may take (headers, body, answer,
// idle) and the connections served at once, keeping some for /health
// (see limits).
//
// The package reads snapshots only. Actions on the page (scan the bus,
// add a meter, read a meter now) go through the small interfaces below,
// which the daemon implements with the poller and the store.
package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	sup "github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/supervisor"
)

// Poller is the bus side the page shows and acts on; *poll.Poller
// implements it.
type Poller interface {
	// Snapshot returns a copy of the bus and meter state.
	Snapshot() poll.Snapshot
	// ReadNow reads one meter, given by identifier or address, ahead of
	// the schedule.
	ReadNow(ctx context.Context, meter string) (reading.Reading, error)
	// Scan searches the bus (mode poll.ScanPrimary or poll.ScanSecondary).
	Scan(ctx context.Context, mode string, progress func(poll.ScanProgress)) ([]master.Found, error)
}

// MeterAdder adds a meter to the running gateway and to its persistent
// configuration. address is in the form mbus.ParseAddress reads and has
// been checked with it; name may be empty. An error wrapping
// ErrMeterExists is reported to the user as a conflict.
type MeterAdder interface {
	AddMeter(ctx context.Context, address, name string) error
}

// Checker reports whether a dependency works, e.g. that the store can
// still be written. It should answer within a few seconds.
type Checker interface {
	Check(ctx context.Context) error
}

// ErrMeterExists is what a MeterAdder wraps when the address is already
// configured.
var ErrMeterExists = errors.New("meter already configured")

// BrokerStatus is the MQTT side as the page shows it.
type BrokerStatus struct {
	// Broker is the broker's address, e.g. "tcp://core-mosquitto:1883".
	Broker    string `json:"broker"`
	Connected bool   `json:"connected"`
	// Since is when the connection was made or lost.
	Since     time.Time `json:"since,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Published counts messages handed to the broker; Delivered those it
	// acknowledged.
	Published uint64 `json:"published"`
	Delivered uint64 `json:"delivered"`
}

// BusInfo describes the bus adapter; the counters are those of the link
// layer (master.Stats) since start.
type BusInfo struct {
	// Device is the serial port or tcp://host:port of the converter.
	Device     string `json:"device"`
	Baud       int    `json:"baud"`
	TxBytes    uint64 `json:"tx_bytes"`
	RxBytes    uint64 `json:"rx_bytes"`
	Requests   uint64 `json:"requests"`
	Timeouts   uint64 `json:"timeouts"`
	Garbled    uint64 `json:"garbled"`
	Collisions uint64 `json:"collisions"`
}

// Bus is one bus of a gateway with several: the page shows each and acts
// on each (scan it, add a meter to it).
type Bus struct {
	// Name names the bus in /status and on the page.
	Name string
	// Poller and Adder act on the bus; both are required.
	Poller Poller
	Adder  MeterAdder
	// Info describes the adapter and its counters; nil shows nothing.
	Info func() BusInfo
}

// Defaults used by New for zero fields of Options.
const (
	DefaultIngressSource = sup.IngressProxy
	DefaultRefresh       = time.Second
	DefaultKeepalive     = 15 * time.Second
)

// Limits on requests and on the time handlers wait for others.
const (
	maxBody       = 64 << 10
	maxNameRunes  = 64
	checkTimeout  = 5 * time.Second
	readTimeout   = 2 * time.Minute
	shutdownGrace = 5 * time.Second
)

// Options configure a Server.
type Options struct {
	// Listen is the ingress listener's address; empty means the ingress
	// port (sup.IngressPort) on every interface.
	Listen string
	// Allow lists the IP addresses and CIDR prefixes that may use the
	// ingress listener; nil means DefaultIngressSource only.
	Allow []string
	// Hosts are host names, besides IP addresses, localhost, the
	// machine's name and Home Assistant's, by which the page may be opened
	// and act (add meters, scan, read).
	Hosts []string
	// MetricsListen is the address of the extra listener for /health,
	// /status and /metrics; empty disables it.
	MetricsListen string
	// Version is the gateway's version, shown on the page.
	Version string
	// Bus describes the bus adapter and its counters; nil shows nothing.
	Bus func() BusInfo
	// Buses are the gateway's buses, in order; nil means one bus: the
	// poller and adder given to New, described by Bus. When set, the
	// first one is what the single-bus fields of /status describe.
	Buses []Bus
	// Broker reports the MQTT connection; nil shows nothing.
	Broker func() BrokerStatus
	// OutboxDepth counts the readings not yet acknowledged by the broker;
	// nil leaves the depth unknown.
	OutboxDepth func(ctx context.Context) (int, error)
	// Alive reports why the bus loop is not running (it stopped, or its
	// heartbeat is stale), nil while it is. nil means not checked.
	Alive func() error
	// Warnings lists problems the user should see on the page and in
	// /status, e.g. a database found corrupt and moved aside at start,
	// options that are allowed but probably not meant, a schedule that
	// needs more bus time than there is. It is called for every status
	// document and must return quickly. nil shows none.
	Warnings func() []string
	// Salvage reports what was saved from a corrupt database at start;
	// nil, or a nil answer, shows nothing.
	Salvage func() *Salvage
	// Gatherer provides /metrics; required. Nothing is registered globally.
	Gatherer prometheus.Gatherer
	// Refresh is how often open event streams look for changes;
	// Keepalive is the longest gap between two events. Zero means the
	// defaults.
	Refresh, Keepalive time.Duration
	Log                zerolog.Logger
}

// Server is the HTTP side of the gateway. Create it with New.
type Server struct {
	o      Options
	buses  []*busSide
	health Checker
	allow  []netip.Prefix
	proxy  netip.Addr // the ingress proxy, exempt from guard
	hosts  []string   // names accepted in Host besides IP addresses
	limits limits
	log    zerolog.Logger
	index  *template.Template
	assets map[string]asset

	ingress http.Handler
	metrics http.Handler

	// ctx ends when Run ends; it stops event streams and scans.
	ctx  context.Context
	stop context.CancelFunc
	jobs sync.WaitGroup

	mu      sync.Mutex    // guards the buses' scan states and changed
	changed chan struct{} // closed (and replaced) when scan state changes

	running     atomic.Bool
	ready       chan struct{}
	addr        net.Addr
	metricsAddr net.Addr
	listeners   []*limitListener // set before ready is closed
}

// New checks o and builds a Server. p, add and health are required.
func New(o Options, p Poller, add MeterAdder, health Checker) (*Server, error) {
	if p == nil || add == nil || health == nil {
		return nil, errors.New("web: poller, meter adder and health checker are required")
	}
	if o.Gatherer == nil {
		return nil, errors.New("web: Options.Gatherer is required")
	}
	if o.Listen == "" {
		o.Listen = ":" + strconv.Itoa(sup.IngressPort)
	}
	if o.Allow == nil {
		o.Allow = []string{DefaultIngressSource}
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.Keepalive <= 0 {
		o.Keepalive = DefaultKeepalive
	}
	allow, err := parseAllow(o.Allow)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	index, err := parseIndex()
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	files, err := loadAssets()
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	buses := o.Buses
	if len(buses) == 0 {
		buses = []Bus{{Poller: p, Adder: add, Info: o.Bus}}
	}
	s := &Server{
		o:       o,
		health:  health,
		allow:   allow,
		proxy:   netip.MustParseAddr(DefaultIngressSource),
		hosts:   knownHosts(o.Hosts),
		limits:  defaultLimits,
		log:     o.Log.With().Str("component", "web").Logger(),
		index:   index,
		assets:  files,
		changed: make(chan struct{}),
		ready:   make(chan struct{}),
	}
	for i, b := range buses {
		if b.Poller == nil || b.Adder == nil {
			return nil, fmt.Errorf("web: bus %d (%s): poller and meter adder are required", i, b.Name)
		}
		s.buses = append(s.buses, &busSide{Bus: b})
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	s.ingress = s.routes(true)
	s.metrics = s.routes(false)
	return s, nil
}

// busSide is a bus and the state of the scan started on it from the page
// (guarded by Server.mu).
type busSide struct {
	Bus
	scan ScanStatus
}

// bus finds the bus named name; "" is the first one.
func (s *Server) bus(name string) (*busSide, error) {
	if name == "" {
		return s.buses[0], nil
	}
	names := make([]string, len(s.buses))
	for i, b := range s.buses {
		if b.Name == name {
			return b, nil
		}
		names[i] = b.Name
	}
	return nil, fmt.Errorf("no bus %q: want one of %s", name, strings.Join(names, ", "))
}

// parseAllow reads IP addresses and CIDR prefixes.
func parseAllow(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("allow %q: not an IP address or CIDR prefix", s)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("allow %q: not an IP address or CIDR prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Handler returns the ingress listener's handler.
func (s *Server) Handler() http.Handler { return s.ingress }

// MetricsHandler returns the metrics listener's handler: /health,
// /status and /metrics, nothing else.
func (s *Server) MetricsHandler() http.Handler { return s.metrics }

// Ready is closed once Run has bound its listeners.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the ingress listener's address once Ready is closed.
func (s *Server) Addr() net.Addr { return s.addr }

// MetricsAddr is the metrics listener's address once Ready is closed;
// nil when it is disabled.
func (s *Server) MetricsAddr() net.Addr { return s.metricsAddr }

// Run serves both listeners until ctx ends, then closes event streams,
// stops a running scan and waits up to a few seconds for requests in
// flight. It may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("web: already running")
	}
	defer s.close()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.o.Listen)
	if err != nil {
		return fmt.Errorf("web: listen: %w", err)
	}
	servers := []*http.Server{s.httpServer(s.ingress)}
	listeners := []net.Listener{s.limit(ln)}
	s.addr = ln.Addr()
	if s.o.MetricsListen != "" {
		mln, err := lc.Listen(ctx, "tcp", s.o.MetricsListen)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("web: listen metrics: %w", err)
		}
		servers = append(servers, s.httpServer(s.metrics))
		listeners = append(listeners, s.limit(mln))
		s.metricsAddr = mln.Addr()
	}
	s.logServing()
	close(s.ready)

	g, gctx := errgroup.WithContext(ctx)
	for i, srv := range servers {
		g.Go(func() error {
			if err := srv.Serve(listeners[i]); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("web: serve: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		s.stop() // end event streams first: Shutdown waits for them
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		var errs []error
		for _, srv := range servers {
			if err := srv.Shutdown(sctx); err != nil {
				errs = append(errs, fmt.Errorf("web: shutdown: %w", err))
				_ = srv.Close()
			}
		}
		return errors.Join(errs...)
	})
	return g.Wait()
}

// logServing says where the server listens and who may open the page.
func (s *Server) logServing() {
	ev := s.log.Info().Str("listen", s.addr.String()).Strs("web_allow", s.o.Allow)
	if s.metricsAddr != nil {
		ev = ev.Stringer("metrics", s.metricsAddr)
	}
	who := "the status page may be opened from " + strings.Join(s.o.Allow, ", ")
	if len(s.o.Allow) == 0 {
		who = "the status page may be opened from no address (web_allow is empty)"
	} else if len(s.o.Allow) == 1 && s.o.Allow[0] == DefaultIngressSource {
		who = "the status page may be opened through Home Assistant ingress only; web_allow lists more addresses"
	}
	ev.Msg("serving; " + who)
}

// limit wraps ln in the connection limit and keeps it for tests.
func (s *Server) limit(ln net.Listener) net.Listener {
	l := newLimitListener(ln, s.limits)
	s.listeners = append(s.listeners, l)
	return l
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           reserved(h),
		ReadHeaderTimeout: s.limits.header,
		ReadTimeout:       s.limits.read,
		WriteTimeout:      s.limits.write,
		IdleTimeout:       s.limits.idle,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ConnContext:       connContext,
	}
}

// close stops event streams and scans and waits for the scan goroutine.
func (s *Server) close() {
	s.stop()
	s.jobs.Wait()
}

// notify wakes event streams after a change of the server's own state.
func (s *Server) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// changes returns a channel closed at the next notify.
func (s *Server) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

var _ Poller = (*poll.Poller)(nil)
