package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Baudrates are the bus speeds the gateway supports (EN 13757-2, clause
// 4.2: 300 to 38400 bit/s; 2400 is the usual default of meters).
var Baudrates = []int{300, 600, 1200, 2400, 4800, 9600, 19200, 38400}

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
	if len(o.Meters) == 0 && !o.ScanOnStart {
		w = append(w, "meters: no meters and scan_on_start is false: nothing will be read until a scan is started")
	}
	return append(w, o.fixedSpeedWarnings()...)
}

// fixedSpeedWarnings names the meters whose own baud rate cannot be used:
// a transparent TCP converter runs the bus at the speed set on the
// converter itself, which the gateway cannot switch per meter.
func (o *Options) fixedSpeedWarnings() []string {
	if o.TCPAddress == "" {
		return nil
	}
	var w []string
	for i, m := range o.Meters {
		if m.Enabled && m.Baudrate != o.Baudrate {
			w = append(w, fmt.Sprintf("%s.baudrate: meter %s talks at %d baud, but the TCP converter's speed is fixed on the device: it is read at the converter's speed (baudrate %d) and answers only if that is its speed too",
				index("meters", i), m.Address, m.Baudrate, o.Baudrate))
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
	for i, m := range o.Meters {
		if m.Enabled && m.PollInterval != o.PollInterval {
			out = append(out, pollInterval{index("meters", i) + ".poll_interval", m.PollInterval})
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
	if !slices.Contains(Baudrates, n) {
		s := make([]string, len(Baudrates))
		for i, b := range Baudrates {
			s[i] = strconv.Itoa(b)
		}
		c.add(path, "%d is not supported: want one of %s", n, strings.Join(s, ", "))
	}
}

func (o *Options) problems() []*OptionError {
	var c check
	o.checkBus(&c)
	c.atLeast("poll_interval", o.PollInterval, time.Second, time.Second)
	c.oneOf("scan_mode", o.ScanMode, []string{"primary", "secondary"})
	o.checkMeters(&c)
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

// checkBus: exactly one way to reach the bus, and a usable one.
func (o *Options) checkBus(c *check) {
	switch {
	case o.SerialPort == "" && o.TCPAddress == "":
		c.add("serial_port", "set serial_port (a device such as /dev/ttyUSB0) or tcp_address (host:port of an M-Bus-to-TCP converter)")
	case o.SerialPort != "" && o.TCPAddress != "":
		c.add("tcp_address", "serial_port is set too: give only one of serial_port and tcp_address")
	case o.SerialPort != "":
		if strings.Contains(o.SerialPort, "://") {
			c.add("serial_port", "%s is a network address: put host:port in tcp_address instead", quote(o.SerialPort))
		} else if !strings.HasPrefix(o.SerialPort, "/") {
			c.add("serial_port", "%s is not a device path: want e.g. /dev/ttyUSB0 or /dev/serial/by-id/…", quote(o.SerialPort))
		}
	default:
		checkHostPort(c, "tcp_address", o.TCPAddress)
	}
	c.baudrate("baudrate", o.Baudrate)
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

func (o *Options) checkMeters(c *check) {
	first := map[string]int{}
	for i, m := range o.Meters {
		path := index("meters", i)
		// A meter that inherits the global value is checked with it.
		if m.PollInterval != o.PollInterval {
			c.atLeast(path+".poll_interval", m.PollInterval, time.Second, time.Second)
		}
		if m.Baudrate != o.Baudrate {
			c.baudrate(path+".baudrate", m.Baudrate)
		}
		key := m.Address.String()
		if j, dup := first[key]; dup {
			c.add(path+".address", "%s is already meters[%d]: each meter may appear once", key, j)
			(*c)[len(*c)-1].other = index("meters", j) + ".address"
			continue
		}
		first[key] = i
	}
}

func (o *Options) checkMQTT(c *check) {
	c.intRange("mqtt.port", o.MQTT.Port, 1, 65535, "")
	if o.passwordWithoutUser() && o.MQTT.Host != "" {
		// MQTT 3.1.1, clause 3.1.2.9: no password without a user name.
		// With an empty host the Supervisor's login replaces both (see
		// Warnings).
		c.add("mqtt.password", "is set but mqtt.username is empty: MQTT sends a password only with a user name; set mqtt.username too")
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
