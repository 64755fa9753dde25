package mbus

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Function is the function field of a DIF (EN 13757-3, table 5).
type Function uint8

// Function field values.
const (
	FuncInstantaneous Function = iota
	FuncMaximum
	FuncMinimum
	FuncValueDuringError
)

func (f Function) String() string {
	switch f {
	case FuncInstantaneous:
		return "instantaneous"
	case FuncMaximum:
		return "maximum"
	case FuncMinimum:
		return "minimum"
	case FuncValueDuringError:
		return "value_during_error"
	}
	return "function_" + strconv.Itoa(int(f))
}

// MarshalText makes Function a JSON string.
func (f Function) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// ValueKind tells how a Value holds the value.
type ValueKind uint8

// Value kinds.
const (
	KindNone     ValueKind = iota // no data (data field 0x0 or a filler)
	KindNumber                    // Num, already scaled into the record's unit
	KindText                      // Text (plain-text, ASCII or BCD with error digits)
	KindDate                      // Time(), date only (type G)
	KindDateTime                  // Time(), date and time (types F, I)
	KindTime                      // Time(), time of day only (type J)
	KindBytes                     // Bytes() (binary, manufacturer specific)
	KindProfile                   // Profile(): a series of values with their times
)

// Value is the decoded data field of a record.
//
// It is kept small because a telegram holds one per record and decoding
// is dominated by allocation: dates and times are stored in Num as Unix
// seconds, binary data in Text. Use Time and Bytes to read those, and
// TimeValue and BytesValue to make them.
type Value struct {
	Kind ValueKind
	// SummerTime is set for a date and time (type F) that the meter
	// marks as summer (daylight saving) time.
	SummerTime bool
	// Num is the number of KindNumber and, for KindDate, KindDateTime
	// and KindTime, the Unix seconds of the meter's local wall clock
	// read as UTC (a time of day lies on 0000-01-01).
	Num float64
	// Text is the text of KindText, the raw bytes of KindBytes and the
	// packed points of KindProfile (see ProfileValue).
	Text string
}

// ProfilePoint is one value of a compact profile (EN 13757-3:2018,
// annex F): the storage number it stands for, its time (when the
// telegram gives a base time and the profile a time spacing) and its
// value in the record's unit.
type ProfilePoint struct {
	Storage uint64
	// Time is the meter's local time as a UTC wall clock; zero when
	// unknown. DateOnly is set when the base time was a date (type G).
	Time     time.Time
	DateOnly bool
	// Value is valid unless Invalid is set (the meter marked the value
	// invalid, or it cannot be worked out without a base value).
	Value   float64
	Invalid bool
}

// packedPointLen is the size of one packed ProfilePoint: storage, Unix
// seconds and value bits (8 bytes each), then a flag byte.
const packedPointLen = 25

// Flags of a packed ProfilePoint.
const (
	pointHasTime = 1 << iota
	pointDateOnly
	pointInvalid
)

// ProfileValue returns a KindProfile Value holding points. They are
// packed into Text, which keeps every Value (and so every Record) small.
func ProfileValue(points []ProfilePoint) Value {
	b := make([]byte, 0, len(points)*packedPointLen)
	for _, p := range points {
		var flags byte
		var secs int64
		if !p.Time.IsZero() {
			flags, secs = pointHasTime, p.Time.Unix()
		}
		if p.DateOnly {
			flags |= pointDateOnly
		}
		if p.Invalid {
			flags |= pointInvalid
		}
		b = binary.LittleEndian.AppendUint64(b, p.Storage)
		b = binary.LittleEndian.AppendUint64(b, uint64(secs))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Value))
		b = append(b, flags)
	}
	return Value{Kind: KindProfile, Text: string(b)}
}

// Profile returns the points of a KindProfile value, nil for other kinds.
func (v Value) Profile() []ProfilePoint {
	if v.Kind != KindProfile {
		return nil
	}
	points := make([]ProfilePoint, len(v.Text)/packedPointLen)
	for i := range points {
		b := v.Text[i*packedPointLen : (i+1)*packedPointLen]
		flags := b[24]
		p := &points[i]
		p.Storage = binary.LittleEndian.Uint64([]byte(b[0:8]))
		if flags&pointHasTime != 0 {
			p.Time = time.Unix(int64(binary.LittleEndian.Uint64([]byte(b[8:16]))), 0).UTC()
		}
		p.Value = math.Float64frombits(binary.LittleEndian.Uint64([]byte(b[16:24])))
		p.DateOnly, p.Invalid = flags&pointDateOnly != 0, flags&pointInvalid != 0
	}
	return points
}

// profilePointJSON is the JSON form of a ProfilePoint.
type profilePointJSON struct {
	Storage uint64   `json:"storage"`
	Time    *string  `json:"time"`
	Value   *float64 `json:"value"`
}

// MarshalJSON writes {"storage": n, "time": "…" or null, "value": x or null}.
func (p ProfilePoint) MarshalJSON() ([]byte, error) {
	j := profilePointJSON{Storage: p.Storage}
	if !p.Time.IsZero() {
		s := p.Time.Format("2006-01-02T15:04:05")
		if p.DateOnly {
			s = p.Time.Format(time.DateOnly)
		}
		j.Time = &s
	}
	if !p.Invalid && !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
		j.Value = &p.Value
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *ProfilePoint) UnmarshalJSON(b []byte) error {
	var j profilePointJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("profile point: %w", err)
	}
	*p = ProfilePoint{Storage: j.Storage, Invalid: j.Value == nil}
	if j.Value != nil {
		p.Value = *j.Value
	}
	if j.Time != nil {
		t, err := time.Parse("2006-01-02T15:04:05", *j.Time)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, *j.Time); err != nil {
				return fmt.Errorf("profile point time %q: %w", *j.Time, err)
			}
			p.DateOnly = true
		}
		p.Time = t
	}
	return nil
}

// TimeValue returns a Value of kind KindDate, KindDateTime or KindTime
// that holds t to the second; t is the meter's local time as a UTC wall
// clock.
func TimeValue(kind ValueKind, t time.Time) Value {
	return Value{Kind: kind, Num: float64(t.Unix())}
}

// BytesValue returns a KindBytes Value holding a copy of b.
func BytesValue(b []byte) Value { return Value{Kind: KindBytes, Text: string(b)} }

// Time returns the time of a KindDate, KindDateTime or KindTime value in
// UTC, and the zero time for other kinds.
func (v Value) Time() time.Time {
	switch v.Kind {
	case KindDate, KindDateTime, KindTime:
		return time.Unix(int64(v.Num), 0).UTC()
	}
	return time.Time{}
}

// Bytes returns a copy of the data of a KindBytes value, nil for other
// kinds.
func (v Value) Bytes() []byte {
	if v.Kind != KindBytes {
		return nil
	}
	return []byte(v.Text)
}

// String formats v the way the JSON output does, without quotes.
func (v Value) String() string {
	switch v.Kind {
	case KindNumber:
		return strconv.FormatFloat(v.Num, 'f', -1, 64)
	case KindText:
		return v.Text
	case KindDate:
		return v.Time().Format(time.DateOnly)
	case KindDateTime:
		return v.Time().Format("2006-01-02T15:04:05")
	case KindTime:
		return v.Time().Format(time.TimeOnly)
	case KindBytes:
		return hex.EncodeToString([]byte(v.Text))
	case KindProfile:
		b, err := json.Marshal(v.Profile())
		if err != nil {
			return ""
		}
		return string(b)
	}
	return ""
}

// MarshalJSON writes numbers as JSON numbers, a profile as an array of
// points (see ProfilePoint.MarshalJSON), everything else as strings
// (dates in ISO 8601, binary as lower-case hex) and KindNone as null.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.Kind {
	case KindProfile:
		return json.Marshal(v.Profile())
	case KindNone:
		return []byte("null"), nil
	case KindNumber:
		if math.IsNaN(v.Num) || math.IsInf(v.Num, 0) {
			return []byte("null"), nil
		}
		return json.Marshal(v.Num)
	}
	return json.Marshal(v.String())
}

// Record is one data record of a variable data structure (EN 13757-3,
// clause 6.3): the data information block (DIF + DIFEs), the value
// information block (VIF + VIFEs) and the data, decoded and scaled.
//
// The fields are ordered to leave no padding (a decoded telegram is
// mostly its records); MarshalJSON writes them in the documented order.
type Record struct {
	// Key is stable for a meter model and unique within a telegram: the
	// quantity with suffixes for function, storage, tariff and subunit
	// where those are not the defaults.
	Key string `json:"key"`
	// Quantity is a snake_case name such as "energy", "volume",
	// "flow_temperature", "fabrication_number".
	Quantity string `json:"quantity"`
	// Unit uses Home Assistant spellings ("kWh", "m³", "°C"), empty if none.
	Unit  string `json:"unit"`
	Value Value  `json:"value"`
	// DIF and VIF are the raw DIF+DIFE and VIF+VIFE bytes (for a
	// plain-text VIF including its length byte and text). Being strings,
	// they and the byte values share one copy of the telegram's data
	// without anyone being able to change it.
	DIF HexString `json:"dif"`
	VIF HexString `json:"vif"`
	// Storage (up to 41 bits), Tariff (20 bits) and Subunit (10 bits)
	// come from the DIF and its DIFEs.
	Storage  uint64   `json:"storage"`
	Tariff   uint32   `json:"tariff"`
	Subunit  uint16   `json:"subunit"`
	Function Function `json:"function"`
	// Error is the record error a VIFE 0x01-0x1F reports (EN 13757-3:2018,
	// table 18), written as its name, e.g. "data_error"; 0 (left out of
	// JSON) when the record has none.
	Error RecordError `json:"error,omitempty"`
}

// recordJSON is the JSON form of a Record, in the order of DESIGN.md.
type recordJSON struct {
	Key      string      `json:"key"`
	Function Function    `json:"function"`
	Storage  uint64      `json:"storage"`
	Tariff   uint32      `json:"tariff"`
	Subunit  uint16      `json:"subunit"`
	Quantity string      `json:"quantity"`
	Unit     string      `json:"unit"`
	Value    Value       `json:"value"`
	DIF      HexString   `json:"dif"`
	VIF      HexString   `json:"vif"`
	Error    RecordError `json:"error,omitempty"`
	// SummerTime is Value.SummerTime.
	SummerTime bool `json:"summer_time,omitempty"`
}

// MarshalJSON writes the fields in their documented order.
func (r Record) MarshalJSON() ([]byte, error) {
	return json.Marshal(recordJSON{
		Key: r.Key, Function: r.Function, Storage: r.Storage, Tariff: r.Tariff, Subunit: r.Subunit,
		Quantity: r.Quantity, Unit: r.Unit, Value: r.Value, DIF: r.DIF, VIF: r.VIF, Error: r.Error,
		SummerTime: r.Value.SummerTime,
	})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Record{
		Key: j.Key, Function: j.Function, Storage: j.Storage, Tariff: j.Tariff, Subunit: j.Subunit,
		Quantity: j.Quantity, Unit: j.Unit, Value: j.Value, DIF: j.DIF, VIF: j.VIF, Error: j.Error,
	}
	r.Value.SummerTime = j.SummerTime
	return nil
}

// HexBytes is a byte slice that reads and writes as lower-case hex text.
type HexBytes []byte

// MarshalText writes lower-case hex.
func (h HexBytes) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(h)), nil
}

// UnmarshalText reads hex.
func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("hex bytes: %w", err)
	}
	*h = v
	return nil
}

// HexString holds raw bytes in a string and reads and writes them as
// lower-case hex text.
type HexString string

// MarshalText writes lower-case hex.
func (h HexString) MarshalText() ([]byte, error) {
	return hex.AppendEncode(nil, []byte(h)), nil
}

// UnmarshalText reads hex.
func (h *HexString) UnmarshalText(b []byte) error {
	v, err := hex.AppendDecode(nil, b)
	if err != nil {
		return fmt.Errorf("hex bytes: %w", err)
	}
	*h = HexString(v)
	return nil
}

// UnmarshalJSON reads what MarshalJSON wrote. Strings come back as
// KindText: the JSON form does not say whether a string was a date.
func (v *Value) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		var points []ProfilePoint
		if err := json.Unmarshal(t, &points); err != nil {
			return fmt.Errorf("record value: %w", err)
		}
		*v = ProfileValue(points)
		return nil
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return fmt.Errorf("record value: %w", err)
	}
	switch t := x.(type) {
	case nil:
		*v = Value{}
	case float64:
		*v = Value{Kind: KindNumber, Num: t}
	case string:
		*v = Value{Kind: KindText, Text: t}
	default:
		return fmt.Errorf("record value: want number, string, array or null, got %s", b)
	}
	return nil
}

// UnmarshalText reads the names String gives.
func (f *Function) UnmarshalText(b []byte) error {
	for c := FuncInstantaneous; c <= FuncValueDuringError; c++ {
		if c.String() == string(b) {
			*f = c
			return nil
		}
	}
	return fmt.Errorf("unknown record function %q", b)
}
