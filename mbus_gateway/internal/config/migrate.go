package config

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Migrate converts a configuration of the older Python gateway into this
// gateway's options, as YAML that Load accepts. name is the old file's name,
// for messages. Two formats are told apart by content:
//
//   - v1, a flat config.json: mqtt_broker, mqtt_port, mqtt_username,
//     mqtt_password, mqtt_topic, mbus_port, mbus_baudrate, poll_interval,
//     known_devices […];
//   - v2, YAML with sections: mqtt {broker, port, …}, mbus {port, baudrate,
//     read_interval, devices […]}, logging {level, format}, health {port}.
//
// The notes say what was changed on the way and what was dropped, and why;
// no old key is dropped silently. When the result is not valid yet (the old
// file named no bus, say), Migrate returns the YAML together with an error
// that lists what to fix.
func Migrate(old []byte, name string) ([]byte, []string, error) {
	tree, err := readTree(old, name)
	if err != nil {
		return nil, nil, fmt.Errorf("migrate: %w", err)
	}
	m := &migration{used: map[string]bool{}}
	var version string
	switch {
	case tree["serial_port"] != nil || tree["tcp_address"] != nil:
		return nil, nil, fmt.Errorf("migrate: %s is already in the options format: check it with validate-config", name)
	case isSection(tree["mqtt"]) || isSection(tree["mbus"]):
		version = "v2"
		m.v2(tree)
	case isV1(tree):
		version = "v1"
		m.v1(tree)
	default:
		return nil, nil, fmt.Errorf("migrate: %s is not a configuration of the older gateway: want v1 (mqtt_broker, mbus_port, known_devices, …) or v2 (sections mqtt:, mbus:)", name)
	}
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
	if _, err := Parse(buf.Bytes(), "converted.yaml"); err != nil {
		return buf.Bytes(), m.notes, fmt.Errorf("migrate: the converted options need fixing:\n%w", err)
	}
	return buf.Bytes(), m.notes, nil
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
	used  map[string]bool // paths of old keys that were converted
}

func (m *migration) note(format string, args ...any) {
	m.notes = append(m.notes, fmt.Sprintf(format, args...))
}

// take returns the first of keys present (not null) in obj and marks it
// used; prefix is obj's path ("mqtt.").
func (m *migration) take(obj map[string]any, prefix string, keys ...string) (any, string, bool) {
	for _, k := range keys {
		if v, ok := obj[k]; ok && v != nil {
			m.used[prefix+k] = true
			return v, prefix + k, true
		}
	}
	return nil, "", false
}

func (m *migration) str(obj map[string]any, prefix string, keys ...string) (string, string, bool) {
	v, path, ok := m.take(obj, prefix, keys...)
	if !ok {
		return "", "", false
	}
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x), path, true
	case map[string]any, []any:
		m.note("dropped: %s (want text, got %s)", path, describe(v))
		return "", "", false
	}
	return describe(v), path, true
}

// num reads a whole number; the old gateway also took numbers as text.
func (m *migration) num(obj map[string]any, prefix string, keys ...string) (int, string, bool) {
	v, path, ok := m.take(obj, prefix, keys...)
	if !ok {
		return 0, "", false
	}
	if n, ok := oldInt(v); ok {
		return n, path, true
	}
	m.note("dropped: %s (%s is not a whole number)", path, describe(v))
	return 0, "", false
}

func (m *migration) flag(obj map[string]any, prefix string, keys ...string) (bool, string, bool) {
	v, path, ok := m.take(obj, prefix, keys...)
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
	m.note("dropped: %s (%s is not true or false)", path, describe(v))
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

// v1 converts the flat config.json.
func (m *migration) v1(t map[string]any) {
	m.mqtt(t, "", mqttKeys{
		host: []string{"mqtt_broker", "mqtt_host", "mqtt_server"}, port: []string{"mqtt_port"},
		user: []string{"mqtt_username", "mqtt_user"}, pass: []string{"mqtt_password"},
		tls: []string{"mqtt_tls", "mqtt_use_tls"},
	})
	m.topics(t, "", []string{"mqtt_topic", "mqtt_topic_prefix", "mqtt_base_topic"},
		[]string{"discovery_prefix", "ha_discovery_prefix", "homeassistant_prefix", "mqtt_discovery_prefix"})
	m.bus(t, "", []string{"mbus_port", "mbus_device", "serial_port"}, []string{"mbus_baudrate", "baudrate"},
		[]string{"poll_interval", "read_interval", "mbus_poll_interval", "mbus_read_interval"})
	m.expire(t, "", "expire_after", "mqtt_expire_after")
	m.logging(t, "", []string{"log_level", "loglevel"}, []string{"log_format"})
	m.devices(t, "", "known_devices", "devices")
}

// v2 converts the YAML with sections.
func (m *migration) v2(t map[string]any) {
	mq := section(t, "mqtt")
	m.mqtt(mq, "mqtt.", mqttKeys{
		host: []string{"broker", "host", "server"}, port: []string{"port"},
		user: []string{"username", "user"}, pass: []string{"password"},
		tls: []string{"tls", "use_tls", "ssl"},
	})
	m.topics(mq, "mqtt.", []string{"topic_prefix", "base_topic", "topic"}, []string{"discovery_prefix"})
	if ha := section(t, "homeassistant"); ha != nil && m.out.DiscoveryPrefix == "" {
		m.topics(ha, "homeassistant.", nil, []string{"discovery_prefix", "prefix"})
		m.expire(ha, "homeassistant.", "expire_after")
	}
	m.expire(mq, "mqtt.", "expire_after")
	mb := section(t, "mbus")
	m.bus(mb, "mbus.", []string{"port", "device", "serial_port"}, []string{"baudrate", "baud"},
		[]string{"read_interval", "poll_interval", "interval"})
	m.devices(mb, "mbus.", "devices", "known_devices", "meters")
	m.logging(section(t, "logging"), "logging.", []string{"level"}, []string{"format"})
	m.health(section(t, "health"), "health.")
}

// section returns t[key] when it is a mapping; otherwise nil (an old file
// that has something else there keeps it, and dropUnused reports it).
func section(t map[string]any, key string) map[string]any {
	s, _ := t[key].(map[string]any)
	return s
}

type mqttKeys struct{ host, port, user, pass, tls []string }

func (m *migration) mqtt(obj map[string]any, prefix string, k mqttKeys) {
	var q migratedMQTT
	set := false
	if h, _, ok := m.str(obj, prefix, k.host...); ok {
		q.Host, set = h, true
	}
	if p, _, ok := m.num(obj, prefix, k.port...); ok {
		q.Port, set = &p, true
	}
	if u, _, ok := m.str(obj, prefix, k.user...); ok {
		q.Username, set = u, true
	}
	if pw, _, ok := m.str(obj, prefix, k.pass...); ok {
		q.Password, set = pw, true
	}
	if v, path, ok := m.take(obj, prefix, k.tls...); ok {
		tls, ok := v.(bool)
		if tlsSection, isObj := v.(map[string]any); isObj {
			tls, _ = tlsSection["enabled"].(bool)
			m.used[path+".enabled"] = true
			ok = true
		}
		if ok {
			q.TLS, set = &tls, true
		} else {
			m.note("dropped: %s (%s is not true or false)", path, describe(v))
		}
	}
	if set {
		m.out.MQTT = &q
	}
}

func (m *migration) topics(obj map[string]any, prefix string, topic, discovery []string) {
	clean := func(s, path string) string {
		t := strings.Trim(s, "/")
		if t != s {
			m.note("%s: %q → %q (no leading or trailing /)", path, s, t)
		}
		return t
	}
	if s, path, ok := m.str(obj, prefix, topic...); ok {
		m.out.TopicPrefix = clean(s, path)
	}
	if s, path, ok := m.str(obj, prefix, discovery...); ok {
		m.out.DiscoveryPrefix = clean(s, path)
	}
}

func (m *migration) bus(obj map[string]any, prefix string, port, baud, interval []string) {
	if p, path, ok := m.str(obj, prefix, port...); ok {
		m.busPort(p, path)
	}
	if b, _, ok := m.num(obj, prefix, baud...); ok {
		m.out.Baudrate = &b
	}
	if n, _, ok := m.num(obj, prefix, interval...); ok {
		m.out.PollInterval = &n
	}
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
	m.note("%s: %q is not a device path, taken as tcp_address", path, p)
}

func (m *migration) expire(obj map[string]any, prefix string, keys ...string) {
	if n, path, ok := m.num(obj, prefix, keys...); ok && m.out.ExpireAfter == nil {
		m.out.ExpireAfter = &n
		if n > 0 {
			m.note("%s: kept %d s; entities now turn unavailable when their meter stops answering, so 0 (never) is enough", path, n)
		}
	}
}

// logLevels maps Python's logging level names.
var logLevels = map[string]string{
	"notset": "debug", "trace": "trace", "debug": "debug", "info": "info",
	"warn": "warning", "warning": "warning", "error": "error", "critical": "error", "fatal": "error",
}

func (m *migration) logging(obj map[string]any, prefix string, level, format []string) {
	if s, path, ok := m.str(obj, prefix, level...); ok {
		if l, known := logLevels[strings.ToLower(s)]; known {
			m.out.LogLevel = l
		} else {
			m.note("dropped: %s (%s is not a log level)", path, quote(s))
		}
	}
	if s, path, ok := m.str(obj, prefix, format...); ok {
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
}

// health maps the old health server onto metrics_port, which serves
// /health, /status and /metrics as the old one did.
func (m *migration) health(obj map[string]any, prefix string) {
	if on, _, ok := m.flag(obj, prefix, "enabled"); ok && !on {
		off := 0
		m.out.MetricsPort = &off
		m.used[prefix+"port"] = true // no port for a server that is off
		return
	}
	if p, path, ok := m.num(obj, prefix, "port"); ok {
		m.out.MetricsPort = &p
		m.note("%s: %d → metrics_port (/health, /status and /metrics)", path, p)
	}
}

// devices converts the known meters. A meter whose address cannot be
// used, or repeats an earlier one, is dropped with a note.
func (m *migration) devices(obj map[string]any, prefix string, keys ...string) {
	v, path, ok := m.take(obj, prefix, keys...)
	if !ok {
		return
	}
	list, isList := v.([]any)
	if !isList {
		m.note("dropped: %s (want a list of devices, got %s)", path, describe(v))
		return
	}
	seen := map[string]string{}
	for i, e := range list {
		ipath := index(path, i)
		dev, isObj := e.(map[string]any)
		if !isObj {
			m.note("dropped: %s (want a device object, got %s)", ipath, describe(e))
			continue
		}
		mm, ok := m.device(dev, ipath+".")
		if !ok {
			continue
		}
		a, _ := parseMeterAddress(mm.Address) // device checked it
		if first, dup := seen[a.String()]; dup {
			m.note("dropped: %s (address %s repeats %s)", ipath, a, first)
			continue
		}
		seen[a.String()] = ipath
		m.used[ipath] = true // kept: report its unconverted keys
		m.out.Meters = append(m.out.Meters, mm)
	}
}

func (m *migration) device(dev map[string]any, prefix string) (migratedMeter, bool) {
	var mm migratedMeter
	v, path, ok := m.take(dev, prefix, "address", "secondary_address", "primary_address", "id")
	if !ok {
		m.note("dropped: %s (no address)", strings.TrimSuffix(prefix, "."))
		return mm, false
	}
	s, isStr := v.(string)
	addr := strings.TrimSpace(s)
	if !isStr {
		addr = describe(v) // the old gateway took primary addresses as numbers
	}
	if _, msg := parseMeterAddress(addr); msg != "" {
		m.note("dropped: %s (address %s)", strings.TrimSuffix(prefix, "."), msg)
		return mm, false
	}
	if path != prefix+"address" {
		m.note("%s → address %q", path, addr)
	}
	mm.Address = addr
	if s, _, ok := m.str(dev, prefix, "name", "friendly_name"); ok {
		mm.Name = s
	}
	if n, _, ok := m.num(dev, prefix, "poll_interval_seconds", "poll_interval", "read_interval"); ok {
		mm.PollInterval = &n
	}
	if n, _, ok := m.num(dev, prefix, "baudrate", "baud"); ok {
		mm.Baudrate = &n
	}
	if b, _, ok := m.flag(dev, prefix, "enabled"); ok {
		mm.Enabled = &b
	}
	return mm, true
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
			reason = "not an option of this gateway"
		}
		m.note("dropped: %s (%s)", path, reason)
	}
}
