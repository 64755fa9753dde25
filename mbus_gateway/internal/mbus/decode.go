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
	b []byte // the records, read only
	// s is a copy of b up to where the records end, in the telegram's
	// text buffer: DIF, VIF and byte values are substrings of it.
	s    string
	base int // offset of b[0] from the start of the frame
	// msbFirst is set for mode 2 telegrams (CI 0x76): multi-byte data
	// fields are sent most significant byte first.
	msbFirst bool
	// txt is held by value: a pointer here would make the compiler move
	// every telegramText to the heap.
	txt telegramText
	// plain is the vifInfo of the last plain-text VIF (refPlainText).
	plain vifInfo
	// profiles lists the compact profile records, nil for none.
	profiles []pendingProfile
	// mfr is the manufacturer of the header ("ABB"), empty without one;
	// some name their manufacturer specific VIFEs (mfrExtQual).
	mfr string
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
	recs := make([]Record, n)
	t.Records = recs
	var v vibState
	var l recordLayout
	for k := range recs {
		if k < len(r.layouts) {
			l = r.layouts[k]
		} else {
			l, _ = r.layout(r.skipFillers(l.end)) // scan has checked it
		}
		qh := r.decodeRecord(&recs[k], &v, l)
		r.txt.setKey(recs, k, v.qual[:v.nqual], qh)
		if v.profile != 0 && recs[k].Value.Kind == KindBytes {
			r.profiles = append(r.profiles, pendingProfile{rec: k, kind: v.profile, scale: v.scaling()})
		}
	}
	r.txt.finishKeys(recs)
	if r.profiles != nil {
		expandProfiles(recs, r.profiles)
	}
	if end < len(r.b) && (r.b[end] == difManufacturer || r.b[end] == difMoreFollow) {
		t.MoreRecordsFollow = r.b[end] == difMoreFollow
		if end+1 < len(r.b) {
			t.ManufacturerData = append([]byte(nil), r.b[end+1:]...)
		}
	}
}

// layout finds the parts of the record at b[i] (EN 13757-3:2018, clause
// 6.3) and checks that they fit.
func (r *recordReader) layout(i int) (recordLayout, error) {
	b := r.b
	// Most records are a DIF and a VIF without extensions and fixed
	// length data: settle those with a few comparisons.
	if i+1 < len(b) {
		dif, vif := b[i], b[i+1]
		size := int(dataLen[dif&0x0F])
		if dif&difExtBit == 0 && vif&vifExtBit == 0 && vif != vifPlainText && size >= 0 && size <= len(b)-i-2 {
			return recordLayout{dif: i, vib: i + 1, data: i + 2, end: i + 2 + size}, nil
		}
	}
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

// vibState collects what the VIF and its VIFEs say about a record. It
// holds no pointers to what it describes, only vifRef, so that setting it
// up per record costs no write barriers while the garbage collector runs.
type vibState struct {
	ref vifRef
	// unit, exp, factor, date, raw and opaque start as the vifInfo of
	// ref says; VIFEs change them.
	unit   unitChoice
	exp    int8
	factor float64
	date   bool
	raw    bool
	opaque bool
	// suffix holds what VIFEs add to the quantity (they change what the
	// value is: a date of, a duration of, a rate per), qual what they add
	// to the key only (the value is still the quantity: forward flow,
	// phase L1, future value, limit value), per the "/h" a rate adds to
	// the unit.
	suffix  [4]string
	nsuffix int
	// qual holds the key qualifiers as bytes: names such as "_l1" and
	// the hex of manufacturer extensions ("_x01"); nqual bytes are used.
	qual     [96]byte
	nqual    int
	per      [4]string
	nper     int
	extraExp int     // extra power of ten from correction VIFEs
	offset   float64 // additive correction in raw units
	errCode  byte
	// profile is the compact profile VIFE (0x13, 0x1E or 0x1F), 0 for none.
	profile byte
}

// vifRef names a vifInfo: the table in the high bits, the code in the
// low seven.
type vifRef uint16

// vifRef tables.
const (
	refPrimary   vifRef = iota << 7 // primaryVIF
	refFD                           // extFDVIF
	refFB                           // extFBVIF
	refReserved                     // reservedVIF
	refPlainText                    // recordReader.plain
	refFDFD                         // extFDFDVIF
)

// reservedVIF describes VIF 0x7B and 0x7D without the extension bit:
// reserved codes, but the DIF still gives the data size, so the raw value
// is kept.
var reservedVIF = vifInfo{quantity: "reserved", qhash: keyHash(keyHashStart, "reserved"), raw: true}

// info returns the vifInfo ref names.
func (r *recordReader) info(ref vifRef) *vifInfo {
	switch ref &^ 0x7F {
	case refPrimary:
		return &primaryVIF[ref&0x7F]
	case refFD:
		return &extFDVIF[ref&0x7F]
	case refFB:
		return &extFBVIF[ref&0x7F]
	case refReserved:
		return &reservedVIF
	case refFDFD:
		return &extFDFDVIF[ref&0x7F]
	}
	return &r.plain
}

// unitChoice says which unit a record has: the one of its vifInfo, none,
// or a duration unit a VIFE sets.
type unitChoice uint8

const (
	unitOfVIF     unitChoice = iota
	unitNone                 // dates and counts
	unitDuration0            // durationUnits[0]; …[n] is unitDuration0+n
)

// unitName returns the unit v chooses; info is the vifInfo of v.ref.
func (v *vibState) unitName(info *vifInfo) string {
	switch v.unit {
	case unitOfVIF:
		return info.unit
	case unitNone:
		return ""
	}
	return durationUnits[v.unit-unitDuration0]
}

// start sets v up for a record whose VIF is described by info (named by ref).
func (v *vibState) start(ref vifRef, info *vifInfo) {
	v.ref, v.unit = ref, unitOfVIF
	v.exp, v.factor, v.date, v.raw, v.opaque = info.exp, info.factor, info.date, info.raw, info.opaque
	v.nsuffix, v.nqual, v.nper = 0, 0, 0
	v.extraExp, v.offset, v.errCode, v.profile = 0, 0, 0, 0
}

func (v *vibState) addSuffix(s string) {
	if s != "" && v.nsuffix < len(v.suffix) {
		v.suffix[v.nsuffix] = s
		v.nsuffix++
	}
}

// addQual adds s to the key qualifiers. Qualifiers beyond the buffer are
// cut off; records whose keys then clash are told apart by their bytes
// (see telegramText.finishKeys).
func (v *vibState) addQual(s string) {
	v.nqual += copy(v.qual[v.nqual:], s)
}

// addQualHex adds prefix and the lower-case hex of b to the key qualifiers.
func (v *vibState) addQualHex(prefix string, b []byte) {
	v.addQual(prefix)
	for _, c := range b {
		if v.nqual+2 > len(v.qual) {
			return
		}
		v.qual[v.nqual], v.qual[v.nqual+1] = hexLower[c>>4], hexLower[c&0x0F]
		v.nqual += 2
	}
}

// setUnit replaces the unit, and with it any rate added to it.
func (v *vibState) setUnit(u unitChoice) {
	v.unit = u
	v.nper = 0
}

// decodeRecord decodes the record laid out at l into rec and v and
// returns the keyHash of rec.Quantity. rec is a fresh record: only fields
// that are not zero are written.
func (r *recordReader) decodeRecord(rec *Record, v *vibState, l recordLayout) uint64 {
	b := r.b
	dif := b[l.dif]
	rec.Function = Function(dif >> 4 & 0x03)
	storage := uint64(dif >> 6 & 0x01)
	if l.vib > l.dif+1 {
		var tariff uint32
		var subunit uint16
		for n, e := range b[l.dif+1 : l.vib] {
			storage |= uint64(e&0x0F) << (1 + 4*n)
			tariff |= uint32(e>>4&0x03) << (2 * n)
			subunit |= uint16(e>>6&0x01) << n
		}
		rec.Tariff, rec.Subunit = tariff, subunit
	}
	rec.Storage = storage
	rec.DIF = HexString(r.s[l.dif:l.vib])

	coding := dif & 0x0F
	vibEnd, lvar := l.data, byte(0)
	if coding == DataVar {
		vibEnd-- // the LVAR byte
		lvar = b[vibEnd]
	}
	rec.VIF = HexString(r.s[l.vib:vibEnd])
	info := r.decodeVIB(b[l.vib:vibEnd:vibEnd], v)
	return r.fillRecord(rec, v, info, coding, lvar, l)
}

// decodeVIB reads the VIF, a plain-text unit and the VIFE chain into v
// and returns the vifInfo of v.ref; layout has checked that they are
// complete.
func (r *recordReader) decodeVIB(vib []byte, v *vibState) *vifInfo {
	vif := vib[0]
	if len(vib) == 1 && vif < vifExtFB {
		// A primary VIF alone, the common case.
		info := &primaryVIF[vif]
		v.start(refPrimary|vifRef(vif), info)
		return info
	}
	k := 1
	ref := refPrimary | vifRef(vif&0x7F)
	switch vif & 0x7F {
	case vifExtFB, vifExtFD:
		if vif&vifExtBit == 0 {
			ref = refReserved
			break
		}
		ref = refFD | vifRef(vib[1]&0x7F)
		k = 2
		switch {
		case vif&0x7F == vifExtFB:
			ref = refFB | vifRef(vib[1]&0x7F)
		case vib[1] == vifExtBit|vifExtFD && len(vib) > 2:
			// VIFE 0xFD after VIF 0xFD: the next VIFE is from the
			// second level of table 14.
			ref = refFDFD | vifRef(vib[2]&0x7F)
			k = 3
		}
	case vifPlainText:
		n := int(vib[1])
		unit := r.txt.keep(appendPrintable(r.txt.buf(), vib[2:2+n], true))
		r.plain = vifInfo{quantity: "plain_text", unit: unit}
		if q := appendPlainQuantity(r.txt.buf(), unit); len(q) > 0 {
			r.plain.quantity = r.txt.keep(q)
		}
		r.plain.qhash = keyHash(keyHashStart, r.plain.quantity)
		ref = refPlainText
		k = 2 + n
	}
	info := r.info(ref)
	v.start(ref, info)
	if len(vib) == k {
		return info // no VIFEs
	}
	// A VIF 0x7F/0xFF is manufacturer specific as a whole (primaryVIF
	// marks it raw), and so are its VIFEs. A VIFE 0x7F after a standard
	// VIF makes only the VIFEs after it manufacturer specific: meters in
	// the field (ABB, EMU, Finder, NZR, Saia-Burgess) use them to tag
	// phases or registers while the data stays as the VIF says, so the
	// value keeps the VIF's meaning and scaling.
	if ref == refPrimary|vifManufacturer {
		r.mfrQual(v, vib[k:])
		return info
	}
	extNext := false
	for i, e := range vib[k:] {
		if extNext {
			v.addExtQual(e & 0x7F)
			extNext = false
			continue
		}
		var mfr bool
		if mfr, extNext = v.combine(e&0x7F, info); mfr {
			r.mfrQual(v, vib[k+i+1:])
			break
		}
	}
	return info
}

// addExtQual adds the qualifier of a VIFE from the extension of the
// combinable table (after VIFE 0xFC, EN 13757-3:2018, table 16), or its
// code in hex when the table has no name for it.
func (v *vibState) addExtQual(e byte) {
	if s := combinableExtSuffix[e]; s != "" {
		v.addQual(s)
		return
	}
	v.addQualHex("_fc", []byte{e})
}

// mfrQual adds the key qualifier of the manufacturer specific VIFEs ext:
// a name where the meter's manufacturer documents one (mfrExtQual), else
// "_x" and their bytes in hex; "_mfr" for a VIFE 0x7F with nothing after it.
func (r *recordReader) mfrQual(v *vibState, ext []byte) {
	mfrVIF := v.ref == refPrimary|vifManufacturer
	if q, ok := mfrExtQual(r.mfr, ext); ok && !mfrVIF {
		v.addQual(q)
		return
	}
	if r.mfr == "ABB" && len(ext) > 1 && ext[len(ext)-1] < 0x20 {
		// ABB ends the manufacturer VIFEs with a status VIFE (a record
		// error code) that changes with the meter's state.
		ext = ext[:len(ext)-1]
	}
	if len(ext) == 0 {
		if !mfrVIF {
			v.addQual("_mfr")
		}
		return
	}
	v.addQualHex("_x", ext)
}

// combine applies one combinable VIFE (EN 13757-3:2018, table 15). It
// reports whether the rest is manufacturer specific and whether the next
// VIFE comes from the extension table (table 16).
func (v *vibState) combine(e byte, info *vifInfo) (mfr, ext bool) {
	switch {
	case e == 0x12:
		v.addQual("_average")
	case e == 0x13, e == 0x1E, e == 0x1F:
		v.profile = e
		v.addQual(profileQual(e))
	case e == 0x14:
		v.addQual("_relative_deviation")
	case e == 0x1D:
		// Standard conform data content: says nothing about the value.
	case e < 0x20:
		v.errCode = e
	case e <= 0x26:
		v.addSuffix(perTimeSuffix[e-0x20])
		if v.unitName(info) != "" && v.nper < len(v.per) {
			v.per[v.nper] = perTimeUnit[e-0x20]
			v.nper++
		}
	case isDateVIFE(e):
		v.addSuffix(combinableSuffix[e])
		v.setUnit(unitNone)
		v.date, v.exp, v.factor = true, 0, 0
	case isCountVIFE(e):
		v.addSuffix(combinableSuffix[e])
		v.setUnit(unitNone)
		v.exp, v.factor = 0, 0
	case e >= 0x50 && e <= 0x67:
		v.addSuffix(durationSuffix[e-0x50])
		v.setUnit(unitDuration0 + unitChoice(e&3))
		v.exp, v.factor = 0, 0
	case e >= 0x70 && e <= 0x77:
		v.extraExp += int(e&0x07) - 6
	case e >= 0x78 && e <= 0x7B:
		v.offset += scaleExp(1, int(e&0x03)-3)
	case e == 0x7C:
		return false, true
	case e == 0x7D:
		v.extraExp += 3
	case e == 0x7F:
		return true, false
	case e <= 0x38:
		v.addSuffix(combinableSuffix[e]) // per unit, times unit: another quantity
	case combinableSuffix[e] != "":
		v.addQual(combinableSuffix[e])
	default:
		v.addQualHex("_v", []byte{e}) // reserved: its code keeps records apart
	}
	return false, false
}

// profileQual is the key qualifier of a compact profile VIFE (0x13,
// 0x1E or 0x1F).
func profileQual(e byte) string {
	switch e {
	case 0x13:
		return "_inverse_profile"
	case 0x1E:
		return "_register_profile"
	}
	return "_profile"
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

// fillRecord turns the VIB state (info is the vifInfo of v.ref) and the
// data at l into quantity, unit and value, and returns the keyHash of the
// quantity.
func (r *recordReader) fillRecord(rec *Record, v *vibState, info *vifInfo, coding, lvar byte, l recordLayout) (qhash uint64) {
	txt := &r.txt
	rec.Quantity, qhash = info.quantity, info.qhash
	if v.nsuffix > 0 {
		q := append(txt.buf(), info.quantity...)
		for _, s := range v.suffix[:v.nsuffix] {
			q = append(q, s...)
		}
		qhash = keyHash(qhash, q[len(info.quantity):])
		rec.Quantity = txt.keep(q)
	}
	rec.Error = RecordError(v.errCode)

	val := &rec.Value
	switch {
	case coding == DataVar && v.profile != 0:
		// A compact profile: expandProfiles decodes it once every
		// record, with the base time and value, is known.
		val.Kind, val.Text = KindBytes, r.s[l.data:l.end]
	case coding == DataVar:
		r.varValue(val, lvar, l)
	case v.opaque:
		if l.end > l.data {
			val.Kind, val.Text = KindBytes, r.s[l.data:l.end]
		}
	default:
		r.fixedValue(val, v, coding, r.b[l.data:l.end:l.end])
	}
	switch val.Kind {
	case KindNumber:
		if !v.raw {
			val.Num = v.scale(val.Num)
		}
	case KindNone, KindText:
		// The unit still describes the record: the register exists with
		// no value, or the text is error digits or plain text.
	case KindBytes:
		if v.profile == 0 {
			return qhash
		}
	default:
		return qhash // dates and bytes have no unit
	}
	unit := v.unitName(info)
	if v.nper > 0 {
		u := append(txt.buf(), unit...)
		for _, s := range v.per[:v.nper] {
			u = append(u, s...)
		}
		rec.Unit = txt.keep(u)
	} else if unit != "" {
		rec.Unit = unit
	}
	return qhash
}

// fixedValue decodes a data field of fixed length into the zero Value
// val. (Setting fields one by one, rather than assigning a whole Value,
// spares the record the write barriers of its pointer fields while the
// garbage collector runs.)
func (r *recordReader) fixedValue(val *Value, v *vibState, coding byte, data []byte) {
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
		return
	case DataReal32:
		// NaN and infinities mean "no value" (and JSON has no form for them).
		if x := decodeReal(data); !math.IsNaN(x) && !math.IsInf(x, 0) {
			val.Kind, val.Num = KindNumber, x
		}
		return
	case DataBCD2, DataBCD4, DataBCD6, DataBCD8, DataBCD12:
		r.bcdValue(val, data)
		return
	}
	// Integers, or dates where the VIB says so.
	if v.date && !v.raw && (len(data) == 2 || len(data) == 3 || len(data) == 4 || len(data) == 6) {
		if d := decodeDate(data); d.Kind != KindNone {
			val.Kind, val.Num, val.SummerTime = d.Kind, d.Num, d.SummerTime
		}
		return
	}
	val.Kind, val.Num = KindNumber, float64(decodeInt(data))
}

// bcdValue sets val to a BCD number, or to its digits as text when some
// are error digits (see decodeBCD).
func (r *recordReader) bcdValue(val *Value, data []byte) {
	n, ok := decodeBCD(data)
	if !ok {
		val.Kind, val.Text = KindText, r.txt.keep(appendBCDText(r.txt.buf(), data))
		return
	}
	val.Kind, val.Num = KindNumber, float64(n)
}

// scale turns a raw number into the record's unit.
func (v *vibState) scale(raw float64) float64 { return v.scaling().apply(raw, false) }

// varValue decodes the variable length data field at l by its LVAR byte
// into the zero Value val.
func (r *recordReader) varValue(val *Value, lvar byte, l recordLayout) {
	data := r.b[l.data:l.end:l.end]
	switch {
	case lvar <= 0xBF:
		val.Kind, val.Text = KindText, r.txt.keep(appendPrintable(r.txt.buf(), data, true))
	case lvar <= 0xC9 || lvar >= 0xD0 && lvar <= 0xD9:
		switch {
		case len(data) == 0:
		case len(data) > 9:
			// More digits than an int64 holds: keep them as text.
			val.Kind, val.Text = KindText, r.txt.keep(appendBCDText(r.txt.buf(), data))
		default:
			r.bcdValue(val, data)
			if val.Kind == KindNumber && lvar >= 0xD0 {
				val.Num = -val.Num
			}
		}
	case len(data) > 0:
		val.Kind, val.Text = KindBytes, r.s[l.data:l.end]
	}
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
