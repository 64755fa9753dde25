package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bridge"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/web"
)

// bus is one M-Bus master of the gateway with what the options decide
// alone: its health, port and link layer. Each bus has its own, so a bus
// that fails (a converter gone, a port unplugged) holds back only its own
// meters; the buses are read in parallel, one poller each.
type bus struct {
	cfg config.Bus
	// key names the bus in the store (added and found meters) and in the
	// meters' identities: "" for the single-bus options, which is what
	// gateways before buses: stored, else the bus's name.
	key string
	// first is the first bus: rows stored without a bus (key "") are its.
	first  bool
	log    zerolog.Logger
	reg    prometheus.Registerer
	health *bushealth.Health
	port   *transport.Reopening
	master *master.Master
}

// newBuses builds a bus for each of o.AllBuses. With the buses: option
// every metric of a bus carries a bus label and its log a bus field; the
// single-bus options keep the metric names and labels of before.
func newBuses(o *config.Options, log zerolog.Logger, reg prometheus.Registerer) ([]*bus, error) {
	all := o.AllBuses()
	out := make([]*bus, 0, len(all))
	for i, cfg := range all {
		b := &bus{cfg: cfg, first: i == 0, log: log, reg: reg}
		if len(o.Buses) > 0 {
			b.key = cfg.Name
			b.log = log.With().Str("bus", cfg.Name).Logger()
			b.reg = prometheus.WrapRegistererWith(prometheus.Labels{"bus": cfg.Name}, reg)
		}
		dev, baud := cfg.Device(), cfg.Baudrate
		b.health = bushealth.New(bushealth.Options{Log: b.log})
		b.port = transport.NewReopening(func(ctx context.Context) (transport.Port, error) {
			return transport.Open(ctx, dev, transport.Options{Baud: baud})
		}, b.health)
		b.master = master.New(b.port, master.Options{Baud: baud, Extra: master.ExtraFor(dev, o.ResponseTimeoutExtra), Health: b.health})
		for _, c := range []prometheus.Collector{master.NewCollector(b.master.Stats), bushealth.NewCollector(b.health)} {
			if err := b.reg.Register(c); err != nil {
				return nil, fmt.Errorf("metrics: bus %s: %w", cfg.Name, err)
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// info describes the bus's adapter for the status page.
func (b *bus) info() web.BusInfo {
	st := b.master.Stats()
	return web.BusInfo{
		Device:     b.cfg.Device(),
		Baud:       b.cfg.Baudrate,
		TxBytes:    st.TxBytes,
		RxBytes:    st.RxBytes,
		Requests:   st.Requests,
		Timeouts:   st.Timeouts,
		Garbled:    st.Garbled,
		Collisions: st.Collisions,
	}
}

// busParts are a bus's parts that need the database.
type busParts struct {
	*bus
	poller *poll.Poller
	watch  *busWatch
	adder  *meterAdder
	// scan is true when the bus's meters are unknown and scan_on_start
	// asks for a scan.
	scan bool
}

// buildBus makes the poller of b on the open database. All buses' pollers
// share ids, so that two meters on two buses never get the same
// identifier.
func (d *daemon) buildBus(ctx context.Context, b *bus, st *store.Store, sink poll.Sink, avail poll.Availability, ids *poll.Registry, previous func(string) (reading.Reading, bool)) (*busParts, error) {
	meters, err := startMeters(ctx, d.opts, b, st)
	if err != nil {
		return nil, err
	}
	bp := &busParts{bus: b, scan: len(meters) == 0 && b.cfg.ScanOnStart}
	bp.poller, err = poll.New(poll.Options{
		Meters: meters, Baud: b.cfg.Baudrate, BusName: b.key,
		Identities: st, Registry: ids, Health: b.health, Previous: previous,
	}, b.master, sink, avail, b.log, b.reg)
	if err != nil {
		return nil, fmt.Errorf("bus %s: %w", b.cfg.Name, err)
	}
	bp.watch = newBusWatch(bp.poller.Snapshot, time.Now, stuckAfter)
	bp.adder = &meterAdder{poller: bp.poller, store: st, bus: b, interval: d.opts.PollInterval}
	return bp, nil
}

// busNamed finds the bus named name among p's; "" is the first one.
func (p *parts) busNamed(name string) (*busParts, error) {
	if name == "" {
		return p.buses[0], nil
	}
	for _, b := range p.buses {
		if b.cfg.Name == name {
			return b, nil
		}
	}
	return nil, fmt.Errorf("no bus %q", name)
}

// readNow reads the meter with the identifier or address meter on the
// first bus that has one (identifiers are unique across buses).
func (p *parts) readNow(ctx context.Context, meter string) error {
	for _, b := range p.buses {
		if _, err := b.poller.ReadNow(ctx, meter); !errors.Is(err, poll.ErrUnknownMeter) {
			return err
		}
	}
	return fmt.Errorf("read %q: %w", meter, poll.ErrUnknownMeter)
}

// warnings are the pollers' warnings that come and go (bus time, meters
// that share an identity), each named by its bus when there are several.
func (p *parts) warnings() []string {
	var out []string
	for _, b := range p.buses {
		for _, w := range b.poller.Warnings() {
			if b.key != "" && len(p.buses) > 1 {
				w = "bus " + b.key + ": " + w
			}
			out = append(out, w)
		}
	}
	return out
}

// alive is nil while every bus loop makes progress.
func (p *parts) alive() error {
	var errs []error
	for _, b := range p.buses {
		if err := b.watch.Alive(); err != nil {
			if len(p.buses) > 1 {
				err = fmt.Errorf("bus %s: %w", b.cfg.Name, err)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// bridgeSources are what the gateway's device in Home Assistant shows:
// one bus's snapshots as before, or each of several buses'.
func (p *parts) bridgeSources() bridge.Sources {
	src := bridge.Sources{MQTT: p.mqtt.Snapshot}
	if len(p.buses) == 1 && p.buses[0].key == "" {
		b := p.buses[0]
		src.Poll, src.Bus, src.Health = b.poller.Snapshot, b.master.Stats, b.health.Snapshot
		return src
	}
	for _, b := range p.buses {
		src.Buses = append(src.Buses, bridge.BusSources{Name: b.cfg.Name, Poll: b.poller.Snapshot, Bus: b.master.Stats, Health: b.health.Snapshot})
	}
	return src
}

// busNames are the names of the buses of the buses: option, nil for the
// single-bus options.
func busNames(o *config.Options) []string {
	var out []string
	for _, b := range o.Buses {
		out = append(out, b.Name)
	}
	return out
}
