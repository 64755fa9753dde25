package mbus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"time"
	"unicode/utf8"
)

// Data field codings of the DIF (EN 13757-3:2018, table 6).
const (
	DataNone    = 0x0 // no data
	DataInt8    = 0x1 // 8-bit integer (type B)
	DataInt16   = 0x2 // 16-bit integer (type B), or a type G date
	DataInt24   = 0x3 // 24-bit integer (type B), or a type J time
	DataInt32   = 0x4 // 32-bit integer (type B), or a type F date and time
	DataReal32  = 0x5 // 32-bit IEEE 754 real (type H)
	DataInt48   = 0x6 // 48-bit integer (type B), or a type I date and time
	DataInt64   = 0x7 // 64-bit integer (type B)
	DataReadout = 0x8 // selection for readout (master to slave), no data
	DataBCD2    = 0x9 // 2-digit BCD (type A)
	DataBCD4    = 0xA // 4-digit BCD
	DataBCD6    = 0xB // 6-digit BCD
	DataBCD8    = 0xC // 8-digit BCD
	DataVar     = 0xD // variable length, LVAR byte first
	DataBCD12   = 0xE // 12-digit BCD
	DataSpecial = 0xF // special functions
)

// dataLen is the size of each fixed data field coding; -1 marks the
// variable length and special codings.
var dataLen = [16]int8{0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6, -1}

// Sentinel errors of the application layer; FrameError wraps them with the
// offset of the byte that could not be understood.
var (
	ErrTooManyDIFE = errors.New("more than 10 DIFEs")
	ErrTooManyVIFE = errors.New("more than 10 VIFEs")
	ErrRecord      = errors.New("malformed data record")
)

// pow10 holds exact powers of ten 10^0 … 10^22 (all exactly representable
// in a float64), so that scaling divides or multiplies by an exact value
// and 37351 × 10^-3 prints as 37.351.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// scaleExp returns v × 10^exp with one correctly rounded operation.
func scaleExp(v float64, exp int) float64 {
	switch {
	case exp == 0:
		return v
	case exp > 0 && exp < len(pow10):
		return v * pow10[exp]
	case exp < 0 && -exp < len(pow10):
		return v / pow10[-exp]
	}
	return v * math.Pow(10, float64(exp))
}

// decodeInt reads a little-endian two's complement integer (type B) of
// 1 to 8 bytes.
func decodeInt(b []byte) int64 {
	switch len(b) { // the common sizes in one load
	case 1:
		return int64(int8(b[0]))
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(b)))
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(b)))
	case 8:
		return int64(binary.LittleEndian.Uint64(b))
	}
	var u uint64
	for i := len(b) - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	shift := 64 - 8*uint(len(b))
	return int64(u<<shift) >> shift
}

// decodeBCD reads a little-endian packed BCD number (type A). A top
// nibble 0xF is a minus sign (EN 13757-3:2018, annex A). Digits A-E (and
// F anywhere else) are not numbers: meters use them to show errors, so
// ok is false and the caller shows the digits with appendBCDText.
func decodeBCD(b []byte) (v int64, ok bool) {
	if len(b) == 0 {
		return 0, true
	}
	top := b[len(b)-1]
	neg := top>>4 == 0xF
	if neg {
		top &= 0x0F
	}
	d := bcdPair[top]
	if d < 0 {
		return 0, false
	}
	v = int64(d)
	for i := len(b) - 2; i >= 0; i-- {
		d := bcdPair[b[i]]
		if d < 0 {
			return 0, false
		}
		v = v*100 + int64(d)
	}
	if neg {
		v = -v
	}
	return v, true
}

// bcdPair holds the value 0-99 of each byte of two BCD digits, -1 for
// bytes with a digit A-F.
var bcdPair = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
		if hi, lo := i>>4, i&0x0F; hi <= 9 && lo <= 9 {
			t[i] = int8(10*hi + lo)
		}
	}
	return t
}()

const (
	hexUpper = "0123456789ABCDEF"
	hexLower = "0123456789abcdef"
)

// appendBCDText appends BCD digits as printed, most significant first,
// with A-F in upper case and a leading F shown as '-'. Meter displays
// show the same characters, so nothing is lost or invented.
func appendBCDText(dst, b []byte) []byte {
	start := len(dst)
	for i := len(b) - 1; i >= 0; i-- {
		dst = append(dst, hexUpper[b[i]>>4], hexUpper[b[i]&0x0F])
	}
	if len(dst) > start && dst[start] == 'F' {
		dst[start] = '-'
	}
	return dst
}

// decodeReal reads a little-endian IEEE 754 single (type H).
func decodeReal(b []byte) float64 {
	return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
}

// Date and time types (EN 13757-3:2018, annex A). Bit IV (invalid) set,
// or a date that does not exist, gives ok == false.

// year reads the 7-bit year split over two bytes of types F, G and I.
// Two-digit years below 81 are 20xx, the others 19xx (the M-Bus
// century convention also used by meter software).
func year(lo, hi byte) int {
	y := int(lo&0xE0)>>5 | int(hi&0xF0)>>1
	if y < 81 {
		return 2000 + y
	}
	return 1900 + y
}

func validDate(y, m, d int) bool {
	if m < 1 || m > 12 || d < 1 {
		return false
	}
	if m == 2 && isLeap(y) {
		return d <= 29
	}
	return d <= int(daysInMonth[m])
}

// daysInMonth is the length of each month (index 1-12) in a common year.
var daysInMonth = [13]int8{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// dateTime is time.Date(y, m, d, h, mi, s, 0, time.UTC) for a valid date
// of year 1 or later, worked out directly: time.Date normalises every
// field and is several times slower.
func dateTime(y, m, d, h, mi, s int) time.Time {
	// Days since 1970-01-01 of a proleptic Gregorian date, counting years
	// from March so that the leap day comes last.
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12 // March = 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := int64(era)*146097 + int64(doe) - 719468
	return time.Unix(days*86400+int64(h*3600+mi*60+s), 0).UTC()
}

// unixYear0 is 0000-01-01T00:00:00Z in Unix seconds, the date of a
// type J time of day.
const unixYear0 = -62167219200

// decodeDateG reads type G (16 bits): day, month, year.
func decodeDateG(b []byte) (time.Time, bool) {
	d, m, y := int(b[0]&0x1F), int(b[1]&0x0F), year(b[0], b[1])
	if !validDate(y, m, d) {
		return time.Time{}, false
	}
	return dateTime(y, m, d, 0, 0, 0), true
}

// decodeDateTimeF reads type F (32 bits): minute, hour, day, month, year
// with its hundred-year bits (bits 13-14; summer time, bit 15, is read by
// decodeDate).
func decodeDateTimeF(b []byte) (time.Time, bool) {
	if b[0]&0x80 != 0 {
		return time.Time{}, false
	}
	mi, h := int(b[0]&0x3F), int(b[1]&0x1F)
	d, m, y := int(b[2]&0x1F), int(b[3]&0x0F), year(b[2], b[3])
	if hy := int(b[1] >> 5 & 0x03); hy > 0 {
		// A century is given: 1900 + 100 × hundred years + year. Without
		// one, year keeps to the two-digit rule (00-80 are 20xx).
		y = 1900 + 100*hy + y%100
	}
	if mi > 59 || h > 23 || !validDate(y, m, d) {
		return time.Time{}, false
	}
	return dateTime(y, m, d, h, mi, 0), true
}

// decodeDateTimeI reads type I (48 bits): second, minute, hour, day,
// month, year; the sixth byte (week, daylight saving) is not needed.
func decodeDateTimeI(b []byte) (time.Time, bool) {
	if b[1]&0x80 != 0 {
		return time.Time{}, false
	}
	s, mi, h := int(b[0]&0x3F), int(b[1]&0x3F), int(b[2]&0x1F)
	d, m, y := int(b[3]&0x1F), int(b[4]&0x0F), year(b[3], b[4])
	if s > 59 || mi > 59 || h > 23 || !validDate(y, m, d) {
		return time.Time{}, false
	}
	return dateTime(y, m, d, h, mi, s), true
}

// decodeTimeJ reads type J (24 bits): second, minute, hour.
func decodeTimeJ(b []byte) (time.Time, bool) {
	s, mi, h := int(b[0]&0x3F), int(b[1]&0x3F), int(b[2]&0x1F)
	if s > 59 || mi > 59 || h > 23 {
		return time.Time{}, false
	}
	return time.Unix(unixYear0+int64(h*3600+mi*60+s), 0).UTC(), true
}

// decodeDate picks the date type by the size of the data field.
func decodeDate(b []byte) Value {
	var t time.Time
	var ok bool
	kind := KindDateTime
	switch len(b) {
	case 2:
		t, ok = decodeDateG(b)
		kind = KindDate
	case 3:
		t, ok = decodeTimeJ(b)
		kind = KindTime
	case 4:
		t, ok = decodeDateTimeF(b)
		if ok {
			v := TimeValue(kind, t)
			v.SummerTime = b[1]&0x80 != 0
			return v
		}
	case 6:
		t, ok = decodeDateTimeI(b)
	}
	if !ok {
		// An unset or invalid date: no value rather than a made-up one.
		return Value{}
	}
	return TimeValue(kind, t)
}

// appendPrintable appends bytes from the meter as safe UTF-8 text:
// printable ASCII stays, bytes 0xA0-0xFF are read as ISO-8859-1 (the
// M-Bus character set), control characters are dropped; surrounding
// white space is trimmed.
func appendPrintable(dst, b []byte, reversed bool) []byte {
	start := len(dst)
	for i := range b {
		c := b[i]
		if reversed {
			c = b[len(b)-1-i]
		}
		switch {
		case c >= 0x20 && c < 0x7F:
			dst = append(dst, c)
		case c >= 0xA0:
			dst = utf8.AppendRune(dst, rune(c))
		}
	}
	text := bytes.TrimSpace(dst[start:])
	n := copy(dst[start:], text)
	return dst[:start+n]
}
