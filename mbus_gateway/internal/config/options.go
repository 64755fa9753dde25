// Package config turns the gateway's options into a typed, validated value.
//
// Options come from Home Assistant's /data/options.json (the add-on) or from
// a YAML or JSON file given with --config (standalone); both use the same
// flat keys (buses: lists several buses). Viper loads them: the file, the
// environment variables with the prefix MBUS_GATEWAY_ over it, the
// defaults of the schema tables (schema.go) under it. Loading is strict:
// an unknown key, a value of the wrong type or a value out of range is an
// error that names the option path, and every problem of a file is
// reported at once.
//
// The package also converts the configuration files of the older Python
// gateway (see Migrate).
package config

import (
	"net/netip"
	"time"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// Options is the whole configuration of the gateway. Load and Parse fill
// every field (defaults included); meters inherit the global poll interval
// and baud rate when they do not set their own.
type Options struct {
	// SerialPort is the device path of a serial M-Bus master. Exactly one
	// of SerialPort and TCPAddress is set.
	SerialPort string
	// TCPAddress is host:port of an M-Bus-to-TCP converter.
	TCPAddress string
	// Baudrate is the bus speed in bit/s.
	Baudrate int
	// PollInterval is the time between two reads of a meter.
	PollInterval time.Duration
	// Meters are the configured meters; empty means "scan" (ScanOnStart).
	Meters []Meter
	// ScanOnStart asks for one scan at start when Meters is empty.
	ScanOnStart bool
	// ScanMode is "primary" or "secondary".
	ScanMode string
	// Buses are the buses of the buses: option, in the order given; nil when
	// the single-bus options above are used. Each bus takes Baudrate,
	// ScanOnStart and ScanMode from above unless it sets its own. Read
	// AllBuses rather than this.
	Buses []Bus
	// MQTT is the broker connection; an empty Host means "ask the Supervisor".
	MQTT MQTT
	// TopicPrefix is the first topic level(s) of state topics, e.g. "mbus".
	TopicPrefix string
	// DiscoveryPrefix is Home Assistant's discovery prefix.
	DiscoveryPrefix string
	// ExpireAfter is handed to Home Assistant as expire_after; 0 = never.
	ExpireAfter time.Duration
	// OutboxMaxRows bounds the outbox by number of readings.
	OutboxMaxRows int
	// OutboxMaxAge bounds the outbox by age of readings.
	OutboxMaxAge time.Duration
	// ResponseTimeoutExtra is added to the answer timeout that the baud rate
	// gives, for converters that buffer.
	ResponseTimeoutExtra time.Duration
	// LogLevel is trace, debug, info, warning or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string
	// WebPort is the port of the status page and API (ingress).
	WebPort int
	// WebAllow are the client addresses allowed to use the status page; a
	// single IP is held as a full-length prefix.
	WebAllow []netip.Prefix
	// MetricsPort serves /health, /status and /metrics to any address; 0 = off.
	MetricsPort int
	// MetricsBind is the IP address the metrics port listens on: loopback
	// by default; the container image sets 0.0.0.0 (its port mapping
	// decides who reaches it).
	MetricsBind string
	// DataDir holds the SQLite store (standalone only; the add-on uses /data).
	DataDir string
}

// Meter is one configured meter.
type Meter struct {
	// Address is the primary or secondary address on the bus.
	Address mbus.Address
	// Name is the user's name for the meter, empty if none was given.
	Name string
	// PollInterval is the time between two reads of this meter.
	PollInterval time.Duration
	// Baudrate is the speed this meter answers at.
	Baudrate int
	// Enabled is false for a meter the user keeps configured but does not read.
	Enabled bool
	// Guard holds back drops and implausible jumps of the meter's totals
	// until the next reading confirms them (package guard).
	Guard bool
	// Key is the meter's AES-128 key (32 hex digits) for encrypted
	// telegrams, empty when the meter does not encrypt. It is a secret.
	Key logging.Secret
}

// Bus is one M-Bus master with its meters.
type Bus struct {
	// Name names the bus in logs, ids and topics: lower-case letters,
	// digits, "_" and "-", unique among the buses.
	Name string
	// SerialPort and TCPAddress as in Options: exactly one is set.
	SerialPort string
	TCPAddress string
	// Baudrate is the bus speed in bit/s.
	Baudrate int
	// Meters are the bus's meters; they inherit Baudrate and the global
	// poll interval.
	Meters []Meter
	// ScanOnStart and ScanMode as in Options.
	ScanOnStart bool
	ScanMode    string
}

// DefaultBusName is the name of the one bus of the single-bus options.
const DefaultBusName = "bus"

// AllBuses returns the buses to serve: the buses: option, or the single-bus
// options as one bus named DefaultBusName.
func (o *Options) AllBuses() []Bus {
	if len(o.Buses) > 0 {
		return o.Buses
	}
	return []Bus{{
		Name:        DefaultBusName,
		SerialPort:  o.SerialPort,
		TCPAddress:  o.TCPAddress,
		Baudrate:    o.Baudrate,
		Meters:      o.Meters,
		ScanOnStart: o.ScanOnStart,
		ScanMode:    o.ScanMode,
	}}
}

// Device gives the transport's device string of the bus, as Options.Device.
func (b *Bus) Device() string { return device(b.SerialPort, b.TCPAddress) }

// MQTT is the broker connection.
type MQTT struct {
	// Host is the broker's host name or IP address; empty = ask the Supervisor.
	Host string
	// Port is the broker's TCP port.
	Port int
	// Username and Password authenticate at the broker; empty = anonymous.
	Username string
	Password logging.Secret
	// TLS connects with TLS.
	TLS bool
	// CAFile (PEM) is trusted besides the system's authorities; CertFile
	// and KeyFile (PEM) are a client certificate and its key. Absolute
	// paths; in the add-on, its config folder is /config.
	CAFile, CertFile, KeyFile string
}

// Device gives the transport's device string: the serial path, or
// "tcp://host:port" for a TCP converter (the form the CLI's --device takes).
func (o *Options) Device() string { return device(o.SerialPort, o.TCPAddress) }

func device(serialPort, tcpAddress string) string {
	if tcpAddress != "" {
		return "tcp://" + tcpAddress
	}
	return serialPort
}

// MarshalZerologObject logs the options with the password masked, so that
// log.Info().Object("options", opts) is safe. Durations are written as
// Go writes them ("15s", "720h0m0s"): zerolog's Dur would give bare
// numbers in its global unit.
func (o *Options) MarshalZerologObject(e *zerolog.Event) {
	e.Str("device", o.Device()).
		Int("baudrate", o.Baudrate).
		Stringer("poll_interval", o.PollInterval).
		Int("meters", len(o.Meters)).
		Int("buses", len(o.Buses)).
		Bool("scan_on_start", o.ScanOnStart).
		Str("scan_mode", o.ScanMode).
		Object("mqtt", o.MQTT).
		Str("topic_prefix", o.TopicPrefix).
		Str("discovery_prefix", o.DiscoveryPrefix).
		Stringer("expire_after", o.ExpireAfter).
		Int("outbox_max_rows", o.OutboxMaxRows).
		Stringer("outbox_max_age", o.OutboxMaxAge).
		Stringer("response_timeout_extra", o.ResponseTimeoutExtra).
		Str("log_level", o.LogLevel).
		Str("log_format", o.LogFormat).
		Int("web_port", o.WebPort).
		Int("metrics_port", o.MetricsPort).
		Str("metrics_bind", o.MetricsBind).
		Str("data_dir", o.DataDir)
	allow := zerolog.Arr()
	for _, p := range o.WebAllow {
		allow.Str(p.String())
	}
	e.Array("web_allow", allow)
}

// MarshalZerologObject logs the broker settings with the password masked.
func (m MQTT) MarshalZerologObject(e *zerolog.Event) {
	e.Str("host", m.Host).
		Int("port", m.Port).
		Str("username", m.Username).
		Str("password", m.Password.String()).
		Bool("tls", m.TLS).
		Str("ca_file", m.CAFile).
		Str("cert_file", m.CertFile).
		Str("key_file", m.KeyFile)
}

var (
	_ zerolog.LogObjectMarshaler = (*Options)(nil)
	_ zerolog.LogObjectMarshaler = MQTT{}
)
