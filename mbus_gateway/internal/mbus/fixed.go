package mbus

import (
	"encoding/binary"
	"fmt"
)

// The fixed data structure (CI 0x73, mode 2: 0x77; EN 13757-3:2018,
// annex G): identification number (4 bytes BCD), access number, status,
// two medium/unit bytes and two 4-byte counters, 16 bytes in all.
const fixedLen = 16

// Status bits specific to the fixed data structure.
const (
	fixedStored = 0x40 // counters hold values stored at a fixed date
	fixedBinary = 0x80 // counters are binary, not BCD
)

// fixedUnit is the physical unit table of the fixed data structure (the
// low 6 bits of each medium/unit byte), mapped into the same Home
// Assistant units as the variable data structure.
var fixedUnit = buildFixedUnit()

// Codes with a special meaning in the fixed unit table.
const (
	fixedTime       = 0x00 // h,m,s
	fixedDate       = 0x01 // D,M,Y
	fixedHistoric   = 0x3E // counter 2: same unit as counter 1, historic value
	fixedNoUnitCode = 0x3F // dimensionless
)

func buildFixedUnit() [64]vifInfo {
	var t [64]vifInfo
	for i := range t {
		t[i] = vifInfo{quantity: "reserved"}
	}
	for n := range 9 {
		e := int8(n)
		t[0x02+n] = vifInfo{quantity: "energy", unit: "kWh", exp: e - 3}                  // 10^n Wh
		t[0x0B+n] = vifInfo{quantity: "energy", unit: "GJ", exp: e - 6}                   // 10^n kJ
		t[0x14+n] = vifInfo{quantity: "power", unit: "W", exp: e}                         // 10^n W
		t[0x1D+n] = vifInfo{quantity: "power", unit: "W", exp: e + 3, factor: 1.0 / 3600} // 10^n kJ/h
		t[0x26+n] = vifInfo{quantity: "volume", unit: "m³", exp: e - 6}                   // 10^n ml
		t[0x2F+n] = vifInfo{quantity: "volume_flow", unit: "m³/h", exp: e - 6}            // 10^n ml/h
	}
	t[fixedTime] = vifInfo{quantity: "time"}
	t[fixedDate] = vifInfo{quantity: "date"}
	t[0x38] = vifInfo{quantity: "temperature", unit: "°C", exp: -3}
	t[0x39] = vifInfo{quantity: "units_for_hca"}
	t[fixedNoUnitCode] = vifInfo{quantity: "dimensionless"}
	withHashes(t[:])
	return t
}

// decodeFixed decodes the fixed data structure into the header and two
// records. Counter 1 is storage 0 (or 1 when the status says the values
// are stored at a fixed date); a counter 2 with unit code 0x3E is the
// historic value of counter 1 (storage 1, same unit).
func decodeFixed(t *Telegram, data []byte, msbFirst bool, txt *telegramText) error {
	if len(data) < fixedLen {
		return frameErr(dataOff+len(data), fmt.Errorf("fixed data structure needs %d bytes, have %d: %w", fixedLen, len(data), ErrTruncated))
	}
	if len(data) > fixedLen {
		return frameErr(dataOff+fixedLen, fmt.Errorf("%d bytes after the fixed data structure: %w", len(data)-fixedLen, ErrRecord))
	}
	h := &t.Header
	copy(h.Address[:4], data[:4])
	h.AccessNumber = data[4]
	h.Status = data[5]
	h.Medium = Medium(data[6]>>6 | data[7]>>6<<2)
	h.Address[7] = byte(h.Medium)
	h.ID = txt.keep(h.Address.appendID(txt.buf()))

	storage := uint64(0)
	if h.Status&fixedStored != 0 {
		storage = 1
	}
	u1, u2 := data[6]&0x3F, data[7]&0x3F
	t.Records = make([]Record, 2)
	t.Records[0] = fixedRecord(fixedUnit[u1], storage, h.Status, data[8:12], data[6:7], msbFirst, txt)
	info2 := fixedUnit[u2]
	if u2 == fixedHistoric {
		info2, storage = fixedUnit[u1], 1
	}
	t.Records[1] = fixedRecord(info2, storage, h.Status, data[12:16], data[7:8], msbFirst, txt)
	txt.assignKeys(t.Records)
	return nil
}

func fixedRecord(info vifInfo, storage uint64, status byte, counter, unitByte []byte, msbFirst bool, txt *telegramText) Record {
	rec := Record{Storage: storage, Quantity: info.quantity, Unit: info.unit, VIF: HexString(unitByte)}
	c := counter
	if msbFirst {
		c = []byte{counter[3], counter[2], counter[1], counter[0]}
	}
	if status&fixedBinary != 0 {
		v := float64(binary.LittleEndian.Uint32(c))
		rec.Value = Value{Kind: KindNumber, Num: info.scaled(v)}
		return rec
	}
	n, ok := decodeBCD(c)
	switch {
	case !ok || info.quantity == "time" || info.quantity == "date":
		// Error digits, or a time/date whose BCD digits are read as printed.
		rec.Value = Value{Kind: KindText, Text: txt.keep(appendBCDText(txt.buf(), c))}
		rec.Unit = ""
	default:
		rec.Value = Value{Kind: KindNumber, Num: info.scaled(float64(n))}
	}
	return rec
}

// scaled turns a raw number into the unit of info.
func (info vifInfo) scaled(raw float64) float64 {
	x := scaleExp(raw, int(info.exp))
	if info.factor != 0 {
		x *= info.factor
	}
	return x
}
