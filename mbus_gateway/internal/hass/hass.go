// Package hass builds the MQTT messages that make meters appear in Home
// Assistant: device-based discovery (homeassistant/device/<id>/config, HA
// 2024.12 and later), the retained per-attribute states the discovered
// entities read, and the removal message. It is pure: no I/O, no clock.
package hass

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Defaults for the zero Options.
const (
	DefaultDiscoveryPrefix = "homeassistant"
	DefaultTopicPrefix     = "mbus"
	DefaultOriginName      = "mbus-gateway"
)

// Options are the parts of the configuration the payloads depend on.
type Options struct {
	// DiscoveryPrefix is where Home Assistant listens for discovery,
	// "homeassistant" when empty.
	DiscoveryPrefix string
	// TopicPrefix is the root of the gateway's own topics, "mbus" when
	// empty.
	TopicPrefix string
	// ExpireAfter, in seconds, makes entities unavailable when no state
	// arrived for that long; 0 leaves it to the availability topics.
	ExpireAfter int
	// OriginName, OriginSW and OriginURL describe the gateway in the "o"
	// block; OriginName defaults to "mbus-gateway".
	OriginName, OriginSW, OriginURL string
	// InstallationID tells this gateway apart from others on the same
	// broker: it becomes part of the gateway's device identifier (see
	// BridgeDeviceID). Empty keeps the plain "mbus_bridge".
	InstallationID string
	// Buses names the buses of a gateway with several; each gets its own
	// bus entities on the gateway's device (connectivity, state, errors,
	// last scan, scan button). Empty: one bus, entities without names.
	Buses []string
}

// Message is one MQTT publication.
type Message struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// ErrUnsafeTopic reports a topic part that would leave the gateway's topic
// tree: empty, containing '/', '+', '#', control characters or invalid
// UTF-8, or too long.
var ErrUnsafeTopic = errors.New("unsafe topic level")

// maxLevelLen bounds one topic level; meter ids and keys are far shorter.
const maxLevelLen = 128

// withDefaults fills empty options and validates the prefixes.
func (o Options) withDefaults() (Options, error) {
	if o.DiscoveryPrefix == "" {
		o.DiscoveryPrefix = DefaultDiscoveryPrefix
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = DefaultTopicPrefix
	}
	if o.OriginName == "" {
		o.OriginName = DefaultOriginName
	}
	if o.ExpireAfter < 0 {
		return o, fmt.Errorf("hass: expire_after %d: want 0 or more seconds", o.ExpireAfter)
	}
	for _, p := range []struct{ what, v string }{
		{"discovery prefix", o.DiscoveryPrefix},
		{"topic prefix", o.TopicPrefix},
	} {
		for lvl := range strings.SplitSeq(p.v, "/") {
			if err := checkLevel(lvl); err != nil {
				return o, fmt.Errorf("hass: %s %q: %w", p.what, p.v, err)
			}
		}
	}
	for _, b := range o.Buses {
		if err := checkLevel(b); err != nil {
			return o, fmt.Errorf("hass: bus %q: %w", b, err)
		}
	}
	return o, nil
}

// checkLevel reports whether s can be used as one MQTT topic level of a
// publish topic without escaping the intended tree (MQTT 3.1.1, 4.7).
func checkLevel(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", ErrUnsafeTopic)
	case len(s) > maxLevelLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrUnsafeTopic, len(s), maxLevelLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: invalid UTF-8", ErrUnsafeTopic)
	case strings.HasPrefix(s, "$"):
		// Topics starting with '$' belong to the broker.
		return fmt.Errorf("%w: %q starts with '$'", ErrUnsafeTopic, s)
	}
	for _, r := range s {
		if r == '/' || r == '+' || r == '#' || unicode.IsControl(r) {
			return fmt.Errorf("%w: %q contains %q", ErrUnsafeTopic, s, r)
		}
	}
	return nil
}

// topic joins validated levels.
func topic(levels ...string) string { return strings.Join(levels, "/") }

// Length limits for human-readable text. Home Assistant stores names in its
// registries; a 10 KB name from a broken or hostile meter helps nobody.
const (
	maxNameLen = 64
	maxTextLen = 255
)

// cleanText removes control characters and invalid UTF-8 and cuts s to at
// most limit runes, marking a cut with an ellipsis. JSON escaping is left to
// encoding/json.
func cleanText(s string, limit int) string {
	kept := make([]rune, 0, min(len(s), limit+1))
	for _, r := range strings.ToValidUTF8(s, "") {
		if unicode.IsControl(r) {
			continue
		}
		if len(kept) == limit {
			return strings.TrimSpace(string(kept[:limit-1])) + "…"
		}
		kept = append(kept, r)
	}
	return strings.TrimSpace(string(kept))
}

// entityPart turns a meter id or key into the [a-z0-9_] form entity ids
// require.
func entityPart(s string) string {
	out := []byte(strings.ToLower(s))
	for i, c := range out {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			out[i] = '_'
		}
	}
	return string(out)
}
