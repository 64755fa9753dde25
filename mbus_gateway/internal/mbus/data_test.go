package mbus

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestDateTimeMatchesTimeDate checks the direct date arithmetic against
// time.Date for every day of the years a 7-bit M-Bus year can name, and
// the validity check against time.Date's normalisation.
func TestDateTimeMatchesTimeDate(t *testing.T) {
	for y := 1900; y <= 2100; y++ {
		for m := 0; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				want := m >= 1 && m <= 12 && d >= 1 &&
					time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Day() == d
				if got := validDate(y, m, d); got != want {
					t.Fatalf("validDate(%d, %d, %d) = %v, want %v", y, m, d, got, want)
				}
				if !want {
					continue
				}
				h, mi, s := (d*7)%24, (d*13+m)%60, (y+d)%60
				got := dateTime(y, m, d, h, mi, s)
				if want := time.Date(y, time.Month(m), d, h, mi, s, 0, time.UTC); got != want {
					t.Fatalf("dateTime(%d-%02d-%02d %02d:%02d:%02d) = %v, want %v", y, m, d, h, mi, s, got, want)
				}
			}
		}
	}
}

// TestTimeJ checks a type J time of day against time.Date, including
// the invalid fields.
func TestTimeJ(t *testing.T) {
	tests := []struct {
		b    []byte
		want time.Time
		ok   bool
	}{
		{[]byte{0, 0, 0}, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{[]byte{59, 59, 23}, time.Date(0, 1, 1, 23, 59, 59, 0, time.UTC), true},
		{[]byte{5, 30, 12}, time.Date(0, 1, 1, 12, 30, 5, 0, time.UTC), true},
		{[]byte{60, 0, 0}, time.Time{}, false},
		{[]byte{0, 60, 0}, time.Time{}, false},
		{[]byte{0, 0, 24}, time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := decodeTimeJ(tt.b)
		if got != tt.want || ok != tt.ok {
			t.Errorf("decodeTimeJ(% x) = %v, %v; want %v, %v", tt.b, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDecodeBCD(t *testing.T) {
	tests := []struct {
		b    []byte
		want int64
		ok   bool
	}{
		{nil, 0, true},
		{[]byte{0x00}, 0, true},
		{[]byte{0x99}, 99, true},
		{[]byte{0x78, 0x56, 0x34, 0x12}, 12345678, true},
		{[]byte{0x21, 0xF3}, -321, true},                                 // leading F is a minus sign
		{[]byte{0x99, 0x99, 0x99, 0x99, 0x99, 0x99}, 999999999999, true}, // 12 digits
		{[]byte{0x89, 0x67, 0x45, 0x23, 0x01, 0x89, 0x67, 0x45, 0x23}, 234567890123456789, true},
		{[]byte{0x1A}, 0, false},       // error digit low
		{[]byte{0xA1}, 0, false},       // error digit high
		{[]byte{0xF1, 0x00}, 0, false}, // F below the top digit
		{[]byte{0x12, 0xFF}, 0, false}, // -F…
		{[]byte{0xEE, 0xEE}, 0, false},
	}
	for _, tt := range tests {
		got, ok := decodeBCD(tt.b)
		if got != tt.want || ok != tt.ok {
			t.Errorf("decodeBCD(% x) = %d, %v; want %d, %v", tt.b, got, ok, tt.want, tt.ok)
		}
	}
}

// TestDecodeInt checks every size against a byte-by-byte reading with
// sign extension.
func TestDecodeInt(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 0; n <= 8; n++ {
		for range 1000 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			var want int64
			for i := n - 1; i >= 0; i-- {
				want = want<<8 | int64(b[i])
			}
			if n > 0 && n < 8 && b[n-1]&0x80 != 0 {
				want -= 1 << (8 * n)
			}
			if got := decodeInt(b); got != want {
				t.Fatalf("decodeInt(% x) = %d, want %d", b, got, want)
			}
		}
	}
}

// TestChecksum compares the word-wise checksum with a plain byte sum,
// also past the lengths where it folds its lanes.
func TestChecksum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 3000; n += 1 + n/16 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if n%2 == 0 { // all 0xFF is the worst case for lane overflow
			for i := range b {
				b[i] = 0xFF
			}
		}
		var want byte
		for _, v := range b {
			want += v
		}
		if got := checksum(b); got != want {
			t.Fatalf("checksum of %d bytes = 0x%02X, want 0x%02X", n, got, want)
		}
	}
}

// TestKeyHashContinues checks what setKey relies on: hashing a key in
// parts gives the hash of the whole, and the stored quantity hashes are
// those of the quantities.
func TestKeyHashContinues(t *testing.T) {
	for _, k := range []string{"", "energy", "energy_s1", "volume_flow_forward_max_s12_t3_u1_17"} {
		whole := keyHash(keyHashStart, k)
		for i := 0; i <= len(k); i++ {
			if got := keyHash(keyHash(keyHashStart, k[:i]), []byte(k[i:])); got != whole {
				t.Errorf("hash of %q split at %d = %x, want %x", k, i, got, whole)
			}
		}
	}
	for _, table := range [][]vifInfo{primaryVIF[:], extFDVIF[:], extFBVIF[:], fixedUnit[:], {reservedVIF}} {
		for _, info := range table {
			if want := keyHash(keyHashStart, info.quantity); info.qhash != want {
				t.Errorf("qhash of %q = %x, want %x", info.quantity, info.qhash, want)
			}
		}
	}
}
