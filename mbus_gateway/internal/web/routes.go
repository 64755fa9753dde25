package web

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// contentSecurityPolicy allows only the page's own files: no inline
// script or style, no other origin. frame-ancestors 'self' lets Home
// Assistant's ingress iframe (same origin as the proxied page) show it.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'self'; form-action 'none'; frame-ancestors 'self'"

// routes builds the ingress handler (full) or the metrics handler.
// Patterns with a method answer other methods with 405 and an Allow
// header; GET patterns also serve HEAD.
func (s *Server) routes(full bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.HandleFunc("GET /status", s.handleStatus)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.o.Gatherer, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
	if !full {
		return secure(mux)
	}
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.HandleFunc("GET /assets/{name}", s.handleAsset)
	mux.HandleFunc("GET /events", s.handleEvents)
	mux.HandleFunc("POST /scan", s.handleScan)
	mux.HandleFunc("POST /meters", s.handleAdd)
	mux.HandleFunc("POST /meters/{meter}/read", s.handleRead)
	return secure(s.allowed(s.guard(mux)))
}

// secure sets the headers every answer carries.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// allowed refuses remote addresses outside the allow-list, except
// loopback on /health, and says how to allow one. It trusts r.RemoteAddr
// only: X-Forwarded-For is set by whoever sends the request.
func (s *Server) allowed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, ok := remoteIP(r)
		if ok && (s.isAllowed(ip) || (ip.IsLoopback() && r.URL.Path == "/health")) {
			next.ServeHTTP(w, r)
			return
		}
		who := "this address"
		if ok {
			who = ip.String()
		}
		http.Error(w, "403 forbidden: this page is served to the addresses in the web_allow option only "+
			"(Home Assistant ingress by default); to open it from "+who+", add the address or its network "+
			"(e.g. 192.168.1.0/24) to web_allow", http.StatusForbidden)
	})
}

func (s *Server) isAllowed(ip netip.Addr) bool {
	for _, p := range s.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func remoteIP(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

// handleStatus serves the status document.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.status(r.Context()))
}

// errorBody is the JSON of every 4xx/5xx answer of the JSON endpoints.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only unsupported types fail; the types here have none.
		http.Error(w, "encoding the answer failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
