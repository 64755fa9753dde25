package mbus

import (
	"fmt"
	"math"
	"strconv"
)

// Limits of one data record (EN 13757-3:2018, clauses 6.3.2 and 6.4.2).
const (
	MaxDIFE = 10
	MaxVIFE = 10
)

// Special DIF values (EN 13757-3:2018, table 7).
const (
	difManufacturer = 0x0F // manufacturer specific data to the end
	difMoreFollow   = 0x1F // as 0x0F, and more records follow in the next telegram
	difFiller       = 0x2F // idle filler, skipped
	difExtBit       = 0x80
)

// recordReader walks the data records of one telegram.
type recordReader struct {
	b    []byte // the records (a private copy: records alias it)
	base int    // offset of b[0] from the start of the frame
	// msbFirst is set for mode 2 telegrams (CI 0x76): multi-byte data
	// fields are sent most significant byte first.
	msbFirst bool
}

// errAt wraps err with the frame offset of b[i].
func (r *recordReader) errAt(i int, err error) error { return frameErr(r.base+i, err) }

// decodeRecords appends every record to t and stops at the first record
// it cannot decode, returning a FrameError that says where.
func (r *recordReader) decodeRecords(t *Telegram) error {
	for i := 0; i < len(r.b); {
		switch r.b[i] {
		case difFiller:
			i++
			continue
		case difManufacturer, difMoreFollow:
			t.MoreRecordsFollow = r.b[i] == difMoreFollow
			if i+1 < len(r.b) {
				t.ManufacturerData = r.b[i+1:]
			}
			return nil
		}
		rec, next, err := r.decodeRecord(i)
		if err != nil {
			return err
		}
		t.Records = append(t.Records, rec)
		i = next
	}
	return nil
}

// vibState collects what the VIF and its VIFEs say about a record.
type vibState struct {
	info vifInfo
	// suffix holds what VIFEs add to the quantity (they change what the
	// value is: a date of, a duration of, a rate per), qual what they add
	// to the key only (the value is still the quantity: forward flow,
	// phase L1, future value, limit value).
	suffix  [4]string
	nsuffix int
	qual    [4]string
	nqual   int
	exp     int     // extra power of ten from correction VIFEs
	offset  float64 // additive correction in raw units
	errCode byte
	plain   string // plain-text unit, when the VIF is 0x7C/0xFC
}

func (v *vibState) addSuffix(s string) {
	if s != "" && v.nsuffix < len(v.suffix) {
		v.suffix[v.nsuffix] = s
		v.nsuffix++
	}
}

func (v *vibState) addQual(s string) {
	if s != "" && v.nqual < len(v.qual) {
		v.qual[v.nqual] = s
		v.nqual++
	}
}

// decodeRecord decodes the record at b[i] and returns it with the index
// of the next record.
func (r *recordReader) decodeRecord(i int) (Record, int, error) {
	b := r.b
	start := i
	dif := b[i]
	if dif&0x0F == DataSpecial {
		// 0x3F-0x6F are reserved, 0x7F is the master's global readout request.
		return Record{}, 0, r.errAt(i, fmt.Errorf("DIF 0x%02X is a reserved special function: %w", dif, ErrRecord))
	}
	rec := Record{
		Function: Function(dif >> 4 & 0x03),
		Storage:  uint64(dif >> 6 & 0x01),
	}
	i++
	for n := 0; b[i-1]&difExtBit != 0; n++ {
		if i >= len(b) {
			return Record{}, 0, r.errAt(i, fmt.Errorf("DIFE expected after 0x%02X: %w", b[i-1], ErrTruncated))
		}
		if n == MaxDIFE {
			return Record{}, 0, r.errAt(i, ErrTooManyDIFE)
		}
		e := b[i]
		rec.Storage |= uint64(e&0x0F) << (1 + 4*n)
		rec.Tariff |= uint32(e>>4&0x03) << (2 * n)
		rec.Subunit |= uint32(e>>6&0x01) << n
		i++
	}
	rec.DIF = b[start:i:i]

	vibStart := i
	var v vibState
	i, err := r.decodeVIB(i, &v)
	if err != nil {
		return Record{}, 0, err
	}
	rec.VIF = b[vibStart:i:i]

	coding := dif & 0x0F
	n := int(dataLen[coding])
	dataStart := i
	if coding == DataVar {
		if i >= len(b) {
			return Record{}, 0, r.errAt(i, fmt.Errorf("LVAR byte expected: %w", ErrTruncated))
		}
		lvar := b[i]
		n, err = lvarLen(lvar)
		if err != nil {
			return Record{}, 0, r.errAt(i, err)
		}
		i++
	}
	if n > len(b)-i {
		return Record{}, 0, r.errAt(dataStart, fmt.Errorf("DIF 0x%02X needs %d data bytes, %d left: %w", dif, n, len(b)-i, ErrTruncated))
	}
	data := b[i : i+n : i+n]
	i += n

	r.fillRecord(&rec, &v, coding, data, b, dataStart)
	return rec, i, nil
}

// decodeVIB reads the VIF, a plain-text unit and the VIFE chain from b[i].
func (r *recordReader) decodeVIB(i int, v *vibState) (int, error) {
	b := r.b
	if i >= len(b) {
		return 0, r.errAt(i, fmt.Errorf("VIF expected: %w", ErrTruncated))
	}
	vif := b[i]
	i++
	more := vif&vifExtBit != 0
	nvife := 0
	mfr := false
	switch vif & 0x7F {
	case vifExtFB, vifExtFD:
		if !more {
			// 0x7B and 0x7D without the extension bit are reserved codes;
			// the DIF still gives the data size, so keep the raw value.
			v.info = vifInfo{quantity: "reserved", raw: true}
			break
		}
		if i >= len(b) {
			return 0, r.errAt(i, fmt.Errorf("VIFE expected after 0x%02X: %w", vif, ErrTruncated))
		}
		e := b[i]
		if vif&0x7F == vifExtFB {
			v.info = extFBVIF[e&0x7F]
		} else {
			v.info = extFDVIF[e&0x7F]
		}
		i++
		nvife++
		more = e&vifExtBit != 0
	case vifPlainText:
		// The unit text follows the VIF as LVAR + ASCII, last character
		// first; VIFEs (if the extension bit is set) follow the text.
		if i >= len(b) {
			return 0, r.errAt(i, fmt.Errorf("plain-text VIF length expected: %w", ErrTruncated))
		}
		l := int(b[i])
		if l > len(b)-i-1 {
			return 0, r.errAt(i, fmt.Errorf("plain-text VIF of %d characters, %d bytes left: %w", l, len(b)-i-1, ErrTruncated))
		}
		v.plain = printableText(b[i+1:i+1+l], true)
		v.info = vifInfo{quantity: plainQuantity(v.plain), unit: v.plain}
		i += 1 + l
	default:
		v.info = primaryVIF[vif&0x7F]
		mfr = vif&0x7F == vifManufacturer
	}
	extNext := false
	for more {
		if i >= len(b) {
			return 0, r.errAt(i, fmt.Errorf("VIFE expected after 0x%02X: %w", b[i-1], ErrTruncated))
		}
		if nvife == MaxVIFE {
			return 0, r.errAt(i, ErrTooManyVIFE)
		}
		e := b[i]
		i++
		nvife++
		more = e&vifExtBit != 0
		switch {
		case mfr:
			// Manufacturer specific VIFEs: kept raw in Record.VIF.
		case extNext:
			v.addQual(combinableExtSuffix[e&0x7F])
			extNext = false
		default:
			mfr, extNext = v.combine(e & 0x7F)
		}
	}
	// A VIF 0x7F/0xFF is manufacturer specific as a whole. A VIFE 0x7F
	// after a standard VIF is not: meters in the field (EMU, Finder, NZR)
	// use it to tag phases or registers while the data stays as the VIF
	// says, so the value keeps the VIF's meaning and scaling.
	if vif&0x7F == vifManufacturer {
		v.info.raw = true
	}
	return i, nil
}

// combine applies one combinable VIFE (EN 13757-3:2018, table 15). It
// reports whether the rest is manufacturer specific and whether the next
// VIFE comes from the extension table (table 16).
func (v *vibState) combine(e byte) (mfr, ext bool) {
	switch {
	case e < 0x20:
		v.errCode = e
	case e <= 0x26:
		v.addSuffix(perTimeSuffix[e-0x20])
		if v.info.unit != "" {
			v.info.unit += perTimeUnit[e-0x20]
		}
	case isDateVIFE(e):
		v.addSuffix(combinableSuffix[e])
		v.info.date, v.info.unit, v.info.exp, v.info.factor = true, "", 0, 0
	case isCountVIFE(e):
		v.addSuffix(combinableSuffix[e])
		v.info.unit, v.info.exp, v.info.factor = "", 0, 0
	case e >= 0x50 && e <= 0x67:
		s, unit := durationVIFE(e)
		v.addSuffix(s)
		v.info.unit, v.info.exp, v.info.factor = unit, 0, 0
	case e >= 0x70 && e <= 0x77:
		v.exp += int(e&0x07) - 6
	case e >= 0x78 && e <= 0x7B:
		v.offset += scaleExp(1, int(e&0x03)-3)
	case e == 0x7C:
		return false, true
	case e == 0x7D:
		v.exp += 3
	case e == 0x7F:
		return true, false
	case e <= 0x38:
		v.addSuffix(combinableSuffix[e]) // per unit, times unit: another quantity
	default:
		v.addQual(combinableSuffix[e])
	}
	return false, false
}

var perTimeSuffix = [7]string{"_per_second", "_per_minute", "_per_hour", "_per_day", "_per_week", "_per_month", "_per_year"}

// lvarLen gives the number of data bytes an LVAR announces (EN
// 13757-3:2018, table 5).
func lvarLen(l byte) (int, error) {
	switch {
	case l <= 0xBF: // text
		return int(l), nil
	case l <= 0xC9: // positive BCD
		return int(l - 0xC0), nil
	case l >= 0xD0 && l <= 0xD9: // negative BCD
		return int(l - 0xD0), nil
	case l >= 0xE0 && l <= 0xEF: // binary
		return int(l - 0xE0), nil
	case l >= 0xF0 && l <= 0xF4: // binary, 16 to 32 bytes
		return 4 * int(l-0xEC), nil
	case l == 0xF5:
		return 48, nil
	case l == 0xF6:
		return 64, nil
	}
	return 0, fmt.Errorf("LVAR 0x%02X is reserved: %w", l, ErrRecord)
}

// fillRecord turns the VIB state and the data into quantity, unit and value.
func (r *recordReader) fillRecord(rec *Record, v *vibState, coding byte, data, b []byte, dataStart int) {
	rec.Quantity = v.info.quantity
	if v.nsuffix > 0 {
		q := make([]byte, 0, 48)
		q = append(q, v.info.quantity...)
		for _, s := range v.suffix[:v.nsuffix] {
			q = append(q, s...)
		}
		rec.Quantity = string(q)
	}
	if v.nqual > 0 {
		q := make([]byte, 0, 32)
		for _, s := range v.qual[:v.nqual] {
			q = append(q, s...)
		}
		rec.keyQual = string(q)
	}
	if v.errCode != 0 {
		rec.Error = recordErrorName(v.errCode)
	}
	rec.Unit = v.info.unit

	if coding == DataVar {
		rec.Value = r.varValue(b[dataStart], data)
		if rec.Value.Kind != KindNumber {
			rec.Unit = unitForNonNumber(rec)
		} else if !v.info.raw {
			rec.Value.Num = v.scale(rec.Value.Num)
		}
		return
	}
	if r.msbFirst && len(data) > 1 {
		// Mode 2 (rare): a reversed copy, so that the common path stays
		// free of allocations.
		rev := make([]byte, len(data))
		for k := range data {
			rev[len(data)-1-k] = data[k]
		}
		data = rev
	}
	switch coding {
	case DataNone, DataReadout:
		rec.Value = Value{}
	case DataReal32:
		// NaN and infinities mean "no value" (and JSON has no form for them).
		if x := decodeReal(data); !math.IsNaN(x) && !math.IsInf(x, 0) {
			rec.Value = Value{Kind: KindNumber, Num: x}
		}
	case DataBCD2, DataBCD4, DataBCD6, DataBCD8, DataBCD12:
		n, text, ok := decodeBCD(data)
		if !ok {
			rec.Value = Value{Kind: KindText, Text: text}
		} else {
			rec.Value = Value{Kind: KindNumber, Num: float64(n)}
		}
	default: // integers, or dates where the VIB says so
		if v.info.date && !v.info.raw && (len(data) == 2 || len(data) == 3 || len(data) == 4 || len(data) == 6) {
			rec.Value = decodeDate(data)
		} else {
			rec.Value = Value{Kind: KindNumber, Num: float64(decodeInt(data))}
		}
	}
	if rec.Value.Kind == KindNumber && !v.info.raw {
		rec.Value.Num = v.scale(rec.Value.Num)
	}
	if rec.Value.Kind != KindNumber {
		rec.Unit = unitForNonNumber(rec)
	}
}

// unitForNonNumber keeps the unit only where it still describes the
// record: with no value (the register exists, its unit too) and for text
// (BCD error digits, plain text); dates and bytes have none.
func unitForNonNumber(rec *Record) string {
	if rec.Value.Kind == KindNone || rec.Value.Kind == KindText {
		return rec.Unit
	}
	return ""
}

// scale turns a raw number into the record's unit.
func (v *vibState) scale(raw float64) float64 {
	info := v.info
	info.exp += int8(v.exp)
	return info.scaled(raw + v.offset)
}

// varValue decodes a variable length data field by its LVAR byte.
func (r *recordReader) varValue(lvar byte, data []byte) Value {
	switch {
	case lvar <= 0xBF:
		return Value{Kind: KindText, Text: printableText(data, true)}
	case lvar <= 0xC9 || lvar >= 0xD0 && lvar <= 0xD9:
		if len(data) == 0 {
			return Value{}
		}
		if len(data) > 9 {
			// More digits than an int64 holds: keep them as text.
			return Value{Kind: KindText, Text: bcdText(data)}
		}
		n, text, ok := decodeBCD(data)
		if !ok {
			return Value{Kind: KindText, Text: text}
		}
		if lvar >= 0xD0 {
			n = -n
		}
		return Value{Kind: KindNumber, Num: float64(n)}
	}
	if len(data) == 0 {
		return Value{}
	}
	return Value{Kind: KindBytes, Bytes: data}
}

// plainQuantity makes a quantity name from a plain-text unit: lower-case
// letters and digits, other runs folded into one '_', at most 32
// characters; "plain_text" when nothing usable is left. The result is
// a safe MQTT topic level and Home Assistant object id.
func plainQuantity(unit string) string {
	var q [32]byte
	n := 0
	sep := false
	for i := 0; i < len(unit) && n < len(q); i++ {
		c := unit[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		default:
			sep = n > 0
			continue
		}
		if sep && n < len(q)-1 {
			q[n] = '_'
			n++
		}
		sep = false
		q[n] = c
		n++
	}
	if n == 0 {
		return "plain_text"
	}
	return string(q[:n])
}

// assignKeys gives every record its key. The rule, stable for a meter
// model because it depends only on the record layout:
//
//	key = quantity
//	    + VIFE qualifiers            e.g. "_forward", "_l1", "_future"
//	    + "_max" | "_min" | "_err"   for maximum, minimum, value during error
//	    + "_s<n>"                    for storage number n > 0
//	    + "_t<n>"                    for tariff n > 0
//	    + "_u<n>"                    for subunit n > 0
//	    + "_2", "_3", …              when an earlier record has the same key
//
// Quantities contain only [a-z0-9_], so keys do too.
func assignKeys(recs []Record) {
	// All keys are built in one buffer and become substrings of one
	// string: one allocation per telegram instead of one per key.
	all := make([]byte, 0, 24*len(recs))
	spans := make([][2]int, len(recs))
	// Telegrams on the wire hold at most ~120 records, where a linear
	// search is fastest; longer inputs (fuzzing, bad data) get a set and
	// a counter per clashing key so that assignment stays near O(n).
	var taken map[string]bool
	var next map[string]uint64
	if len(recs) > 64 {
		taken = make(map[string]bool, len(recs))
		next = make(map[string]uint64)
	}
	used := func(i int, k []byte) bool {
		if taken != nil {
			return taken[string(k)]
		}
		for _, sp := range spans[:i] {
			if string(all[sp[0]:sp[1]]) == string(k) {
				return true
			}
		}
		return false
	}
	for i := range recs {
		r := &recs[i]
		start := len(all)
		all = append(all, r.Quantity...)
		all = append(all, r.keyQual...)
		switch r.Function {
		case FuncMaximum:
			all = append(all, "_max"...)
		case FuncMinimum:
			all = append(all, "_min"...)
		case FuncValueDuringError:
			all = append(all, "_err"...)
		}
		if r.Storage > 0 {
			all = strconv.AppendUint(append(all, "_s"...), r.Storage, 10)
		}
		if r.Tariff > 0 {
			all = strconv.AppendUint(append(all, "_t"...), uint64(r.Tariff), 10)
		}
		if r.Subunit > 0 {
			all = strconv.AppendUint(append(all, "_u"...), uint64(r.Subunit), 10)
		}
		if used(i, all[start:]) {
			baseEnd := len(all)
			n := max(2, next[string(all[start:baseEnd])]) // resume after the last clash of this key
			for ; ; n++ {
				all = strconv.AppendUint(append(all[:baseEnd], '_'), n, 10)
				if !used(i, all[start:]) {
					break
				}
			}
			if next != nil {
				next[string(all[start:baseEnd])] = n + 1
			}
		}
		spans[i] = [2]int{start, len(all)}
		if taken != nil {
			taken[string(all[start:])] = true
		}
	}
	keys := string(all)
	for i := range recs {
		recs[i].Key = keys[spans[i][0]:spans[i][1]]
	}
}
