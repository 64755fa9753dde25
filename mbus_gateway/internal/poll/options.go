// Package poll owns one M-Bus: a single goroutine reads the configured
// meters on their own schedules, serves on-demand reads and scans in
// between, keeps a circuit breaker per meter and backs off when the bus
// itself (adapter, port, TCP converter) is down, as the bus's health
// (package bushealth) says. Every reading goes to a
// Sink (the outbox) and every change of a meter's availability to an
// Availability reporter.
//
// M-Bus is half duplex with one master (EN 13757-2): two requests on the
// wire at once would collide, so everything that touches the bus is queued
// for the one goroutine that Run executes.
package poll

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
)

// Defaults used by New for zero fields of Options.
const (
	DefaultBaud              = transport.DefaultBaud
	DefaultFailureThreshold  = 3
	DefaultBreakerBase       = 30 * time.Second
	DefaultBreakerMaxBackoff = 30 * time.Minute
	DefaultReadTimeout       = time.Minute
	DefaultShutdownGrace     = 5 * time.Second
	DefaultJitter            = time.Second
	DefaultStartSpread       = time.Minute
	DefaultMaxPending        = 256
)

// Meter is one meter to poll.
type Meter struct {
	// ID names the meter in logs, metrics and the status page until its
	// identity is known (stored, see IdentityStore, or from its first
	// good answer); empty derives a name from the address. No topic ever
	// carries it.
	ID      string
	Address mbus.Address
	// Name is the user's name for the meter, empty if none.
	Name string
	// Interval is the poll period; it must be positive.
	Interval time.Duration
	// Baud is the meter's baud rate; 0 means Options.Baud. A meter at
	// another speed than the bus is read at its own when the Bus is a
	// MeterReader; it also counts in the bus time estimate.
	Baud    int
	Enabled bool
	// Unguarded passes the meter's totals on as read; by default they go
	// through the guard (package guard) before they are delivered.
	Unguarded bool
	// Key is the AES-128 key (32 hex digits) of a meter whose telegrams
	// are encrypted, empty for the others; the Bus must be a MeterReader
	// to use it.
	Key logging.Secret
}

// key returns the meter's key as bytes, nil without one (validateMeters
// checked it).
func (m Meter) key() []byte {
	k, err := hex.DecodeString(string(m.Key))
	if err != nil || len(k) == 0 {
		return nil
	}
	return k
}

// Options configure a Poller. Zero fields take the defaults above.
type Options struct {
	Meters []Meter
	// Baud is the bus baud rate, used to estimate how long a read takes.
	Baud int
	// FailureThreshold is the number of consecutive failed polls that
	// open a meter's breaker.
	FailureThreshold int
	// BreakerMaxBackoff caps the time an open breaker waits before its
	// next probe (the first wait is the meter's interval, at least
	// DefaultBreakerBase, and doubles after each failed probe).
	BreakerMaxBackoff time.Duration
	// Health is the bus's state machine, the one that says whether the
	// bus is down and until when; the poller only reads it (the master
	// and the transport feed it). Nil means a bus that is never down.
	Health Health
	// ReadTimeout bounds one read of one meter (all its telegrams). The
	// link layer has its own per-frame timeouts; this is a safety net.
	ReadTimeout time.Duration
	// ShutdownGrace is how long a read in flight may continue after Run's
	// context is cancelled, so the frame on the wire is finished.
	ShutdownGrace time.Duration
	// Jitter is the upper bound of a random delay added to every due time
	// (capped at a tenth of the meter's interval) so that meters with equal
	// intervals drift apart instead of queueing up. Negative disables it.
	Jitter time.Duration
	// Seed seeds the jitter; the same seed gives the same schedule. Zero
	// picks a random seed.
	Seed uint64
	// StartSpread spreads the first reads: meter i of n is first due
	// i/n of min(StartSpread, its interval) after start. Negative
	// disables spreading.
	StartSpread time.Duration
	// MaxPending bounds the readings kept in memory while the sink fails;
	// beyond it the oldest are dropped, counted and logged.
	MaxPending int
	// Previous returns a meter's newest reading from an earlier run (the
	// store's last state), so that the guard judges the first reading
	// after a start against it rather than accepting any value. nil: none.
	Previous func(meter string) (reading.Reading, bool)
	// BusName names the bus in the stored identities and in the
	// identifiers of meters that share their manufacturer and ID with
	// another (see reading.DistinctID); empty for the only bus.
	BusName string
	// Registry is shared by the pollers of all buses of a gateway, so that
	// no identifier is given twice; nil gives the poller one of its own.
	Registry *Registry
	// Identities keeps the meters' identities across restarts; nil keeps
	// them for this run only.
	Identities IdentityStore
}

// Health tells whether the bus is down; *bushealth.Health implements it.
type Health interface {
	Snapshot() bushealth.Snapshot
}

// withDefaults fills zero fields; it is the one place defaults live.
func (o Options) withDefaults() Options {
	setDefault(&o.Baud, DefaultBaud)
	setDefault(&o.FailureThreshold, DefaultFailureThreshold)
	setDefault(&o.MaxPending, DefaultMaxPending)
	setDefault(&o.BreakerMaxBackoff, DefaultBreakerMaxBackoff)
	setDefault(&o.ReadTimeout, DefaultReadTimeout)
	setDefault(&o.ShutdownGrace, DefaultShutdownGrace)
	setDefault(&o.Jitter, DefaultJitter)
	setDefault(&o.StartSpread, DefaultStartSpread)
	if o.Health == nil {
		o.Health = bushealth.New(bushealth.Options{})
	}
	return o
}

func setDefault[T int | time.Duration](p *T, def T) {
	if *p == 0 {
		*p = def
	}
}

// validate reports every problem of the options at once.
func (o Options) validate() error {
	var errs []error
	if o.Baud < 0 {
		errs = append(errs, fmt.Errorf("baud %d: must be positive", o.Baud))
	}
	if o.FailureThreshold < 0 {
		errs = append(errs, fmt.Errorf("failure threshold %d: must be positive", o.FailureThreshold))
	}
	errs = append(errs, validateMeters(o.Meters))
	return errors.Join(errs...)
}

// aesKeyLen is the length of a meter's key in bytes (AES-128).
const aesKeyLen = 16

// validateMeters checks every meter and that no address is listed twice.
func validateMeters(ms []Meter) error {
	var errs []error
	seen := make(map[string]bool, len(ms))
	for _, m := range ms {
		addr := m.Address.String()
		if m.Interval <= 0 {
			errs = append(errs, fmt.Errorf("meter %s: interval %v: must be positive", addr, m.Interval))
		}
		if m.Baud < 0 {
			errs = append(errs, fmt.Errorf("meter %s: baud %d: must be positive", addr, m.Baud))
		}
		if k, err := hex.DecodeString(string(m.Key)); err != nil || (m.Key != "" && len(k) != aesKeyLen) {
			// The key itself stays out of the message.
			errs = append(errs, fmt.Errorf("meter %s: key: want %d hex digits", addr, 2*aesKeyLen))
		}
		if seen[addr] {
			errs = append(errs, fmt.Errorf("meter %s: address listed twice", addr))
		}
		seen[addr] = true
	}
	return errors.Join(errs...)
}
