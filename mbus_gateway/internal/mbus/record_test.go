package mbus

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValueAccessors(t *testing.T) {
	day := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		v         Value
		wantTime  time.Time
		wantBytes []byte
		wantText  string
	}{
		{"date", TimeValue(KindDate, day), day, nil, "2026-01-02"},
		{"date and time", TimeValue(KindDateTime, day.Add(13*time.Hour+37*time.Minute+5*time.Second)),
			day.Add(13*time.Hour + 37*time.Minute + 5*time.Second), nil, "2026-01-02T13:37:05"},
		{"time of day", TimeValue(KindTime, time.Date(0, 1, 1, 23, 59, 58, 0, time.UTC)),
			time.Date(0, 1, 1, 23, 59, 58, 0, time.UTC), nil, "23:59:58"},
		{"bytes", BytesValue([]byte{0x01, 0xAB, 0x00}), time.Time{}, []byte{0x01, 0xAB, 0x00}, "01ab00"},
		{"number", Value{Kind: KindNumber, Num: 1.5}, time.Time{}, nil, "1.5"},
		{"text", Value{Kind: KindText, Text: "abc"}, time.Time{}, nil, "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.Time(); !got.Equal(tt.wantTime) {
				t.Errorf("Time: got %v, want %v", got, tt.wantTime)
			}
			if got := tt.v.Bytes(); !slices.Equal(got, tt.wantBytes) {
				t.Errorf("Bytes: got % X, want % X", got, tt.wantBytes)
			}
			if got := tt.v.String(); got != tt.wantText {
				t.Errorf("String: got %q, want %q", got, tt.wantText)
			}
		})
	}
}

// Bytes hands out a copy: changing it leaves the value alone.
func TestValueBytesIsCopy(t *testing.T) {
	v := BytesValue([]byte{1, 2})
	v.Bytes()[0] = 9
	if got := v.String(); got != "0102" {
		t.Errorf("after changing Bytes: got %s, want 0102", got)
	}
}

// A record read back from its JSON keeps raw bytes and record error.
func TestRecordJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		rec      Record
		wantJSON string // a part of the JSON
	}{
		{"data error", Record{Key: "energy", Quantity: "energy", Unit: "kWh", DIF: "\x84\x10", VIF: "\x86\x18", Error: 0x18},
			`"dif":"8410","vif":"8618","error":"data_error"`},
		{"no error", Record{Key: "volume", Quantity: "volume", Value: Value{Kind: KindNumber, Num: 2}, DIF: "\x04", VIF: "\x13"},
			`"value":2,"dif":"04","vif":"13"}`},
		{"reserved error", Record{Key: "power", Quantity: "power", DIF: "\x02", VIF: "\xAB\x08", Error: 0x08},
			`"error":"reserved_error"`},
		{"no raw bytes", Record{Key: "x", Quantity: "x"}, `"dif":"","vif":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tt.wantJSON) {
				t.Errorf("JSON: got %s, want it to contain %s", b, tt.wantJSON)
			}
			var got Record
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("read back %s: %v", b, err)
			}
			if got != tt.rec {
				t.Errorf("read back: got %+v, want %+v", got, tt.rec)
			}
		})
	}
}

func TestRecordJSONErrors(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"unknown record error", `{"error":"sad"}`, `unknown record error "sad"`},
		{"odd hex", `{"dif":"041"}`, "hex bytes"},
		{"not hex", `{"vif":"zz"}`, "hex bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Record
			err := json.Unmarshal([]byte(tt.json), &r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// recordJSON mirrors Record field for field (in another order), plus
// the fields it draws from Value: a field added to Record but not to
// recordJSON would silently vanish from the JSON.
func TestRecordJSONMirrorsRecord(t *testing.T) {
	rec, mirror := reflect.TypeFor[Record](), reflect.TypeFor[recordJSON]()
	const fromValue = 1 // SummerTime
	if rec.NumField()+fromValue != mirror.NumField() {
		t.Fatalf("Record has %d fields, recordJSON %d", rec.NumField(), mirror.NumField())
	}
	for f := range rec.Fields() {
		m, ok := mirror.FieldByName(f.Name)
		switch {
		case !ok:
			t.Errorf("recordJSON has no field %s", f.Name)
		case m.Type != f.Type || m.Tag != f.Tag:
			t.Errorf("field %s: recordJSON has %v `%s`, Record %v `%s`", f.Name, m.Type, m.Tag, f.Type, f.Tag)
		}
	}
}
