package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
)

func TestRoutes(t *testing.T) {
	f := newFixture(t, nil, heatMeter(t), waterMeter())
	tests := []struct {
		name string
		req  request
		code int
		// ctype is the expected Content-Type prefix; allow the expected
		// Allow header; body a substring of the body; notBody must not
		// occur in it.
		ctype, allow, body, notBody string
	}{
		{name: "page", req: request{method: "GET", target: "/"}, code: 200, ctype: "text/html", body: `src="assets/app.js"`},
		{name: "page head", req: request{method: "HEAD", target: "/"}, code: 200, ctype: "text/html"},
		{name: "page under ingress", req: request{method: "GET", target: "/", header: map[string]string{"X-Ingress-Path": "/api/hassio_ingress/Ab-12_x"}},
			code: 200, body: `<base href="/api/hassio_ingress/Ab-12_x/">`},
		{name: "forged ingress path ignored", req: request{method: "GET", target: "/", header: map[string]string{"X-Ingress-Path": `/x"><script>alert(1)</script>`}},
			code: 200, notBody: "<base"},
		{name: "script", req: request{method: "GET", target: "/assets/app.js"}, code: 200, ctype: "text/javascript", body: "EventSource"},
		{name: "style", req: request{method: "GET", target: "/assets/app.css"}, code: 200, ctype: "text/css", body: "prefers-color-scheme: dark"},
		{name: "icon", req: request{method: "GET", target: "/assets/icon.svg"}, code: 200, ctype: "image/svg+xml"},
		{name: "template not an asset", req: request{method: "GET", target: "/assets/index.html"}, code: 404},
		{name: "unknown asset", req: request{method: "GET", target: "/assets/nope.js"}, code: 404},
		{name: "asset folder", req: request{method: "GET", target: "/assets/"}, code: 404},
		{name: "traversal", req: request{method: "GET", target: "/assets/../server.go"}, code: 307, notBody: "package web"},
		{name: "encoded traversal", req: request{method: "GET", target: "/assets/..%2fserver.go"}, code: 404, notBody: "package web"},
		{name: "encoded dots", req: request{method: "GET", target: "/assets/%2e%2e/%2e%2e/go.mod"}, code: 404, notBody: "module"},
		{name: "asset post", req: request{method: "POST", target: "/assets/app.js", body: "{}"}, code: 405, allow: "GET, HEAD"},
		{name: "asset delete", req: request{method: "DELETE", target: "/assets/app.js"}, code: 405, allow: "GET, HEAD"},
		{name: "page post", req: request{method: "POST", target: "/", body: "{}"}, code: 405, allow: "GET, HEAD"},
		{name: "status", req: request{method: "GET", target: "/status"}, code: 200, ctype: "application/json", body: `"kam_06855817"`},
		{name: "status head", req: request{method: "HEAD", target: "/status"}, code: 200, ctype: "application/json"},
		{name: "status put", req: request{method: "PUT", target: "/status", body: "{}"}, code: 405, allow: "GET, HEAD"},
		{name: "health", req: request{method: "GET", target: "/health"}, code: 200, body: `{"status":"ok"}`},
		{name: "health post", req: request{method: "POST", target: "/health"}, code: 405, allow: "GET, HEAD"},
		{name: "metrics", req: request{method: "GET", target: "/metrics"}, code: 200},
		{name: "events head", req: request{method: "HEAD", target: "/events"}, code: 200, ctype: "text/event-stream"},
		{name: "events post", req: request{method: "POST", target: "/events"}, code: 405, allow: "GET, HEAD"},
		{name: "scan get", req: request{method: "GET", target: "/scan"}, code: 405, allow: "POST"},
		{name: "meters get", req: request{method: "GET", target: "/meters"}, code: 405, allow: "POST"},
		{name: "read get", req: request{method: "GET", target: "/meters/kam_06855817/read"}, code: 405, allow: "POST"},
		{name: "unknown path", req: request{method: "GET", target: "/nope"}, code: 404},
		{name: "unknown nested", req: request{method: "GET", target: "/status/x"}, code: 404},
		{name: "unknown method", req: request{method: "BREW", target: "/status"}, code: 405, allow: "GET, HEAD"},
		{name: "query ignored", req: request{method: "GET", target: "/status?x=%ZZ"}, code: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, f.s.Handler(), tt.req)
			body := readBody(t, res)
			if got, want := res.StatusCode, tt.code; got != want {
				t.Fatalf("status: got %d, want %d; body %q", got, want, body)
			}
			if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, tt.ctype) {
				t.Errorf("Content-Type: got %q, want prefix %q", got, tt.ctype)
			}
			if got := res.Header.Get("Allow"); got != tt.allow && tt.allow != "" {
				t.Errorf("Allow: got %q, want %q", got, tt.allow)
			}
			if !strings.Contains(body, tt.body) {
				t.Errorf("body %q does not contain %q", body, tt.body)
			}
			if tt.notBody != "" && strings.Contains(body, tt.notBody) {
				t.Errorf("body %q contains %q", body, tt.notBody)
			}
			if got := res.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'none'") {
				t.Errorf("Content-Security-Policy: got %q", got)
			}
		})
	}
}

func TestAllowList(t *testing.T) {
	tests := []struct {
		name   string
		allow  []string
		remote string
		target string
		header map[string]string
		code   int
	}{
		{name: "ingress proxy", remote: ingressAddr, target: "/", code: 200},
		{name: "foreign page", remote: "192.0.2.7:5000", target: "/", code: 403},
		{name: "foreign status", remote: "192.0.2.7:5000", target: "/status", code: 403},
		{name: "foreign health", remote: "192.0.2.7:5000", target: "/health", code: 403},
		{name: "foreign unknown path", remote: "192.0.2.7:5000", target: "/nope", code: 403},
		{name: "forwarded header not trusted", remote: "192.0.2.7:5000", target: "/status",
			header: map[string]string{"X-Forwarded-For": "172.30.32.2", "X-Real-Ip": "172.30.32.2"}, code: 403},
		{name: "loopback health", remote: "127.0.0.1:6000", target: "/health", code: 200},
		{name: "loopback v6 health", remote: "[::1]:6000", target: "/health", code: 200},
		{name: "loopback page", remote: "127.0.0.1:6000", target: "/", code: 403},
		{name: "mapped v4", remote: "[::ffff:172.30.32.2]:6000", target: "/status", code: 200},
		{name: "neighbour of proxy", remote: "172.30.32.3:6000", target: "/status", code: 403},
		{name: "garbage remote", remote: "nonsense", target: "/status", code: 403},
		{name: "cidr", allow: []string{"10.0.0.0/8"}, remote: "10.1.2.3:80", target: "/status", code: 200},
		{name: "cidr miss", allow: []string{"10.0.0.0/8"}, remote: ingressAddr, target: "/status", code: 403},
		{name: "v6 address", allow: []string{"fd00::1"}, remote: "[fd00::1]:80", target: "/", code: 200},
		{name: "empty list", allow: []string{}, remote: ingressAddr, target: "/", code: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.Allow = tt.allow })
			res := do(t, f.s.Handler(), request{method: "GET", target: tt.target, remote: tt.remote, header: tt.header})
			body := readBody(t, res)
			if got, want := res.StatusCode, tt.code; got != want {
				t.Fatalf("status: got %d, want %d; body %q", got, want, body)
			}
			if tt.code == 403 && !strings.Contains(body, "ingress") {
				t.Errorf("403 body %q does not explain itself", body)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	p := newFakePoller()
	good := Options{Gatherer: newFixture(t, nil).reg}
	tests := []struct {
		name string
		o    Options
		p    Poller
		add  MeterAdder
		want string
	}{
		{name: "no poller", o: good, add: &fakeAdder{p: p}, want: "required"},
		{name: "no adder", o: good, p: p, want: "required"},
		{name: "no gatherer", o: Options{}, p: p, add: &fakeAdder{p: p}, want: "Gatherer"},
		{name: "bad address", o: Options{Gatherer: good.Gatherer, Allow: []string{"172.30.32.300"}}, p: p, add: &fakeAdder{p: p}, want: `allow "172.30.32.300"`},
		{name: "bad prefix", o: Options{Gatherer: good.Gatherer, Allow: []string{"10.0.0.0/33"}}, p: p, add: &fakeAdder{p: p}, want: `allow "10.0.0.0/33"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.o, tt.p, tt.add, &fakeChecker{})
			if err == nil {
				s.close()
				t.Fatal("New accepted bad input")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestStatusDocument(t *testing.T) {
	const warning = "database file was corrupt: moved to /data/mbus-gateway.db.corrupt-1"
	salvage := Salvage{File: "/data/mbus-gateway.db.corrupt-1", Saved: 388, Lost: 2, LostKnown: true}
	f := newFixture(t, func(o *Options) {
		o.Warnings = func() []string { return []string{warning} }
		o.Salvage = func() *Salvage { return &salvage }
	}, heatMeter(t), waterMeter())
	f.poller.update(func(s *poll.Snapshot) {
		s.Bus.Polls, s.Bus.Errors = 40, 2
		s.Sink = poll.SinkStatus{Pending: 1, Dropped: 3}
	})
	res := do(t, f.s.Handler(), request{method: "GET", target: "/status"})
	if res.StatusCode != 200 {
		t.Fatalf("status code %d", res.StatusCode)
	}
	var st Status
	if err := json.Unmarshal([]byte(readBody(t, res)), &st); err != nil {
		t.Fatal(err)
	}
	if got, want := len(st.Meters), 2; got != want {
		t.Fatalf("meters: got %d, want %d", got, want)
	}
	heat, water := st.Meters[0], st.Meters[1]
	depth := -1
	if st.Outbox.Depth != nil {
		depth = *st.Outbox.Depth
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"gateway version", st.Versions.Gateway, "1.2.3"},
		{"go version", st.Versions.Go, runtime.Version()},
		{"bus device", st.Bus.Device, "/dev/ttyUSB0"},
		{"bus baud", st.Bus.Baud, 2400},
		{"bus state", st.Bus.State, "up"},
		{"bus polls", st.Bus.Polls, uint64(40)},
		{"bus rx", st.Bus.RxBytes, uint64(4800)},
		{"broker connected", st.Broker != nil && st.Broker.Connected, true},
		{"outbox depth", depth, 2},
		{"outbox pending", st.Outbox.Pending, 1},
		{"outbox dropped", st.Outbox.Dropped, uint64(3)},
		{"heat id", heat.ID, "kam_06855817"},
		{"heat name", heat.Name, "Heating"},
		{"heat manufacturer", heat.Manufacturer, "KAM"},
		{"heat breaker", heat.Breaker, "closed"},
		{"heat values", len(heat.Values), 3},
		{"heat energy unit", heat.Values[0].Unit, "kWh"},
		{"heat energy", heat.Values[0].Value.Num, 37351.0},
		{"heat header id", heat.Header != nil && heat.Header.ID == "06855817", true},
		{"heat raw", len(heat.Raw), 1},
		{"water breaker", water.Breaker, "open"},
		{"water failures", water.Failures, 3},
		{"water error", water.LastError, "read 7: no answer"},
		{"water values", len(water.Values), 0},
		{"scan idle", st.Scan.Running, false},
		{"warnings", strings.Join(st.Warnings, "|"), warning},
		{"salvage", st.Salvage != nil && *st.Salvage == salvage, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestStatusUnknownParts(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Broker, o.Bus = nil, nil
		o.OutboxDepth = func(context.Context) (int, error) { return 0, errors.New("database is locked") }
	})
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(readBody(t, do(t, f.s.Handler(), request{method: "GET", target: "/status"}))), &raw); err != nil {
		t.Fatal(err)
	}
	var outbox OutboxStatus
	if err := json.Unmarshal(raw["outbox"], &outbox); err != nil {
		t.Fatal(err)
	}
	if got, want := string(raw["broker"]), "null"; got != want {
		t.Errorf("broker: got %s, want %s", got, want)
	}
	if got, ok := raw["salvage"]; ok {
		t.Errorf("salvage without a corrupt database: got %s, want none", got)
	}
	for _, key := range []string{"meters", "warnings"} {
		if got, want := string(raw[key]), "[]"; got != want {
			t.Errorf("%s: got %s, want %s", key, got, want)
		}
	}
	if outbox.Depth != nil || outbox.Error != "database is locked" {
		t.Errorf("outbox: got depth %v error %q, want null and the error", outbox.Depth, outbox.Error)
	}
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name     string
		alive    error
		store    error
		failing  bool
		code     int
		problems []string
	}{
		{name: "healthy", code: 200},
		{name: "bus down is healthy", code: 200}, // the state is set below
		{name: "loop stopped", alive: errors.New("poller stopped"), code: 503, problems: []string{"bus loop: poller stopped"}},
		{name: "store read-only", store: errors.New("attempt to write a readonly database"), code: 503,
			problems: []string{"store: attempt to write a readonly database"}},
		{name: "outbox failing", failing: true, code: 503, problems: []string{"outbox: readings cannot be stored: disk full"}},
		{name: "everything", alive: errors.New("heartbeat 5m0s old"), store: errors.New("locked"), failing: true, code: 503,
			problems: []string{"bus loop: heartbeat 5m0s old", "store: locked", "outbox: readings cannot be stored: disk full"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.Alive = func() error { return tt.alive } })
			f.checker.set(tt.store)
			f.poller.update(func(s *poll.Snapshot) {
				s.Bus.State = bushealth.Down.String()
				if tt.failing {
					s.Sink = poll.SinkStatus{Failing: true, LastError: "disk full"}
				}
			})
			for _, h := range []http.Handler{f.s.Handler(), f.s.MetricsHandler()} {
				res := do(t, h, request{method: "GET", target: "/health"})
				var got Health
				if err := json.Unmarshal([]byte(readBody(t, res)), &got); err != nil {
					t.Fatal(err)
				}
				if res.StatusCode != tt.code {
					t.Errorf("code: got %d, want %d", res.StatusCode, tt.code)
				}
				wantStatus := "ok"
				if tt.code != 200 {
					wantStatus = "unhealthy"
				}
				if got.Status != wantStatus || !slices.Equal(got.Problems, tt.problems) {
					t.Errorf("got %+v, want status %q problems %q", got, wantStatus, tt.problems)
				}
			}
		})
	}
}

func TestBadBodies(t *testing.T) {
	f := newFixture(t, nil, heatMeter(t))
	big := `{"mode":"primary","x":"` + strings.Repeat("a", maxBody) + `"}`
	tests := []struct {
		name, target, ctype, body string
		code                      int
		msg                       string
	}{
		{"no content type", "/scan", "-", `{"mode":"primary"}`, 415, "application/json"},
		{"form", "/scan", "application/x-www-form-urlencoded", "mode=primary", 415, "application/json"},
		{"empty", "/scan", "", "", 400, "empty"},
		{"not json", "/scan", "", "mode=primary", 400, "request body"},
		{"array", "/scan", "", `["primary"]`, 400, "request body"},
		{"unknown field", "/scan", "", `{"mode":"primary","speed":9}`, 400, "unknown field"},
		{"trailing data", "/scan", "", `{"mode":"primary"} {"mode":"secondary"}`, 400, "after the JSON"},
		{"wrong type", "/scan", "", `{"mode":1}`, 400, "request body"},
		{"bad mode", "/scan", "", `{"mode":"tertiary"}`, 400, `"tertiary"`},
		{"missing mode", "/scan", "", `{}`, 400, "want primary or secondary"},
		{"too big", "/scan", "", big, 413, "larger than 65536"},
		{"add too big", "/meters", "", big, 413, "larger than"},
		{"add no address", "/meters", "", `{"name":"x"}`, 400, "address"},
		{"add bad address", "/meters", "", `{"address":"251"}`, 400, "0 to 250"},
		{"add letters", "/meters", "", `{"address":"abc"}`, 400, "0-250 or 16 hex digits"},
		{"add wildcard", "/meters", "", `{"address":"FFFFFFFF2D2C0804"}`, 400, "wildcards"},
		{"add bad hex", "/meters", "", `{"address":"06855817XX2C0804"}`, 400, "not hex"},
		{"add long name", "/meters", "", `{"address":"5","name":"` + strings.Repeat("ä", maxNameRunes+1) + `"}`, 400, "at most 64"},
		{"add control", "/meters", "", `{"address":"5","name":"a\u0007b"}`, 400, "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": "application/json; charset=utf-8"}
			switch tt.ctype {
			case "-":
				hdr["Content-Type"] = ""
			case "":
			default:
				hdr["Content-Type"] = tt.ctype
			}
			res := do(t, f.s.Handler(), request{method: "POST", target: tt.target, body: tt.body, header: hdr})
			if tt.body == "" && tt.ctype == "" {
				res = do(t, f.s.Handler(), request{method: "POST", target: tt.target, header: hdr})
			}
			var e errorBody
			if err := json.Unmarshal([]byte(readBody(t, res)), &e); err != nil {
				t.Fatalf("answer is not a JSON error: %v", err)
			}
			if res.StatusCode != tt.code || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("got %d %q, want %d containing %q", res.StatusCode, e.Error, tt.code, tt.msg)
			}
		})
	}
	if got := f.adder.calls(); len(got) != 0 {
		t.Errorf("bad requests reached the adder: %v", got)
	}
}

func TestAddMeter(t *testing.T) {
	f := newFixture(t, nil, heatMeter(t))
	tests := []struct {
		name, body string
		code       int
		want       AddRequest
	}{
		{"primary", `{"address":"12","name":"  Cold water  "}`, 201, AddRequest{Address: "12", Name: "Cold water"}},
		{"secondary lower case", `{"address":"12345678ae4c0107"}`, 201, AddRequest{Address: "12345678AE4C0107"}},
		{"leading zeros", `{"address":"007","name":"Gas"}`, 201, AddRequest{Address: "7", Name: "Gas"}},
		{"exists", `{"address":"5"}`, 409, AddRequest{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, f.s.Handler(), request{method: "POST", target: "/meters", body: tt.body})
			body := readBody(t, res)
			if res.StatusCode != tt.code {
				t.Fatalf("code: got %d, want %d; body %s", res.StatusCode, tt.code, body)
			}
			if tt.code != 201 {
				if !strings.Contains(body, "already configured") {
					t.Errorf("conflict body %q", body)
				}
				return
			}
			var got AddRequest
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			calls := f.adder.calls()
			if got != tt.want || calls[len(calls)-1] != tt.want {
				t.Errorf("got answer %+v and call %+v, want %+v", got, calls[len(calls)-1], tt.want)
			}
		})
	}
	f.adder.err = errors.New("store: disk full")
	res := do(t, f.s.Handler(), request{method: "POST", target: "/meters", body: `{"address":"30"}`})
	if body := readBody(t, res); res.StatusCode != 500 || !strings.Contains(body, "disk full") {
		t.Errorf("failing adder: got %d %s, want 500 naming the cause", res.StatusCode, body)
	}
}

func TestReadNow(t *testing.T) {
	f := newFixture(t, nil, heatMeter(t), waterMeter())
	f.poller.readErr["addr_7"] = errNoAnswer
	tests := []struct {
		name, target string
		code         int
		body         string
	}{
		{"by id", "/meters/kam_06855817/read", 200, `"key":"energy"`},
		{"by address", "/meters/5/read", 200, `"meter":"kam_06855817"`},
		{"no answer", "/meters/addr_7/read", 504, "no answer"},
		{"unknown", "/meters/nope/read", 404, `no meter \"nope\"`},
		{"escaped", "/meters/%2e%2e%2Fx/read", 404, "no meter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, f.s.Handler(), request{method: "POST", target: tt.target, body: "{}"})
			body := readBody(t, res)
			if res.StatusCode != tt.code || !strings.Contains(body, tt.body) {
				t.Errorf("got %d %s, want %d containing %s", res.StatusCode, body, tt.code, tt.body)
			}
		})
	}
}

func TestScan(t *testing.T) {
	f := newFixture(t, nil, heatMeter(t))
	sec, err := mbus.ParseSecondaryAddress("068558172D2C0804")
	if err != nil {
		t.Fatal(err)
	}
	other, err := mbus.ParseSecondaryAddress("12345678AE4C0107")
	if err != nil {
		t.Fatal(err)
	}
	f.poller.found = []master.Found{{Primary: 5, Secondary: sec}, {Primary: 9}, {Primary: -1, Secondary: other}, {Primary: 20, Collision: true}}
	f.poller.steps = 4
	f.poller.gate = make(chan struct{})
	f.poller.scanning = make(chan struct{})

	res := do(t, f.s.Handler(), request{method: "POST", target: "/scan", body: `{"mode":"primary"}`})
	var started ScanStatus
	if err := json.Unmarshal([]byte(readBody(t, res)), &started); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 202 || !started.Running || started.Mode != "primary" {
		t.Fatalf("start: got %d %+v, want 202 and a running primary scan", res.StatusCode, started)
	}
	<-f.poller.scanning

	res = do(t, f.s.Handler(), request{method: "POST", target: "/scan", body: `{"mode":"secondary"}`})
	if body := readBody(t, res); res.StatusCode != 409 || !strings.Contains(body, "already running") {
		t.Errorf("second scan: got %d %s, want 409 with a reason", res.StatusCode, body)
	}
	if st := f.s.status(t.Context()); st.Scan.Progress.Done != 1 || st.Scan.Progress.Total != 4 {
		t.Errorf("progress: got %+v, want 1 of 4", st.Scan.Progress)
	}
	close(f.poller.gate)
	waitFor(t, f.s, "the scan to end", func() bool { return !f.s.status(t.Context()).Scan.Running })

	st := f.s.status(t.Context())
	want := []FoundMeter{
		{Address: "068558172D2C0804", Primary: 5, Secondary: "068558172D2C0804", ID: "06855817", Manufacturer: "KAM", Medium: mbus.Medium(4).String(), Configured: true},
		{Address: "9", Primary: 9},
		{Address: "12345678AE4C0107", Primary: -1, Secondary: "12345678AE4C0107", ID: "12345678", Manufacturer: "SEN", Medium: mbus.Medium(7).String()},
		{Address: "20", Primary: 20, Collision: true},
	}
	if !slices.Equal(st.Scan.Found, want) {
		t.Errorf("found:\n got %+v\nwant %+v", st.Scan.Found, want)
	}
	if st.Scan.Finished.IsZero() || st.Scan.Error != "" || st.Scan.Progress.Done != 4 {
		t.Errorf("finished scan: %+v", st.Scan)
	}

	// Adding a found meter marks it configured.
	res = do(t, f.s.Handler(), request{method: "POST", target: "/meters", body: `{"address":"9","name":"Gas"}`})
	if res.StatusCode != 201 {
		t.Fatalf("add: %d %s", res.StatusCode, readBody(t, res))
	}
	res.Body.Close()
	if got := f.s.status(t.Context()).Scan.Found[1]; !got.Configured {
		t.Errorf("added meter not marked configured: %+v", got)
	}
}

func TestScanRefusedWhilePollerScans(t *testing.T) {
	f := newFixture(t, nil)
	f.poller.update(func(s *poll.Snapshot) { s.Scan.Running = true })
	res := do(t, f.s.Handler(), request{method: "POST", target: "/scan", body: `{"mode":"secondary"}`})
	if body := readBody(t, res); res.StatusCode != 409 || !strings.Contains(body, "already running") {
		t.Errorf("got %d %s, want 409", res.StatusCode, body)
	}
}

func TestScanStoppedWithServer(t *testing.T) {
	f := newFixture(t, nil)
	f.poller.steps, f.poller.gate, f.poller.scanning = 2, make(chan struct{}), make(chan struct{})
	res := do(t, f.s.Handler(), request{method: "POST", target: "/scan", body: `{"mode":"primary"}`})
	res.Body.Close()
	<-f.poller.scanning
	f.s.close() // must end the scan goroutine: the gate is never opened
	if st := f.s.status(t.Context()).Scan; st.Running || !strings.Contains(st.Error, "context canceled") {
		t.Errorf("after close: %+v", st)
	}
}

// Every file of the page has its own content type: a file type missing
// from assetTypes would be served as application/octet-stream.
func TestAssetTypes(t *testing.T) {
	assets, err := loadAssets()
	if err != nil {
		t.Fatal(err)
	}
	if len(assets) == 0 {
		t.Fatal("no assets")
	}
	for name, a := range assets {
		if a.ctype == "application/octet-stream" {
			t.Errorf("%s: served as %s; add its extension to assetTypes", name, a.ctype)
		}
	}
}
