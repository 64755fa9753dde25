package mbus

import (
	"math"
	"time"
)

// Compact profiles (EN 13757-3:2018, annex F): one variable length
// record, marked by VIFE 0x1E, 0x1F or 0x13, carries a series of values
// of the quantity its VIF names. Its data start with a spacing control
// byte (bits 7-6 increment mode, bits 5-4 spacing unit, bits 3-0 the
// element's data field as in a DIF) and a spacing value byte; the
// elements follow. The base value is the record with the same storage,
// tariff and subunit and the same VIB without the profile VIFE; the base
// time is the date record with the same storage number. The points
// stand for the storage numbers after the profile record's. A compact
// profile runs forward in time from its base, an inverse one (0x13)
// backward.

// scaling is what turns a raw number of a record into its unit.
type scaling struct {
	exp    int
	factor float64
	offset float64
}

// scaling returns the scaling v.scale applies.
func (v *vibState) scaling() scaling {
	return scaling{exp: int(v.exp) + v.extraExp, factor: v.factor, offset: v.offset}
}

// apply scales raw; a difference (delta) leaves out the additive offset.
func (s scaling) apply(raw float64, delta bool) float64 {
	if !delta {
		raw += s.offset
	}
	x := scaleExp(raw, s.exp)
	if s.factor != 0 {
		x *= s.factor
	}
	return x
}

// pendingProfile is a compact profile record waiting for expandProfiles.
type pendingProfile struct {
	rec   int  // index of the record
	kind  byte // its VIFE: 0x13, 0x1E or 0x1F
	scale scaling
}

// Increment modes of the spacing control byte.
const (
	profileAbsolute = iota
	profileIncrements
	profileDecrements
	profileSignedDiff
)

// expandProfiles replaces the raw data of each profile record (a
// KindBytes value) by its points. A profile whose header is malformed
// keeps its raw bytes.
func expandProfiles(recs []Record, pending []pendingProfile) {
	for _, p := range pending {
		rec := &recs[p.rec]
		data := []byte(rec.Value.Text)
		if len(data) < 2 {
			continue
		}
		ctrl, spacing := data[0], data[1]
		mode := int(ctrl >> 6)
		coding := ctrl & 0x0F
		size := int(dataLen[coding])
		if size <= 0 || coding == DataReadout || (len(data)-2)%size != 0 {
			continue
		}
		inverse := p.kind == 0x13
		base, baseOK := profileBaseValue(recs, p.rec)
		when, dateOnly := profileBaseTime(recs, rec.Storage)
		step := profileStep(ctrl>>4&3, spacing)
		n := (len(data) - 2) / size
		points := make([]ProfilePoint, n)
		prev, prevOK := base, baseOK
		for i := range points {
			pt := &points[i]
			pt.Storage = rec.Storage + uint64(i) + 1
			if !when.IsZero() && step != nil {
				pt.Time, pt.DateOnly = step(when, i+1, inverse), dateOnly
			}
			el := data[2+i*size : 2+(i+1)*size]
			raw, ok := profileElement(el, coding, mode != profileAbsolute)
			if !ok {
				// An invalid increment breaks the chain of values.
				pt.Invalid = true
				prevOK = prevOK && mode == profileAbsolute
				continue
			}
			d := p.scale.apply(raw, true)
			switch {
			case mode == profileAbsolute:
				pt.Value = p.scale.apply(raw, false)
			case !prevOK:
				pt.Invalid = true
				continue
			case (mode == profileDecrements) != inverse:
				pt.Value = prev - d
			default:
				pt.Value = prev + d
			}
			prev, prevOK = pt.Value, true
		}
		rec.Value = ProfileValue(points)
	}
}

// profileElement decodes one element of a profile: a signed integer
// (absolute values) or an unsigned one (increments, type C), BCD or a
// real. ok is false for the codes that mark a value invalid: the lowest
// signed or highest unsigned integer, BCD error digits, NaN.
func profileElement(b []byte, coding byte, unsigned bool) (float64, bool) {
	switch coding {
	case DataReal32:
		x := decodeReal(b)
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case DataBCD2, DataBCD4, DataBCD6, DataBCD8, DataBCD12:
		n, ok := decodeBCD(b)
		return float64(n), ok
	}
	n := decodeInt(b)
	bits := 8 * uint(len(b))
	if unsigned {
		u := uint64(n) & (math.MaxUint64 >> (64 - bits))
		return float64(u), u != math.MaxUint64>>(64-bits)
	}
	return float64(n), n != -1<<(bits-1)
}

// profileBaseValue finds the base value of the profile record recs[i]:
// the number of the record with the same storage, tariff and subunit
// whose VIB is the profile's without its profile VIFE.
func profileBaseValue(recs []Record, i int) (float64, bool) {
	p := &recs[i]
	want := withoutProfileVIFE([]byte(p.VIF))
	for j := range recs {
		r := &recs[j]
		if j != i && r.Value.Kind == KindNumber && r.Storage == p.Storage && r.Tariff == p.Tariff &&
			r.Subunit == p.Subunit && string(r.VIF) == string(want) {
			return r.Value.Num, true
		}
	}
	return 0, false
}

// withoutProfileVIFE returns vib without its compact profile VIFE, with
// the extension bit of what then ends the VIB cleared.
func withoutProfileVIFE(vib []byte) []byte {
	first := 1
	if v := vib[0] & 0x7F; v == vifExtFB || v == vifExtFD {
		first = 2 // vib[1] is the code in table 13 or 14
	}
	for k := first; k < len(vib); k++ {
		switch vib[k] & 0x7F {
		case 0x13, 0x1E, 0x1F:
			out := append(append([]byte(nil), vib[:k]...), vib[k+1:]...)
			if k == len(vib)-1 {
				out[len(out)-1] &^= vifExtBit
			}
			return out
		}
	}
	return vib
}

// profileBaseTime finds the base time of a profile with storage number
// storage: the first date or date-time record with that storage number.
func profileBaseTime(recs []Record, storage uint64) (t time.Time, dateOnly bool) {
	for j := range recs {
		r := &recs[j]
		if r.Storage == storage && (r.Value.Kind == KindDate || r.Value.Kind == KindDateTime) {
			return r.Value.Time(), r.Value.Kind == KindDate
		}
	}
	return time.Time{}, false
}

// profileStep returns what moves a time n spacings on (back when
// inverse), for the spacing unit (0 s, 1 min, 2 h, 3 d) and value of the
// spacing control; nil when the points have no time spacing (an array,
// half months, reserved values).
func profileStep(unit, value byte) func(t time.Time, n int, inverse bool) time.Time {
	sign := func(n int, inverse bool) int {
		if inverse {
			return -n
		}
		return n
	}
	months := 0
	switch {
	case value >= 1 && value <= 250:
		d := time.Duration(value) * [4]time.Duration{time.Second, time.Minute, time.Hour, 24 * time.Hour}[unit]
		return func(t time.Time, n int, inverse bool) time.Time {
			return t.Add(time.Duration(sign(n, inverse)) * d)
		}
	case value == 254 && unit == 3:
		months = 1
	case value == 254 && unit == 2:
		months = 3
	case value == 254 && unit == 1:
		months = 6
	default:
		return nil
	}
	return func(t time.Time, n int, inverse bool) time.Time {
		return t.AddDate(0, sign(n, inverse)*months, 0)
	}
}
