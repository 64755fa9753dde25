package hass

import (
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// States gives the retained state messages <topic_prefix>/<meter>/<key> of
// r: one per record with a value, plus the time of the read and the access
// number, matching the entities of DeviceConfig. Numbers are plain decimal
// text, dates ISO 8601; an empty value (a blank text record) is "None",
// which Home Assistant shows as unknown. When the meter id or a prefix is not a safe topic
// level it returns nil; records with unsafe keys are left out (DeviceConfig
// reports them).
func States(o Options, r reading.Reading) []Message {
	o, err := o.withDefaults()
	if err != nil || checkLevel(r.Meter) != nil {
		return nil
	}
	// Keep the entities with safe keys: build them record by record.
	safe := r
	safe.Records = nil
	for _, rec := range r.Records {
		if checkLevel(rec.Key) == nil {
			safe.Records = append(safe.Records, rec)
		}
	}
	ents, err := entities(safe)
	if err != nil {
		return nil
	}
	msgs := make([]Message, 0, len(ents))
	for _, e := range ents {
		if e.unreadable {
			// A number with error digits is not a number: the sensor
			// keeps its last good value.
			continue
		}
		value := e.value
		if value == "" {
			// A zero-length retained message would delete the topic.
			value = PayloadNone
		}
		msgs = append(msgs, Message{
			Topic:   topic(o.TopicPrefix, r.Meter, e.key),
			Payload: []byte(value),
			Retain:  true,
		})
	}
	return msgs
}
