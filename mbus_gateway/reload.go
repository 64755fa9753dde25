package main

import (
	"context"
	"fmt"
	"reflect"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

// reloads re-reads the options on every SIGHUP until ctx ends.
func (d *daemon) reloads(ctx context.Context) {
	log := d.log.With().Str("component", "reload").Logger()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.set.hup:
		}
		o, err := d.set.reload()
		if err != nil {
			log.Error().Err(err).Msg("options not reloaded: the running ones stay in effect")
			continue
		}
		applied, restart := d.apply(o)
		ev := log.Info()
		if len(restart) > 0 {
			ev = log.Warn().Strs("need_restart", restart)
		}
		ev.Strs("applied", applied).Msg("options reloaded")
	}
}

// apply puts into effect what can change while running: the log level and
// new meters. It returns what it applied, and the options that changed
// but only take effect after a restart (the poller has no way to forget
// or reschedule a meter, and connections are made once).
func (d *daemon) apply(o *config.Options) (applied, restart []string) {
	cur := d.opts
	if o.LogLevel != cur.LogLevel {
		if err := d.level.set(o.LogLevel); err == nil {
			cur.LogLevel = o.LogLevel
			applied = append(applied, "log_level")
		}
	}
	for _, f := range restartOptions {
		if !reflect.DeepEqual(f.get(cur), f.get(o)) {
			restart = append(restart, f.key)
		}
	}

	old := map[string]config.Meter{}
	for _, m := range cur.Meters {
		old[m.Address.String()] = m
	}
	var fresh []poll.Meter
	for i, m := range o.Meters {
		prev, ok := old[m.Address.String()]
		delete(old, m.Address.String())
		switch {
		case !ok:
			fresh = append(fresh, pollMeter(m))
			cur.Meters = append(cur.Meters, m)
		case prev != m:
			restart = append(restart, fmt.Sprintf("meters[%d] (%s)", i, m.Address))
		}
	}
	for addr := range old {
		restart = append(restart, "meters: removed "+addr)
	}
	if len(fresh) > 0 {
		n, err := d.poller.AddMeters(fresh...)
		if err != nil {
			restart = append(restart, "meters: "+err.Error())
		} else {
			applied = append(applied, fmt.Sprintf("meters: %d added", n))
		}
	}
	return applied, restart
}

// restartOptions are the options that take effect at the next start only.
var restartOptions = []struct {
	key string
	get func(*config.Options) any
}{
	{"serial_port", func(o *config.Options) any { return o.SerialPort }},
	{"tcp_address", func(o *config.Options) any { return o.TCPAddress }},
	{"baudrate", func(o *config.Options) any { return o.Baudrate }},
	{"poll_interval", func(o *config.Options) any { return o.PollInterval }},
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
	{"data_dir", func(o *config.Options) any { return o.DataDir }},
}
