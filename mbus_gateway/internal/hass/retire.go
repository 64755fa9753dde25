package hass

import (
	"encoding/json"
	"fmt"
)

// Retire completes m, a device discovery message, for a device whose
// earlier discovery messages announced the components earlier (component
// id → platform). Components m no longer has, e.g. after record keys were
// renamed, go into m with only their platform: that makes Home Assistant
// delete their entities (device-based discovery), which simply dropping
// them from "cmps" would not (Home Assistant's MQTT discovery takes a
// component config that is empty once its platform is removed as the
// removal of that component). It returns the message and the components
// to remember for the next discovery of the device: m's own and the
// retired ones, so that a retirement Home Assistant missed while it was
// offline is repeated.
func Retire(m Message, earlier map[string]string) (Message, map[string]string, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(m.Payload, &cfg); err != nil {
		return m, nil, fmt.Errorf("hass: retire components of %s: %w", m.Topic, err)
	}
	var cmps map[string]json.RawMessage
	if err := json.Unmarshal(cfg["cmps"], &cmps); err != nil {
		return m, nil, fmt.Errorf("hass: retire components of %s: %w", m.Topic, err)
	}
	remember := make(map[string]string, len(cmps)+len(earlier))
	for id, raw := range cmps {
		var c struct {
			Platform string `json:"p"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			return m, nil, fmt.Errorf("hass: retire components of %s: %s: %w", m.Topic, id, err)
		}
		remember[id] = c.Platform
	}
	retired := 0
	for id, platform := range earlier {
		if _, ok := cmps[id]; ok || platform == "" {
			continue
		}
		stub, err := json.Marshal(struct {
			Platform string `json:"p"`
		}{platform})
		if err != nil {
			return m, nil, fmt.Errorf("hass: retire %s: %w", id, err)
		}
		cmps[id] = stub
		remember[id] = platform
		retired++
	}
	if retired == 0 {
		return m, remember, nil
	}
	b, err := json.Marshal(cmps)
	if err != nil {
		return m, nil, fmt.Errorf("hass: retire components of %s: %w", m.Topic, err)
	}
	cfg["cmps"] = b
	payload, err := json.Marshal(cfg)
	if err != nil {
		return m, nil, fmt.Errorf("hass: retire components of %s: %w", m.Topic, err)
	}
	out := m
	out.Payload = payload
	return out, remember, nil
}
