package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// ScanRequest is the body of POST /scan.
type ScanRequest struct {
	// Mode is "primary" or "secondary".
	Mode string `json:"mode"`
	// Bus names the bus to scan; empty means the first one.
	Bus string `json:"bus,omitempty"`
}

// AddRequest is the body of POST /meters.
type AddRequest struct {
	// Address is a primary address "0"-"250" or 16 hex digits.
	Address string `json:"address"`
	// Name is optional, at most 64 characters, no control characters.
	Name string `json:"name"`
	// Bus names the meter's bus; empty means the first one.
	Bus string `json:"bus,omitempty"`
}

// ReadResult is the answer of POST /meters/{meter}/read.
type ReadResult struct {
	Reading reading.Reading `json:"reading"`
}

// handleScan starts a scan in the background and answers 202 with the
// scan state; progress arrives on /events and /status. A second scan
// while one runs gets 409.
func (s *Server) handleScan(w http.ResponseWriter, r *http.Request) {
	var req ScanRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Mode != poll.ScanPrimary && req.Mode != poll.ScanSecondary {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("scan mode %q: want primary or secondary", req.Mode))
		return
	}
	b, err := s.bus(req.Bus)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	pollerBusy := b.Poller.Snapshot().Scan.Running
	s.mu.Lock()
	busy := pollerBusy || b.scan.Running
	if !busy {
		b.scan = ScanStatus{Running: true, Mode: req.Mode, Started: time.Now().UTC(),
			Progress: poll.ScanProgress{Mode: req.Mode}, Found: []FoundMeter{}}
		s.jobs.Add(1)
	}
	st := b.scan
	s.mu.Unlock()
	if busy {
		writeError(w, http.StatusConflict, "a scan is already running; wait for it to finish")
		return
	}
	s.notify()
	go s.runScan(b, req.Mode)
	writeJSON(w, http.StatusAccepted, st)
}

// runScan runs one scan on the server's context: it outlives the
// request that started it and ends with Run.
func (s *Server) runScan(b *busSide, mode string) {
	defer s.jobs.Done()
	found, err := b.Poller.Scan(s.ctx, mode, func(p poll.ScanProgress) {
		s.mu.Lock()
		b.scan.Progress = p
		s.mu.Unlock()
		s.notify()
	})
	s.mu.Lock()
	b.scan.Running = false
	b.scan.Finished = time.Now().UTC()
	b.scan.Found = foundMeters(found)
	if err != nil {
		if errors.Is(err, poll.ErrScanRunning) {
			b.scan.Error = "a scan is already running; wait for it to finish"
		} else {
			b.scan.Error = err.Error()
		}
	}
	s.mu.Unlock()
	s.notify()
	if err != nil {
		s.log.Warn().Err(err).Str("mode", mode).Str("bus", b.Name).Msg("scan from page failed")
	}
}

// handleAdd adds a meter, typically one a scan found.
func (s *Server) handleAdd(w http.ResponseWriter, r *http.Request) {
	var req AddRequest
	if !decodeBody(w, r, &req) {
		return
	}
	addr, err := mbus.ParseAddress(strings.TrimSpace(req.Address))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	name := strings.TrimSpace(req.Name)
	if err := checkName(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	b, err := s.bus(req.Bus)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req = AddRequest{Address: addr.String(), Name: name, Bus: b.Name}
	if err := b.Adder.AddMeter(r.Context(), req.Address, req.Name); err != nil {
		if errors.Is(err, ErrMeterExists) {
			writeError(w, http.StatusConflict, err.Error())
			return
		}
		s.log.Error().Err(err).Str("address", req.Address).Msg("adding meter failed")
		writeError(w, http.StatusInternalServerError, "adding the meter failed: "+err.Error())
		return
	}
	s.log.Info().Str("address", req.Address).Str("name", req.Name).Str("bus", b.Name).Msg("meter added from page")
	s.notify()
	writeJSON(w, http.StatusCreated, req)
}

// checkName accepts what can safely be a Home Assistant device name. The
// JSON decoder has already replaced invalid UTF-8.
func checkName(name string) error {
	if n := utf8.RuneCountInString(name); n > maxNameRunes {
		return fmt.Errorf("name: %d characters, at most %d allowed", n, maxNameRunes)
	}
	for _, c := range name {
		if unicode.IsControl(c) {
			return errors.New("name: control characters are not allowed")
		}
	}
	return nil
}

// handleRead reads one meter now and answers with the reading. A meter
// that does not answer gives 504, an unknown one 404. The meter is looked
// for on each bus in turn: identifiers are unique across buses, an
// address is the first bus's that has a meter there.
func (s *Server) handleRead(w http.ResponseWriter, r *http.Request) {
	if !requireJSON(w, r) {
		return
	}
	if r.ContentLength != 0 {
		var none struct{}
		if !decodeBody(w, r, &none) {
			return
		}
	}
	// The read may take longer than a request is given; the request has
	// been read, so only the answer needs time.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(readTimeout + s.limits.write))
	meter := r.PathValue("meter")
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	var rd reading.Reading
	err := poll.ErrUnknownMeter
	for _, b := range s.buses {
		if rd, err = b.Poller.ReadNow(ctx, meter); !errors.Is(err, poll.ErrUnknownMeter) {
			break
		}
	}
	switch {
	case errors.Is(err, poll.ErrUnknownMeter):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no meter %q", meter))
		return
	case err != nil:
		writeError(w, http.StatusGatewayTimeout, err.Error())
		return
	}
	s.notify()
	writeJSON(w, http.StatusOK, ReadResult{Reading: rd})
}

// requireJSON answers 415 unless r says its body is JSON. Every POST
// must: a browser sends that content type across sites only after asking
// the server (CORS preflight), which this server never allows.
func requireJSON(w http.ResponseWriter, r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		msg := fmt.Sprintf("content type %q: want application/json", ct)
		if ct == "" {
			msg = "no content type: want application/json"
		}
		writeError(w, http.StatusUnsupportedMediaType, msg)
		return false
	}
	return true
}

// decodeBody reads one JSON object into v, at most maxBody bytes, no
// unknown fields. On failure it has answered and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if !requireJSON(w, r) {
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("data after the JSON object")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
		return false
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "request body: empty, want a JSON object")
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	return true
}
