package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
)

// LogLevels are the accepted values of log_level.
var LogLevels = []string{"trace", "debug", "info", "warning", "error"}

// Validate checks every option against what is allowed and returns all
// problems joined with errors.Join (each an *OptionError), or nil.
func (o *Options) Validate() error {
	problems := o.problems()
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// Warnings lists settings that are allowed but probably not meant.
func (o *Options) Warnings() []string {
	var w []string
	if o.ExpireAfter > 0 {
		for _, p := range o.pollIntervals() {
			if o.ExpireAfter < p.interval {
				w = append(w, fmt.Sprintf("expire_after: %s is shorter than %s (%s): its entities will turn unavailable between reads",
					seconds(o.ExpireAfter), p.path, seconds(p.interval)))
			}
		}
	}
	if o.passwordWithoutUser() && o.MQTT.Host == "" {
		w = append(w, "mqtt.password: is set without mqtt.username and is ignored: with mqtt.host empty the broker login comes from the Supervisor")
	}
	for i, b := range o.AllBuses() {
		prefix := o.busPrefix(i)
		if len(b.Meters) == 0 && !b.ScanOnStart {
			w = append(w, prefix+"meters: no meters and scan_on_start is false: nothing will be read until a scan is started")
		}
		w = append(w, b.fixedSpeedWarnings(prefix)...)
	}
	return w
}

// busPrefix is the path of the i-th bus of AllBuses in messages: "" for
// the single-bus options, "buses[i]." otherwise.
func (o *Options) busPrefix(i int) string {
	if len(o.Buses) == 0 {
		return ""
	}
	return index("buses", i) + "."
}

// fixedSpeedWarnings names the meters whose own baud rate cannot be used:
// a transparent TCP converter runs the bus at the speed set on the
// converter itself, which the gateway cannot switch per meter.
func (b *Bus) fixedSpeedWarnings(prefix string) []string {
	if b.TCPAddress == "" {
		return nil
	}
	var w []string
	for i, m := range b.Meters {
		if m.Enabled && m.Baudrate != b.Baudrate {
			w = append(w, fmt.Sprintf("%s.baudrate: meter %s talks at %d baud, but the TCP converter's speed is fixed on the device: it is read at the converter's speed (%sbaudrate %d) and answers only if that is its speed too",
				index(prefix+"meters", i), m.Address, m.Baudrate, prefix, b.Baudrate))
		}
	}
	return w
}

// passwordWithoutUser reports a broker password given without a user
// name. The user name decides whose login is used: the options' when it
// is set, else (with an empty host) the Supervisor's, password included.
func (o *Options) passwordWithoutUser() bool {
	return o.MQTT.Password != "" && o.MQTT.Username == ""
}

type pollInterval struct {
	path     string
	interval time.Duration
}

// pollIntervals lists the global poll interval and every meter's own.
func (o *Options) pollIntervals() []pollInterval {
	out := []pollInterval{{"poll_interval", o.PollInterval}}
	for i, b := range o.AllBuses() {
		for j, m := range b.Meters {
			if m.Enabled && m.PollInterval != o.PollInterval {
				out = append(out, pollInterval{index(o.busPrefix(i)+"meters", j) + ".poll_interval", m.PollInterval})
			}
		}
	}
	return out
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) + " s" }

// check collects the problems of one Validate run.
type check []*OptionError

func (c *check) add(path, format string, args ...any) {
	*c = append(*c, &OptionError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *check) intRange(path string, n, lo, hi int, unit string) {
	if n < lo || n > hi {
		c.add(path, "%d is out of range: want %d to %d%s", n, lo, hi, unit)
	}
}

func (c *check) atLeast(path string, d, lo time.Duration, unit time.Duration) {
	if d < lo {
		name := " (seconds)"
		if unit == time.Millisecond {
			name = " (milliseconds)"
		}
		c.add(path, "%d is too small: want at least %d%s", d/unit, lo/unit, name)
	}
}

func (c *check) oneOf(path, got string, allowed []string) {
	if !slices.Contains(allowed, got) {
		c.add(path, "%s is not allowed: want %s", quote(got), orList(allowed))
	}
}

func (c *check) baudrate(path string, n int) {
	if !slices.Contains(transport.Bauds, n) {
		c.add(path, "%d is not supported: %s", n, wantBaud())
	}
}

// wantBaud lists the M-Bus speeds for a message.
func wantBaud() string {
	s := make([]string, len(transport.Bauds))
	for i, b := range transport.Bauds {
		s[i] = strconv.Itoa(b)
	}
	return "want one of " + strings.Join(s, ", ")
}

func (o *Options) problems() []*OptionError {
	var c check
	if len(o.Buses) == 0 {
		bus := o.AllBuses()[0]
		bus.checkLine(&c, "")
		c.atLeast("poll_interval", o.PollInterval, time.Second, time.Second)
		bus.checkScanAndMeters(&c, "", o.PollInterval)
	} else {
		c.baudrate("baudrate", o.Baudrate)
		c.atLeast("poll_interval", o.PollInterval, time.Second, time.Second)
		c.oneOf("scan_mode", o.ScanMode, scanModes)
		o.checkBuses(&c)
	}
	o.checkMQTT(&c)
	c.topicPrefix("topic_prefix", o.TopicPrefix, "mbus")
	c.topicPrefix("discovery_prefix", o.DiscoveryPrefix, "homeassistant")
	if o.ExpireAfter < 0 {
		c.add("expire_after", "%d is negative: want 0 (never) or a number of seconds", o.ExpireAfter/time.Second)
	}
	if o.OutboxMaxRows < 100 {
		c.add("outbox_max_rows", "%d is too small: want at least 100", o.OutboxMaxRows)
	}
	c.atLeast("outbox_max_age", o.OutboxMaxAge, time.Minute, time.Second)
	if o.ResponseTimeoutExtra < 0 || o.ResponseTimeoutExtra > 10*time.Second {
		c.add("response_timeout_extra", "%d is out of range: want 0 to 10000 (milliseconds)", o.ResponseTimeoutExtra/time.Millisecond)
	}
	c.oneOf("log_level", o.LogLevel, LogLevels)
	c.oneOf("log_format", o.LogFormat, []string{"text", "json"})
	c.intRange("web_port", o.WebPort, 1, 65535, "")
	c.intRange("metrics_port", o.MetricsPort, 0, 65535, " (0 = off)")
	if o.MetricsPort != 0 && o.MetricsPort == o.WebPort {
		c.add("metrics_port", "%d is web_port too: give it another port, or 0 to turn it off", o.MetricsPort)
	}
	if _, err := netip.ParseAddr(o.MetricsBind); err != nil {
		c.add("metrics_bind", "%s is not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for every interface)", quote(o.MetricsBind))
	}
	if o.DataDir == "" {
		c.add("data_dir", "must not be empty (e.g. /data)")
	}
	return c
}

var scanModes = []string{"primary", "secondary"}

// busName is what a bus's name may be: it becomes part of ids and topics.
var busName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// checkBuses checks the buses: option and that the single-bus options are
// not used beside it (baudrate, scan_on_start and scan_mode are allowed:
// they are the buses' defaults).
func (o *Options) checkBuses(c *check) {
	both := "buses is set too: give the bus either in buses or at the top level, not both"
	if o.SerialPort != "" {
		c.add("serial_port", "%s", both)
	}
	if o.TCPAddress != "" {
		c.add("tcp_address", "%s", both)
	}
	if len(o.Meters) > 0 {
		c.add("meters", "buses is set too: list each meter under its bus (buses[…].meters)")
	}
	first := map[string]int{}
	for i, b := range o.Buses {
		prefix := index("buses", i) + "."
		switch j, dup := first[b.Name]; {
		case !busName.MatchString(b.Name):
			c.add(prefix+"name", "%s is not a bus name: want 1 to 32 lower-case letters, digits, _ or - (e.g. plant_room)", quote(b.Name))
		case dup:
			c.add(prefix+"name", "%s is already buses[%d]: each bus needs a name of its own", quote(b.Name), j)
		default:
			first[b.Name] = i
		}
		b.checkLine(c, prefix)
		b.checkScanAndMeters(c, prefix, o.PollInterval)
	}
}

// checkLine checks how the bus is reached: exactly one way, a usable one,
// at an M-Bus speed. prefix is the bus's path in messages ("" or
// "buses[1].").
func (b *Bus) checkLine(c *check, prefix string) {
	switch {
	case b.SerialPort == "" && b.TCPAddress == "":
		c.add(prefix+"serial_port", "set %sserial_port (a device such as /dev/ttyUSB0) or %stcp_address (host:port of an M-Bus-to-TCP converter)", prefix, prefix)
		if prefix == "" {
			// A buses option that could not be read would have given the bus.
			(*c)[len(*c)-1].other = "buses"
		}
	case b.SerialPort != "" && b.TCPAddress != "":
		c.add(prefix+"tcp_address", "%sserial_port is set too: give only one of serial_port and tcp_address", prefix)
	case b.SerialPort != "":
		if strings.Contains(b.SerialPort, "://") {
			c.add(prefix+"serial_port", "%s is a network address: put host:port in tcp_address instead", quote(b.SerialPort))
		} else if !strings.HasPrefix(b.SerialPort, "/") {
			c.add(prefix+"serial_port", "%s is not a device path: want e.g. /dev/ttyUSB0 or /dev/serial/by-id/…", quote(b.SerialPort))
		}
	default:
		checkHostPort(c, prefix+"tcp_address", b.TCPAddress)
	}
	c.baudrate(prefix+"baudrate", b.Baudrate)
}

// checkScanAndMeters checks the bus's scan mode and meters; meters that
// inherit poll take it unchecked.
func (b *Bus) checkScanAndMeters(c *check, prefix string, poll time.Duration) {
	c.oneOf(prefix+"scan_mode", b.ScanMode, scanModes)
	b.checkMeters(c, prefix, poll)
}

func checkHostPort(c *check, path, s string) {
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		c.add(path, "%s: want host:port without %q, e.g. %s", quote(s), scheme+"://", rest)
		return
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		c.add(path, "%s is not host:port: want e.g. 192.168.1.50:10001", quote(s))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		c.add(path, "port %s is out of range: want 1 to 65535", quote(port))
	}
}

// checkMeters checks the meters of one bus: an address may appear once
// per bus (another bus is another wire).
func (b *Bus) checkMeters(c *check, prefix string, poll time.Duration) {
	first := map[string]int{}
	for i, m := range b.Meters {
		path := index(prefix+"meters", i)
		// A meter that inherits the bus's value is checked with it.
		if m.PollInterval != poll {
			c.atLeast(path+".poll_interval", m.PollInterval, time.Second, time.Second)
		}
		if m.Baudrate != b.Baudrate {
			c.baudrate(path+".baudrate", m.Baudrate)
		}
		if m.Key != "" && !isKey(string(m.Key)) {
			// The key is a secret: the message must not show it.
			c.add(path+".key", "is not an AES-128 key: want 32 hex digits")
		}
		key := m.Address.String()
		if j, dup := first[key]; dup {
			c.add(path+".address", "%s is already %smeters[%d]: each meter may appear once", key, prefix, j)
			(*c)[len(*c)-1].other = index(prefix+"meters", j) + ".address"
			continue
		}
		first[key] = i
	}
}

// isKey reports whether s is an AES-128 key in hex (EN 13757-7, security
// profile A/B: 16 bytes).
func isKey(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

func (o *Options) checkMQTT(c *check) {
	c.intRange("mqtt.port", o.MQTT.Port, 1, 65535, "")
	if o.passwordWithoutUser() && o.MQTT.Host != "" {
		// MQTT 3.1.1, clause 3.1.2.9: no password without a user name.
		// With an empty host the Supervisor's login replaces both (see
		// Warnings).
		c.add("mqtt.password", "is set but mqtt.username is empty: MQTT sends a password only with a user name; set mqtt.username too")
	}
	for _, f := range []struct{ key, path string }{
		{"mqtt.ca_file", o.MQTT.CAFile}, {"mqtt.cert_file", o.MQTT.CertFile}, {"mqtt.key_file", o.MQTT.KeyFile},
	} {
		switch {
		case f.path == "":
		case !o.MQTT.TLS:
			c.add(f.key, "is set but mqtt.tls is off: turn mqtt.tls on to use it")
		case !filepath.IsAbs(f.path):
			c.add(f.key, "%s is not an absolute path: give the whole path (in the add-on, files of its config folder are under /config/)", quote(f.path))
		}
	}
	switch {
	case o.MQTT.CertFile != "" && o.MQTT.KeyFile == "":
		c.add("mqtt.cert_file", "is set but mqtt.key_file is empty: a client certificate needs its key")
	case o.MQTT.KeyFile != "" && o.MQTT.CertFile == "":
		c.add("mqtt.key_file", "is set but mqtt.cert_file is empty: give the client certificate too")
	}
	h := o.MQTT.Host
	switch {
	case strings.Contains(h, "://"):
		c.add("mqtt.host", "%s has a scheme: want a host name or IP address only (the port goes in mqtt.port, TLS in mqtt.tls)", quote(h))
	case strings.ContainsAny(h, " /"):
		c.add("mqtt.host", "%s is not a host name or IP address", quote(h))
	default:
		if _, port, err := net.SplitHostPort(h); err == nil {
			c.add("mqtt.host", "%s has a port: put %s in mqtt.port", quote(h), port)
		}
	}
}

// topicPrefix checks topic levels used as a prefix (MQTT 3.1.1, clause
// 4.7: + and # are wildcards, / separates levels).
func (c *check) topicPrefix(path, p, example string) {
	switch {
	case p == "":
		c.add(path, "must not be empty (e.g. %s)", example)
	case strings.ContainsAny(p, "+#"):
		c.add(path, "%s must not contain + or #", quote(p))
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		c.add(path, "%s must not start or end with /", quote(p))
	case strings.Contains(p, "//"):
		c.add(path, "%s must not contain an empty level (//)", quote(p))
	case strings.ContainsRune(p, 0):
		c.add(path, "%s must not contain a NUL character", quote(p))
	}
}

// orList writes "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
