package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// handleEvents streams the status document as server-sent events (event
// name "status"): at once, then whenever it changes (checked every
// Options.Refresh, and at once after a scan step, an added meter or a
// read) and at least every Options.Keepalive. The stream ends when the
// client goes away or the server stops.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The stream outlives a request's read and write time: no read
	// deadline (a read error would end the stream), and one per event.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tell buffering proxies to pass events on
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	ctx := r.Context()
	tick := time.NewTicker(s.o.Refresh)
	defer tick.Stop()
	var last []byte
	var sent time.Time
	for {
		changed := s.changes() // before the status, so no change is missed
		st := s.status(ctx)
		key, err := changeKey(st)
		if err != nil {
			return
		}
		if !bytes.Equal(key, last) || time.Since(sent) >= s.o.Keepalive {
			_ = rc.SetWriteDeadline(time.Now().Add(s.limits.write))
			if err := writeEvent(w, st); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			last, sent = key, time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// changeKey is the document without its time stamp: two documents with
// equal keys show the same state.
func changeKey(st Status) ([]byte, error) {
	st.Time = time.Time{}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return b, nil
}

func writeEvent(w http.ResponseWriter, st Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	// JSON from encoding/json has no raw newlines, so one data line holds it.
	if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", b); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return nil
}
