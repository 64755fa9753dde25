package hass

import (
	"encoding/json"
	"fmt"
)

// BridgeConfig builds the retained device-based discovery message of the
// gateway itself: a connectivity binary sensor on <topic_prefix>/bridge/state
// (the Last Will topic), and the device the meters name as via_device.
func BridgeConfig(o Options) (Message, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Message{}, err
	}
	id := BridgeID + "_connectivity"
	cfg := deviceConfig{
		Device: device{
			Identifiers:  []string{BridgeID},
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
				UniqueID:        id,
				DefaultEntityID: "binary_sensor." + id,
				StateTopic:      topic(o.TopicPrefix, "bridge", "state"),
				DeviceClass:     "connectivity",
				PayloadOn:       "online",
				PayloadOff:      "offline",
				EntityCategory:  "diagnostic",
			},
		},
		QoS: 1,
	}
	payload, err := json.Marshal(cfg)
	if err != nil {
		return Message{}, fmt.Errorf("hass: bridge config: %w", err)
	}
	return Message{Topic: discoveryTopic(o, BridgeID), Payload: payload, Retain: true}, nil
}
