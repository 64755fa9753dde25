package mbus

import (
	"encoding/binary"
	"fmt"
)

// Header is the data header of a variable data response (EN 13757-3,
// clause 6: long header 12 bytes, short header 4 bytes).
type Header struct {
	ID           string `json:"id"`           // identification number, 8 digits as printed
	Manufacturer string `json:"manufacturer"` // three upper-case letters (EN 62056-21 flag code)
	Version      byte   `json:"version"`
	Medium       Medium `json:"medium"`
	AccessNumber byte   `json:"access_number"`
	Status       byte   `json:"status"`
	Signature    uint16 `json:"signature"`
	// Address is the secondary address; zero for short headers.
	Address SecondaryAddress `json:"-"`
}

// Status bits of the header (EN 13757-3, table 10).
const (
	StatusAppBusy       = 0x01
	StatusAppError      = 0x02
	StatusAppMask       = 0x03
	StatusPowerLow      = 0x04
	StatusPermanentErr  = 0x08
	StatusTemporaryErr  = 0x10
	StatusManufacturer1 = 0x20
	StatusManufacturer2 = 0x40
	StatusManufacturer3 = 0x80
)

// statusNames names the status bits, lowest first.
var statusNames = [8]string{"", "", "power_low", "permanent_error", "temporary_error",
	"manufacturer_1", "manufacturer_2", "manufacturer_3"}

// appStatusNames names the application status in bits 0-1 (EN
// 13757-3:2018, table 11).
var appStatusNames = [4]string{"", "application_busy", "application_error", "alarm"}

// StatusFlags names the bits set in the status byte, e.g.
// ["application_busy", "power_low"]; nil when all is well.
func (h Header) StatusFlags() []string {
	var out []string
	if s := appStatusNames[h.Status&StatusAppMask]; s != "" {
		out = append(out, s)
	}
	for bit := 2; bit < 8; bit++ {
		if h.Status&(1<<bit) != 0 {
			out = append(out, statusNames[bit])
		}
	}
	return out
}

// ManufacturerName turns the 15-bit manufacturer field into three letters:
// each letter is 5 bits, 'A' = 1 (EN 13757-3, clause 6.3.3). A code
// that does not spell three letters is shown as '@' and four hex digits.
func ManufacturerName(code uint16) string {
	var b [5]byte
	return string(appendManufacturerName(b[:0], code))
}

// appendManufacturerName appends what ManufacturerName returns.
func appendManufacturerName(dst []byte, code uint16) []byte {
	b := [3]byte{
		byte(code>>10&0x1F) + 64,
		byte(code>>5&0x1F) + 64,
		byte(code&0x1F) + 64,
	}
	for _, c := range b {
		if c < 'A' || c > 'Z' {
			return append(dst, '@', hexUpper[code>>12&0xF], hexUpper[code>>8&0xF], hexUpper[code>>4&0xF], hexUpper[code&0xF])
		}
	}
	return append(dst, b[:]...)
}

// ManufacturerCode is the inverse of ManufacturerName for three letters A-Z.
func ManufacturerCode(name string) (uint16, error) {
	if len(name) != 3 {
		return 0, fmt.Errorf("manufacturer %q: want three letters", name)
	}
	var code uint16
	for i := range 3 {
		c := name[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c < 'A' || c > 'Z' {
			return 0, fmt.Errorf("manufacturer %q: want letters A-Z", name)
		}
		code = code<<5 | uint16(c-64)
	}
	return code, nil
}

const (
	longHeaderLen  = 12
	shortHeaderLen = 4
)

// decodeLongHeader reads the 12-byte header of CI 0x72/0x76 into the
// zero header h. (Filling h in place, rather than returning a Header,
// spares write barriers on the telegram while the garbage collector runs.)
func decodeLongHeader(h *Header, b []byte, txt *telegramText) error {
	if len(b) < longHeaderLen {
		return fmt.Errorf("long header needs %d bytes, have %d: %w", longHeaderLen, len(b), ErrTruncated)
	}
	copy(h.Address[:], b[:8])
	h.ID = txt.keep(h.Address.appendID(txt.buf()))
	h.Manufacturer = txt.keep(appendManufacturerName(txt.buf(), h.Address.ManufacturerCode()))
	h.Version = b[6]
	h.Medium = Medium(b[7])
	h.AccessNumber = b[8]
	h.Status = b[9]
	h.Signature = binary.LittleEndian.Uint16(b[10:12])
	return nil
}

// decodeShortHeader reads the 4-byte header of CI 0x7A.
func decodeShortHeader(b []byte) (Header, error) {
	if len(b) < shortHeaderLen {
		return Header{}, fmt.Errorf("short header needs %d bytes, have %d: %w", shortHeaderLen, len(b), ErrTruncated)
	}
	return Header{
		AccessNumber: b[0],
		Status:       b[1],
		Signature:    binary.LittleEndian.Uint16(b[2:4]),
	}, nil
}

// encodeLongHeader appends the 12-byte long header of h to dst.
func encodeLongHeader(dst []byte, h Header) []byte {
	dst = append(dst, h.Address[:6]...)
	dst = append(dst, h.Version, byte(h.Medium), h.AccessNumber, h.Status)
	return binary.LittleEndian.AppendUint16(dst, h.Signature)
}
