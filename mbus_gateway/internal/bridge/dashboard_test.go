package bridge

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mqtt"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/outbox"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

var dashboardFile = filepath.Join("..", "..", "..", "grafana", "mbus-gateway.json")

// dashboard is the part of Grafana's dashboard model the test checks.
type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string      `json:"name"`
			Type       string      `json:"type"`
			Query      any         `json:"query"`
			Datasource *datasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *datasource              `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// TestDashboardIsWellFormed checks what Grafana 10 and later need to
// import the dashboard with a Prometheus of the user's choice.
func TestDashboardIsWellFormed(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion < 38 { // Grafana 10.0
		t.Errorf("schemaVersion %d, want 38 or later", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q title %q: want both", d.UID, d.Title)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs: got %+v, want one Prometheus data source DS_PROMETHEUS", d.Inputs)
	}
	isDS := func(ds *datasource) bool { return ds != nil && ds.Type == "prometheus" && ds.UID == "${DS_PROMETHEUS}" }
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: grid position %+v outside the 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if !isDS(p.Datasource) {
			t.Errorf("panel %q: data source %+v, want ${DS_PROMETHEUS}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			queries++
			if q.Expr == "" || q.RefID == "" || refs[q.RefID] || !isDS(q.Datasource) {
				t.Errorf("panel %q: query %+v: want an expression, a unique refId and ${DS_PROMETHEUS}", p.Title, q)
			}
			refs[q.RefID] = true
		}
	}
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}
}

// TestDashboardMetricsExist gathers the metrics of the real components
// and checks that every metric the dashboard queries is among them.
func TestDashboardMetricsExist(t *testing.T) {
	d := loadDashboard(t)
	gathered := gatherComponents(t)

	var exprs []string
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if m := labelValues.FindStringSubmatch(variableQuery(v.Query)); m != nil {
			exprs = append(exprs, m[1])
		} else {
			t.Errorf("variable %s: query %v is not label_values(metric, label)", v.Name, v.Query)
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("no metric found in %q", e)
		}
		for _, n := range names {
			used[n] = true
			if !gathered[familyOf(n, gathered)] {
				t.Errorf("%q queries %s, which no component exports", e, n)
			}
		}
	}
	// The dashboard covers what the issue asks for.
	for _, must := range []string{
		"mbus_polls_total", "mbus_poll_duration_seconds_bucket", "mbus_bus_errors_total",
		"mbus_outbox_depth", "mbus_mqtt_connected", "mbus_breaker_state",
	} {
		if !used[must] {
			t.Errorf("the dashboard does not query %s", must)
		}
	}
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (meter, result) (rate(mbus_polls_total{meter=~"$meter"}[$__rate_interval]))`, []string{"mbus_polls_total"}},
		{`histogram_quantile(0.95, sum by (le) (rate(mbus_poll_duration_seconds_bucket[5m])))`, []string{"mbus_poll_duration_seconds_bucket"}},
		{`time() - mbus_meter_last_success_timestamp_seconds{meter=~"a|b"}`, []string{"mbus_meter_last_success_timestamp_seconds"}},
		{`count(mbus_breaker_state == 2) or vector(0)`, []string{"mbus_breaker_state"}},
		{`sum(rate(a_sum[1m])) / on (x) group_left sum(rate(b_count[1m]))`, []string{"a_sum", "b_count"}},
		{`x{l="}"} offset 5m`, []string{"x"}},
	}
	for _, tt := range tests {
		if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

var (
	labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
	strLiteral  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	matchers    = regexp.MustCompile(`\{[^}]*\}`)
	rangeSel    = regexp.MustCompile(`\[[^\]]*\]`)
	grouping    = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identifier  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	notMetric   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames lists the metric names a PromQL expression selects, in
// order: identifiers that are not functions (followed by "("), keywords,
// label names (inside {} and grouping clauses) or durations.
func metricNames(expr string) []string {
	s := strLiteral.ReplaceAllString(expr, " ")
	s = matchers.ReplaceAllString(s, " ")
	s = rangeSel.ReplaceAllString(s, " ")
	s = grouping.ReplaceAllString(s, " ")
	var out []string
	for _, m := range identifier.FindAllString(s, -1) {
		if strings.HasSuffix(m, "(") {
			continue
		}
		m = strings.TrimSpace(m)
		if notMetric[strings.ToLower(m)] || slices.Contains(out, m) {
			continue
		}
		out = append(out, m)
	}
	// Offsets: "offset 5m" leaves "m" behind after a number.
	return slices.DeleteFunc(out, func(n string) bool { return len(n) <= 2 && strings.Trim(n, "smhdwy") == "" })
}

// familyOf maps a histogram's series name to its family name.
func familyOf(name string, gathered map[string]bool) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && gathered[base] {
			return base
		}
	}
	return name
}

func variableQuery(q any) string {
	switch v := q.(type) {
	case string:
		return v
	case map[string]any:
		s, _ := v["query"].(string)
		return s
	}
	return ""
}

// gatherComponents registers the real collectors of poll, mqtt and the
// bus on one registry, lets the poller read one meter, and returns the
// names of the metric families gathered.
func gatherComponents(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	box, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = box.Close() }()
	client, err := mqtt.New(mqtt.Config{Broker: "tcp://127.0.0.1:1"}, outbox.Outbox{Store: box}, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	addr := mbus.Address{Primary: 5}
	p, err := poll.New(poll.Options{Meters: []poll.Meter{{Address: addr, Interval: time.Hour, Enabled: true}}},
		answeringBus{}, discardSink{}, client, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	// The master is never started: its counters are read, the port is
	// not used.
	reg.MustRegister(master.NewCollector(master.New(nil, master.Options{}).Stats))
	reg.MustRegister(bushealth.NewCollector(bushealth.New(bushealth.Options{})))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("poller Run: %v", err)
		}
	}()
	rctx, rcancel := context.WithTimeout(ctx, waitTimeout)
	defer rcancel()
	if _, err := p.ReadNow(rctx, addr.String()); err != nil {
		t.Fatalf("ReadNow: %v", err)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range families {
		if len(f.GetMetric()) > 0 || f.GetType() == dto.MetricType_HISTOGRAM {
			out[f.GetName()] = true
		}
	}
	return out
}

// answeringBus is a bus whose every meter answers at once with one
// energy register.
type answeringBus struct{}

func (answeringBus) Read(_ context.Context, addr mbus.Address) (master.Result, error) {
	tg := &mbus.Telegram{
		A:        addr.Primary,
		Header:   mbus.Header{ID: "00000005", Manufacturer: "KAM", Medium: mbus.Medium(0x04)},
		AppError: -1,
		Records: []mbus.Record{{Key: "energy", Quantity: "energy", Unit: "kWh",
			Value: mbus.Value{Kind: mbus.KindNumber, Num: 1}, DIF: "\x04", VIF: "\x06"}},
	}
	return master.Result{Telegrams: []*mbus.Telegram{tg}, Raw: [][]byte{{0x68}}}, nil
}

func (answeringBus) ScanPrimary(context.Context, func(master.Progress)) ([]master.Found, error) {
	return nil, nil
}

func (answeringBus) ScanSecondary(context.Context, func(master.Progress)) ([]master.Found, error) {
	return nil, nil
}

// discardSink accepts every reading.
type discardSink struct{}

func (discardSink) Deliver(context.Context, reading.Reading) error { return nil }
