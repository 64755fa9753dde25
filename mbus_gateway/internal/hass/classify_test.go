package hass

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// Media codes (EN 13757-3:2018, table 3).
const (
	mediumElectricity mbus.Medium = 0x02
	mediumGas         mbus.Medium = 0x03
	mediumHeat        mbus.Medium = 0x04
	mediumWarmWater   mbus.Medium = 0x06
	mediumWater       mbus.Medium = 0x07
	mediumHCA         mbus.Medium = 0x08
	mediumColdWater   mbus.Medium = 0x16
)

func numRec(quantity, unit string) mbus.Record {
	return mbus.Record{Key: quantity, Quantity: quantity, Unit: unit, Value: mbus.Value{Kind: mbus.KindNumber, Num: 1}}
}

func with(r mbus.Record, f func(*mbus.Record)) mbus.Record {
	f(&r)
	return r
}

func TestClassify(t *testing.T) {
	maxFn := func(r *mbus.Record) { r.Function = mbus.FuncMaximum }
	storage1 := func(r *mbus.Record) { r.Storage = 1 }
	tariff1 := func(r *mbus.Record) { r.Tariff = 1 }
	plainText := func(r *mbus.Record) { r.VIF = "\xfc\x01C" }
	// VIF 0x86 (energy, kWh, extension follows), VIFE 0xFF: the rest is
	// the manufacturer's.
	manufacturerExt := func(r *mbus.Record) { r.VIF = "\x86\xff\x01" }
	bcdError := func(r *mbus.Record) { r.DIF, r.Value = "\x0c", mbus.Value{Kind: mbus.KindText, Text: "0012E456"} }
	tests := []struct {
		name   string
		medium mbus.Medium
		rec    mbus.Record
		want   entityClass
	}{
		{"heat energy kWh", mediumHeat, numRec("energy", "kWh"), entityClass{DeviceClass: "energy", StateClass: totalIncreasing, Unit: "kWh", Precision: 3}},
		{"heat energy GJ", mediumHeat, numRec("energy", "GJ"), entityClass{DeviceClass: "energy", StateClass: totalIncreasing, Unit: "GJ", Precision: 3}},
		{"electricity forward", mediumElectricity, numRec("energy_forward", "kWh"), entityClass{DeviceClass: "energy", StateClass: totalIncreasing, Unit: "kWh", Precision: 3}},
		{"energy tariff stays a register", mediumElectricity, with(numRec("energy", "kWh"), tariff1), entityClass{DeviceClass: "energy", StateClass: totalIncreasing, Unit: "kWh", Precision: 3}},
		{"water m³", mediumWater, numRec("volume", "m³"), entityClass{DeviceClass: "water", StateClass: totalIncreasing, Unit: "m³", Precision: 3}},
		{"warm water m³", mediumWarmWater, numRec("volume", "m³"), entityClass{DeviceClass: "water", StateClass: totalIncreasing, Unit: "m³", Precision: 3}},
		{"cold water m³", mediumColdWater, numRec("volume", "m³"), entityClass{DeviceClass: "water", StateClass: totalIncreasing, Unit: "m³", Precision: 3}},
		{"gas m³", mediumGas, numRec("volume", "m³"), entityClass{DeviceClass: "gas", StateClass: totalIncreasing, Unit: "m³", Precision: 3}},
		{"gas in gallons has no class", mediumGas, numRec("volume", "gal"), entityClass{StateClass: totalIncreasing, Unit: "gal", Precision: 2}},
		{"heat meter volume", mediumHeat, numRec("volume", "m³"), entityClass{DeviceClass: "volume", StateClass: totalIncreasing, Unit: "m³", Precision: 3}},
		{"power", mediumHeat, numRec("power", "W"), entityClass{DeviceClass: "power", StateClass: measurement, Unit: "W", Precision: 0}},
		{"power maximum", mediumHeat, with(numRec("power", "W"), maxFn), entityClass{DeviceClass: "power", StateClass: measurement, Unit: "W", Precision: 0}},
		{"energy maximum loses class", mediumHeat, with(numRec("energy", "kWh"), maxFn), entityClass{StateClass: measurement, Unit: "kWh", Precision: 3}},
		{"flow", mediumHeat, numRec("volume_flow", "m³/h"), entityClass{DeviceClass: "volume_flow_rate", StateClass: measurement, Unit: "m³/h", Precision: 3}},
		{"flow temperature", mediumHeat, numRec("flow_temperature", "°C"), entityClass{DeviceClass: "temperature", StateClass: measurement, Unit: "°C", Precision: 2}},
		{"temperature difference", mediumHeat, numRec("temperature_difference", "K"), entityClass{DeviceClass: "temperature_delta", StateClass: measurement, Unit: "K", Precision: 2}},
		{"pressure", mediumWater, numRec("pressure", "bar"), entityClass{DeviceClass: "pressure", StateClass: measurement, Unit: "bar", Precision: 2}},
		{"voltage l1", mediumElectricity, numRec("voltage_l1", "V"), entityClass{DeviceClass: "voltage", StateClass: measurement, Unit: "V", Precision: 1}},
		{"current", mediumElectricity, numRec("current", "A"), entityClass{DeviceClass: "current", StateClass: measurement, Unit: "A", Precision: 2}},
		{"on time", mediumHeat, numRec("on_time", "h"), entityClass{DeviceClass: "duration", StateClass: totalIncreasing, Unit: "h", Precision: -1, Diagnostic: true}},
		{"averaging duration", mediumHeat, numRec("averaging_duration", "s"), entityClass{DeviceClass: "duration", StateClass: measurement, Unit: "s", Precision: -1, Diagnostic: true, Disabled: true}},
		{"storage interval in months", mediumHeat, numRec("storage_interval", "month"), entityClass{UnitText: "month", Precision: -1, Diagnostic: true, Disabled: true}},
		{"hca", mediumHCA, numRec("units_for_hca", ""), entityClass{StateClass: totalIncreasing, Precision: 0}},
		{"fabrication number", mediumHeat, numRec("fabrication_number", ""), entityClass{Precision: -1, Diagnostic: true}},
		{"firmware version", mediumHeat, numRec("firmware_version", ""), entityClass{Precision: -1, Diagnostic: true, Disabled: true}},
		{"energy at due date", mediumHeat, with(numRec("energy", "kWh"), storage1), entityClass{DeviceClass: "energy", Unit: "kWh", Precision: 3, Diagnostic: true, Disabled: true}},
		{"mass", mediumHeat, numRec("mass", "kg"), entityClass{DeviceClass: "weight", StateClass: totalIncreasing, Unit: "kg", Precision: -1}},
		{"reactive energy", mediumElectricity, numRec("reactive_energy", "kvarh"), entityClass{StateClass: totalIncreasing, Unit: "kvarh", Precision: -1}},
		{"temperature limit", mediumHeat, numRec("flow_temperature_upper_limit", "°C"), entityClass{DeviceClass: "temperature", StateClass: measurement, Unit: "°C", Precision: 2, Diagnostic: true, Disabled: true}},
		{"rf level", mediumWater, numRec("rf_level", "dBm"), entityClass{DeviceClass: "signal_strength", StateClass: measurement, Unit: "dBm", Precision: -1, Diagnostic: true}},
		{"unknown unit", mediumHeat, numRec("bat_time", "bat. time"), entityClass{UnitText: "bat. time", Precision: -1}},
		{"rate unit", mediumHeat, numRec("energy_rate", "kWh/h"), entityClass{UnitText: "kWh/h", Precision: -1}},
		{"text unit of unknown meaning", mediumHeat, with(numRec("c", "C"), plainText), entityClass{UnitText: "C", Precision: -1, Disabled: true}},
		{"relative humidity as text unit", mediumHeat, with(numRec("rh", "%RH"), plainText), entityClass{DeviceClass: "humidity", StateClass: measurement, Unit: "%", Precision: -1}},
		{"manufacturer extension", mediumHeat, with(numRec("energy", "kWh"), manufacturerExt), entityClass{DeviceClass: "energy", Unit: "kWh", Precision: 3, Disabled: true}},
		{"manufacturer VIF", mediumHeat, with(numRec("manufacturer_specific", ""), func(r *mbus.Record) { r.VIF = "\xff" }), entityClass{Precision: -1, Diagnostic: true, Disabled: true}},
		{"unknown meaning", mediumHeat, numRec("dimensionless", ""), entityClass{Precision: -1, Diagnostic: true, Disabled: true}},
		{"energy with error digits", mediumHeat, with(numRec("energy", "kWh"), bcdError), entityClass{DeviceClass: "energy", StateClass: totalIncreasing, Unit: "kWh", Precision: 3}},
		{"date", mediumHeat, mbus.Record{Quantity: "date", Value: mbus.TimeValue(mbus.KindDate, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}, entityClass{DeviceClass: "date", Precision: -1, Diagnostic: true, Disabled: true}},
		{"date as text", mediumHeat, mbus.Record{Quantity: "date", Value: mbus.Value{Kind: mbus.KindText, Text: "2026-01-01"}}, entityClass{DeviceClass: "date", Precision: -1, Diagnostic: true, Disabled: true}},
		{"date and time", mediumHeat, mbus.Record{Quantity: "date_time", Value: mbus.Value{Kind: mbus.KindText, Text: "2026-01-01T10:00:00"}}, entityClass{Precision: -1, Diagnostic: true, Disabled: true}},
		{"text", mediumHeat, mbus.Record{Quantity: "cust_id", Unit: "cust. ID", Value: mbus.Value{Kind: mbus.KindText, Text: "A1"}}, entityClass{Precision: -1, Diagnostic: true, Disabled: true}},
		{"binary", mediumHeat, mbus.Record{Quantity: "manufacturer_specific", Value: mbus.BytesValue([]byte{1})}, entityClass{Precision: -1, Diagnostic: true, Disabled: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.medium, tt.rec); got != tt.want {
				t.Errorf("classify = %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

// Quantities and units the decoder produces (mbus/vif.go), plus
// direction and phase qualifiers.
var (
	decoderQuantities = []string{
		"energy", "energy_forward", "energy_backward", "energy_l1", "volume", "volume_uncorrected",
		"volume_at_base_conditions", "mass", "on_time", "operating_time", "power", "power_l2",
		"volume_flow", "mass_flow", "flow_temperature", "return_temperature",
		"temperature_difference", "external_temperature", "pressure", "averaging_duration",
		"actuality_duration", "date", "date_time", "units_for_hca", "fabrication_number",
		"enhanced_identification", "bus_address", "manufacturer_specific", "credit", "debit",
		"access_number", "error_flags", "firmware_version", "duration_since_last_readout",
		"storage_interval", "tariff_period", "voltage", "voltage_l1", "current", "current_n",
		"reset_counter", "cumulation_counter", "battery_operating_time", "remaining_battery_life",
		"rf_level", "reactive_energy", "apparent_energy", "reactive_power", "apparent_power",
		"frequency", "relative_humidity", "temperature_limit", "cumulative_max_power",
		"flow_temperature_lower_limit", "power_upper_limit_exceeds", "energy_per_input_pulse_0",
		"phase_voltage_current", "dimensionless", "cust_id", "bat_time",
	}
	decoderUnits = []string{
		"", "kWh", "GJ", "Mcal", "m³", "kg", "W", "m³/h", "kg/h", "s", "min", "h", "d", "month",
		"year", "°C", "°F", "K", "bar", "kvarh", "kVAh", "%", "gal", "ft³", "kvar", "Hz", "kVA",
		"gal/min", "gal/h", "°", "V", "A", "dBm", "Bd", "kWh/h", "m³/d", "bat. time",
	}
)

// TestClassesValidForHA tries every quantity the decoder knows in every
// unit, for every medium and function, in and out of storage, and checks
// each result against Home Assistant's rules.
func TestClassesValidForHA(t *testing.T) {
	functions := []mbus.Function{mbus.FuncInstantaneous, mbus.FuncMaximum, mbus.FuncMinimum, mbus.FuncValueDuringError}
	var allMedia []mbus.Medium
	for m := range 256 {
		allMedia = append(allMedia, mbus.Medium(m))
	}
	checked := 0
	for _, q := range decoderQuantities {
		// Only volumes depend on the medium; the rest is tried on a few.
		media := []mbus.Medium{mediumHeat, mediumWater, mediumGas, mediumElectricity}
		if strings.HasPrefix(q, "volume") {
			media = allMedia
		}
		for _, medium := range media {
			for _, u := range decoderUnits {
				for _, fn := range functions {
					for _, storage := range []uint64{0, 3} {
						rec := numRec(q, u)
						rec.Function, rec.Storage = fn, storage
						c := classify(medium, rec)
						checkClass(t, medium, rec, c)
						checked++
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("nothing checked")
	}
}

func checkClass(t *testing.T, m mbus.Medium, rec mbus.Record, c entityClass) {
	t.Helper()
	where := func() string { return m.String() + " " + rec.Quantity + " [" + rec.Unit + "] " + rec.Function.String() }
	if err := loadHATables(t).check(c.DeviceClass, c.StateClass, c.Unit); err != nil {
		t.Fatalf("%s: %v", where(), err)
	}
	if c.DeviceClass == "gas" && m.String() != "gas" && m.String() != "gas_data_logger" && m.String() != "gas_converter" {
		t.Fatalf("%s: gas class on a %s meter", where(), m)
	}
	if c.DeviceClass == "water" && rec.Quantity != "volume" && !slices.Contains([]string{"volume_uncorrected", "volume_at_base_conditions"}, rec.Quantity) {
		t.Fatalf("%s: water class for a non-volume", where())
	}
	if rec.Storage > 0 && c.StateClass != "" {
		t.Fatalf("%s: stored value with state class %s", where(), c.StateClass)
	}
	if rec.Function != mbus.FuncInstantaneous && c.StateClass == totalIncreasing {
		t.Fatalf("%s: %s value as total_increasing", where(), rec.Function)
	}
}
