package daemon

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// reloads re-reads the options on every SIGHUP until ctx ends and applies
// them to p.
func (d *daemon) reloads(ctx context.Context, p *parts) {
	log := d.log.With().Str("component", "reload").Logger()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.deps.Hup:
		}
		o, err := d.deps.Reload()
		if err != nil {
			log.Error().Err(err).Msg("options not reloaded: the running ones stay in effect")
			continue
		}
		applied, restart := d.apply(ctx, p, o)
		ev := log.Info()
		if len(restart) > 0 {
			ev = log.Warn().Strs("need_restart", restart)
		}
		ev.Strs("applied", applied).Msg("options reloaded")
	}
}

// apply puts into effect what can change while running: the log level,
// the meters of each bus and the poll interval (see
// poll.Poller.SetMeters: meters keep their state, removed ones are no
// longer read). It returns what it applied, and the options that differ
// from those of the start but only take effect after a restart
// (connections, ports and the store are opened once; so are the buses:
// one added, removed, renamed or reached otherwise): they are named on
// every reload until the restart.
func (d *daemon) apply(ctx context.Context, p *parts, o *config.Options) (applied, restart []string) {
	cur := d.opts
	if o.LogLevel != cur.LogLevel {
		if err := d.level.set(o.LogLevel); err == nil {
			cur.LogLevel = o.LogLevel
			applied = append(applied, "log_level")
		}
	}
	for _, f := range restartOptions {
		if !reflect.DeepEqual(f.get(&d.initial), f.get(o)) {
			restart = append(restart, f.key)
		}
	}
	var meters []string
	for _, b := range p.buses {
		if !hasBus(o, b.cfg.Name) {
			continue // the bus is gone: that takes a restart (buses.name)
		}
		what := "meters"
		if len(o.Buses) > 0 {
			what = "buses: meters of " + b.cfg.Name
		}
		ch, err := b.adder.setMeters(ctx, o)
		if err != nil {
			restart = append(restart, what+": "+err.Error())
			return applied, restart
		}
		if s := describeChanges(ch); s != "" {
			meters = append(meters, what+": "+s)
		}
	}
	if o.PollInterval != cur.PollInterval {
		applied = append(applied, "poll_interval")
	}
	applied = append(applied, meters...)
	cur.Meters, cur.PollInterval = o.Meters, o.PollInterval
	cur.Buses = slices.Clone(cur.Buses) // the start's options share the list
	for i, b := range cur.Buses {
		cur.Buses[i].Meters = busMeters(o, b.Name)
	}
	d.notes.setOptions(cur)
	return applied, restart
}

// busField lists field of each bus of the buses: option (nil for the
// single-bus options): how the buses are named, reached and scanned is
// opened once; their meters apply live.
func busField(field func(config.Bus) any) func(*config.Options) any {
	return func(o *config.Options) any {
		var out []any
		for _, b := range o.Buses {
			out = append(out, field(b))
		}
		return out
	}
}

// hasBus reports whether o has a bus named name.
func hasBus(o *config.Options, name string) bool {
	for _, b := range o.AllBuses() {
		if b.Name == name {
			return true
		}
	}
	return false
}

// describeChanges says what SetMeters did, e.g. "1 added, 2 changed";
// empty when nothing changed.
func describeChanges(ch poll.MeterChanges) string {
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{ch.Added, "added"}, {ch.Removed, "removed"}, {ch.Changed, "changed"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	return strings.Join(parts, ", ")
}

// liveOptions are the options apply puts into effect while running, by
// their key or the key of the object or list they belong to ("mqtt"
// stands for mqtt.host, mqtt.port, …); all others are restartOptions. A
// test holds the two lists to the options' schema. Changes of the meters
// are reported as "meters: …", with buses: as "buses: meters of <bus>: …".
var liveOptions = []string{
	"log_level", "poll_interval",
	"meters.address", "meters.name", "meters.poll_interval", "meters.baudrate", "meters.enabled",
	"meters.guard", "meters.key",
	"buses.meters.address", "buses.meters.name", "buses.meters.poll_interval", "buses.meters.baudrate",
	"buses.meters.enabled", "buses.meters.guard", "buses.meters.key",
}

// restartOptions are the options that take effect at the next start only.
var restartOptions = []struct {
	key string
	get func(*config.Options) any
}{
	{"serial_port", func(o *config.Options) any { return o.SerialPort }},
	{"tcp_address", func(o *config.Options) any { return o.TCPAddress }},
	{"baudrate", func(o *config.Options) any { return o.Baudrate }},
	{"scan_on_start", func(o *config.Options) any { return o.ScanOnStart }},
	{"scan_mode", func(o *config.Options) any { return o.ScanMode }},
	{"mqtt", func(o *config.Options) any { return o.MQTT }},
	{"topic_prefix", func(o *config.Options) any { return o.TopicPrefix }},
	{"discovery_prefix", func(o *config.Options) any { return o.DiscoveryPrefix }},
	{"expire_after", func(o *config.Options) any { return o.ExpireAfter }},
	{"outbox_max_rows", func(o *config.Options) any { return o.OutboxMaxRows }},
	{"outbox_max_age", func(o *config.Options) any { return o.OutboxMaxAge }},
	{"response_timeout_extra", func(o *config.Options) any { return o.ResponseTimeoutExtra }},
	{"log_format", func(o *config.Options) any { return o.LogFormat }},
	{"web_port", func(o *config.Options) any { return o.WebPort }},
	{"web_allow", func(o *config.Options) any { return o.WebAllow }},
	{"metrics_port", func(o *config.Options) any { return o.MetricsPort }},
	{"metrics_bind", func(o *config.Options) any { return o.MetricsBind }},
	{"data_dir", func(o *config.Options) any { return o.DataDir }},
	{"buses.name", busField(func(b config.Bus) any { return b.Name })},
	{"buses.serial_port", busField(func(b config.Bus) any { return b.SerialPort })},
	{"buses.tcp_address", busField(func(b config.Bus) any { return b.TCPAddress })},
	{"buses.baudrate", busField(func(b config.Bus) any { return b.Baudrate })},
	{"buses.scan_on_start", busField(func(b config.Bus) any { return b.ScanOnStart })},
	{"buses.scan_mode", busField(func(b config.Bus) any { return b.ScanMode })},
}
