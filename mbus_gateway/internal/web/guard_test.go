package web

import (
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging/logtest"
)

// A page on another site must not act on the gateway through a browser
// on an allowed network (DNS rebinding): such requests carry a foreign
// Host or Origin. The ingress proxy forwards Home Assistant's Host and
// Origin, whatever they are.
func TestGuardHostAndOrigin(t *testing.T) {
	const lan = "192.0.2.7:5000"
	tests := []struct {
		name, remote, method, target, host, origin string
		code                                       int
		body                                       string
	}{
		{name: "rebound name", remote: lan, method: "POST", target: "/meters", host: "evil.example", code: 403, body: `host \"evil.example\" is not a name of this gateway`},
		{name: "rebound name with port", remote: lan, method: "POST", target: "/scan", host: "evil.example:8099", code: 403, body: "not a name of this gateway"},
		{name: "rebound read", remote: lan, method: "POST", target: "/meters/5/read", host: "rebind.evil.example", code: 403, body: "IP address"},
		{name: "foreign origin", remote: lan, method: "POST", target: "/meters", host: "192.0.2.1:8099", origin: "http://evil.example", code: 403, body: `origin \"http://evil.example\" is another site`},
		{name: "origin other port", remote: lan, method: "POST", target: "/meters", host: "192.0.2.1:8099", origin: "http://192.0.2.1:8080", code: 403, body: "another site"},
		{name: "null origin", remote: lan, method: "POST", target: "/meters", host: "192.0.2.1:8099", origin: "null", code: 403, body: "not the page of this gateway"},
		{name: "no host", remote: lan, method: "POST", target: "/meters", host: "-", code: 403, body: "no Host header"},
		{name: "by IP address", remote: lan, method: "POST", target: "/meters", host: "192.0.2.1:8099", origin: "http://192.0.2.1:8099", code: 201},
		{name: "by IPv6 address", remote: lan, method: "POST", target: "/meters", host: "[fd00::5]:8099", origin: "http://[fd00::5]:8099", code: 201},
		{name: "localhost", remote: lan, method: "POST", target: "/meters", host: "localhost:8099", code: 201},
		{name: "home assistant's name", remote: lan, method: "POST", target: "/meters", host: "homeassistant.local:8099", origin: "http://homeassistant.local:8099", code: 201},
		{name: "configured name", remote: lan, method: "POST", target: "/meters", host: "Gateway.LAN:8099", origin: "http://gateway.lan:8099", code: 201},
		{name: "no origin (not a browser)", remote: lan, method: "POST", target: "/meters", host: "192.0.2.1", code: 201},
		{name: "read only with foreign host", remote: lan, method: "GET", target: "/status", host: "evil.example", code: 200},
		{name: "ingress proxy forwards HA's host", remote: ingressAddr, method: "POST", target: "/meters", host: "ha.example.org", origin: "https://ha.example.org", code: 201},
		{name: "ingress proxy, origin of its own", remote: ingressAddr, method: "POST", target: "/scan", host: "homeassistant.local:8123", origin: "http://homeassistant.local:8123", code: 202},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) {
				o.Allow = []string{DefaultIngressSource, "192.0.2.0/24"}
				o.Hosts = []string{"gateway.lan."}
			})
			body := `{"address":"` + []string{"30", "31"}[i%2] + `"}`
			if tt.target == "/scan" {
				body = `{"mode":"primary"}`
			}
			if tt.method == "GET" {
				body = ""
			}
			h := map[string]string{}
			if tt.origin != "" {
				h["Origin"] = tt.origin
			}
			res := do(t, f.s.Handler(), request{method: tt.method, target: tt.target, remote: tt.remote, host: tt.host, body: body, header: h})
			got := readBody(t, res)
			if res.StatusCode != tt.code || !strings.Contains(got, tt.body) {
				t.Errorf("got %d %s, want %d containing %s", res.StatusCode, got, tt.code, tt.body)
			}
			if tt.code == 403 && len(f.adder.calls()) != 0 {
				t.Errorf("refused request added meters: %+v", f.adder.calls())
			}
		})
	}
}

// Every POST must say its body is JSON, reading a meter too: a form on
// another site cannot send that content type without the server's
// consent.
func TestPostNeedsJSON(t *testing.T) {
	f := newFixture(t, nil, heatMeter(t))
	tests := []struct {
		name, target, ctype, body string
		code                      int
		want                      string
	}{
		{"read without type", "/meters/5/read", "", "", 415, "no content type: want application/json"},
		{"read as form", "/meters/5/read", "application/x-www-form-urlencoded", "a=b", 415, `content type \"application/x-www-form-urlencoded\"`},
		{"read as text", "/meters/5/read", "text/plain", "{}", 415, "want application/json"},
		{"read with empty JSON", "/meters/5/read", "application/json", "", 200, `"meter":"kam_06855817"`},
		{"read with object", "/meters/5/read", "application/json; charset=utf-8", "{}", 200, `"meter":"kam_06855817"`},
		{"read with stray field", "/meters/5/read", "application/json", `{"x":1}`, 400, "unknown field"},
		{"add as form", "/meters", "application/x-www-form-urlencoded", "address=30", 415, "want application/json"},
		{"scan without type", "/scan", "", `{"mode":"primary"}`, 415, "no content type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, f.s.Handler(), request{method: "POST", target: tt.target, body: tt.body, header: map[string]string{"Content-Type": tt.ctype}})
			got := readBody(t, res)
			if res.StatusCode != tt.code || !strings.Contains(got, tt.want) {
				t.Errorf("got %d %s, want %d containing %s", res.StatusCode, got, tt.code, tt.want)
			}
		})
	}
	if got := f.poller.readLog(); !slices.Equal(got, []string{"5", "5"}) {
		t.Errorf("reads: got %q, want only the two accepted requests", got)
	}
}

// A refused address learns how to be allowed.
func TestRefusalNamesWebAllow(t *testing.T) {
	f := newFixture(t, nil)
	res := do(t, f.s.Handler(), request{method: "GET", target: "/", remote: "192.168.1.20:5000"})
	body := readBody(t, res)
	if res.StatusCode != 403 || !strings.Contains(body, "web_allow") || !strings.Contains(body, "192.168.1.20") {
		t.Errorf("got %d %q, want 403 naming web_allow and the address", res.StatusCode, body)
	}
}

// The start log says who may open the page.
func TestStartLogNamesWhoMayOpen(t *testing.T) {
	for _, tt := range []struct {
		allow []string
		want  string
	}{
		{nil, "through Home Assistant ingress only; web_allow lists more addresses"},
		{[]string{"172.30.32.2", "192.168.1.0/24"}, "may be opened from 172.30.32.2, 192.168.1.0/24"},
		{[]string{}, "from no address (web_allow is empty)"},
	} {
		var log logtest.Buffer
		f := newFixture(t, func(o *Options) {
			loopbackListens(o)
			o.Allow = tt.allow
			o.Log = zerolog.New(&log)
		})
		running(t, f)
		if got := log.String(); !strings.Contains(got, tt.want) {
			t.Errorf("allow %q: log %q, want %q", tt.allow, got, tt.want)
		}
	}
}
