package hass

import (
	"strings"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// State classes (HA sensor entity).
const (
	measurement     = "measurement"
	totalIncreasing = "total_increasing"
)

// entityClass is how one record shows up in Home Assistant.
type entityClass struct {
	DeviceClass string
	StateClass  string
	Unit        string
	// Precision is the suggested display precision, -1 for none.
	Precision  int
	Diagnostic bool
	// Disabled entities exist but are off until the user enables them.
	Disabled bool
	// UnitText is a unit Home Assistant does not know ("bat. time",
	// "month", "kWh/h"): it is shown in the entity name instead of as
	// unit_of_measurement, and the entity gets no state class.
	UnitText string
}

// deviceClassUnits lists the units Home Assistant accepts per sensor device
// class (DEVICE_CLASS_UNITS of HA's sensor component; the test checks it
// against testdata/ha). A device class whose unit is not listed is
// dropped: HA rejects the entity otherwise.
var deviceClassUnits = map[string][]string{
	"energy":            {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal", "Gcal"},
	"water":             {"L", "gal", "m³", "ft³", "CCF"},
	"gas":               {"m³", "ft³", "CCF"},
	"volume":            {"L", "mL", "gal", "fl. oz.", "m³", "ft³", "CCF"},
	"power":             {"W", "kW", "MW", "GW", "TW"},
	"temperature":       {"°C", "°F", "K"},
	"temperature_delta": {"°C", "°F", "K"},
	"volume_flow_rate":  {"m³/h", "m³/s", "ft³/min", "L/h", "L/min", "L/s", "gal/min", "mL/s"},
	"pressure":          {"Pa", "hPa", "kPa", "cbar", "bar", "mbar", "mmHg", "inHg", "psi"},
	"voltage":           {"V", "mV", "µV", "kV", "MV"},
	"current":           {"A", "mA"},
	"duration":          {"d", "h", "min", "s", "ms"},
	"frequency":         {"Hz", "kHz", "MHz", "GHz"},
	"humidity":          {"%"},
	"signal_strength":   {"dB", "dBm"},
	"weight":            {"kg", "g", "mg", "µg", "oz", "lb", "st"},
}

// statisticsUnits are the units that may stand as unit_of_measurement of a
// sensor without device class: the units of deviceClassUnits, others of
// HA's unit enums the decoder produces, and the reactive and apparent
// energy units HA's enums lack but whose registers are plain totals.
// Anything else ("bat. time", "month", "kWh/h", "Bd") is meter-specific
// text: HA's statistics would mix it up, so it goes into the name.
var statisticsUnits = func() map[string]bool {
	m := map[string]bool{"%": true, "°": true, "kvar": true, "VA": true, "kVA": true, "kvarh": true, "kVAh": true}
	for _, units := range deviceClassUnits {
		for _, u := range units {
			m[u] = true
		}
	}
	return m
}()

// cumulative device classes may not carry state class measurement.
func cumulative(deviceClass string) bool {
	switch deviceClass {
	case "energy", "gas", "water", "volume":
		return true
	}
	return false
}

func unitAllowed(deviceClass, unit string) bool {
	for _, u := range deviceClassUnits[deviceClass] {
		if u == unit {
			return true
		}
	}
	return false
}

// volumeClass picks the class of a volume register by the meter's medium,
// so that water and gas meters land in the right Energy dashboard slot and
// a water meter's m³ is never gas.
func volumeClass(m mbus.Medium) string {
	switch m.String() {
	case "water", "warm_water", "hot_water", "cold_water", "dual_register_water",
		"irrigation_water", "waste_water", "water_data_logger":
		return "water"
	case "gas", "gas_data_logger", "gas_converter":
		return "gas"
	}
	return "volume"
}

// identification quantities describe the meter rather than measure
// anything.
var identification = map[string]bool{
	"fabrication_number": true, "enhanced_identification": true, "bus_address": true,
	"access_number": true, "medium": true, "manufacturer": true,
	"parameter_set_identification": true, "model_version": true, "hardware_version": true,
	"firmware_version": true, "software_version": true, "customer_location": true,
	"customer": true, "error_flags": true, "error_mask": true, "baud_rate": true,
	"response_delay_time": true, "retry": true, "digital_output": true, "digital_input": true,
	"first_storage_number": true, "last_storage_number": true, "storage_block_size": true,
	"manufacturer_specific": true, "special_supplier_information": true,
	"daylight_saving": true, "listening_window_management": true, "day_of_week": true,
	"week_number": true, "parameter_activation_state": true, "control_signal": true,
	"any": true, "reserved": true,
}

// counters only grow.
var counters = map[string]bool{
	"reset_counter": true, "cumulation_counter": true, "meter_stop_count": true,
}

// runningTimes are durations that grow with the meter's life.
var runningTimes = map[string]bool{
	"on_time": true, "operating_time": true, "battery_operating_time": true,
}

// precisionByUnit keeps displayed values readable where scaling leaves long
// fractions, at the meter's usual resolution.
var precisionByUnit = map[string]int{
	"kWh": 3, "MWh": 3, "GJ": 3, "Mcal": 3, "Wh": 0,
	"m³": 3, "L": 0, "ft³": 2, "gal": 2,
	"W": 0, "kW": 3, "m³/h": 3, "gal/min": 2, "gal/h": 2,
	"°C": 2, "°F": 2, "K": 2, "bar": 2,
	"V": 1, "A": 2, "Hz": 2, "%": 1,
}

// valueKind tells what a record holds. Values that went through JSON come
// back as text; dates and times are recognised by their ISO 8601 form so a
// reading from the store gives the same entities as a fresh one.
func valueKind(v mbus.Value) mbus.ValueKind {
	if v.Kind != mbus.KindText {
		return v.Kind
	}
	layouts := []struct {
		layout string
		kind   mbus.ValueKind
	}{
		{time.DateOnly, mbus.KindDate},
		{"2006-01-02T15:04:05", mbus.KindDateTime},
		{time.TimeOnly, mbus.KindTime},
	}
	for _, l := range layouts {
		if _, err := time.Parse(l.layout, v.Text); err == nil {
			return l.kind
		}
	}
	return mbus.KindText
}

// unknownMeaning are quantities whose value the gateway cannot interpret:
// manufacturer-specific data and codes EN 13757-3 leaves open.
var unknownMeaning = map[string]bool{
	"": true, "manufacturer_specific": true, "reserved": true, "any": true, "dimensionless": true,
}

// VIF codes that say a record is not (fully) defined by EN 13757-3.
const (
	vifPlainText     = 0x7C // unit given as text in the telegram (table 10)
	vifManufacturer  = 0x7F // manufacturer-specific VIF (table 10)
	vifeManufacturer = 0x7F // the following VIFEs are manufacturer specific (table 15)
)

// manufacturerMarked reports whether the meter marked rec as its own: a
// manufacturer-specific VIF, or a VIFE 0xFF/0x7F after which the meaning of
// the record is the manufacturer's. The raw VIF bytes are in rec.VIF.
func manufacturerMarked(rec mbus.Record) bool {
	v := rec.VIF
	if len(v) == 0 {
		return false
	}
	switch v[0] & 0x7F {
	case vifManufacturer:
		return true
	case vifPlainText:
		// Length and text follow; their bytes are not VIFEs.
		return false
	}
	for i := 1; i < len(v) && v[i-1]&0x80 != 0; i++ {
		if v[i]&0x7F == vifeManufacturer {
			return true
		}
	}
	return false
}

// plainTextUnit reports whether rec's unit came as text in the telegram.
func plainTextUnit(rec mbus.Record) bool {
	return len(rec.VIF) > 0 && rec.VIF[0]&0x7F == vifPlainText
}

// textUnitClasses are the units meters send as text that still name a
// quantity Home Assistant knows.
var textUnitClasses = map[string]struct{ deviceClass, unit string }{
	"%RH": {"humidity", "%"},
	"%rh": {"humidity", "%"},
}

// unreadableNumber reports a number the meter sent with error digits
// (BCD A–F, EN 13757-3 annex B): the decoder gives its digits as text but
// keeps the unit. It must never reach a numeric sensor.
func unreadableNumber(rec mbus.Record) bool {
	if rec.Value.Kind != mbus.KindText || rec.Unit == "" || rec.Value.Text == "" || bcdDigits(rec) == 0 {
		return false
	}
	for i, c := range rec.Value.Text {
		if (c < '0' || c > '9') && (c < 'A' || c > 'F') && (c != '-' || i != 0) {
			return false
		}
	}
	return true
}

// classify decides device class, state class and the rest for one record
// of a meter of medium m.
func classify(m mbus.Medium, rec mbus.Record) entityClass {
	c := classifyQuantity(m, rec)
	if rec.Storage > 0 {
		// Values stored at a due date or in a history slot: no long-term
		// statistics (they jump once a period), diagnostic, and off until
		// wanted.
		c.StateClass = ""
		c.Diagnostic, c.Disabled = true, true
	}
	if unknownMeaning[rec.Quantity] || manufacturerMarked(rec) {
		// Never offered to the Energy dashboard: nobody knows what it
		// counts.
		c.Disabled = true
		if c.StateClass == totalIncreasing {
			c.StateClass = ""
		}
	}
	if _, numeric := deviceClassUnits[c.DeviceClass]; numeric && !unitAllowed(c.DeviceClass, c.Unit) {
		c.DeviceClass = ""
	}
	if c.StateClass == measurement && cumulative(c.DeviceClass) {
		c.DeviceClass = ""
	}
	if c.Unit != "" && c.DeviceClass == "" && !statisticsUnits[c.Unit] {
		c.UnitText, c.Unit, c.StateClass, c.Precision = c.Unit, "", "", -1
	}
	return c
}

// classifyQuantity classifies rec by its quantity, unit and function.
func classifyQuantity(m mbus.Medium, rec mbus.Record) entityClass {
	c := entityClass{Precision: -1}
	q := rec.Quantity
	kind := valueKind(rec.Value)
	if unreadableNumber(rec) {
		// Classified as the number it should have been, so that one bad
		// read does not turn a sensor into text; States leaves it out.
		kind = mbus.KindNumber
	}
	switch kind {
	case mbus.KindNumber:
	case mbus.KindDate:
		return entityClass{DeviceClass: "date", Precision: -1, Diagnostic: true, Disabled: true}
	default:
		// Text, times, binary: shown as they are.
		return entityClass{Precision: -1, Diagnostic: true, Disabled: q != "fabrication_number"}
	}
	c.Unit = rec.Unit
	if p, ok := precisionByUnit[rec.Unit]; ok {
		c.Precision = p
	}
	base := baseQuantity(q)
	switch {
	case identification[q]:
		c.Diagnostic = true
		c.Disabled = q != "fabrication_number" && q != "error_flags"
		c.Precision = -1
		return c
	case plainTextUnit(rec):
		tc, ok := textUnitClasses[rec.Unit]
		if !ok {
			// A unit only the manufacturer knows: shown, not
			// interpreted.
			c.Disabled = true
			return c
		}
		c.DeviceClass, c.Unit, c.StateClass = tc.deviceClass, tc.unit, measurement
	case q == "units_for_hca" || strings.HasPrefix(q, "units_for_hca_"):
		// Heat cost allocator units have no HA device class; they only
		// grow during a billing period.
		c.StateClass = totalIncreasing
		c.Precision = 0
	case counters[q]:
		c.StateClass = totalIncreasing
		c.Diagnostic = true
	case runningTimes[q]:
		c.DeviceClass, c.StateClass, c.Diagnostic = "duration", totalIncreasing, true
	case isLimit(q):
		c.DeviceClass = unitClass(base, m)
		c.StateClass = measurement
		c.Diagnostic, c.Disabled = true, true
	case strings.Contains(q, "_per_"):
		// Ratios (energy per pulse, per m³): settings rather than readings.
		c.Diagnostic, c.Disabled = true, true
	case base == "temperature_difference":
		// A difference in K is not a temperature: with device class
		// temperature HA would convert 25 K to -248 °C.
		c.DeviceClass, c.StateClass = "temperature_delta", measurement
	case isDuration(rec.Unit):
		c.DeviceClass, c.StateClass = "duration", measurement
		c.Diagnostic, c.Disabled = true, true
	case rec.Unit == "":
		c.Diagnostic = true
	default:
		c.DeviceClass = unitClass(base, m)
		c.Diagnostic = base == "rf_level"
		if isRegister(c.DeviceClass, base) {
			c.StateClass = totalIncreasing
		} else {
			c.StateClass = measurement
		}
	}
	switch rec.Function {
	case mbus.FuncMaximum, mbus.FuncMinimum:
		c.StateClass = measurement
	case mbus.FuncValueDuringError:
		c.StateClass = ""
		c.Disabled = true
	}
	return c
}

// baseQuantity strips the direction and phase qualifiers the decoder
// appends ("energy_forward", "power_l1"), which do not change the class.
func baseQuantity(q string) string {
	for _, base := range []string{
		"reactive_energy", "apparent_energy", "energy", "volume_flow", "volume",
		"mass_flow", "mass", "cumulative_max_power", "reactive_power", "apparent_power", "power",
		"flow_temperature", "return_temperature", "external_temperature",
		"temperature_difference", "temperature_limit", "pressure", "voltage", "current",
		"frequency", "relative_humidity", "rf_level",
	} {
		if q == base || strings.HasPrefix(q, base+"_") {
			return base
		}
	}
	return q
}

// unitClass maps a quantity to a device class, "" for none. The unit is
// checked later against the class.
func unitClass(base string, m mbus.Medium) string {
	switch base {
	case "energy":
		return "energy"
	case "volume":
		return volumeClass(m)
	case "volume_flow":
		return "volume_flow_rate"
	case "mass":
		return "weight"
	case "power", "cumulative_max_power":
		return "power"
	case "flow_temperature", "return_temperature", "external_temperature", "temperature_limit":
		return "temperature"
	case "pressure", "voltage", "current", "frequency":
		return base
	case "relative_humidity":
		return "humidity"
	case "rf_level":
		return "signal_strength"
	}
	return ""
}

// isRegister reports quantities that count up over the meter's life.
func isRegister(deviceClass, base string) bool {
	switch base {
	case "energy", "volume", "mass", "reactive_energy", "apparent_energy":
		return true
	}
	return cumulative(deviceClass)
}

func isLimit(q string) bool {
	return strings.Contains(q, "_limit") || strings.HasPrefix(q, "temperature_limit")
}

func isDuration(unit string) bool {
	switch unit {
	case "s", "min", "h", "d", "month", "year":
		return true
	}
	return false
}

// TotalIncreasing reports whether the sensor of rec, a record of a meter
// of medium m, has state class total_increasing: a total Home Assistant's
// statistics treat any drop of as a meter reset.
func TotalIncreasing(m mbus.Medium, rec mbus.Record) bool {
	return classify(m, rec).StateClass == totalIncreasing
}

// Unreadable reports a number the meter sent with error digits (BCD A–F):
// no numeric sensor gets it.
func Unreadable(rec mbus.Record) bool { return unreadableNumber(rec) }
