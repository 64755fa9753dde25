package addon

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/config"
)

// contractDefaults lists every option of the daemon (DESIGN.md, "Options")
// as a path ("mqtt.host", "meters.address") with its default; nil marks an
// option without one (required, or unset by default). The add-on offers all
// of them except standaloneOnly. TestContractIsTheDaemons keeps the paths
// equal to config.Keys().
var contractDefaults = map[string]any{
	"serial_port":                nil,
	"tcp_address":                nil,
	"baudrate":                   2400.0,
	"poll_interval":              15.0,
	"meters":                     []any{},
	"meters.address":             nil,
	"meters.name":                nil,
	"meters.poll_interval":       nil,
	"meters.baudrate":            nil,
	"meters.enabled":             nil,
	"meters.key":                 "",
	"meters.guard":               nil,
	"buses":                      []any{},
	"buses.name":                 nil,
	"buses.serial_port":          nil,
	"buses.tcp_address":          nil,
	"buses.baudrate":             nil,
	"buses.scan_on_start":        nil,
	"buses.scan_mode":            nil,
	"buses.meters.address":       nil,
	"buses.meters.name":          nil,
	"buses.meters.poll_interval": nil,
	"buses.meters.baudrate":      nil,
	"buses.meters.enabled":       nil,
	"buses.meters.key":           "",
	"buses.meters.guard":         nil,
	"scan_on_start":              true,
	"scan_mode":                  "secondary",
	"mqtt":                       nil,
	"mqtt.host":                  "",
	"mqtt.port":                  1883.0,
	"mqtt.username":              "",
	"mqtt.password":              "",
	"mqtt.tls":                   false,
	"mqtt.ca_file":               "",
	"mqtt.cert_file":             "",
	"mqtt.key_file":              "",
	"topic_prefix":               "mbus",
	"discovery_prefix":           "homeassistant",
	"expire_after":               0.0,
	"outbox_max_rows":            100000.0,
	"outbox_max_age":             2592000.0,
	"response_timeout_extra":     0.0,
	"log_level":                  "info",
	"log_format":                 "text",
	"web_port":                   8099.0,
	"web_allow":                  []any{"172.30.32.2"},
	"metrics_port":               9105.0,
	"metrics_bind":               "127.0.0.1",
	"data_dir":                   "/data",
}

// standaloneOnly are the options a standalone file has and the add-on has not.
var standaloneOnly = []string{"data_dir", "metrics_bind", "metrics_port", "web_port"}

// leafPaths reduces option paths to the leaves: "mqtt" goes when
// "mqtt.host" is there. The daemon and the manifest may or may not list
// the parent of nested options; the leaves are what must agree.
func leafPaths(paths []string) []string {
	var out []string
	for _, p := range paths {
		parent := false
		for _, q := range paths {
			if strings.HasPrefix(q, p+".") {
				parent = true
				break
			}
		}
		if !parent {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// schemaPaths flattens an add-on option schema into paths with their type
// strings: nested dicts and lists of dicts give "parent.child"; a list of
// scalars gives the element type, e.g. "web_allow" → "str?".
func schemaPaths(schema map[string]any) (map[string]string, error) {
	out := make(map[string]string)
	var walk func(prefix string, v any) error
	walk = func(prefix string, v any) error {
		switch v := v.(type) {
		case string:
			out[prefix] = v
		case map[string]any:
			for k, sub := range v {
				if err := walk(prefix+"."+k, sub); err != nil {
					return err
				}
			}
		case []any:
			if len(v) != 1 {
				return fmt.Errorf("%s: a list schema has exactly one element type, got %d", prefix, len(v))
			}
			return walk(prefix, v[0])
		default:
			return fmt.Errorf("%s: unexpected schema value %T", prefix, v)
		}
		return nil
	}
	for k, v := range schema {
		if err := walk(k, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// optionType is one parsed schema element of the Supervisor's option
// language: str, bool, int, float, email, url, port, password, device,
// match(REGEX), list(a|b|c), with an optional range and a trailing "?".
type optionType struct {
	kind     string
	min, max *float64
	pattern  *regexp.Regexp // match(...)
	choices  []string       // list(...)
	optional bool
}

// reOptionType follows the grammar the Supervisor accepts for one option
// (supervisor/addons/options.py, RE_SCHEMA_ELEMENT).
var reOptionType = regexp.MustCompile(`^(?:` +
	`(bool|email|url|port)` +
	`|(device)(?:\(subsystem=[a-z]+\))?` +
	`|(str|password|int)(?:\((\d+)?,(\d+)?\))?` +
	`|(float)(?:\(([\d.]+)?,([\d.]+)?\))?` +
	`|(match)\((.*)\)` +
	`|(list)\((.+)\)` +
	`)(\??)$`)

// parseOptionType parses one schema element.
func parseOptionType(s string) (optionType, error) {
	m := reOptionType.FindStringSubmatch(s)
	if m == nil {
		return optionType{}, fmt.Errorf("option type %q: not a Supervisor schema type", s)
	}
	t := optionType{optional: m[13] == "?"}
	bound := func(s string) (*float64, error) {
		if s == "" {
			return nil, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		return &f, err
	}
	var err1, err2 error
	switch {
	case m[1] != "":
		t.kind = m[1]
	case m[2] != "":
		t.kind = m[2]
	case m[3] != "":
		t.kind = m[3]
		t.min, err1 = bound(m[4])
		t.max, err2 = bound(m[5])
	case m[6] != "":
		t.kind = m[6]
		t.min, err1 = bound(m[7])
		t.max, err2 = bound(m[8])
	case m[9] != "":
		t.kind = m[9]
		// Python's re.match anchors at the start only; the manifest writes
		// ^…$ itself, so Go's regexp gives the same answers.
		re, err := regexp.Compile(m[10])
		if err != nil {
			return optionType{}, fmt.Errorf("option type %q: %w", s, err)
		}
		if !strings.HasPrefix(m[10], "^") || !strings.HasSuffix(m[10], "$") {
			return optionType{}, fmt.Errorf("option type %q: write the pattern as ^…$ (the Supervisor anchors only the start)", s)
		}
		t.pattern = re
	case m[11] != "":
		t.kind = m[11]
		t.choices = strings.Split(m[12], "|")
	}
	if err1 != nil || err2 != nil {
		return optionType{}, fmt.Errorf("option type %q: bad range", s)
	}
	return t, nil
}

// check tells whether the Supervisor would accept v (JSON-shaped) for t.
// Devices are not checked (they depend on the host's hardware).
func (t optionType) check(v any) error {
	inRange := func(f float64) error {
		if t.min != nil && f < *t.min || t.max != nil && f > *t.max {
			return fmt.Errorf("%v is out of range", v)
		}
		return nil
	}
	switch t.kind {
	case "bool":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%v is not a bool", v)
		}
	case "int", "float", "port":
		f, ok := v.(float64)
		if !ok {
			return fmt.Errorf("%v is not a number", v)
		}
		if t.kind != "float" && f != float64(int64(f)) {
			return fmt.Errorf("%v is not an integer", v)
		}
		if t.kind == "port" && (f < 1 || f > 65535) {
			return fmt.Errorf("%v is not a port (1-65535)", v)
		}
		return inRange(f)
	case "str", "password", "email", "url":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%v is not a string", v)
		}
	case "match":
		// The Supervisor matches str(value), so numbers are matched as text.
		if s := fmt.Sprint(v); !t.pattern.MatchString(s) {
			return fmt.Errorf("%q does not match %s", s, t.pattern)
		}
	case "list":
		s := fmt.Sprint(v)
		for _, c := range t.choices {
			if s == c {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", s, strings.Join(t.choices, "|"))
	}
	return nil
}

// addonContractPaths is the daemon's option list without the
// standalone-only options, as leaves.
func addonContractPaths() []string {
	var keys []string
	for _, k := range config.Keys() {
		if !contains(config.StandaloneOnlyKeys(), k) {
			keys = append(keys, k)
		}
	}
	return leafPaths(keys)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// manifestSchemaPaths loads config.yaml's schema as paths → types.
func manifestSchemaPaths(t *testing.T) map[string]string {
	t.Helper()
	paths, err := schemaPaths(mapAt(t, loadYAML(t, "config.yaml"), "schema"))
	if err != nil {
		t.Fatalf("config.yaml schema: %v", err)
	}
	return paths
}

func TestSchemaNamesEqualDaemonOptions(t *testing.T) {
	got := leafPaths(sortedKeys(manifestSchemaPaths(t)))
	want := addonContractPaths()
	if missing := diff(want, got); len(missing) > 0 {
		t.Errorf("config.yaml schema lacks daemon options %v", missing)
	}
	if extra := diff(got, want); len(extra) > 0 {
		t.Errorf("config.yaml schema has options the daemon does not know: %v", extra)
	}
}

func TestSchemaTypesParse(t *testing.T) {
	for path, typ := range manifestSchemaPaths(t) {
		if _, err := parseOptionType(typ); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

func TestParseOptionTypeRejects(t *testing.T) {
	for _, typ := range []string{"string", "int(5;10)", "list()", "match(^a)", "match(^(a$)", "port??", "device(tty)"} {
		if _, err := parseOptionType(typ); err == nil {
			t.Errorf("parseOptionType(%q): got no error, want one", typ)
		}
	}
}

// TestManifestOptionsValid checks that the options config.yaml sets are
// accepted by its own schema, are the daemon's defaults, and that every
// option missing from "options" is optional ("?"); otherwise the
// Supervisor refuses to start the add-on.
func TestManifestOptionsValid(t *testing.T) {
	m := loadYAML(t, "config.yaml")
	options := mapAt(t, m, "options")
	schema := mapAt(t, m, "schema")
	for _, key := range sortedKeys(options) {
		if _, ok := schema[key]; !ok {
			t.Errorf("options.%s: not in schema", key)
			continue
		}
		if want, ok := contractDefaults[key]; ok && want != nil && !reflect.DeepEqual(options[key], want) {
			t.Errorf("options.%s: got %v, want the daemon's default %v", key, options[key], want)
		}
		if typ, ok := schema[key].(string); ok {
			ot, err := parseOptionType(typ)
			if err != nil {
				t.Errorf("schema.%s: %v", key, err)
				continue
			}
			if err := ot.check(options[key]); err != nil {
				t.Errorf("options.%s: %v", key, err)
			}
		}
	}
	for _, key := range sortedKeys(schema) {
		if _, set := options[key]; set {
			continue
		}
		typ, ok := schema[key].(string)
		if list, isList := schema[key].([]any); isList && len(list) == 1 {
			typ, ok = list[0].(string)
		}
		if !ok || !strings.HasSuffix(typ, "?") {
			t.Errorf("schema.%s: neither optional nor set in options: the Supervisor reports it missing", key)
		}
	}
}

// TestSchemaDefaultsAccepted checks the daemon's default of every option
// against the add-on's type for it, so that a user who types the default
// into the UI is not refused.
func TestSchemaDefaultsAccepted(t *testing.T) {
	for path, typ := range manifestSchemaPaths(t) {
		def := contractDefaults[path]
		if def == nil {
			continue
		}
		ot, err := parseOptionType(typ)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		values := []any{def}
		if list, ok := def.([]any); ok {
			values = list
		}
		for _, v := range values {
			if s, ok := v.(string); ok && s == "" {
				continue // an empty optional string is left out by the UI
			}
			if err := ot.check(v); err != nil {
				t.Errorf("%s: default: %v", path, err)
			}
		}
	}
}

// TestSchemaPatterns runs the add-on's match() and list() types on values
// the daemon accepts and on values it refuses.
func TestSchemaPatterns(t *testing.T) {
	paths := manifestSchemaPaths(t)
	tests := []struct {
		path string
		good []any
		bad  []any
	}{
		{"meters.address",
			[]any{"0", "5", "007", "199", "200", "249", "250", "123456782D2C0107", "148391202d2c0102"},
			[]any{"", "251", "300", "-1", "1000", "12345", "123456782D2C010", "123456782D2C0107 ", "12345678ZD2C0107"}},
		{"tcp_address",
			[]any{"192.168.1.50:10001", "converter.local:502", "[fe80::1]:9999", "moxa-1:4001"},
			[]any{"", "192.168.1.50", "tcp://192.168.1.50:10001", "host:", ":502", "a b:1"}},
		{"topic_prefix",
			[]any{"mbus", "home/mbus", "a b", "x"},
			[]any{"", "/mbus", "mbus/", "mbus/+", "#", "a+b"}},
		{"discovery_prefix",
			[]any{"homeassistant", "ha/discovery"},
			[]any{"", "/homeassistant", "home#assistant"}},
		{"baudrate",
			[]any{300.0, 600.0, 1200.0, 2400.0, 4800.0, 9600.0, 19200.0, 38400.0, "2400"},
			[]any{0.0, 299.0, 301.0, 2401.0, 38401.0, 115200.0, "fast"}},
		{"meters.baudrate",
			[]any{300.0, 2400.0, 38400.0},
			[]any{57600.0, 1000.0}},
		{"buses.baudrate",
			[]any{300.0, 9600.0},
			[]any{57600.0}},
		{"buses.name",
			[]any{"bus", "plant_room", "stairwell-2", "b1"},
			[]any{"", "Plant room", "_x", "a/b", "abcdefghijklmnopqrstuvwxyz0123456"}},
		{"buses.meters.address",
			[]any{"0", "250", "123456782D2C0107"},
			[]any{"251", ""}},
		{"poll_interval",
			[]any{5.0, 15.0, 86400.0},
			[]any{0.0, 4.0, 86401.0, 1.5}},
		{"scan_mode",
			[]any{"primary", "secondary"},
			[]any{"both", ""}},
		{"log_level",
			[]any{"trace", "debug", "info", "warning", "error"},
			[]any{"warn", "fatal"}},
		{"log_format",
			[]any{"text", "json"},
			[]any{"logfmt"}},
		{"mqtt.port",
			[]any{1883.0, 8883.0},
			[]any{0.0, 65536.0}},
		{"outbox_max_rows",
			[]any{100.0, 100000.0},
			[]any{99.0}},
		{"outbox_max_age",
			[]any{60.0, 2592000.0},
			[]any{59.0}},
		{"response_timeout_extra",
			[]any{0.0, 10000.0},
			[]any{-1.0, 10001.0}},
		{"expire_after",
			[]any{0.0, 300.0},
			[]any{-5.0}},
	}
	for _, tt := range tests {
		typ, ok := paths[tt.path]
		if !ok {
			t.Errorf("%s: not in the schema", tt.path)
			continue
		}
		ot, err := parseOptionType(typ)
		if err != nil {
			t.Errorf("%s: %v", tt.path, err)
			continue
		}
		for _, v := range tt.good {
			if err := ot.check(v); err != nil {
				t.Errorf("%s = %#v: got %v, want accepted", tt.path, v, err)
			}
		}
		for _, v := range tt.bad {
			if err := ot.check(v); err == nil {
				t.Errorf("%s = %#v: got accepted, want refused", tt.path, v)
			}
		}
	}
}

// TestStandaloneExample checks packaging/options.example.yaml: only known
// options, and every one of them shown, including data_dir.
func TestStandaloneExample(t *testing.T) {
	ex := loadYAML(t, "packaging/options.example.yaml")
	var paths []string
	for _, k := range sortedKeys(ex) {
		paths = append(paths, k)
		switch v := ex[k].(type) {
		case map[string]any:
			for _, sub := range sortedKeys(v) {
				paths = append(paths, k+"."+sub)
			}
		case []any:
			for _, el := range v {
				if m, ok := el.(map[string]any); ok {
					for _, sub := range sortedKeys(m) {
						paths = append(paths, k+"."+sub)
					}
				}
			}
		}
	}
	got := leafPaths(uniq(paths))
	all := leafPaths(sortedKeys(contractDefaults))
	if extra := diff(got, all); len(extra) > 0 {
		t.Errorf("options.example.yaml: unknown options %v", extra)
	}
	// tcp_address, buses, a meter's key and the TLS files are shown
	// commented out: the alternative to serial_port, to the single bus, an
	// example key and certificates.
	text := string(readRootFile(t, "packaging/options.example.yaml"))
	commented := []string{"mqtt.ca_file", "mqtt.cert_file", "mqtt.key_file"}
	for _, k := range []string{"tcp_address", "buses", "key", "ca_file", "cert_file", "key_file"} {
		if !strings.Contains(text, "# "+k+":") && !strings.Contains(text, "#   "+k+":") {
			t.Errorf("options.example.yaml: does not show %s in a comment", k)
		}
	}
	var missing []string
	for _, p := range diff(all, got) {
		if p != "tcp_address" && p != "meters.key" && !strings.HasPrefix(p, "buses.") && !slices.Contains(commented, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Errorf("options.example.yaml: does not show %v", missing)
	}
	if _, err := config.Parse(readRootFile(t, "packaging/options.example.yaml"), "options.example.yaml"); err != nil {
		t.Errorf("the daemon refuses options.example.yaml:\n%v", err)
	}
}

func uniq(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
