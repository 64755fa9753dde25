package poll

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// Snapshot is a copy of the poller's state for /status and the status
// page; it shares nothing with the poller.
type Snapshot struct {
	Bus  BusStatus  `json:"bus"`
	Scan ScanStatus `json:"scan"`
	Sink SinkStatus `json:"sink"`
	// Load is the share of bus time the schedule needs (see
	// EstimateReadTime); above 1 the intervals cannot all be kept.
	Load   float64       `json:"bus_load"`
	Meters []MeterStatus `json:"meters"`
}

// BusStatus describes the bus as a whole: the bus health's state, and
// the poller's counts.
type BusStatus struct {
	// State is a bushealth.State name: up, suspect, down or reopening.
	State     string    `json:"state"`
	Since     time.Time `json:"since,omitzero"`
	Polls     uint64    `json:"polls"`
	Errors    uint64    `json:"errors"`
	LastError string    `json:"last_error,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
}

// ScanStatus describes the running or last scan.
type ScanStatus struct {
	Running   bool         `json:"running"`
	Progress  ScanProgress `json:"progress"`
	Started   time.Time    `json:"started,omitzero"`
	Finished  time.Time    `json:"finished,omitzero"`
	Found     int          `json:"found"`
	LastError string       `json:"last_error,omitempty"`
}

// SinkStatus describes delivery to the outbox. Failures there are
// serious (the outbox is the local database), so health checks should
// look at Failing.
type SinkStatus struct {
	Failing       bool      `json:"failing"`
	Pending       int       `json:"pending"`
	Errors        uint64    `json:"errors"`
	Dropped       uint64    `json:"dropped"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// MeterStatus describes one meter.
type MeterStatus struct {
	Address string `json:"address"`
	Name    string `json:"name,omitempty"`
	Meter   string `json:"meter"`
	// Identified is set once Meter is the meter's identity (stored, or
	// from its first good answer); before, Meter only names it here and
	// no topic carries it.
	Identified      bool    `json:"identified"`
	Manufacturer    string  `json:"manufacturer,omitempty"`
	Medium          string  `json:"medium,omitempty"`
	Enabled         bool    `json:"enabled"`
	IntervalSeconds float64 `json:"interval_seconds"`
	// ReadSeconds is how long the last successful read took.
	ReadSeconds float64   `json:"read_seconds,omitempty"`
	LastRead    time.Time `json:"last_read,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Reading is the last good reading, nil before the first.
	Reading *reading.Reading `json:"reading,omitempty"`
	// Raw holds the telegrams of the last answer as hex.
	Raw         []string     `json:"raw,omitempty"`
	DecodeError string       `json:"decode_error,omitempty"`
	LastError   string       `json:"last_error,omitempty"`
	Failures    int          `json:"failures"`
	Breaker     BreakerState `json:"breaker"`
	NextDue     time.Time    `json:"next_due,omitzero"`
}

// Snapshot returns a copy of the current state.
func (p *Poller) Snapshot() Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	bus := p.opts.Health.Snapshot()
	s := Snapshot{
		Bus: BusStatus{
			State:     bus.State.String(),
			Since:     bus.Since,
			Polls:     p.busPolls,
			Errors:    p.busErrors,
			LastError: bus.LastError,
			RetryAt:   bus.RetryAt,
		},
		Scan:   p.scan,
		Sink:   p.sinkStatus,
		Load:   busLoad(p.meters, p.opts.Baud),
		Meters: make([]MeterStatus, 0, len(p.meters)),
	}
	s.Sink.Pending = len(p.pending)
	for _, m := range p.meters {
		s.Meters = append(s.Meters, m.status(p.effectiveDue(m, bus)))
	}
	return s
}

// status copies m; the caller holds the poller's lock.
func (m *meterState) status(nextDue time.Time) MeterStatus {
	st := MeterStatus{
		Address:         m.addr,
		Name:            m.cfg.Name,
		Meter:           m.id,
		Identified:      m.ident != nil,
		Enabled:         m.cfg.Enabled,
		IntervalSeconds: m.cfg.Interval.Seconds(),
		ReadSeconds:     m.readTime.Seconds(),
		LastRead:        m.lastRead,
		LastSuccess:     m.lastSuccess,
		DecodeError:     m.decodeErr,
		LastError:       m.lastErr,
		Failures:        m.breaker.Failures(),
		Breaker:         m.breaker.State(),
	}
	if m.cfg.Enabled {
		st.NextDue = nextDue
	}
	if m.last != nil {
		r := *m.last
		r.Records = cloneRecords(r.Records)
		st.Reading = &r
		st.Manufacturer = r.Header.Manufacturer
		st.Medium = r.Header.Medium.String()
	}
	for _, raw := range m.raw {
		st.Raw = append(st.Raw, hex.EncodeToString(raw))
	}
	return st
}

// Warnings lists what the user should know about the bus: poll
// intervals that need more bus time than there is, meters that share
// their manufacturer and ID, meters replaced since the start, and the
// newest meter resets the guard confirmed. Empty when all is well.
func (p *Poller) Warnings() []string {
	p.mu.Lock()
	load := busLoad(p.meters, p.opts.Baud)
	out := append(p.identityWarningsLocked(), p.resets...)
	p.mu.Unlock()
	if load <= 1 {
		return out
	}
	return append([]string{fmt.Sprintf("poll intervals need %.0f %% of the bus time: meters are read less often than configured; lengthen poll_interval or disable meters", 100*load)}, out...)
}
