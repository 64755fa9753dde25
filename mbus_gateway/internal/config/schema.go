package config

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/supervisor"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
)

// field is one option: its path, its default (in the form a file holds it;
// nil = no default) and how its value is decoded into T. The tables below
// are the only place that knows the keys and the defaults.
type field[T any] struct {
	key    string
	def    any
	decode func(d *decoder, path string, v any, t *T)
}

// options is the schema of the top level (nested keys written with dots).
// The lists meters and buses are decoded on their own (see decodeMeters and
// decodeBuses).
var options = []field[Options]{
	stringField("serial_port", "", func(o *Options) *string { return &o.SerialPort }),
	stringField("tcp_address", "", func(o *Options) *string { return &o.TCPAddress }),
	baudField("baudrate", transport.DefaultBaud, func(o *Options) *int { return &o.Baudrate }),
	durationField("poll_interval", 15, time.Second, func(o *Options) *time.Duration { return &o.PollInterval }),
	boolField("scan_on_start", true, func(o *Options) *bool { return &o.ScanOnStart }),
	stringField("scan_mode", "secondary", func(o *Options) *string { return &o.ScanMode }),
	stringField("mqtt.host", "", func(o *Options) *string { return &o.MQTT.Host }),
	intField("mqtt.port", 1883, func(o *Options) *int { return &o.MQTT.Port }),
	stringField("mqtt.username", "", func(o *Options) *string { return &o.MQTT.Username }),
	secretField("mqtt.password", "", func(o *Options) *logging.Secret { return &o.MQTT.Password }),
	boolField("mqtt.tls", false, func(o *Options) *bool { return &o.MQTT.TLS }),
	stringField("mqtt.ca_file", "", func(o *Options) *string { return &o.MQTT.CAFile }),
	stringField("mqtt.cert_file", "", func(o *Options) *string { return &o.MQTT.CertFile }),
	stringField("mqtt.key_file", "", func(o *Options) *string { return &o.MQTT.KeyFile }),
	stringField("topic_prefix", "mbus", func(o *Options) *string { return &o.TopicPrefix }),
	stringField("discovery_prefix", "homeassistant", func(o *Options) *string { return &o.DiscoveryPrefix }),
	durationField("expire_after", 0, time.Second, func(o *Options) *time.Duration { return &o.ExpireAfter }),
	intField("outbox_max_rows", 100000, func(o *Options) *int { return &o.OutboxMaxRows }),
	durationField("outbox_max_age", 30*24*3600, time.Second, func(o *Options) *time.Duration { return &o.OutboxMaxAge }),
	durationField("response_timeout_extra", 0, time.Millisecond, func(o *Options) *time.Duration { return &o.ResponseTimeoutExtra }),
	stringField("log_level", "info", func(o *Options) *string { return &o.LogLevel }),
	stringField("log_format", "text", func(o *Options) *string { return &o.LogFormat }),
	intField("web_port", supervisor.IngressPort, func(o *Options) *int { return &o.WebPort }),
	{key: "web_allow", def: []any{supervisor.IngressProxy}, decode: decodeWebAllow},
	intField("metrics_port", 9105, func(o *Options) *int { return &o.MetricsPort }),
	stringField("metrics_bind", "127.0.0.1", func(o *Options) *string { return &o.MetricsBind }),
	stringField("data_dir", "/data", func(o *Options) *string { return &o.DataDir }),
}

// meterFields is the schema of one entry of meters. Optional fields without
// a default inherit the global value (see decodeMeters).
var meterFields = []field[Meter]{
	{key: "address", decode: decodeAddress},
	stringField[Meter]("name", "", func(m *Meter) *string { return &m.Name }),
	durationField[Meter]("poll_interval", nil, time.Second, func(m *Meter) *time.Duration { return &m.PollInterval }),
	baudField[Meter]("baudrate", nil, func(m *Meter) *int { return &m.Baudrate }),
	boolField[Meter]("enabled", true, func(m *Meter) *bool { return &m.Enabled }),
	boolField[Meter]("guard", true, func(m *Meter) *bool { return &m.Guard }),
	secretField[Meter]("key", "", func(m *Meter) *logging.Secret { return &m.Key }),
}

// busFields is the schema of one entry of buses; its meters are decoded
// like the top-level ones. Fields without a default inherit the top-level
// value (see decodeBuses).
var busFields = []field[Bus]{
	stringField[Bus]("name", nil, func(b *Bus) *string { return &b.Name }),
	stringField[Bus]("serial_port", "", func(b *Bus) *string { return &b.SerialPort }),
	stringField[Bus]("tcp_address", "", func(b *Bus) *string { return &b.TCPAddress }),
	baudField[Bus]("baudrate", nil, func(b *Bus) *int { return &b.Baudrate }),
	boolField[Bus]("scan_on_start", nil, func(b *Bus) *bool { return &b.ScanOnStart }),
	stringField[Bus]("scan_mode", nil, func(b *Bus) *string { return &b.ScanMode }),
}

// meterRequired and busRequired name the keys an entry must have, and say
// how to fix it when one is missing.
var (
	meterRequired = map[string]string{"address": `is missing: want a primary address "0" to "250" or a 16-hex-digit secondary address`}
	busRequired   = map[string]string{"name": "is missing: give each bus a name (e.g. plant_room)"}
)

// Keys lists every option path the daemon accepts, sorted: nested keys are
// joined with dots ("mqtt.host") and keys of list entries likewise, without
// an index ("meters.address").
func Keys() []string {
	keys := []string{}
	for _, f := range options {
		keys = append(keys, f.key)
	}
	for _, f := range meterFields {
		keys = append(keys, "meters."+f.key, "buses.meters."+f.key)
	}
	for _, f := range busFields {
		keys = append(keys, "buses."+f.key)
	}
	slices.Sort(keys)
	return keys
}

// StandaloneOnlyKeys lists the options that only a standalone installation
// uses; the add-on's manifest does not offer them. The add-on's status
// page must stay on the ingress port, and its metrics port is the ports:
// mapping of the manifest.
func StandaloneOnlyKeys() []string {
	return []string{"data_dir", "metrics_bind", "metrics_port", "web_port"}
}

// entryKeys lists the keys allowed in an entry of a list option.
func entryKeys[T any](fields []field[T], more ...string) map[string]bool {
	known := map[string]bool{}
	for _, f := range fields {
		known[f.key] = true
	}
	for _, k := range more {
		known[k] = true
	}
	return known
}

// topLevel reports the keys allowed at the top of a file, and, for the
// nested object, the keys allowed inside it.
func topLevel() (top map[string]bool, mqtt map[string]bool) {
	top = map[string]bool{"meters": true, "buses": true}
	mqtt = map[string]bool{}
	for _, f := range options {
		if rest, ok := strings.CutPrefix(f.key, "mqtt."); ok {
			top["mqtt"] = true
			mqtt[rest] = true
			continue
		}
		top[f.key] = true
	}
	return top, mqtt
}

func stringField[T any](key string, def any, p func(*T) *string) field[T] {
	return field[T]{key: key, def: def, decode: func(d *decoder, path string, v any, t *T) {
		if s, ok := d.str(path, v); ok {
			*p(t) = s
		}
	}}
}

func boolField[T any](key string, def any, p func(*T) *bool) field[T] {
	return field[T]{key: key, def: def, decode: func(d *decoder, path string, v any, t *T) {
		if b, ok := d.boolean(path, v); ok {
			*p(t) = b
		}
	}}
}

// secretField decodes a secret: its value never appears in a message, not
// even when it has the wrong type.
func secretField[T any](key string, def any, p func(*T) *logging.Secret) field[T] {
	return field[T]{key: key, def: def, decode: func(d *decoder, path string, v any, t *T) {
		s, ok := v.(string)
		if !ok {
			d.problem(path, "want a string, got %s", kind(v))
			return
		}
		*p(t) = logging.Secret(s)
	}}
}

// baudField decodes a baud rate given as a number or as text: the
// Supervisor stores the value of a list(...) option as text ("2400").
func baudField[T any](key string, def any, p func(*T) *int) field[T] {
	return field[T]{key: key, def: def, decode: func(d *decoder, path string, v any, t *T) {
		s, isText := v.(string)
		if !isText {
			if n, ok := d.integer(path, v, maxInt, ""); ok {
				*p(t) = int(n)
			}
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			d.problem(path, "%s is not supported: %s", quote(s), wantBaud())
			return
		}
		*p(t) = n
	}}
}

// maxInt bounds every integer option; nothing sensible is larger, and it
// keeps ports and counts far from overflow.
const maxInt = 1 << 31

func intField[T any](key string, def any, p func(*T) *int) field[T] {
	return field[T]{key: key, def: def, decode: func(d *decoder, path string, v any, t *T) {
		if n, ok := d.integer(path, v, maxInt, ""); ok {
			*p(t) = int(n)
		}
	}}
}

// maxSeconds bounds options given in seconds (and milliseconds) so that
// the conversion to time.Duration cannot overflow: 366 days.
const maxSeconds = 366 * 24 * 3600

func durationField[T any](key string, def any, unit time.Duration, p func(*T) *time.Duration) field[T] {
	limit, name := int64(maxSeconds), " (seconds)"
	if unit == time.Millisecond {
		limit, name = limit*1000, " (milliseconds)"
	}
	return field[T]{key: key, def: def, decode: func(d *decoder, path string, v any, t *T) {
		if n, ok := d.integer(path, v, limit, name); ok {
			*p(t) = time.Duration(n) * unit
		}
	}}
}

func decodeWebAllow(d *decoder, path string, v any, o *Options) {
	list, ok := d.stringList(path, v)
	if !ok {
		return
	}
	o.WebAllow = nil
	for i, s := range list {
		p, err := parseAllow(s)
		if err != nil {
			d.problem(index(path, i), "%s is not an IP address or CIDR (e.g. 172.30.32.2 or 192.168.1.0/24)", quote(s))
			continue
		}
		o.WebAllow = append(o.WebAllow, p)
	}
}

// parseAllow reads an IP address (as a full-length prefix) or a CIDR.
func parseAllow(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func decodeAddress(d *decoder, path string, v any, m *Meter) {
	if n, isNum := numberText(v); isNum {
		d.problem(path, "want a string, got %s (write it in quotes: %q)", n, n)
		return
	}
	s, ok := d.str(path, v)
	if !ok {
		return
	}
	a, msg := parseMeterAddress(s)
	if msg != "" {
		d.problem(path, "%s", msg)
		return
	}
	m.Address = a
}

// parseMeterAddress reads a meter address and explains what is wrong with
// a bad one: a primary address (EN 13757-2, 0 to 250; 251 to 255 are
// reserved for tests and broadcast) or a full 16-hex-digit secondary address
// (EN 13757-3, clause 11.3).
func parseMeterAddress(s string) (mbus.Address, string) {
	raw := s
	switch {
	case s == "":
		return mbus.Address{}, `is empty: want a primary address "0" to "250" or a 16-hex-digit secondary address`
	case len(s) == 16:
		sa, err := mbus.ParseSecondaryAddress(s)
		if err != nil {
			return mbus.Address{}, quote(s) + " is not a secondary address: want 16 hex digits"
		}
		if sa.IsPattern() {
			return mbus.Address{}, quote(s) + " has wildcards (F): give the full secondary address of one meter"
		}
	case allDigits(s):
		// Leading zeros are allowed ("005" is meter 5).
		s = strings.TrimLeft(s, "0")
		if s == "" {
			s = "0"
		}
		if len(s) > 3 || atoi(s) > mbus.AddrMaxPrimary {
			return mbus.Address{}, quote(raw) + " is out of range: primary addresses go from 0 to 250"
		}
	default:
		return mbus.Address{}, quote(s) + ` is not an address: want a primary address "0" to "250" or a 16-hex-digit secondary address`
	}
	a, err := mbus.ParseAddress(s)
	if err != nil {
		return mbus.Address{}, err.Error()
	}
	return a, ""
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
