package mbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// RecordSpec is one data record to encode (the inverse of what the
// decoder reads, EN 13757-3:2018, clause 6.3): the data information
// block from Function, Storage, Tariff, Subunit and Coding, the value
// information block as given, and the data from the field that Coding
// uses.
type RecordSpec struct {
	Function Function
	Storage  uint64 // up to 41 bits
	Tariff   uint32 // up to 20 bits
	Subunit  uint32 // up to 10 bits
	// Coding is the DIF data field: DataInt8 … DataBCD12, DataVar.
	Coding byte
	// VIF is the VIF and VIFEs as sent, e.g. {0x04} (energy, 10 Wh) or
	// {0xFD, 0x17} (error flags). A plain-text VIF 0x7C/0xFC carries its
	// length and reversed text here too.
	VIF []byte
	// Int is the raw value of integer, BCD and LVAR BCD codings (and of
	// dates: see DateG, DateTimeF).
	Int int64
	// Real is the value of DataReal32.
	Real float32
	// Text, when not empty, makes a DataVar record a text (sent last
	// character first); otherwise Bytes makes it binary, and with
	// neither it is an LVAR BCD number from Int.
	Text  string
	Bytes []byte
}

// ErrEncode reports a value that the chosen coding cannot carry.
var ErrEncode = errors.New("cannot encode")

// EncodeRecord returns the wire form of one data record.
func EncodeRecord(r RecordSpec) ([]byte, error) { return AppendRecord(nil, r) }

// AppendRecord appends the wire form of r to dst.
func AppendRecord(dst []byte, r RecordSpec) ([]byte, error) {
	if r.Coding > DataBCD12 || r.Coding == DataReadout {
		return dst, fmt.Errorf("mbus: encode record: data coding 0x%X: %w", r.Coding, ErrEncode)
	}
	if r.Function > FuncValueDuringError {
		return dst, fmt.Errorf("mbus: encode record: function %d: %w", r.Function, ErrEncode)
	}
	if len(r.VIF) == 0 {
		return dst, fmt.Errorf("mbus: encode record: no VIF: %w", ErrEncode)
	}
	dib, err := appendDIB(nil, r)
	if err != nil {
		return dst, err
	}
	data, err := appendData(nil, r)
	if err != nil {
		return dst, err
	}
	dst = append(dst, dib...)
	dst = append(dst, r.VIF...)
	return append(dst, data...), nil
}

// appendDIB writes the DIF and as many DIFEs as storage, tariff and
// subunit need: the DIF holds the lowest storage bit, each DIFE four more
// storage bits, two tariff bits and one subunit bit.
func appendDIB(dst []byte, r RecordSpec) ([]byte, error) {
	storage, tariff, subunit := r.Storage>>1, r.Tariff, r.Subunit
	dif := r.Coding | byte(r.Function)<<4 | byte(r.Storage&1)<<6
	var difes []byte
	for storage != 0 || tariff != 0 || subunit != 0 {
		if len(difes) == MaxDIFE {
			return dst, fmt.Errorf("mbus: encode record: storage %d, tariff %d, subunit %d need more than %d DIFEs: %w",
				r.Storage, r.Tariff, r.Subunit, MaxDIFE, ErrEncode)
		}
		difes = append(difes, byte(storage&0x0F)|byte(tariff&3)<<4|byte(subunit&1)<<6)
		storage, tariff, subunit = storage>>4, tariff>>2, subunit>>1
	}
	if len(difes) > 0 {
		dif |= difExtBit
		for i := range len(difes) - 1 {
			difes[i] |= difExtBit
		}
	}
	dst = append(dst, dif)
	return append(dst, difes...), nil
}

// appendData writes the data field in r.Coding.
func appendData(dst []byte, r RecordSpec) ([]byte, error) {
	n := int(dataLen[r.Coding])
	switch r.Coding {
	case DataNone:
		return dst, nil
	case DataReal32:
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(r.Real)), nil
	case DataInt8, DataInt16, DataInt24, DataInt32, DataInt48, DataInt64:
		if n < 8 {
			lim := int64(1) << (8*n - 1)
			// Accept the signed range and the unsigned one (dates, flags).
			if r.Int < -lim || r.Int >= 2*lim {
				return dst, fmt.Errorf("mbus: encode record: %d does not fit %d bytes: %w", r.Int, n, ErrEncode)
			}
		}
		for i := range n {
			dst = append(dst, byte(r.Int>>(8*i)))
		}
		return dst, nil
	case DataBCD2, DataBCD4, DataBCD6, DataBCD8, DataBCD12:
		return appendBCD(dst, r.Int, n)
	}
	// DataVar
	switch {
	case r.Text != "":
		if len(r.Text) > 0xBF {
			return dst, fmt.Errorf("mbus: encode record: text of %d bytes, at most 191: %w", len(r.Text), ErrEncode)
		}
		dst = append(dst, byte(len(r.Text)))
		for i := len(r.Text) - 1; i >= 0; i-- {
			dst = append(dst, r.Text[i])
		}
		return dst, nil
	case r.Bytes != nil:
		l, ok := binaryLVAR(len(r.Bytes))
		if !ok {
			return dst, fmt.Errorf("mbus: encode record: %d binary bytes have no LVAR: %w", len(r.Bytes), ErrEncode)
		}
		dst = append(dst, l)
		return append(dst, r.Bytes...), nil
	}
	v, lvar := r.Int, byte(0xC0)
	if v == math.MinInt64 {
		return dst, fmt.Errorf("mbus: encode record: %d has too many BCD digits: %w", v, ErrEncode)
	}
	if v < 0 {
		v, lvar = -v, 0xD0
	}
	digits := 0
	for x := v; x > 0; x /= 10 {
		digits++
	}
	nb := max(1, (digits+1)/2)
	dst = append(dst, lvar+byte(nb))
	return appendBCD(dst, v, nb)
}

// binaryLVAR gives the LVAR byte for a binary field of n bytes.
func binaryLVAR(n int) (byte, bool) {
	switch {
	case n <= 15:
		return 0xE0 + byte(n), true
	case n >= 16 && n <= 32 && n%4 == 0:
		return 0xEC + byte(n/4), true
	case n == 48:
		return 0xF5, true
	case n == 64:
		return 0xF6, true
	}
	return 0, false
}

// appendBCD writes v as n bytes of packed BCD, least significant first;
// a negative value gets the sign nibble F on top (one digit less).
func appendBCD(dst []byte, v int64, n int) ([]byte, error) {
	neg := v < 0
	if neg {
		v = -v
	}
	digits := 2 * n
	if neg {
		digits--
	}
	if digits > 18 || v >= int64(pow10[digits]) {
		return dst, fmt.Errorf("mbus: encode record: %d has more than %d BCD digits: %w", v, digits, ErrEncode)
	}
	start := len(dst)
	for range n {
		lo := byte(v % 10)
		v /= 10
		hi := byte(v % 10)
		v /= 10
		dst = append(dst, hi<<4|lo)
	}
	if neg {
		dst[start+n-1] |= 0xF0
	}
	return dst, nil
}

// DateG returns the raw 16-bit type G value of the date of t, for a
// DataInt16 record with VIF 0x6C.
func DateG(t time.Time) int64 {
	y := t.Year() % 100
	return int64(t.Day()|(y&7)<<5) | int64(int(t.Month())|(y>>3)<<4)<<8
}

// DateTimeF returns the raw 32-bit type F value of t (minutes
// resolution), for a DataInt32 record with VIF 0x6D.
func DateTimeF(t time.Time) int64 {
	return int64(t.Minute()) | int64(t.Hour())<<8 | DateG(t)<<16
}

// EncodeTelegram builds the RSP_UD long frame (CI 0x72) a meter at
// primary address a sends: the long header from h (its Address, or ID
// and Manufacturer when Address is zero), the records in order, and
// DIF 0x1F (more records follow) or 0x0F with the manufacturer data.
func EncodeTelegram(a byte, h Header, records []RecordSpec, moreFollow bool, mfrData []byte) ([]byte, error) {
	if h.Address == (SecondaryAddress{}) && h.ID != "" {
		sa, err := ParseSecondaryAddress(h.ID + "0000" + fmt.Sprintf("%02X%02X", h.Version, byte(h.Medium)))
		if err != nil {
			return nil, fmt.Errorf("mbus: encode telegram: id: %w", err)
		}
		code, err := ManufacturerCode(h.Manufacturer)
		if err != nil {
			return nil, fmt.Errorf("mbus: encode telegram: %w", err)
		}
		binary.LittleEndian.PutUint16(sa[4:6], code)
		h.Address = sa
	}
	data := encodeLongHeader(make([]byte, 0, 64), h)
	for i, r := range records {
		var err error
		if data, err = AppendRecord(data, r); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	switch {
	case moreFollow:
		data = append(data, difMoreFollow)
		data = append(data, mfrData...)
	case len(mfrData) > 0:
		data = append(data, difManufacturer)
		data = append(data, mfrData...)
	}
	return Frame{Type: FrameLong, C: CRspUD, A: a, CI: CIRespVarLong, Data: data}.Encode()
}
