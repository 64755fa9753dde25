package mbus

import (
	"fmt"
	"math"
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
	// txt is held by value: a pointer here would make the compiler move
	// every telegramText to the heap.
	txt telegramText
	// layouts keeps what scan found for the first records, so that
	// decodeRecords does not walk their structure again.
	layouts [64]recordLayout
}

// errAt wraps err with the frame offset of b[i].
func (r *recordReader) errAt(i int, err error) error { return frameErr(r.base+i, err) }

// recordLayout tells where the parts of one data record lie in
// recordReader.b: DIF and DIFEs from dif, VIF and VIFEs (with the text of
// a plain-text VIF) from vib, the data (after the LVAR byte of variable
// length data) from data up to end.
type recordLayout struct {
	dif, vib, data, end int
}

// scan checks the structure of every record before any is decoded, so
// that the records can be stored in a slice of the right size. It
// returns the number of records, the index where they end (the end of b
// or a DIF 0x0F/0x1F that starts manufacturer data) and, when a record
// cannot be decoded, a FrameError that says where.
func (r *recordReader) scan() (n, end int, err error) {
	i := r.skipFillers(0)
	for i < len(r.b) && r.b[i] != difManufacturer && r.b[i] != difMoreFollow {
		l, err := r.layout(i)
		if err != nil {
			return n, i, err
		}
		if n < len(r.layouts) {
			r.layouts[n] = l
		}
		n++
		i = r.skipFillers(l.end)
	}
	return n, i, nil
}

// skipFillers returns the index of the first byte at or after b[i] that
// is not an idle filler DIF.
func (r *recordReader) skipFillers(i int) int {
	for i < len(r.b) && r.b[i] == difFiller {
		i++
	}
	return i
}

// decodeRecords decodes the n records scan found into t.Records and
// reads the manufacturer data that starts at b[end], if any.
func (r *recordReader) decodeRecords(t *Telegram, n, end int) {
	t.Records = make([]Record, n)
	i := r.skipFillers(0)
	for k := range t.Records {
		var l recordLayout
		if k < len(r.layouts) {
			l = r.layouts[k]
		} else {
			l, _ = r.layout(i) // scan has checked it
		}
		var v vibState
		r.decodeRecord(&t.Records[k], &v, l)
		r.txt.setKey(t.Records, k, v.qual[:v.nqual])
		i = r.skipFillers(l.end)
	}
	if end < len(r.b) && (r.b[end] == difManufacturer || r.b[end] == difMoreFollow) {
		t.MoreRecordsFollow = r.b[end] == difMoreFollow
		if end+1 < len(r.b) {
			t.ManufacturerData = r.b[end+1:]
		}
	}
}

// layout finds the parts of the record at b[i] (EN 13757-3:2018, clause
// 6.3) and checks that they fit.
func (r *recordReader) layout(i int) (recordLayout, error) {
	b := r.b
	l := recordLayout{dif: i}
	dif := b[i]
	if dif&0x0F == DataSpecial {
		// 0x3F-0x6F are reserved, 0x7F is the master's global readout request.
		return l, r.errAt(i, fmt.Errorf("DIF 0x%02X is a reserved special function: %w", dif, ErrRecord))
	}
	i++
	for n := 0; b[i-1]&difExtBit != 0; n++ {
		if i >= len(b) {
			return l, r.errAt(i, fmt.Errorf("DIFE expected after 0x%02X: %w", b[i-1], ErrTruncated))
		}
		if n == MaxDIFE {
			return l, r.errAt(i, ErrTooManyDIFE)
		}
		i++
	}

	l.vib = i
	if i >= len(b) {
		return l, r.errAt(i, fmt.Errorf("VIF expected: %w", ErrTruncated))
	}
	vif := b[i]
	i++
	if vif&0x7F == vifPlainText {
		// The unit text follows the VIF as LVAR + ASCII, last character
		// first; VIFEs (if the extension bit is set) follow the text.
		if i >= len(b) {
			return l, r.errAt(i, fmt.Errorf("plain-text VIF length expected: %w", ErrTruncated))
		}
		n := int(b[i])
		if n > len(b)-i-1 {
			return l, r.errAt(i, fmt.Errorf("plain-text VIF of %d characters, %d bytes left: %w", n, len(b)-i-1, ErrTruncated))
		}
		i += 1 + n
	}
	// The VIFEs follow while the extension bit is set, also the one that
	// selects table 13 or 14 after VIF 0xFB/0xFD.
	for n, more := 0, vif&vifExtBit != 0; more; n++ {
		if i >= len(b) {
			return l, r.errAt(i, fmt.Errorf("VIFE expected after 0x%02X: %w", b[i-1], ErrTruncated))
		}
		if n == MaxVIFE {
			return l, r.errAt(i, ErrTooManyVIFE)
		}
		more = b[i]&vifExtBit != 0
		i++
	}

	l.data = i
	coding := dif & 0x0F
	size := int(dataLen[coding])
	if coding == DataVar {
		if i >= len(b) {
			return l, r.errAt(i, fmt.Errorf("LVAR byte expected: %w", ErrTruncated))
		}
		var err error
		if size, err = lvarLen(b[i]); err != nil {
			return l, r.errAt(i, err)
		}
		i++
	}
	if size > len(b)-i {
		return l, r.errAt(l.data, fmt.Errorf("DIF 0x%02X needs %d data bytes, %d left: %w", dif, size, len(b)-i, ErrTruncated))
	}
	l.data = i
	l.end = i + size
	return l, nil
}

// vibState collects what the VIF and its VIFEs say about a record.
type vibState struct {
	info vifInfo
	// suffix holds what VIFEs add to the quantity (they change what the
	// value is: a date of, a duration of, a rate per), qual what they add
	// to the key only (the value is still the quantity: forward flow,
	// phase L1, future value, limit value), per the "/h" a rate adds to
	// the unit.
	suffix  [4]string
	nsuffix int
	qual    [4]string
	nqual   int
	per     [4]string
	nper    int
	exp     int     // extra power of ten from correction VIFEs
	offset  float64 // additive correction in raw units
	errCode byte
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

// setUnit replaces the unit, and with it any rate added to it.
func (v *vibState) setUnit(unit string) {
	v.info.unit = unit
	v.nper = 0
}

// decodeRecord decodes the record laid out at l into rec and v.
func (r *recordReader) decodeRecord(rec *Record, v *vibState, l recordLayout) {
	b := r.b
	dif := b[l.dif]
	rec.Function = Function(dif >> 4 & 0x03)
	rec.Storage = uint64(dif >> 6 & 0x01)
	for n, e := range b[l.dif+1 : l.vib] {
		rec.Storage |= uint64(e&0x0F) << (1 + 4*n)
		rec.Tariff |= uint32(e>>4&0x03) << (2 * n)
		rec.Subunit |= uint32(e>>6&0x01) << n
	}
	rec.DIF = b[l.dif:l.vib:l.vib]

	coding := dif & 0x0F
	vibEnd, lvar := l.data, byte(0)
	if coding == DataVar {
		vibEnd-- // the LVAR byte
		lvar = b[vibEnd]
	}
	r.decodeVIB(b[l.vib:vibEnd], v)
	rec.VIF = b[l.vib:vibEnd:vibEnd]
	r.fillRecord(rec, v, coding, lvar, b[l.data:l.end:l.end])
}

// decodeVIB reads the VIF, a plain-text unit and the VIFE chain; layout
// has checked that they are complete.
func (r *recordReader) decodeVIB(vib []byte, v *vibState) {
	vif := vib[0]
	k := 1
	mfr := false
	switch vif & 0x7F {
	case vifExtFB, vifExtFD:
		if vif&vifExtBit == 0 {
			// 0x7B and 0x7D without the extension bit are reserved codes;
			// the DIF still gives the data size, so keep the raw value.
			v.info = vifInfo{quantity: "reserved", raw: true}
			break
		}
		if vif&0x7F == vifExtFB {
			v.info = extFBVIF[vib[1]&0x7F]
		} else {
			v.info = extFDVIF[vib[1]&0x7F]
		}
		k = 2
	case vifPlainText:
		n := int(vib[1])
		unit := r.txt.keep(appendPrintable(r.txt.buf(), vib[2:2+n], true))
		v.info = vifInfo{quantity: "plain_text", unit: unit}
		if q := appendPlainQuantity(r.txt.buf(), unit); len(q) > 0 {
			v.info.quantity = r.txt.keep(q)
		}
		k = 2 + n
	default:
		v.info = primaryVIF[vif&0x7F]
		mfr = vif&0x7F == vifManufacturer
	}
	extNext := false
	for _, e := range vib[k:] {
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
		if v.info.unit != "" && v.nper < len(v.per) {
			v.per[v.nper] = perTimeUnit[e-0x20]
			v.nper++
		}
	case isDateVIFE(e):
		v.addSuffix(combinableSuffix[e])
		v.setUnit("")
		v.info.date, v.info.exp, v.info.factor = true, 0, 0
	case isCountVIFE(e):
		v.addSuffix(combinableSuffix[e])
		v.setUnit("")
		v.info.exp, v.info.factor = 0, 0
	case e >= 0x50 && e <= 0x67:
		v.addSuffix(durationSuffix[e-0x50])
		v.setUnit(durationUnits[e&3])
		v.info.exp, v.info.factor = 0, 0
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
func (r *recordReader) fillRecord(rec *Record, v *vibState, coding, lvar byte, data []byte) {
	txt := &r.txt
	rec.Quantity = v.info.quantity
	if v.nsuffix > 0 {
		q := append(txt.buf(), v.info.quantity...)
		for _, s := range v.suffix[:v.nsuffix] {
			q = append(q, s...)
		}
		rec.Quantity = txt.keep(q)
	}
	if v.errCode != 0 {
		rec.Error = recordErrorName(v.errCode)
	}
	rec.Unit = v.info.unit
	if v.nper > 0 {
		u := append(txt.buf(), v.info.unit...)
		for _, s := range v.per[:v.nper] {
			u = append(u, s...)
		}
		rec.Unit = txt.keep(u)
	}

	if coding == DataVar {
		rec.Value = r.varValue(lvar, data)
	} else {
		rec.Value = r.fixedValue(v, coding, data)
	}
	switch rec.Value.Kind {
	case KindNumber:
		if !v.info.raw {
			rec.Value.Num = v.scale(rec.Value.Num)
		}
	case KindNone, KindText:
		// The unit still describes the record: the register exists with
		// no value, or the text is error digits or plain text.
	default:
		rec.Unit = "" // dates and bytes have no unit
	}
}

// fixedValue decodes a data field of fixed length.
func (r *recordReader) fixedValue(v *vibState, coding byte, data []byte) Value {
	var rev [8]byte
	if r.msbFirst && len(data) > 1 {
		// Mode 2 (rare): a reversed copy on the stack.
		for k := range data {
			rev[len(data)-1-k] = data[k]
		}
		data = rev[:len(data)]
	}
	switch coding {
	case DataNone, DataReadout:
		return Value{}
	case DataReal32:
		// NaN and infinities mean "no value" (and JSON has no form for them).
		if x := decodeReal(data); !math.IsNaN(x) && !math.IsInf(x, 0) {
			return Value{Kind: KindNumber, Num: x}
		}
		return Value{}
	case DataBCD2, DataBCD4, DataBCD6, DataBCD8, DataBCD12:
		return r.bcdValue(data)
	}
	// Integers, or dates where the VIB says so.
	if v.info.date && !v.info.raw && (len(data) == 2 || len(data) == 3 || len(data) == 4 || len(data) == 6) {
		return decodeDate(data)
	}
	return Value{Kind: KindNumber, Num: float64(decodeInt(data))}
}

// bcdValue is a BCD number, or its digits as text when some are error
// digits (see decodeBCD).
func (r *recordReader) bcdValue(data []byte) Value {
	n, ok := decodeBCD(data)
	if !ok {
		return Value{Kind: KindText, Text: r.txt.keep(appendBCDText(r.txt.buf(), data))}
	}
	return Value{Kind: KindNumber, Num: float64(n)}
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
		return Value{Kind: KindText, Text: r.txt.keep(appendPrintable(r.txt.buf(), data, true))}
	case lvar <= 0xC9 || lvar >= 0xD0 && lvar <= 0xD9:
		if len(data) == 0 {
			return Value{}
		}
		if len(data) > 9 {
			// More digits than an int64 holds: keep them as text.
			return Value{Kind: KindText, Text: r.txt.keep(appendBCDText(r.txt.buf(), data))}
		}
		v := r.bcdValue(data)
		if v.Kind == KindNumber && lvar >= 0xD0 {
			v.Num = -v.Num
		}
		return v
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
	if b := appendPlainQuantity(q[:0], unit); len(b) > 0 {
		return string(b)
	}
	return "plain_text"
}

// appendPlainQuantity appends plainQuantity(unit), or nothing where
// that is "plain_text".
func appendPlainQuantity(dst []byte, unit string) []byte {
	const maxLen = 32
	start := len(dst)
	sep := false
	for i := 0; i < len(unit) && len(dst)-start < maxLen; i++ {
		c := unit[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		default:
			sep = len(dst) > start
			continue
		}
		if sep && len(dst)-start < maxLen-1 {
			dst = append(dst, '_')
		}
		sep = false
		dst = append(dst, c)
	}
	return dst
}
