package hass

import (
	"encoding/json"
	"fmt"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
)

// Keys of the gateway's own entities: the last level of their state
// topics <topic_prefix>/bridge/<key>, and of their command topics
// <topic_prefix>/bridge/<key>/set.
const (
	BridgeState        = "state" // online/offline, the Last Will
	BridgeOutboxDepth  = "outbox_depth"
	BridgeDelivered    = "delivered"
	BridgeDropped      = "dropped"
	BridgeTimeouts     = "bus_timeouts"
	BridgeChecksum     = "bus_checksum_errors"
	BridgeCollisions   = "bus_collisions"
	BridgeEchoes       = "bus_echoes"
	BridgeBus          = "bus"       // binary sensor: ON while the bus works (up or suspect)
	BridgeBusState     = "bus_state" // enum sensor: up, suspect, down, reopening
	BridgeResponseTime = "response_time"
	BridgeLastScan     = "last_scan"
	BridgeMetersFound  = "meters_found"
	BridgeVersion      = "version"
	BridgeLogLevel     = "log_level" // select: state, and command with /set
	BridgeScan         = "scan"      // button: command only
	BridgeReadAll      = "read_all"  // button: command only
)

// Keys of the per-meter entities the gateway adds to each meter:
// <topic_prefix>/<meter>/<key>. A record with the same key wins.
const (
	MeterRead        = "read" // button: command topic <topic_prefix>/<meter>/read/set
	MeterLastSuccess = "last_success"
	MeterFailures    = "failures"
)

// PayloadPress is what the buttons send; PayloadNone makes a sensor's
// state unknown (Home Assistant's MQTT sensor reads "None" so); PayloadOn
// and PayloadOff are a binary sensor's states (Home Assistant's defaults).
const (
	PayloadPress = "PRESS"
	PayloadNone  = "None"
	PayloadOn    = "ON"
	PayloadOff   = "OFF"
)

// BusStates are the options of the bus state sensor: the states of
// package bushealth.
func BusStates() []string {
	out := make([]string, len(bushealth.States))
	for i, s := range bushealth.States {
		out[i] = s.String()
	}
	return out
}

// LogLevels are the options of the log level select, the values of the
// log_level option.
func LogLevels() []string { return []string{"trace", "debug", "info", "warning", "error"} }

// BridgeDeviceID is the gateway's device identifier and discovery object
// id: "mbus_bridge", followed by the installation id (in the [a-z0-9_]
// form entity ids use) when there is one, so that two gateways on one
// broker stay two devices. Meters name it as their via_device.
func BridgeDeviceID(o Options) string {
	if o.InstallationID == "" {
		return BridgeID
	}
	return BridgeID + "_" + entityPart(o.InstallationID)
}

// BridgeTopic is the state topic <topic_prefix>/bridge/<key>. o is assumed
// valid (BridgeConfig checks it); the empty prefix takes its default.
func BridgeTopic(o Options, key string) string {
	if o.TopicPrefix == "" {
		o.TopicPrefix = DefaultTopicPrefix
	}
	return topic(o.TopicPrefix, "bridge", key)
}

// BridgeBusTopic is the state topic of an entity of one of several
// buses: <topic_prefix>/bridge/bus/<bus>/<key>.
func BridgeBusTopic(o Options, bus, key string) string {
	if o.TopicPrefix == "" {
		o.TopicPrefix = DefaultTopicPrefix
	}
	return topic(o.TopicPrefix, "bridge", "bus", bus, key)
}

// MeterTopic is the topic <topic_prefix>/<meter>/<key>; it fails when the
// meter id is not a safe topic level.
func MeterTopic(o Options, meter, key string) (string, error) {
	if o.TopicPrefix == "" {
		o.TopicPrefix = DefaultTopicPrefix
	}
	if err := checkLevel(meter); err != nil {
		return "", fmt.Errorf("hass: meter %q: %w", meter, err)
	}
	return topic(o.TopicPrefix, meter, key), nil
}

// CommandTopic is the command topic that belongs to a state topic or key.
func CommandTopic(stateTopic string) string { return stateTopic + "/set" }

// bridgeEntity describes one of the gateway's entities.
type bridgeEntity struct {
	key      string
	platform string
	name     string
	class    entityClass
	category string
	icon     string
	options  func() []string // of an enum sensor
	// perBus entities describe one bus: a gateway with several buses
	// has one per bus (see BridgeBusTopic).
	perBus bool
}

// bridgeEntities are the gateway's entities besides connectivity. Counters
// restart at 0 with the process, which total_increasing allows.
var bridgeEntities = []bridgeEntity{
	{key: BridgeOutboxDepth, platform: "sensor", name: "Outbox depth", icon: "mdi:tray-full",
		class: entityClass{StateClass: "measurement", Precision: 0}, category: "diagnostic"},
	{key: BridgeDelivered, platform: "sensor", name: "Readings delivered", icon: "mdi:send-check",
		class: entityClass{StateClass: "total_increasing", Precision: 0}, category: "diagnostic"},
	{key: BridgeDropped, platform: "sensor", name: "Readings dropped", icon: "mdi:delete-alert",
		class: entityClass{StateClass: "total_increasing", Precision: 0}, category: "diagnostic"},
	{perBus: true, key: BridgeTimeouts, platform: "sensor", name: "Bus timeouts", icon: "mdi:timer-alert",
		class: entityClass{StateClass: "total_increasing", Precision: 0}, category: "diagnostic"},
	{perBus: true, key: BridgeChecksum, platform: "sensor", name: "Bus checksum errors", icon: "mdi:alert-circle",
		class: entityClass{StateClass: "total_increasing", Precision: 0}, category: "diagnostic"},
	{perBus: true, key: BridgeCollisions, platform: "sensor", name: "Bus collisions", icon: "mdi:call-merge",
		class: entityClass{StateClass: "total_increasing", Precision: 0}, category: "diagnostic"},
	{perBus: true, key: BridgeEchoes, platform: "sensor", name: "Bus echoes", icon: "mdi:repeat",
		class: entityClass{StateClass: "total_increasing", Precision: 0}, category: "diagnostic"},
	{perBus: true, key: BridgeBus, platform: "binary_sensor", name: "Bus",
		class: entityClass{DeviceClass: "connectivity", Precision: -1}, category: "diagnostic"},
	{perBus: true, key: BridgeBusState, platform: "sensor", name: "Bus state", icon: "mdi:lan-pending", options: BusStates,
		class: entityClass{DeviceClass: "enum", Precision: -1}, category: "diagnostic"},
	{key: BridgeResponseTime, platform: "sensor", name: "Average response time",
		class: entityClass{DeviceClass: "duration", StateClass: "measurement", Unit: "s", Precision: 2}, category: "diagnostic"},
	{perBus: true, key: BridgeLastScan, platform: "sensor", name: "Last scan",
		class: entityClass{DeviceClass: "timestamp", Precision: -1}, category: "diagnostic"},
	{perBus: true, key: BridgeMetersFound, platform: "sensor", name: "Meters found", icon: "mdi:counter",
		class: entityClass{Precision: 0}, category: "diagnostic"},
	{key: BridgeVersion, platform: "sensor", name: "Version", icon: "mdi:tag",
		class: entityClass{Precision: -1}, category: "diagnostic"},
	{perBus: true, key: BridgeScan, platform: "button", name: "Scan bus", icon: "mdi:magnify-scan", category: "config",
		class: entityClass{Precision: -1}},
	{key: BridgeReadAll, platform: "button", name: "Read all now", icon: "mdi:refresh",
		class: entityClass{Precision: -1}},
	{key: BridgeLogLevel, platform: "select", name: "Log level", icon: "mdi:math-log", category: "config",
		class: entityClass{Precision: -1}},
}

// BridgeConfig builds the retained device-based discovery message of the
// gateway itself: a connectivity binary sensor on <topic_prefix>/bridge/state
// (the Last Will topic); diagnostics for the outbox, deliveries, the bus
// (connectivity and state, from its health) and its errors, response time, the last scan and the version; the buttons "Scan
// bus" and "Read all now" and the log level select. It is the device the
// meters name as via_device. Every entity but connectivity is available
// while the bridge is online. With o.Buses, the entities of a bus (its
// connectivity, state, errors, last scan and scan button) come once per
// bus, on BridgeBusTopic.
func BridgeConfig(o Options) (Message, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Message{}, err
	}
	devID := BridgeDeviceID(o)
	stateTopic := BridgeTopic(o, BridgeState)
	avail := []availability{{Topic: stateTopic}}
	cfg := deviceConfig{
		Device: device{
			Identifiers:  []string{devID},
			Name:         "M-Bus gateway",
			Manufacturer: cleanText(o.OriginName, maxNameLen),
			Model:        "M-Bus to MQTT gateway",
			SWVersion:    cleanText(o.OriginSW, maxNameLen),
		},
		Origin: origin{Name: cleanText(o.OriginName, maxNameLen), SW: cleanText(o.OriginSW, maxNameLen), URL: cleanText(o.OriginURL, maxTextLen)},
		Components: map[string]component{
			"connectivity": {
				Platform:        "binary_sensor",
				Name:            "Connectivity",
				UniqueID:        devID + "_connectivity",
				DefaultEntityID: "binary_sensor." + devID + "_connectivity",
				StateTopic:      stateTopic,
				DeviceClass:     "connectivity",
				PayloadOn:       "online",
				PayloadOff:      "offline",
				EntityCategory:  "diagnostic",
			},
		},
		QoS: 1,
	}
	for _, e := range bridgeEntities {
		if !e.perBus || len(o.Buses) == 0 {
			cfg.Components[e.key] = bridgeComponent(e, BridgeTopic(o, e.key), e.key, e.name, devID, avail)
			continue
		}
		for _, bus := range o.Buses {
			key := e.key + "_" + entityPart(bus)
			cfg.Components[key] = bridgeComponent(e, BridgeBusTopic(o, bus, e.key), key, e.name+" ("+bus+")", devID, avail)
		}
	}
	payload, err := json.Marshal(cfg)
	if err != nil {
		return Message{}, fmt.Errorf("hass: bridge config: %w", err)
	}
	return Message{Topic: discoveryTopic(o, devID), Payload: payload, Retain: true}, nil
}

// bridgeComponent is the component of the gateway's entity e on topic t,
// under key with name.
func bridgeComponent(e bridgeEntity, t, key, name, devID string, avail []availability) component {
	c := component{
		Platform:        e.platform,
		Name:            name,
		UniqueID:        devID + "_" + key,
		DefaultEntityID: e.platform + "." + devID + "_" + key,
		DeviceClass:     e.class.DeviceClass,
		StateClass:      e.class.StateClass,
		Unit:            e.class.Unit,
		EntityCategory:  e.category,
		Icon:            e.icon,
		Availability:    avail,
	}
	if e.class.Precision >= 0 && e.platform == "sensor" && e.class.DeviceClass != "timestamp" {
		c.Precision = &e.class.Precision
	}
	switch e.platform {
	case "sensor", "binary_sensor":
		c.StateTopic = t
		if e.options != nil {
			c.Options = e.options()
		}
	case "button":
		c.CommandTopic = CommandTopic(t)
		c.PayloadPress = PayloadPress
	case "select":
		c.StateTopic = t
		c.CommandTopic = CommandTopic(t)
		c.Options = LogLevels()
	}
	return c
}

// meterExtras are the entities the gateway adds to each meter: a "Read
// now" button and diagnostics of its polling. They depend on the bridge
// only, so they stay available (and useful) while the meter is silent.
func meterExtras(o Options, meter string, seen map[string]bool) map[string]component {
	part := entityPart(meter)
	avail := []availability{{Topic: BridgeTopic(o, BridgeState)}}
	out := make(map[string]component, 3)
	add := func(key string, c component) {
		if seen[key] {
			return
		}
		c.UniqueID = "mbus_" + part + "_" + key
		c.DefaultEntityID = c.Platform + "." + c.UniqueID
		c.Availability = avail
		out[key] = c
	}
	zero := 0
	add(MeterRead, component{Platform: "button", Name: "Read now", Icon: "mdi:refresh",
		CommandTopic: CommandTopic(topic(o.TopicPrefix, meter, MeterRead)), PayloadPress: PayloadPress})
	add(MeterLastSuccess, component{Platform: "sensor", Name: "Last successful read", DeviceClass: "timestamp",
		StateTopic: topic(o.TopicPrefix, meter, MeterLastSuccess), EntityCategory: "diagnostic"})
	add(MeterFailures, component{Platform: "sensor", Name: "Consecutive failures", StateClass: "measurement",
		Icon: "mdi:alert-circle-outline", Precision: &zero,
		StateTopic: topic(o.TopicPrefix, meter, MeterFailures), EntityCategory: "diagnostic"})
	return out
}
