package sim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ParseHex reads a telegram written as hex digits, with or without
// whitespace between the bytes (the form of libmbus's .hex files).
func ParseHex(s string) ([]byte, error) {
	digits := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	if digits == "" {
		return nil, fmt.Errorf("hex: no bytes")
	}
	if len(digits)%2 != 0 {
		return nil, fmt.Errorf("hex: odd number of digits (%d)", len(digits))
	}
	out, err := hex.DecodeString(digits)
	if err != nil {
		var bad hex.InvalidByteError
		if errors.As(err, &bad) {
			return nil, fmt.Errorf("hex: %q is not a hex digit", rune(bad))
		}
		return nil, fmt.Errorf("hex: %w", err)
	}
	return out, nil
}
