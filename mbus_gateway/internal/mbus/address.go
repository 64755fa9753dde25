package mbus

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// SecondaryAddress is the 8-byte secondary address of a slave in wire order
// (EN 13757-3, clause 11.3 and table 13): identification number (4 bytes
// BCD, least significant byte first), manufacturer (2 bytes, little endian),
// version and medium.
//
// As a pattern for selection, a nibble 0xF in the identification number and
// the values 0xFFFF (manufacturer), 0xFF (version, medium) are wildcards.
type SecondaryAddress [8]byte

// Wildcard matches every slave.
var Wildcard = SecondaryAddress{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// ParseSecondaryAddress reads the 16-hex-digit text form used by libmbus and
// most tools: ID as printed (8 digits), then the manufacturer bytes in wire
// order, version and medium, e.g. "148391202D2C0102". 'F' is a wildcard.
func ParseSecondaryAddress(s string) (SecondaryAddress, error) {
	var a SecondaryAddress
	if len(s) != 16 {
		return a, fmt.Errorf("secondary address %q: want 16 hex digits, got %d characters", s, len(s))
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return a, fmt.Errorf("secondary address %q: not hex digits", s)
	}
	// The ID is printed most significant digit first but sent LSB first.
	a[0], a[1], a[2], a[3] = raw[3], raw[2], raw[1], raw[0]
	copy(a[4:], raw[4:])
	return a, nil
}

// String gives the 16-hex-digit text form (upper case).
func (a SecondaryAddress) String() string {
	var b [8]byte
	b[0], b[1], b[2], b[3] = a[3], a[2], a[1], a[0]
	copy(b[4:], a[4:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// ID returns the identification number as printed on the meter (8 digits;
// non-BCD meters may show hex digits A-F).
func (a SecondaryAddress) ID() string {
	var b [8]byte
	return string(a.appendID(b[:0]))
}

// appendID appends what ID returns.
func (a SecondaryAddress) appendID(dst []byte) []byte {
	for i := range 4 {
		v := a[3-i]
		dst = append(dst, hexUpper[v>>4], hexUpper[v&0x0F])
	}
	return dst
}

// ManufacturerCode returns the raw 15-bit manufacturer field.
func (a SecondaryAddress) ManufacturerCode() uint16 { return uint16(a[4]) | uint16(a[5])<<8 }

// Version returns the version byte.
func (a SecondaryAddress) Version() byte { return a[6] }

// Medium returns the medium byte.
func (a SecondaryAddress) Medium() Medium { return Medium(a[7]) }

// IsPattern reports whether a contains any wildcard.
func (a SecondaryAddress) IsPattern() bool {
	for _, b := range a[:4] {
		if b&0x0F == 0x0F || b&0xF0 == 0xF0 {
			return true
		}
	}
	return a.ManufacturerCode() == 0xFFFF || a[6] == 0xFF || a[7] == 0xFF
}

// Matches reports whether the slave address addr is selected by pattern a.
func (a SecondaryAddress) Matches(addr SecondaryAddress) bool {
	for i := range 4 {
		p, v := a[i], addr[i]
		if p&0x0F != 0x0F && p&0x0F != v&0x0F {
			return false
		}
		if p&0xF0 != 0xF0 && p&0xF0 != v&0xF0 {
			return false
		}
	}
	if a.ManufacturerCode() != 0xFFFF && a.ManufacturerCode() != addr.ManufacturerCode() {
		return false
	}
	if a[6] != 0xFF && a[6] != addr[6] {
		return false
	}
	return a[7] == 0xFF || a[7] == addr[7]
}

// Address names one meter on the bus: a primary address (0-250) or a
// secondary address (16 hex digits, no wildcards).
type Address struct {
	Primary     byte
	Secondary   SecondaryAddress
	IsSecondary bool
}

// ParseAddress reads "0"…"250" or a 16-hex-digit secondary address.
func ParseAddress(s string) (Address, error) {
	if len(s) == 16 {
		sa, err := ParseSecondaryAddress(s)
		if err != nil {
			return Address{}, err
		}
		if sa.IsPattern() {
			return Address{}, fmt.Errorf("address %q: wildcards (F) select several meters; give the full secondary address", s)
		}
		return Address{Secondary: sa, IsSecondary: true}, nil
	}
	if s == "" || len(s) > 3 {
		return Address{}, fmt.Errorf("address %q: want a primary address 0-250 or 16 hex digits", s)
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return Address{}, fmt.Errorf("address %q: want a primary address 0-250 or 16 hex digits", s)
		}
		n = n*10 + int(c-'0')
	}
	if n > AddrMaxPrimary {
		return Address{}, fmt.Errorf("address %q: primary addresses go from 0 to %d", s, AddrMaxPrimary)
	}
	return Address{Primary: byte(n)}, nil
}

// String gives the form ParseAddress reads.
func (a Address) String() string {
	if a.IsSecondary {
		return a.Secondary.String()
	}
	return fmt.Sprint(a.Primary)
}
