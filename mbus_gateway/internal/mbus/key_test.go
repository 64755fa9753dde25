package mbus

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	k, err := ParseKey("00112233 44556677 8899AABB CCDDEEFF")
	if err != nil || len(k) != 16 || k[0] != 0x00 || k[15] != 0xFF {
		t.Errorf("ParseKey(32 digits) = %x, %v; want the 16 bytes", k, err)
	}
	for _, bad := range []string{"", "0011", "00112233445566778899aabbccddeeff00", "zz112233445566778899aabbccddeeff"} {
		_, err := ParseKey(bad)
		if !errors.Is(err, ErrKey) || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Errorf("ParseKey(%q) = %v; want ErrKey, without the text", bad, err)
		}
	}
}
