package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// startMeters lists the meters of bus b to read from the start: the
// configured ones and those added on the status page; with no meters
// configured also those an earlier scan found, so that scan_on_start scans
// only once. The meters come from o's bus of b's name.
func startMeters(ctx context.Context, o *config.Options, b *bus, s *store.Store) ([]poll.Meter, error) {
	configured := busMeters(o, b.cfg.Name)
	ms := make([]poll.Meter, 0, len(configured))
	seen := map[string]bool{}
	add := func(m poll.Meter) {
		if key := m.Address.String(); !seen[key] {
			seen[key] = true
			ms = append(ms, m)
		}
	}
	for _, m := range configured {
		add(pollMeter(m))
	}
	added, err := s.AddedMeters(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range added {
		if !b.owns(a.Bus) {
			continue
		}
		if addr, err := mbus.ParseAddress(a.Address); err == nil {
			add(poll.Meter{Address: addr, Name: a.Name, Interval: o.PollInterval, Enabled: true})
		}
	}
	if len(configured) > 0 {
		return ms, nil
	}
	found, err := s.Found(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range found {
		if !b.owns(f.Bus) {
			continue
		}
		if addr, err := mbus.ParseAddress(f.Address); err == nil {
			add(poll.Meter{Address: addr, Interval: o.PollInterval, Enabled: true})
		}
	}
	return ms, nil
}

// busMeters are the configured meters of the bus named name in o.
func busMeters(o *config.Options, name string) []config.Meter {
	for _, b := range o.AllBuses() {
		if b.Name == name {
			return b.Meters
		}
	}
	return nil
}

// owns reports whether a row stored for the bus key is b's: its own, and
// for the first bus also those stored without a bus (before buses:).
func (b *bus) owns(key string) bool {
	return key == b.key || (b.first && key == "")
}

// pollMeter converts a configured meter.
func pollMeter(m config.Meter) poll.Meter {
	return poll.Meter{Address: m.Address, Name: m.Name, Interval: m.PollInterval, Baud: m.Baudrate, Enabled: m.Enabled, Unguarded: !m.Guard, Key: m.Key}
}

// scanOnStart scans the bus once (no meters known yet), keeps the result
// in the store and reads what it found. A failed scan is logged; the
// gateway keeps running, and a scan can be started from the status page or
// the gateway device in Home Assistant.
func (d *daemon) scanOnStart(ctx context.Context, b *busParts) {
	log := b.scanLog()
	log.Info().Msg("no meters configured: scanning the bus")
	_ = d.scanAndAdd(ctx, b) // logged there; the gateway runs on without meters
}

// scanLog is the logger of the bus's scans.
func (b *bus) scanLog() zerolog.Logger {
	return b.log.With().Str("component", "scan").Str("mode", b.cfg.ScanMode).Logger()
}

// scanAndAdd scans the bus in its configured mode, keeps what it found in
// the store and starts reading the new meters. Its outcome is logged; the
// error is for callers that report it elsewhere.
func (d *daemon) scanAndAdd(ctx context.Context, b *busParts) error {
	log := b.scanLog()
	found, err := b.poller.Scan(ctx, b.cfg.ScanMode, func(p poll.ScanProgress) {
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
	n, saveErr, addErr := b.adder.addFound(ctx, meters)
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

// ReadAll queues a read of every meter of every bus.
func (c bridgeControl) ReadAll(ctx context.Context) error {
	var errs []error
	for _, b := range c.p.buses {
		errs = append(errs, b.poller.ReadAll(ctx))
	}
	return errors.Join(errs...)
}

func (c bridgeControl) ReadNow(ctx context.Context, meter string) error {
	return c.p.readNow(ctx, meter)
}

func (c bridgeControl) Scan(ctx context.Context, bus string) error {
	b, err := c.p.busNamed(bus)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	return c.d.scanAndAdd(ctx, b)
}
