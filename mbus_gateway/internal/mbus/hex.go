package mbus

import (
	"errors"
	"fmt"
)

// ErrHex reports text that is not a sequence of hex byte values.
var ErrHex = errors.New("invalid hex")

// ParseHex reads bytes written as hex digits, the form meters' telegrams
// are shared in: "68 AE AE 68 …" (libmbus .hex files), "68AEAE68…", or
// any mix, with spaces, tabs and newlines anywhere between bytes. An
// optional "0x" prefix per byte is accepted. Errors name the character
// position (counted from 1) and what is wrong.
func ParseHex(s string) ([]byte, error) {
	out := make([]byte, 0, len(s)/2)
	var hi byte
	half := false
	halfPos := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' {
			if half {
				return nil, fmt.Errorf("character %d: %w: byte with a single hex digit", halfPos+1, ErrHex)
			}
			continue
		}
		if !half && c == '0' && i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') {
			i++
			continue
		}
		d, ok := hexDigit(c)
		if !ok {
			if c < 0x20 || c >= 0x7F {
				return nil, fmt.Errorf("character %d: %w: byte 0x%02X is not a hex digit", i+1, ErrHex, c)
			}
			return nil, fmt.Errorf("character %d: %w: %q is not a hex digit", i+1, ErrHex, rune(c))
		}
		if !half {
			hi, half, halfPos = d, true, i
			continue
		}
		out = append(out, hi<<4|d)
		half = false
	}
	if half {
		return nil, fmt.Errorf("character %d: %w: odd number of hex digits", halfPos+1, ErrHex)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no hex digits", ErrHex)
	}
	return out, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
