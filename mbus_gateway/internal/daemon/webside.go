package daemon

import (
	"context"
	"fmt"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/web"
)

// webSide is what the web server checks: the store once the database is
// open; before, why it does not open.
type webSide struct{ d *daemon }

// busSide is what the web server shows and acts on for bus i: its parts
// once the database is open; before, answers that say why nothing is read
// yet (an empty bus, actions refused).
type busSide struct {
	d *daemon
	i int
}

// parts are the bus's parts, nil before the database is open.
func (s busSide) parts() *busParts {
	if p := s.d.parts.Load(); p != nil {
		return p.buses[s.i]
	}
	return nil
}

// Snapshot is the poller's, or an unread bus.
func (s busSide) Snapshot() poll.Snapshot {
	if b := s.parts(); b != nil {
		return b.poller.Snapshot()
	}
	return s.d.wait.snapshot()
}

// ReadNow reads a meter once the database is open.
func (s busSide) ReadNow(ctx context.Context, meter string) (reading.Reading, error) {
	if b := s.parts(); b != nil {
		return b.poller.ReadNow(ctx, meter)
	}
	return reading.Reading{}, fmt.Errorf("read %s: %w", meter, s.d.wait.err())
}

// Scan scans the bus once the database is open.
func (s busSide) Scan(ctx context.Context, mode string, progress func(poll.ScanProgress)) ([]master.Found, error) {
	if b := s.parts(); b != nil {
		return b.poller.Scan(ctx, mode, progress)
	}
	return nil, fmt.Errorf("scan: %w", s.d.wait.err())
}

// AddMeter adds a meter once the database is open: it is kept there.
func (s busSide) AddMeter(ctx context.Context, address, name string) error {
	if b := s.parts(); b != nil {
		return b.adder.AddMeter(ctx, address, name)
	}
	return fmt.Errorf("add meter %s: %w", address, s.d.wait.err())
}

// Check is the store's health probe; before it opens, why it does not.
func (s webSide) Check(ctx context.Context) error {
	if p := s.d.parts.Load(); p != nil {
		return p.store.Check(ctx)
	}
	return s.d.wait.err()
}

// depth counts the outbox; before the database opens, why it cannot.
func (s webSide) depth(ctx context.Context) (int, error) {
	if p := s.d.parts.Load(); p != nil {
		return p.store.Depth(ctx)
	}
	return 0, s.d.wait.err()
}

var (
	_ web.Poller     = busSide{}
	_ web.MeterAdder = busSide{}
	_ web.Checker    = webSide{}
)
