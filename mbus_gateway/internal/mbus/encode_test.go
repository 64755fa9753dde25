package mbus

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// testHeader is the long header used by the encoder tests.
var testHeader = Header{ID: "12345678", Manufacturer: "KAM", Version: 8, Medium: 0x04, AccessNumber: 7, Status: StatusPowerLow}

func TestRecordRoundTrip(t *testing.T) {
	day := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		spec RecordSpec
		want Record // Key, Quantity, Unit, Value, Function, Storage, Tariff, Subunit
	}{
		{"none", RecordSpec{Coding: DataNone, VIF: []byte{0x13}},
			Record{Key: "volume", Quantity: "volume", Unit: "m³"}},
		{"int8", RecordSpec{Coding: DataInt8, VIF: []byte{0xFD, 0x1B}, Int: 2},
			Record{Key: "digital_input", Quantity: "digital_input", Value: Value{Kind: KindNumber, Num: 2}}},
		{"int16 negative", RecordSpec{Coding: DataInt16, VIF: []byte{0x65}, Int: -1234},
			Record{Key: "external_temperature", Quantity: "external_temperature", Unit: "°C", Value: Value{Kind: KindNumber, Num: -12.34}}},
		{"int24", RecordSpec{Coding: DataInt24, VIF: []byte{0x2B}, Int: 8388607},
			Record{Key: "power", Quantity: "power", Unit: "W", Value: Value{Kind: KindNumber, Num: 8388607}}},
		{"int32 tariff storage subunit", RecordSpec{Coding: DataInt32, VIF: []byte{0x06}, Int: 37351, Storage: 13, Tariff: 5, Subunit: 3, Function: FuncMaximum},
			Record{Key: "energy_max_s13_t5_u3", Quantity: "energy", Unit: "kWh", Value: Value{Kind: KindNumber, Num: 37351}, Function: FuncMaximum, Storage: 13, Tariff: 5, Subunit: 3}},
		{"real32", RecordSpec{Coding: DataReal32, VIF: []byte{0x5B}, Real: 21.5},
			Record{Key: "flow_temperature", Quantity: "flow_temperature", Unit: "°C", Value: Value{Kind: KindNumber, Num: 21.5}}},
		{"int48", RecordSpec{Coding: DataInt48, VIF: []byte{0x07}, Int: 140737488355327},
			Record{Key: "energy", Quantity: "energy", Unit: "kWh", Value: Value{Kind: KindNumber, Num: 1407374883553270}}},
		{"int64", RecordSpec{Coding: DataInt64, VIF: []byte{0x78}, Int: -5},
			Record{Key: "fabrication_number", Quantity: "fabrication_number", Value: Value{Kind: KindNumber, Num: -5}}},
		{"bcd2", RecordSpec{Coding: DataBCD2, VIF: []byte{0x7A}, Int: 42},
			Record{Key: "bus_address", Quantity: "bus_address", Value: Value{Kind: KindNumber, Num: 42}}},
		{"bcd4 negative", RecordSpec{Coding: DataBCD4, VIF: []byte{0x61}, Int: -123},
			Record{Key: "temperature_difference", Quantity: "temperature_difference", Unit: "K", Value: Value{Kind: KindNumber, Num: -1.23}}},
		{"bcd6", RecordSpec{Coding: DataBCD6, VIF: []byte{0x3B}, Int: 999999},
			Record{Key: "volume_flow", Quantity: "volume_flow", Unit: "m³/h", Value: Value{Kind: KindNumber, Num: 999.999}}},
		{"bcd8", RecordSpec{Coding: DataBCD8, VIF: []byte{0x14}, Int: 56108},
			Record{Key: "volume", Quantity: "volume", Unit: "m³", Value: Value{Kind: KindNumber, Num: 561.08}}},
		{"bcd12", RecordSpec{Coding: DataBCD12, VIF: []byte{0x03}, Int: 123456789012},
			Record{Key: "energy", Quantity: "energy", Unit: "kWh", Value: Value{Kind: KindNumber, Num: 123456789.012}}},
		{"date G", RecordSpec{Coding: DataInt16, VIF: []byte{0x6C}, Int: DateG(day), Storage: 1},
			Record{Key: "date_s1", Quantity: "date", Value: TimeValue(KindDate, day), Storage: 1}},
		{"date time F", RecordSpec{Coding: DataInt32, VIF: []byte{0x6D}, Int: DateTimeF(day.Add(13*time.Hour + 37*time.Minute))},
			Record{Key: "date_time", Quantity: "date_time", Value: TimeValue(KindDateTime, day.Add(13*time.Hour+37*time.Minute))}},
		{"text", RecordSpec{Coding: DataVar, VIF: []byte{0xFD, 0x0C}, Text: "WFH21"},
			Record{Key: "model_version", Quantity: "model_version", Value: Value{Kind: KindText, Text: "WFH21"}}},
		{"binary", RecordSpec{Coding: DataVar, VIF: []byte{0xFD, 0x17}, Bytes: []byte{1, 2, 3}},
			Record{Key: "error_flags", Quantity: "error_flags", Value: BytesValue([]byte{1, 2, 3})}},
		{"binary 16", RecordSpec{Coding: DataVar, VIF: []byte{0xFD, 0x16}, Bytes: bytes.Repeat([]byte{0xAB}, 16)},
			Record{Key: "password", Quantity: "password", Value: BytesValue(bytes.Repeat([]byte{0xAB}, 16))}},
		{"lvar bcd negative", RecordSpec{Coding: DataVar, VIF: []byte{0x2B}, Int: -12345},
			Record{Key: "power", Quantity: "power", Unit: "W", Value: Value{Kind: KindNumber, Num: -12345}}},
		{"plain text vif", RecordSpec{Coding: DataInt16, VIF: []byte{0xFC, 0x03, 'H', 'R', '%', 0x74}, Int: 5410},
			Record{Key: "rh", Quantity: "rh", Unit: "%RH", Value: Value{Kind: KindNumber, Num: 54.1}}},
		{"forward L1 per hour", RecordSpec{Coding: DataInt32, VIF: []byte{0x96, 0xBB, 0xFC, 0x01}, Int: 5},
			Record{Key: "volume_forward_l1", Quantity: "volume", Unit: "m³", Value: Value{Kind: KindNumber, Num: 5}}},
		{"record error", RecordSpec{Coding: DataNone, VIF: []byte{0x86, 0x18}},
			Record{Key: "energy", Quantity: "energy", Unit: "kWh", Error: 0x18}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire, err := EncodeTelegram(3, testHeader, []RecordSpec{tt.spec}, false, nil)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			tg, err := ParseTelegram(wire)
			if err != nil {
				t.Fatalf("decode % X: %v", wire, err)
			}
			if len(tg.Records) != 1 {
				t.Fatalf("got %d records, want 1", len(tg.Records))
			}
			got, want := tg.Records[0], tt.want
			if got.Key != want.Key || got.Quantity != want.Quantity || got.Unit != want.Unit ||
				got.Function != want.Function || got.Storage != want.Storage || got.Tariff != want.Tariff ||
				got.Subunit != want.Subunit || got.Error != want.Error || got.Value != want.Value {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			if string(got.VIF) != string(tt.spec.VIF) {
				t.Errorf("VIF bytes: got % X, want % X", got.VIF, tt.spec.VIF)
			}
		})
	}
}

func TestTelegramRoundTrip(t *testing.T) {
	specs := []RecordSpec{
		{Coding: DataBCD8, VIF: []byte{0x78}, Int: 12345678},
		{Coding: DataInt32, VIF: []byte{0x06}, Int: 100},
		{Coding: DataInt32, VIF: []byte{0x06}, Int: 90, Storage: 1},
		{Coding: DataInt32, VIF: []byte{0x06}, Int: 80, Storage: 1},
	}
	for _, more := range []bool{false, true} {
		wire, err := EncodeTelegram(5, testHeader, specs, more, []byte{0xDE, 0xAD})
		if err != nil {
			t.Fatal(err)
		}
		tg, err := ParseTelegram(wire)
		if err != nil {
			t.Fatal(err)
		}
		h := tg.Header
		if h.ID != testHeader.ID || h.Manufacturer != "KAM" || h.Version != 8 || h.Medium != 4 ||
			h.AccessNumber != 7 || h.Status != StatusPowerLow || tg.A != 5 || tg.C != CRspUD {
			t.Errorf("header: got %+v", h)
		}
		var keys []string
		for _, r := range tg.Records {
			keys = append(keys, r.Key)
		}
		if got, want := keys, []string{"fabrication_number", "energy", "energy_s1", "energy_s1_2"}; !equalStrings(got, want) {
			t.Errorf("keys: got %q, want %q", got, want)
		}
		if tg.MoreRecordsFollow != more || !bytes.Equal(tg.ManufacturerData, []byte{0xDE, 0xAD}) {
			t.Errorf("got more=%v mfr=% X, want %v DE AD", tg.MoreRecordsFollow, tg.ManufacturerData, more)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEncodeRecordErrors(t *testing.T) {
	tests := []struct {
		name string
		spec RecordSpec
	}{
		{"no vif", RecordSpec{Coding: DataInt8}},
		{"int8 overflow", RecordSpec{Coding: DataInt8, VIF: []byte{0x13}, Int: 256}},
		{"bcd overflow", RecordSpec{Coding: DataBCD2, VIF: []byte{0x13}, Int: 100}},
		{"negative bcd overflow", RecordSpec{Coding: DataBCD2, VIF: []byte{0x13}, Int: -10}},
		{"storage too big", RecordSpec{Coding: DataInt8, VIF: []byte{0x13}, Storage: 1 << 42}},
		{"coding readout", RecordSpec{Coding: DataReadout, VIF: []byte{0x13}}},
		{"coding special", RecordSpec{Coding: DataSpecial, VIF: []byte{0x13}}},
		{"binary 17 bytes", RecordSpec{Coding: DataVar, VIF: []byte{0x13}, Bytes: make([]byte, 17)}},
		{"text too long", RecordSpec{Coding: DataVar, VIF: []byte{0x13}, Text: string(make([]byte, 192))}},
		{"function", RecordSpec{Coding: DataInt8, VIF: []byte{0x13}, Function: 4}},
	}
	for _, tt := range tests {
		if _, err := EncodeRecord(tt.spec); !errors.Is(err, ErrEncode) {
			t.Errorf("%s: got %v, want ErrEncode", tt.name, err)
		}
	}
}

// TestRecordLimits checks the DIFE and VIFE limits and hostile plain text.
func TestRecordLimits(t *testing.T) {
	tests := []struct {
		name    string
		records []byte
		want    error
		offset  int
	}{
		{"11 DIFEs", append([]byte{0x84}, append(bytes.Repeat([]byte{0x80}, 10), 0x00, 0x06, 1, 2, 3, 4)...), ErrTooManyDIFE, 19 + 11},
		{"11 VIFEs", append([]byte{0x04, 0x86}, append(bytes.Repeat([]byte{0xBB}, 10), 0x3B, 1, 2, 3, 4)...), ErrTooManyVIFE, 19 + 12},
		{"reserved special DIF", []byte{0x3F}, ErrRecord, 19},
		{"reserved LVAR", []byte{0x0D, 0x13, 0xFA}, ErrRecord, 21},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := encodeLongHeader(nil, Header{})
			wire, _ := Frame{Type: FrameLong, C: CRspUD, A: 1, CI: CIRespVarLong, Data: append(data, tt.records...)}.Encode()
			_, err := ParseTelegram(wire)
			var fe *FrameError
			if !errors.As(err, &fe) || !errors.Is(err, tt.want) || fe.Offset != tt.offset {
				t.Fatalf("got %v, want %v at byte %d", err, tt.want, tt.offset)
			}
		})
	}
}

func TestHostilePlainTextKey(t *testing.T) {
	text := "#/+ \x00\x1b[31m" // reversed on the wire
	vif := append([]byte{0x7C, byte(len(text))}, []byte(text)...)
	wire, err := EncodeTelegram(1, testHeader, []RecordSpec{{Coding: DataInt8, VIF: vif, Int: 1}, {Coding: DataInt8, VIF: []byte{0x7C, 0}, Int: 1}}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := ParseTelegram(wire)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"m13", "plain_text"} {
		if got := tg.Records[i].Key; got != want {
			t.Errorf("record %d: key %q, want %q", i, got, want)
		}
	}
	if got, want := tg.Records[0].Unit, "m13[ +/#"; got != want {
		t.Errorf("unit: got %q, want %q", got, want)
	}
}
