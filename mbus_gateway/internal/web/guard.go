package web

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

// The checks below stop a page on another site from acting on the
// gateway through the visitor's browser. With web_allow opened to a LAN,
// such a page can point a name it controls at the gateway's address (DNS
// rebinding) and send requests that the browser takes for same-origin:
// the Host header then carries that name. The gateway only acts on
// requests addressed to it by an IP address, a loopback name, its own
// host name, Home Assistant's usual names or a name in Options.Hosts, and
// coming from a page of the same origin.
//
// Requests from the ingress proxy are exempt: the Supervisor forwards the
// browser's Host and Origin of the Home Assistant frontend, whatever name
// the user reaches it by, and Home Assistant has authenticated the user.
// Only the Supervisor can connect from that address.

// guard refuses state-changing requests (anything but GET, HEAD and
// OPTIONS) whose Host is not one the gateway serves or whose Origin is
// another one.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if ip, ok := remoteIP(r); ok && ip == s.proxy {
			next.ServeHTTP(w, r)
			return
		}
		if err := s.checkOrigin(r); err != nil {
			writeError(w, http.StatusForbidden, err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkOrigin explains why r may not change anything, nil if it may.
func (s *Server) checkOrigin(r *http.Request) error {
	if r.Host == "" {
		return fmt.Errorf("request refused: no Host header; %s", openHint)
	}
	if !s.servesHost(r.Host) {
		return fmt.Errorf("request refused: host %q is not a name of this gateway; %s", r.Host, openHint)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil // not sent by a browser page: nothing to forge
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("request refused: origin %q is not the page of this gateway", origin)
	}
	if !strings.EqualFold(u.Host, r.Host) {
		return fmt.Errorf("request refused: origin %q is another site than host %q", origin, r.Host)
	}
	return nil
}

// openHint says how to reach the page so that its actions work.
const openHint = "open the page through Home Assistant or by the gateway's IP address"

// servesHost reports whether host (a Host header, with or without port)
// names this gateway: an IP address, localhost, or a known name.
func (s *Server) servesHost(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.Trim(name, "[]"), ".")
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	name = strings.ToLower(name)
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	for _, h := range s.hosts {
		if name == h {
			return true
		}
	}
	return false
}

// knownHosts lists the names accepted besides IP addresses and localhost:
// extra, the machine's host name and its mDNS form (name.local), and
// Home Assistant's host names, by which a port mapped from the add-on is
// reached. None of them can be pointed elsewhere by a foreign site.
func knownHosts(extra []string) []string {
	var out []string
	add := func(h string) {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if h != "" {
			out = append(out, h)
		}
	}
	for _, h := range extra {
		add(h)
	}
	add("homeassistant")
	add("homeassistant.local")
	if h, err := os.Hostname(); err == nil && h != "" {
		add(h)
		if !strings.Contains(h, ".") {
			add(h + ".local")
		}
	}
	return out
}
