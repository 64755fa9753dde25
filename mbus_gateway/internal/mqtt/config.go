package mqtt

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config is what the client needs to know. The zero value of every field
// but Broker has a useful default (see New).
type Config struct {
	// Broker is tcp://host[:port] (also mqtt://) or, with TLS,
	// ssl://host[:port] (also tls://, mqtts://). The port defaults to 1883,
	// or 8883 with TLS.
	Broker   string
	Username string
	Password string
	// TLS forces TLS for a tcp:// address. The server certificate is
	// checked against the system roots plus CAFile (PEM), if given.
	TLS    bool
	CAFile string
	// CertFile and KeyFile (PEM, both or neither) are the client
	// certificate and its key, for brokers that require one.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate. Off by default;
	// only for brokers with self-signed certificates on a trusted network.
	InsecureSkipVerify bool

	// ClientID must be unique per installation and stable across
	// restarts; see NewClientID. Empty: a new one for this process.
	ClientID string

	// TopicPrefix (default "mbus") and DiscoveryPrefix (default
	// "homeassistant") root the topics of DESIGN.md.
	TopicPrefix     string
	DiscoveryPrefix string
	// ExpireAfter is the entities' expire_after in seconds, 0 = never.
	ExpireAfter int
	// Version is the gateway version, announced as the discovery origin.
	Version string
	// Buses names the buses of a gateway with several: the gateway's
	// device gets bus entities per bus (see hass.Options.Buses).
	Buses []string

	// OutboxMaxRows and OutboxMaxAge bound the outbox; 0 = no bound.
	OutboxMaxRows int
	OutboxMaxAge  time.Duration

	// Window is how many outbox rows may await their PUBACK at once
	// (default 64).
	Window int
	// MinBackoff and MaxBackoff bound the wait between connection attempts
	// (default 1 s and 60 s); the wait doubles after each failure.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Maintenance is the period of outbox trimming and depth updates
	// (default 10 s).
	Maintenance time.Duration
	// RediscoveryDelay gives the wait between Home Assistant's "online"
	// and the republication of discovery (default: random 1 to 5 s, so
	// that many gateways do not answer at the same instant).
	RediscoveryDelay func() time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Defaults.
const (
	DefaultTopicPrefix     = "mbus"
	DefaultDiscoveryPrefix = "homeassistant"
	defaultWindow          = 64
	defaultMinBackoff      = time.Second
	defaultMaxBackoff      = 60 * time.Second
	defaultMaintenance     = 10 * time.Second
	originName             = "mbus-gateway"
	originURL              = "https://github.com/mbus-gateway/mbus-gateway"
)

// ErrConfig marks configuration errors.
var ErrConfig = errors.New("invalid mqtt configuration")

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.TopicPrefix == "" {
		c.TopicPrefix = DefaultTopicPrefix
	}
	if c.DiscoveryPrefix == "" {
		c.DiscoveryPrefix = DefaultDiscoveryPrefix
	}
	if c.ClientID == "" {
		c.ClientID = NewClientID()
	}
	if c.Window <= 0 {
		c.Window = defaultWindow
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = defaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = defaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.Maintenance <= 0 {
		c.Maintenance = defaultMaintenance
	}
	if c.RediscoveryDelay == nil {
		c.RediscoveryDelay = randomDelay
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// randomDelay is 1 to 5 s.
func randomDelay() time.Duration {
	return time.Second + mrand.N(4*time.Second) //nolint:gosec // spreading load needs no secure randomness
}

// NewClientID returns "mbus-gateway-" and 10 random hex digits: 23
// characters, the most that MQTT 3.1.1 (clause 3.1.3.1) obliges a broker to
// accept. The caller persists it so that it stays the same across restarts.
func NewClientID() string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return "mbus-gateway-" + hex.EncodeToString(b[:])
}

// brokerURL checks the broker address and returns it in the form paho
// wants, with an explicit port, and whether it uses TLS.
func brokerURL(raw string, forceTLS bool) (string, bool, error) {
	if raw == "" {
		return "", false, fmt.Errorf("%w: broker address is empty, want tcp://host:port or ssl://host:port", ErrConfig)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("%w: broker %q: %w", ErrConfig, raw, err)
	}
	var useTLS bool
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		useTLS = forceTLS
	case "ssl", "tls", "mqtts":
		useTLS = true
	default:
		return "", false, fmt.Errorf("%w: broker %q: scheme %q, want tcp, mqtt, ssl, tls or mqtts", ErrConfig, raw, u.Scheme)
	}
	if u.Hostname() == "" {
		return "", false, fmt.Errorf("%w: broker %q has no host", ErrConfig, raw)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", false, fmt.Errorf("%w: broker %q: want only scheme, host and port (credentials go in username and password)", ErrConfig, raw)
	}
	port := u.Port()
	switch {
	case port == "" && useTLS:
		port = "8883"
	case port == "":
		port = "1883"
	}
	scheme := "tcp"
	if useTLS {
		scheme = "ssl"
	}
	return scheme + "://" + net.JoinHostPort(u.Hostname(), port), useTLS, nil
}

// tlsConfig builds the TLS settings: system roots plus the CA file.
func tlsConfig(c Config) (*tls.Config, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: ca file: %w", ErrConfig, err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca file %s holds no PEM certificate", ErrConfig, c.CAFile)
		}
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            roots,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // off unless the user asks for it
	}
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate %s with key %s: %w", ErrConfig, c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case c.CertFile != "":
		return nil, fmt.Errorf("%w: client certificate %s has no key file", ErrConfig, c.CertFile)
	case c.KeyFile != "":
		return nil, fmt.Errorf("%w: client key %s has no certificate file", ErrConfig, c.KeyFile)
	}
	return tc, nil
}

// validate checks what defaults cannot fix.
func (c Config) validate() error {
	var errs []error
	for _, p := range []struct{ name, value string }{
		{"topic prefix", c.TopicPrefix},
		{"discovery prefix", c.DiscoveryPrefix},
	} {
		// Wildcards and NUL are not allowed in topic names (MQTT 3.1.1,
		// clause 4.7); a slash at either end makes an empty topic level.
		if strings.ContainsAny(p.value, "+#\x00") || strings.HasPrefix(p.value, "/") || strings.HasSuffix(p.value, "/") {
			errs = append(errs, fmt.Errorf("%w: %s %q: no wildcards, NUL or leading/trailing slash", ErrConfig, p.name, p.value))
		}
	}
	if c.ExpireAfter < 0 {
		errs = append(errs, fmt.Errorf("%w: expire_after %d, want 0 or more seconds", ErrConfig, c.ExpireAfter))
	}
	if c.OutboxMaxRows < 0 || c.OutboxMaxAge < 0 {
		errs = append(errs, fmt.Errorf("%w: outbox bounds must not be negative", ErrConfig))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, fmt.Errorf("%w: password given without username", ErrConfig))
	}
	return errors.Join(errs...)
}
