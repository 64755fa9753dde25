package web

import (
	"context"
	"net/http"
)

// Health is the JSON of GET /health: {"status":"ok"} with 200, or
// {"status":"unhealthy","problems":[…]} with 503. The container's health
// check and the Supervisor act on the code; the problems are for people.
type Health struct {
	Status   string   `json:"status"`
	Problems []string `json:"problems,omitempty"`
}

// problems lists what makes the gateway unhealthy. A down bus is not one
// of them: the poller retries by itself and a restart would not bring a
// converter back. A stopped bus loop or a store that cannot be written
// is: nothing would be read or kept.
func (s *Server) problems(ctx context.Context) []string {
	var out []string
	if s.o.Alive != nil {
		if err := s.o.Alive(); err != nil {
			out = append(out, "bus loop: "+err.Error())
		}
	}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if err := s.health.Check(cctx); err != nil {
		out = append(out, "store: "+err.Error())
	}
	for _, b := range s.buses {
		if sink := b.Poller.Snapshot().Sink; sink.Failing {
			msg := "outbox: readings cannot be stored"
			if sink.LastError != "" {
				msg += ": " + sink.LastError
			}
			out = append(out, msg)
			break // one store for all buses: one problem
		}
	}
	return out
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if p := s.problems(r.Context()); len(p) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "unhealthy", Problems: p})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}
