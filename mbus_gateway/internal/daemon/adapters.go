package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mqtt"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/web"
)

// notifier of new outbox rows; *mqtt.Client implements it.
type rowNotifier interface{ Notify() }

// outboxSink is the poller's Sink: it commits each reading to the outbox
// and then wakes the MQTT client, so that a reading is durable before
// anyone tries to publish it.
type outboxSink struct {
	store  *store.Store
	notify rowNotifier
}

// Deliver commits r and tells the publisher.
func (s *outboxSink) Deliver(ctx context.Context, r reading.Reading) error {
	if _, err := s.store.Enqueue(ctx, r); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	s.notify.Notify()
	return nil
}

// storedReadings gives the poller each meter's last reading of the
// previous run, which carries the guard's state (poll.Options.Previous).
func storedReadings(ctx context.Context, s *store.Store) (func(string) (reading.Reading, bool), error) {
	rs, err := s.LastReadings(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	last := make(map[string]reading.Reading, len(rs))
	for _, r := range rs {
		last[r.Meter] = r
	}
	return func(meter string) (reading.Reading, bool) {
		r, ok := last[meter]
		return r, ok
	}, nil
}

// meterAdder is the status page's MeterAdder: it keeps the meter in the
// store's table of added meters, then schedules it. It also records it
// among the found meters, which the page
// and the next start list. Reloads replace the poller's meters through it
// too, so that a meter added meanwhile is not lost.
type meterAdder struct {
	poller *poll.Poller
	store  *store.Store
	bus    *bus

	// mu serializes changes of the meter list (the check for a meter
	// already read, the store's rows, the poller's meters) and guards
	// interval.
	mu       sync.Mutex
	interval time.Duration // of meters without their own: poll_interval
}

// AddMeter adds the meter at address (checked by the caller) named name.
func (a *meterAdder) AddMeter(ctx context.Context, address, name string) error {
	addr, err := mbus.ParseAddress(address)
	if err != nil {
		return fmt.Errorf("add meter: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	key := addr.String()
	for _, m := range a.poller.Snapshot().Meters {
		if m.Address == key {
			return fmt.Errorf("add meter %s: %w", key, web.ErrMeterExists)
		}
	}
	if err := a.store.AddMeter(ctx, store.AddedMeter{Bus: a.bus.key, Address: key, Name: name}); err != nil {
		return fmt.Errorf("add meter %s: %w", key, err)
	}
	f := foundOf(addr, time.Now())
	f.Bus = a.bus.key
	if err := a.store.SaveFound(ctx, []store.Found{f}); err != nil {
		return fmt.Errorf("add meter %s: %w", key, err)
	}
	if _, err := a.poller.AddMeters(poll.Meter{Address: addr, Name: name, Interval: a.interval, Enabled: true}); err != nil {
		return fmt.Errorf("add meter %s: %w", key, err)
	}
	return nil
}

// setMeters gives the poller the meters a start with o would read on its
// bus: those of the options, those added on the status page and, without
// configured meters, those found by a scan (see startMeters).
func (a *meterAdder) setMeters(ctx context.Context, o *config.Options) (poll.MeterChanges, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ms, err := startMeters(ctx, o, a.bus, a.store)
	if err != nil {
		return poll.MeterChanges{}, err
	}
	ch, err := a.poller.SetMeters(ms...)
	if err != nil {
		return ch, err
	}
	a.interval = o.PollInterval
	return ch, nil
}

// addFound reads the meters a scan found, with the interval in effect,
// once they are stored (saveErr says they could not be; they are read in
// this run all the same).
func (a *meterAdder) addFound(ctx context.Context, found []store.Found) (added int, saveErr, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range found {
		found[i].Bus = a.bus.key
	}
	saveErr = a.store.SaveFound(ctx, found)
	ms := make([]poll.Meter, 0, len(found))
	for _, f := range found {
		if addr, err := mbus.ParseAddress(f.Address); err == nil {
			ms = append(ms, poll.Meter{Address: addr, Interval: a.interval, Enabled: true})
		}
	}
	added, err = a.poller.AddMeters(ms...)
	return added, saveErr, err
}

// foundOf describes a meter at addr for the store's list of found meters.
func foundOf(addr mbus.Address, now time.Time) store.Found {
	f := store.Found{Address: addr.String(), Primary: -1, FirstSeen: now, LastSeen: now}
	if !addr.IsSecondary {
		f.Primary = int(addr.Primary)
		return f
	}
	describeSecondary(&f, addr.Secondary)
	return f
}

// foundFromScan converts what a scan found. A meter with a known secondary
// address is kept by it (it survives re-addressing); several meters on
// one primary address without a secondary address cannot be read apart
// and are left out.
func foundFromScan(found []master.Found, now time.Time) []store.Found {
	var out []store.Found
	var zero mbus.SecondaryAddress
	for _, m := range found {
		f := store.Found{Primary: m.Primary, FirstSeen: now, LastSeen: now}
		switch {
		case m.Secondary != zero && !m.Secondary.IsPattern():
			f.Address = m.Secondary.String()
			describeSecondary(&f, m.Secondary)
		case m.Collision || m.Primary < 0 || m.Primary > mbus.AddrMaxPrimary:
			continue
		default:
			f.Address = mbus.Address{Primary: byte(m.Primary)}.String()
		}
		out = append(out, f)
	}
	return out
}

// describeSecondary fills what a secondary address tells about its meter.
func describeSecondary(f *store.Found, a mbus.SecondaryAddress) {
	f.Secondary = a.String()
	f.Manufacturer = mbus.ManufacturerName(a.ManufacturerCode())
	f.Medium = a.Medium().String()
}

var (
	_ poll.Sink         = (*outboxSink)(nil)
	_ poll.Bus          = (*master.Master)(nil)
	_ poll.Availability = (*mqtt.Client)(nil)
	_ rowNotifier       = (*mqtt.Client)(nil)
	_ web.MeterAdder    = (*meterAdder)(nil)
	_ web.Checker       = (*store.Store)(nil)
)
