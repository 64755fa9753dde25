package daemon

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// startMeters lists the meters to read from the start: the configured
// ones and those added on the status page; with no meters configured also
// those an earlier scan found, so that scan_on_start scans only once.
func startMeters(ctx context.Context, o *config.Options, s *store.Store) ([]poll.Meter, error) {
	ms := make([]poll.Meter, 0, len(o.Meters))
	seen := map[string]bool{}
	add := func(m poll.Meter) {
		if key := m.Address.String(); !seen[key] {
			seen[key] = true
			ms = append(ms, m)
		}
	}
	for _, m := range o.Meters {
		add(pollMeter(m))
	}
	added, err := s.AddedMeters(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range added {
		if addr, err := mbus.ParseAddress(a.Address); err == nil {
			add(poll.Meter{Address: addr, Name: a.Name, Interval: o.PollInterval, Enabled: true})
		}
	}
	if len(o.Meters) > 0 {
		return ms, nil
	}
	found, err := s.Found(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range found {
		if addr, err := mbus.ParseAddress(f.Address); err == nil {
			add(poll.Meter{Address: addr, Interval: o.PollInterval, Enabled: true})
		}
	}
	return ms, nil
}

// pollMeter converts a configured meter.
func pollMeter(m config.Meter) poll.Meter {
	return poll.Meter{Address: m.Address, Name: m.Name, Interval: m.PollInterval, Baud: m.Baudrate, Enabled: m.Enabled}
}

// scanOnStart scans the bus once (no meters known yet), keeps the result
// in the store and reads what it found. A failed scan is logged; the
// gateway keeps running, and a scan can be started from the status page or
// the gateway device in Home Assistant.
func (d *daemon) scanOnStart(ctx context.Context, p *parts) {
	log := d.scanLog()
	log.Info().Msg("no meters configured: scanning the bus")
	_ = d.scanAndAdd(ctx, p) // logged there; the gateway runs on without meters
}

// scanLog is the logger of bus scans.
func (d *daemon) scanLog() zerolog.Logger {
	return d.log.With().Str("component", "scan").Str("mode", d.opts.ScanMode).Logger()
}

// scanAndAdd scans the bus in the configured mode, keeps what it found in
// the store and starts reading the new meters. Its outcome is logged; the
// error is for callers that report it elsewhere.
func (d *daemon) scanAndAdd(ctx context.Context, p *parts) error {
	log := d.scanLog()
	found, err := p.poller.Scan(ctx, d.opts.ScanMode, func(p poll.ScanProgress) {
		log.Debug().Int("done", p.Done).Int("total", p.Total).Int("found", p.Found).Msg("scan progress")
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		log.Error().Err(err).Int("found", len(found)).Msg("scan failed")
	}
	meters := foundFromScan(found, time.Now())
	if len(meters) == 0 {
		log.Warn().Msg("scan found no meters: check wiring and baud rate, or list the meters in the options")
		return err
	}
	for _, f := range meters {
		log.Info().Str("meter", f.Address).Str("manufacturer", f.Manufacturer).Str("medium", f.Medium).Msg("found")
	}
	n, saveErr, addErr := p.adder.addFound(ctx, meters)
	if saveErr != nil {
		log.Error().Err(saveErr).Msg("cannot keep the scan result; it is used for this run only")
	}
	if addErr != nil {
		log.Error().Err(addErr).Msg("cannot read the meters found")
		return addErr
	}
	log.Info().Int("found", len(meters)).Int("added", n).Msg("scan done")
	return err
}

// bridgeControl carries out the commands of the gateway device in Home
// Assistant.
type bridgeControl struct {
	d *daemon
	p *parts
}

func (c bridgeControl) ReadAll(ctx context.Context) error { return c.p.poller.ReadAll(ctx) }

func (c bridgeControl) ReadNow(ctx context.Context, meter string) error {
	_, err := c.p.poller.ReadNow(ctx, meter)
	return err
}

func (c bridgeControl) Scan(ctx context.Context, _ string) error { return c.d.scanAndAdd(ctx, c.p) }
