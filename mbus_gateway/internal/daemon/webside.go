package daemon

import (
	"context"
	"fmt"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/web"
)

// webSide is what the web server acts on: the running parts once the
// database is open; before, answers that say why nothing is read yet
// (an empty bus, actions refused, an unhealthy store).
type webSide struct{ d *daemon }

// Snapshot is the poller's, or an unread bus.
func (s webSide) Snapshot() poll.Snapshot {
	if p := s.d.parts.Load(); p != nil {
		return p.poller.Snapshot()
	}
	return s.d.wait.snapshot()
}

// ReadNow reads a meter once the database is open.
func (s webSide) ReadNow(ctx context.Context, meter string) (reading.Reading, error) {
	if p := s.d.parts.Load(); p != nil {
		return p.poller.ReadNow(ctx, meter)
	}
	return reading.Reading{}, fmt.Errorf("read %s: %w", meter, s.d.wait.err())
}

// Scan scans the bus once the database is open.
func (s webSide) Scan(ctx context.Context, mode string, progress func(poll.ScanProgress)) ([]master.Found, error) {
	if p := s.d.parts.Load(); p != nil {
		return p.poller.Scan(ctx, mode, progress)
	}
	return nil, fmt.Errorf("scan: %w", s.d.wait.err())
}

// AddMeter adds a meter once the database is open: it is kept there.
func (s webSide) AddMeter(ctx context.Context, address, name string) error {
	if p := s.d.parts.Load(); p != nil {
		return p.adder.AddMeter(ctx, address, name)
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
	_ web.Poller     = webSide{}
	_ web.MeterAdder = webSide{}
	_ web.Checker    = webSide{}
)
