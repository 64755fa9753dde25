package mbus

import "fmt"

// Medium is the device type byte of the header (EN 13757-3:2018, table 3).
type Medium byte

var mediumNames = [...]string{
	0x00: "other",
	0x01: "oil",
	0x02: "electricity",
	0x03: "gas",
	0x04: "heat_outlet",
	0x05: "steam",
	0x06: "warm_water",
	0x07: "water",
	0x08: "heat_cost_allocator",
	0x09: "compressed_air",
	0x0A: "cooling_outlet",
	0x0B: "cooling_inlet",
	0x0C: "heat_inlet",
	0x0D: "heat_cooling",
	0x0E: "bus_system",
	0x0F: "unknown",
	0x10: "irrigation_water",
	0x11: "water_data_logger",
	0x12: "gas_data_logger",
	0x13: "gas_converter",
	0x14: "calorific_value",
	0x15: "hot_water",
	0x16: "cold_water",
	0x17: "dual_register_water",
	0x18: "pressure",
	0x19: "ad_converter",
	0x1A: "smoke_detector",
	0x1B: "room_sensor",
	0x1C: "gas_detector",
	0x20: "breaker",
	0x21: "valve",
	0x25: "customer_unit",
	0x28: "waste_water",
	0x29: "garbage",
	0x2A: "carbon_dioxide",
	0x31: "communication_controller",
	0x32: "unidirectional_repeater",
	0x33: "bidirectional_repeater",
	0x36: "radio_converter_system",
	0x37: "radio_converter_meter",
}

// String gives the snake_case name of the medium, "reserved_0xNN" for codes
// the standard does not assign.
func (m Medium) String() string {
	if int(m) < len(mediumNames) && mediumNames[m] != "" {
		return mediumNames[m]
	}
	return fmt.Sprintf("reserved_0x%02x", byte(m))
}

// MarshalText makes Medium a JSON string.
func (m Medium) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads the names String gives, including "reserved_0xNN".
func (m *Medium) UnmarshalText(b []byte) error {
	for i := range 256 {
		if Medium(i).String() == string(b) {
			*m = Medium(i)
			return nil
		}
	}
	return fmt.Errorf("unknown medium %q", b)
}
