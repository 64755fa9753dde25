package config

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Migrate converts a configuration of the older Python gateway into this
// gateway's options, as YAML that Load accepts. name is the old file's name,
// for messages. The older gateway accepted, in JSON or YAML:
//
//   - v1, a flat config.json: mqtt_broker, mqtt_port, mqtt_username,
//     mqtt_password, mqtt_topic, mbus_port, mbus_baudrate, poll_interval,
//     log_level, known_devices […];
//   - v2, with sections: mqtt {broker, port, …}, mbus {port, baudrate,
//     read_interval, devices […]}, logging {level, format}, health {port};
//   - v2 with flat keys beside the sections (v1's names, or this gateway's
//     own such as meters and log_level).
//
// The notes say what was changed on the way and what was dropped on
// purpose, and why. What cannot be converted (a meter above all, but also a
// key no version knew, a value of the wrong type, or two keys for one
// setting with different values) makes the error, which names each; the
// YAML is returned with it for the user to fix, as it is when the result
// is not valid yet (the old file named no bus, say).
func Migrate(old []byte, name string) ([]byte, []string, error) {
	tree, err := readTree(old, name)
	if err != nil {
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	m := &migration{used: map[string]bool{}}
	var version string
	switch {
	case isSection(tree["mbus"]), isSection(tree["mqtt"]) && tree["serial_port"] == nil && tree["tcp_address"] == nil:
		version = "v2"
	case isV1(tree):
		version = "v1"
	case tree["serial_port"] != nil || tree["tcp_address"] != nil:
		return nil, nil, fmt.Errorf("migrate: %s is already in the options format: check it with validate-config", name)
	default:
		return nil, nil, fmt.Errorf("migrate: %s is not a configuration of the older gateway: want v1 (mqtt_broker, mbus_port, known_devices, …) or v2 (sections mqtt:, mbus:)", name)
	}
	m.convert(tree)
	m.dropUnused("", tree)

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Options converted from %s (older gateway, %s).\n", filepath.Base(name), version)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&m.out); err != nil {
		return nil, m.notes, fmt.Errorf("migrate: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, m.notes, fmt.Errorf("migrate: %w", err)
	}
	var errs []error
	if len(m.failed) > 0 {
		errs = append(errs, errors.New("migrate: could not convert:\n"+strings.Join(m.failed, "\n")))
	}
	if _, err := Parse(buf.Bytes(), "converted.yaml"); err != nil {
		errs = append(errs, fmt.Errorf("migrate: the converted options need fixing:\n%w", err))
	}
	return buf.Bytes(), m.notes, errors.Join(errs...)
}

// migrated is the output, in the order a reader expects the options.
type migrated struct {
	SerialPort      string          `yaml:"serial_port,omitempty"`
	TCPAddress      string          `yaml:"tcp_address,omitempty"`
	Baudrate        *int            `yaml:"baudrate,omitempty"`
	PollInterval    *int            `yaml:"poll_interval,omitempty"`
	Meters          []migratedMeter `yaml:"meters,omitempty"`
	MQTT            *migratedMQTT   `yaml:"mqtt,omitempty"`
	TopicPrefix     string          `yaml:"topic_prefix,omitempty"`
	DiscoveryPrefix string          `yaml:"discovery_prefix,omitempty"`
	ExpireAfter     *int            `yaml:"expire_after,omitempty"`
	LogLevel        string          `yaml:"log_level,omitempty"`
	LogFormat       string          `yaml:"log_format,omitempty"`
	MetricsPort     *int            `yaml:"metrics_port,omitempty"`
	// Own are top-level keys that are already this gateway's options.
	Own map[string]any `yaml:",inline"`
}

type migratedMeter struct {
	Address      string `yaml:"address"`
	Name         string `yaml:"name,omitempty"`
	PollInterval *int   `yaml:"poll_interval,omitempty"`
	Baudrate     *int   `yaml:"baudrate,omitempty"`
	Enabled      *bool  `yaml:"enabled,omitempty"`
}

type migratedMQTT struct {
	Host     string `yaml:"host,omitempty"`
	Port     *int   `yaml:"port,omitempty"`
	Username string `yaml:"username,omitempty"`
	Password string `yaml:"password,omitempty"`
	TLS      *bool  `yaml:"tls,omitempty"`
}

// dropReasons explains, by key name, why an old setting has no
// counterpart. A section named here is dropped as a whole.
var dropReasons = map[string]string{
	"heartbeat":          "not needed: readings are published when read, availability follows each meter, and values are never republished to look alive",
	"heartbeat_interval": "not needed: readings are published when read, availability follows each meter, and values are never republished to look alive",
	"client_id":          "the gateway chooses its own MQTT client ID",
	"qos":                "readings are always published with QoS 1",
	"keepalive":          "the gateway uses a fixed MQTT keep-alive",
	"retain":             "state topics are always retained",
	"offline_queue":      "replaced by the SQLite outbox, see outbox_max_rows and outbox_max_age",
	"persistence":        "the SQLite store lives in /data, or in data_dir when standalone",
	"database":           "the SQLite store lives in /data, or in data_dir when standalone",
	"timeout":            "answer timeouts follow the baud rate as EN 13757-2 asks; for a slow TCP converter set response_timeout_extra in milliseconds",
	"retry":              "built in: a circuit breaker per meter with exponential backoff",
	"retries":            "built in: a circuit breaker per meter with exponential backoff",
	"max_retries":        "built in: a circuit breaker per meter with exponential backoff",
	"circuit_breaker":    "built in: a circuit breaker per meter with exponential backoff",
	"file":               "logs go to standard output, where the Supervisor's log or journald keep and rotate them",
	"log_file":           "logs go to standard output, where the Supervisor's log or journald keep and rotate them",
	"max_bytes":          "logs go to standard output, where the Supervisor's log or journald keep and rotate them",
	"backup_count":       "logs go to standard output, where the Supervisor's log or journald keep and rotate them",
	"host":               "the status port listens on all addresses",
	"watchdog":           "the container's health check restarts a hung gateway",
	"reload":             "options are read at start: restart the gateway to apply changes",
	"hot_reload":         "options are read at start: restart the gateway to apply changes",
	"ca_certs":           "the system's CA certificates are used",
	"certfile":           "client certificates are not supported",
	"keyfile":            "client certificates are not supported",
	"manufacturer":       "the gateway reads it from the meter's telegrams",
	"medium":             "the gateway reads it from the meter's telegrams",
	"firmware":           "the gateway reads it from the meter's telegrams",
	"version":            "the gateway reads it from the meter's telegrams",
}

// dropReason finds the reason for a key, also under v1's flat names
// ("mqtt_client_id" is "client_id" of the mqtt section).
func dropReason(key string) (string, bool) {
	if r, ok := dropReasons[key]; ok {
		return r, true
	}
	for _, p := range []string{"mqtt_", "mbus_", "log_", "logging_"} {
		if rest, ok := strings.CutPrefix(key, p); ok {
			if r, ok := dropReasons[rest]; ok {
				return r, true
			}
		}
	}
	return "", false
}

// migration collects the output, the notes and which old keys were used.
type migration struct {
	out   migrated
	notes []string
	// failed lists what could not be converted, one "path: why" each.
	failed []string
	used   map[string]bool // paths of old keys that were converted
}

func (m *migration) note(format string, args ...any) {
	m.notes = append(m.notes, fmt.Sprintf(format, args...))
}

func (m *migration) fail(path, format string, args ...any) {
	m.failed = append(m.failed, path+": "+fmt.Sprintf(format, args...))
}

// src is where an old setting may be: the first present of keys in obj,
// whose path is prefix ("mqtt.", or "" for the top level). obj may be nil.
type src struct {
	obj    map[string]any
	prefix string
	keys   []string
}

func at(obj map[string]any, prefix string, keys ...string) src { return src{obj, prefix, keys} }

// take returns the first value present (not null) in srcs and marks every
// key present used. A second key for the same setting is fine when it
// holds the same value; another value cannot be converted, as there is no
// telling which one the older gateway used.
func (m *migration) take(srcs ...src) (any, string, bool) {
	var val any
	var path string
	for p, v := range m.present(srcs) {
		switch {
		case path == "":
			val, path = v, p
		case fmt.Sprint(v) != fmt.Sprint(val):
			m.fail(p, "%s is set too, to another value: keep one of them", path)
		}
	}
	return val, path, path != ""
}

// present yields the path and value of every key of srcs that is present
// (not null), in order, and marks it used.
func (m *migration) present(srcs []src) iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		for _, s := range srcs {
			for _, k := range s.keys {
				v, ok := s.obj[k]
				if !ok || v == nil {
					continue
				}
				m.used[s.prefix+k] = true
				if !yield(s.prefix+k, v) {
					return
				}
			}
		}
	}
}

func (m *migration) str(srcs ...src) (string, string, bool) {
	v, path, ok := m.take(srcs...)
	if !ok {
		return "", "", false
	}
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x), path, true
	case map[string]any, []any:
		m.fail(path, "want text, got %s", describe(v))
		return "", "", false
	}
	return describe(v), path, true
}

// num reads a whole number; the old gateway also took numbers as text.
func (m *migration) num(srcs ...src) (int, string, bool) {
	v, path, ok := m.take(srcs...)
	if !ok {
		return 0, "", false
	}
	if n, ok := oldInt(v); ok {
		return n, path, true
	}
	m.fail(path, "%s is not a whole number", describe(v))
	return 0, "", false
}

func (m *migration) flag(srcs ...src) (bool, string, bool) {
	v, path, ok := m.take(srcs...)
	if !ok {
		return false, "", false
	}
	switch x := v.(type) {
	case bool:
		return x, path, true
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b, path, true
		}
	}
	m.fail(path, "%s is not true or false", describe(v))
	return false, "", false
}

func oldInt(v any) (int, bool) {
	var f float64
	switch x := v.(type) {
	case int:
		return x, true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	default:
		s, isNum := numberText(v)
		if !isNum {
			return 0, false
		}
		var err error
		if f, err = strconv.ParseFloat(s, 64); err != nil {
			return 0, false
		}
	}
	if f != math.Trunc(f) || math.Abs(f) > maxInt {
		return 0, false
	}
	return int(f), true
}

func isSection(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}

func isV1(tree map[string]any) bool {
	for k := range tree {
		if strings.HasPrefix(k, "mqtt_") || strings.HasPrefix(k, "mbus_") || k == "known_devices" {
			return true
		}
	}
	return false
}

// convert takes every setting from wherever the older gateway accepted it:
// v2's sections first, then the flat keys of v1 (and this gateway's own
// names) at the top level. A v1 file has no sections; their sources are
// empty then.
func (m *migration) convert(t map[string]any) {
	mq, mb := section(t, "mqtt"), section(t, "mbus")
	lg, ha, hl := section(t, "logging"), section(t, "homeassistant"), section(t, "health")

	m.mqtt(t, mq)
	if s, path, ok := m.str(at(mq, "mqtt.", "topic_prefix", "base_topic", "topic"),
		at(t, "", "mqtt_topic", "mqtt_topic_prefix", "mqtt_base_topic", "topic_prefix")); ok {
		m.out.TopicPrefix = m.trimSlashes(s, path)
	}
	if s, path, ok := m.str(at(mq, "mqtt.", "discovery_prefix"), at(ha, "homeassistant.", "discovery_prefix", "prefix"),
		at(t, "", "discovery_prefix", "ha_discovery_prefix", "homeassistant_prefix", "mqtt_discovery_prefix")); ok {
		m.out.DiscoveryPrefix = m.trimSlashes(s, path)
	}
	if n, path, ok := m.num(at(ha, "homeassistant.", "expire_after"), at(mq, "mqtt.", "expire_after"),
		at(t, "", "expire_after", "mqtt_expire_after")); ok {
		m.out.ExpireAfter = &n
		if n > 0 {
			m.note("%s: kept %d s; entities now turn unavailable when their meter stops answering, so 0 (never) is enough", path, n)
		}
	}
	if p, path, ok := m.str(at(mb, "mbus.", "port", "device", "serial_port"),
		at(t, "", "mbus_port", "mbus_device", "serial_port", "tcp_address")); ok {
		m.busPort(p, path)
	}
	if b, _, ok := m.num(at(mb, "mbus.", "baudrate", "baud"), at(t, "", "mbus_baudrate", "baudrate")); ok {
		m.out.Baudrate = &b
	}
	if n, _, ok := m.num(at(mb, "mbus.", "read_interval", "poll_interval", "interval"),
		at(t, "", "poll_interval", "read_interval", "mbus_poll_interval", "mbus_read_interval")); ok {
		m.out.PollInterval = &n
	}
	m.devices(at(mb, "mbus.", "devices", "known_devices", "meters"), at(t, "", "known_devices", "devices", "meters"))
	m.logging(at(lg, "logging.", "level"), at(t, "", "log_level", "loglevel"))
	if s, path, ok := m.str(at(lg, "logging.", "format"), at(t, "", "log_format")); ok {
		m.logFormat(s, path)
	}
	m.health(hl, t)
	m.ownOptions(t)
}

// ownOptions passes on the top-level keys that are this gateway's options
// and have no counterpart above (scan_mode, web_allow, …); Parse checks
// them with the rest.
func (m *migration) ownOptions(t map[string]any) {
	top, _ := topLevel()
	for _, k := range sortedKeys(t) {
		if !top[k] || m.used[k] || t[k] == nil || k == "mqtt" || k == "buses" {
			continue
		}
		if m.out.Own == nil {
			m.out.Own = map[string]any{}
		}
		m.out.Own[k] = t[k]
		m.used[k] = true
	}
}

// section returns t[key] when it is a mapping; otherwise nil (an old file
// that has something else there keeps it, and dropUnused reports it).
func section(t map[string]any, key string) map[string]any {
	s, _ := t[key].(map[string]any)
	return s
}

func (m *migration) mqtt(t, mq map[string]any) {
	var q migratedMQTT
	set := false
	if h, _, ok := m.str(at(mq, "mqtt.", "broker", "host", "server"), at(t, "", "mqtt_broker", "mqtt_host", "mqtt_server")); ok {
		q.Host, set = h, true
	}
	if p, _, ok := m.num(at(mq, "mqtt.", "port"), at(t, "", "mqtt_port")); ok {
		q.Port, set = &p, true
	}
	if u, _, ok := m.str(at(mq, "mqtt.", "username", "user"), at(t, "", "mqtt_username", "mqtt_user")); ok {
		q.Username, set = u, true
	}
	// The password is a secret: a value that cannot be used is reported
	// by its type only.
	if v, path, ok := m.take(at(mq, "mqtt.", "password"), at(t, "", "mqtt_password")); ok {
		if _, isText := v.(string); isText || isNumberOrBool(v) {
			q.Password, set = strings.TrimSpace(fmt.Sprint(v)), true
		} else {
			m.fail(path, "want text, got %s", kind(v))
		}
	}
	if v, path, ok := m.take(at(mq, "mqtt.", "tls", "use_tls", "ssl"), at(t, "", "mqtt_tls", "mqtt_use_tls")); ok {
		tls, ok := v.(bool)
		if tlsSection, isObj := v.(map[string]any); isObj {
			tls, _ = tlsSection["enabled"].(bool)
			m.used[path+".enabled"] = true
			ok = true
		}
		if ok {
			q.TLS, set = &tls, true
		} else {
			m.fail(path, "%s is not true or false", describe(v))
		}
	}
	if set {
		m.out.MQTT = &q
	}
}

func isNumberOrBool(v any) bool {
	_, isNum := numberText(v)
	_, isBool := v.(bool)
	return isNum || isBool
}

// trimSlashes removes what MQTT topic prefixes may not have at the ends.
func (m *migration) trimSlashes(s, path string) string {
	t := strings.Trim(s, "/")
	if t != s {
		m.note("%s: %q → %q (no leading or trailing /)", path, s, t)
	}
	return t
}

// busPort sorts the old port setting into serial_port or tcp_address. The
// old gateway used pyserial, which takes URLs like socket://host:port.
func (m *migration) busPort(p, path string) {
	for _, scheme := range []string{"tcp://", "socket://", "rfc2217://"} {
		if rest, ok := strings.CutPrefix(p, scheme); ok {
			m.out.TCPAddress = strings.TrimSuffix(rest, "/")
			m.note("%s: %q → tcp_address %s", path, p, m.out.TCPAddress)
			if scheme == "rfc2217://" {
				m.note("%s: RFC 2217 is not spoken; the converter must also accept raw TCP on that port", path)
			}
			return
		}
	}
	if strings.HasPrefix(p, "/") {
		m.out.SerialPort = p
		return
	}
	m.out.TCPAddress = p
	if path != "tcp_address" {
		m.note("%s: %q is not a device path, taken as tcp_address", path, p)
	}
}

// logLevels maps Python's logging level names.
var logLevels = map[string]string{
	"notset": "debug", "trace": "trace", "debug": "debug", "info": "info",
	"warn": "warning", "warning": "warning", "error": "error", "critical": "error", "fatal": "error",
}

func (m *migration) logging(srcs ...src) {
	if s, path, ok := m.str(srcs...); ok {
		if l, known := logLevels[strings.ToLower(s)]; known {
			m.out.LogLevel = l
		} else {
			m.fail(path, "%s is not a log level", quote(s))
		}
	}
}

func (m *migration) logFormat(s, path string) {
	switch f := strings.ToLower(s); f {
	case "json", "text":
		m.out.LogFormat = f
	case "structured":
		m.out.LogFormat = "json"
	default:
		m.out.LogFormat = "text"
		m.note("%s: %s → text", path, quote(s))
	}
}

// health maps the old health server onto metrics_port, which serves
// /health, /status and /metrics as the old one did.
func (m *migration) health(hl, t map[string]any) {
	if on, _, ok := m.flag(at(hl, "health.", "enabled")); ok && !on {
		off := 0
		m.out.MetricsPort = &off
		m.used["health.port"] = true // no port for a server that is off
		return
	}
	if p, path, ok := m.num(at(hl, "health.", "port"), at(t, "", "health_port", "metrics_port")); ok {
		m.out.MetricsPort = &p
		if path != "metrics_port" {
			m.note("%s: %d → metrics_port (/health, /status and /metrics)", path, p)
		}
	}
}

// devices converts the meters of every list the older gateway read them
// from. A meter that cannot be converted, or repeats the address of an
// earlier one, cannot be converted: the older gateway read it, and this
// gateway must not silently stop.
func (m *migration) devices(srcs ...src) {
	seen := map[string]string{}
	for path, v := range m.present(srcs) {
		list, isList := v.([]any)
		if !isList {
			m.fail(path, "want a list of meters, got %s", describe(v))
			continue
		}
		for i, e := range list {
			m.device(index(path, i), e, seen)
		}
	}
}

func (m *migration) device(path string, e any, seen map[string]string) {
	dev, isObj := e.(map[string]any)
	if !isObj {
		m.fail(path, "want a meter (an object with an address), got %s", describe(e))
		return
	}
	prefix := path + "."
	v, apath, ok := m.take(at(dev, prefix, "address", "secondary_address", "primary_address", "id"))
	if !ok {
		m.fail(path, "the meter has no address")
		return
	}
	s, isStr := v.(string)
	addr := strings.TrimSpace(s)
	if !isStr {
		addr = describe(v) // the old gateway took primary addresses as numbers
	}
	a, msg := parseMeterAddress(addr)
	if msg != "" {
		m.fail(path, "address %s", msg)
		return
	}
	if first, dup := seen[a.String()]; dup {
		m.fail(path, "address %s repeats %s: keep one of them", a, first)
		return
	}
	seen[a.String()] = path
	if apath != prefix+"address" {
		m.note("%s → address %q", apath, addr)
	}
	mm := migratedMeter{Address: addr}
	if s, _, ok := m.str(at(dev, prefix, "name", "friendly_name")); ok {
		mm.Name = s
	}
	if n, _, ok := m.num(at(dev, prefix, "poll_interval_seconds", "poll_interval", "read_interval")); ok {
		mm.PollInterval = &n
	}
	if n, _, ok := m.num(at(dev, prefix, "baudrate", "baud")); ok {
		mm.Baudrate = &n
	}
	if b, _, ok := m.flag(at(dev, prefix, "enabled")); ok {
		mm.Enabled = &b
	}
	m.used[path] = true // kept: report its unconverted keys
	m.out.Meters = append(m.out.Meters, mm)
}

// dropUnused notes every old key that was not converted, with the reason
// where one is known.
func (m *migration) dropUnused(prefix string, obj map[string]any) {
	for _, k := range sortedKeys(obj) {
		path := prefix + k
		if m.used[path] {
			// A converted section or list may still hold keys that were not.
			switch v := obj[k].(type) {
			case map[string]any:
				m.dropUnused(path+".", v)
			case []any:
				for i, e := range v {
					if sub, ok := e.(map[string]any); ok && m.used[index(path, i)] {
						m.dropUnused(index(path, i)+".", sub)
					}
				}
			}
			continue
		}
		reason, known := dropReason(k)
		if sub, ok := obj[k].(map[string]any); ok && !known {
			m.dropUnused(path+".", sub)
			continue
		}
		if !known {
			m.fail(path, "no setting of the older gateway that migrate-config knows: convert it by hand or remove it")
			continue
		}
		m.note("dropped: %s (%s)", path, reason)
	}
}
