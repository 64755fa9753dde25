package web

import (
	"context"
	"runtime"
	"strconv"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// Status is the JSON document of GET /status and of every event on
// GET /events. Its shape is a contract: the page, tests and users' scripts
// read it.
type Status struct {
	// Time is when the document was made (server clock), so that clients
	// can show ages without trusting their own clock.
	Time     time.Time `json:"time"`
	Versions Versions  `json:"versions"`
	// Bus and Scan are the first bus's; Buses lists every bus (one
	// entry for the single-bus options).
	Bus    BusStatus     `json:"bus"`
	Scan   ScanStatus    `json:"scan"`
	Buses  []BusEntry    `json:"buses"`
	Outbox OutboxStatus  `json:"outbox"`
	Broker *BrokerStatus `json:"broker"` // null when not known
	Meters []MeterStatus `json:"meters"`
	// Warnings are problems the user should act on (Options.Warnings);
	// an empty list when there are none.
	Warnings []string `json:"warnings"`
	// Salvage tells what was saved from a corrupt database moved aside at
	// start; absent when there was none in this run.
	Salvage *Salvage `json:"salvage,omitempty"`
}

// Salvage is what the gateway took over from a corrupt database file
// before starting with a new one.
type Salvage struct {
	// File is where the corrupt file was moved to.
	File string `json:"file"`
	// Saved readings went into the new outbox; Lost ones could not be
	// read, and LostKnown is false when even their number is unknown.
	Saved     int  `json:"saved"`
	Lost      int  `json:"lost"`
	LostKnown bool `json:"lost_known"`
	// Error says why the salvage failed, if it did.
	Error string `json:"error,omitempty"`
}

// Versions of the running program.
type Versions struct {
	Gateway string `json:"gateway"`
	Go      string `json:"go"`
}

// BusStatus is the bus adapter (BusInfo, flattened into the object) and
// the poller's view of it.
type BusStatus struct {
	// Name is the bus's name; empty when the gateway was given no names.
	Name string `json:"name,omitempty"`
	BusInfo
	// State is the bus health's (package bushealth): up, suspect, down
	// or reopening; Since is when it was entered.
	State     string    `json:"state"`
	Since     time.Time `json:"since,omitzero"`
	Polls     uint64    `json:"polls"`
	Errors    uint64    `json:"errors"`
	LastError string    `json:"last_error,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
	// Load is the share of bus time the schedule needs; above 1 the
	// intervals cannot all be kept.
	Load float64 `json:"load"`
}

// BusEntry is one bus in Status.Buses: its state and the scan started on
// it from the page.
type BusEntry struct {
	BusStatus
	Scan ScanStatus `json:"scan"`
}

// ScanStatus is the running or last scan started from the page.
type ScanStatus struct {
	Running  bool              `json:"running"`
	Mode     string            `json:"mode,omitempty"`
	Progress poll.ScanProgress `json:"progress"`
	Started  time.Time         `json:"started,omitzero"`
	Finished time.Time         `json:"finished,omitzero"`
	Error    string            `json:"error,omitempty"`
	// Found lists the meters the last scan found, in bus order.
	Found []FoundMeter `json:"found"`
}

// FoundMeter is one meter a scan found.
type FoundMeter struct {
	// Address is what to add the meter with: the secondary address when
	// known (it survives re-addressing), else the primary one.
	Address string `json:"address"`
	// Primary is the primary address, -1 when found by secondary address.
	Primary      int    `json:"primary"`
	Secondary    string `json:"secondary,omitempty"`
	ID           string `json:"id,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Medium       string `json:"medium,omitempty"`
	// Collision reports several meters answering at one primary address:
	// adding that address would read whichever answers.
	Collision bool `json:"collision"`
	// Configured tells that a configured meter has this address.
	Configured bool `json:"configured"`
}

// OutboxStatus is the queue of readings between bus and broker.
type OutboxStatus struct {
	// Depth counts readings stored but not yet acknowledged by the
	// broker; null when it could not be counted (see Error).
	Depth *int   `json:"depth"`
	Error string `json:"error,omitempty"`
	// Pending counts readings the poller holds because the store refused
	// them; Failing is true while it does.
	Pending int    `json:"pending"`
	Failing bool   `json:"failing"`
	Dropped uint64 `json:"dropped"`
	// LastError is the store's last refusal.
	LastError string `json:"last_error,omitempty"`
}

// MeterStatus is one configured meter.
type MeterStatus struct {
	// ID is the identifier used in topics, e.g. "kam_06855817".
	ID string `json:"id"`
	// Bus is the name of the meter's bus, as in BusStatus.
	Bus             string  `json:"bus,omitempty"`
	Address         string  `json:"address"`
	Name            string  `json:"name,omitempty"`
	Manufacturer    string  `json:"manufacturer,omitempty"`
	Medium          string  `json:"medium,omitempty"`
	Enabled         bool    `json:"enabled"`
	IntervalSeconds float64 `json:"interval_seconds"`
	// LastRead is the last attempt, LastSuccess the last good read.
	LastRead    time.Time `json:"last_read,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	NextDue     time.Time `json:"next_due,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	DecodeError string    `json:"decode_error,omitempty"`
	// Breaker is "closed", "half_open" or "open"; Failures counts
	// consecutive failed reads.
	Breaker  string `json:"breaker"`
	Failures int    `json:"failures"`
	// Header and Values are the decoding of the last good read (the
	// records in telegram order, as `decode --format json` gives them).
	Header *mbus.Header  `json:"header,omitempty"`
	Values []mbus.Record `json:"values"`
	// Guard is what the guard decided on the totals of that read, by
	// key (reading.Reading.Guard): values held back or passed on as a
	// meter reset.
	Guard map[string]reading.Guarded `json:"guard,omitempty"`
	// Raw holds the frames of the last answer as hex, for bug reports.
	Raw []string `json:"raw,omitempty"`
}

// status assembles the document. Outbox and broker come from callbacks
// that may block briefly; ctx bounds them.
func (s *Server) status(ctx context.Context) Status {
	st := Status{
		Time:     time.Now().UTC(),
		Versions: Versions{Gateway: s.o.Version, Go: runtime.Version()},
		Buses:    make([]BusEntry, 0, len(s.buses)),
		Meters:   []MeterStatus{},
		Warnings: []string{},
	}
	for _, b := range s.buses {
		snap := b.Poller.Snapshot()
		e := BusEntry{BusStatus: BusStatus{
			Name:      b.Name,
			State:     snap.Bus.State,
			Since:     snap.Bus.Since,
			Polls:     snap.Bus.Polls,
			Errors:    snap.Bus.Errors,
			LastError: snap.Bus.LastError,
			RetryAt:   snap.Bus.RetryAt,
			Load:      snap.Load,
		}}
		if b.Info != nil {
			e.BusInfo = b.Info()
		}
		st.Outbox.Pending += snap.Sink.Pending
		st.Outbox.Failing = st.Outbox.Failing || snap.Sink.Failing
		st.Outbox.Dropped += snap.Sink.Dropped
		if st.Outbox.LastError == "" {
			st.Outbox.LastError = snap.Sink.LastError
		}
		for _, m := range snap.Meters {
			ms := meterStatus(m)
			ms.Bus = b.Name
			st.Meters = append(st.Meters, ms)
		}
		s.mu.Lock()
		e.Scan = b.scan
		e.Scan.Found = markConfigured(b.scan.Found, snap.Meters)
		s.mu.Unlock()
		st.Buses = append(st.Buses, e)
	}
	st.Bus, st.Scan = st.Buses[0].BusStatus, st.Buses[0].Scan
	if s.o.Warnings != nil {
		st.Warnings = append(st.Warnings, s.o.Warnings()...)
	}
	if s.o.Salvage != nil {
		st.Salvage = s.o.Salvage()
	}
	if s.o.Broker != nil {
		b := s.o.Broker()
		st.Broker = &b
	}
	if s.o.OutboxDepth != nil {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		n, err := s.o.OutboxDepth(cctx)
		cancel()
		if err != nil {
			st.Outbox.Error = err.Error()
		} else {
			st.Outbox.Depth = &n
		}
	}
	return st
}

func meterStatus(m poll.MeterStatus) MeterStatus {
	ms := MeterStatus{
		ID:              m.Meter,
		Address:         m.Address,
		Name:            m.Name,
		Manufacturer:    m.Manufacturer,
		Medium:          m.Medium,
		Enabled:         m.Enabled,
		IntervalSeconds: m.IntervalSeconds,
		LastRead:        m.LastRead,
		LastSuccess:     m.LastSuccess,
		NextDue:         m.NextDue,
		LastError:       m.LastError,
		DecodeError:     m.DecodeError,
		Breaker:         m.Breaker.String(),
		Failures:        m.Failures,
		Values:          []mbus.Record{},
		Raw:             m.Raw,
	}
	if m.Reading != nil {
		h := m.Reading.Header
		ms.Header = &h
		if m.Reading.Records != nil {
			ms.Values = m.Reading.Records
		}
		ms.Guard = m.Reading.Guard
	}
	return ms
}

// foundMeters converts scan results.
func foundMeters(found []master.Found) []FoundMeter {
	out := make([]FoundMeter, 0, len(found))
	for _, f := range found {
		fm := FoundMeter{Primary: f.Primary, Collision: f.Collision}
		if f.Secondary != (mbus.SecondaryAddress{}) {
			sec := f.Secondary
			fm.Secondary = sec.String()
			fm.ID = sec.ID()
			fm.Manufacturer = mbus.ManufacturerName(sec.ManufacturerCode())
			fm.Medium = sec.Medium().String()
			fm.Address = fm.Secondary
		} else {
			fm.Address = strconv.Itoa(max(f.Primary, 0))
		}
		out = append(out, fm)
	}
	return out
}

// markConfigured copies found and flags the meters already configured,
// by address or by the secondary address in their last header.
func markConfigured(found []FoundMeter, meters []poll.MeterStatus) []FoundMeter {
	out := make([]FoundMeter, len(found))
	known := make(map[string]bool, 2*len(meters))
	for _, m := range meters {
		known[m.Address] = true
		if m.Reading != nil && m.Reading.Header.Address != (mbus.SecondaryAddress{}) {
			known[m.Reading.Header.Address.String()] = true
		}
	}
	for i, f := range found {
		f.Configured = known[f.Address] || (f.Secondary != "" && known[f.Secondary]) ||
			(f.Primary >= 0 && known[strconv.Itoa(f.Primary)])
		out[i] = f
	}
	return out
}
