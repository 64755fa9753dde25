package mbus

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// allHexFiles lists every .hex frame under testdata.
func allHexFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/libmbus/*/*.hex")
	if err != nil || len(files) == 0 {
		t.Fatalf("no .hex files in testdata: %v", err)
	}
	ours, err := filepath.Glob("testdata/frames/*.hex")
	if err != nil {
		t.Fatal(err)
	}
	return append(files, ours...)
}

// FuzzDecode feeds arbitrary bytes to the frame and telegram decoders.
// They must never panic; whatever decodes must marshal to JSON, and a
// frame that decodes must encode back to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, path := range allHexFiles(f) {
		text, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if b, err := ParseHex(string(text)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// A frame is at most 261 bytes; longer inputs only slow the fuzzer
		// down (TestHugeInputs covers them).
		if len(b) > 4*MaxFrameLen {
			return
		}
		// Mutations rarely keep the checksum right, so the application
		// layer also gets the bytes directly: b[6] as CI, the rest as data.
		if len(b) > 7 {
			tg, err := DecodeTelegram(Frame{Type: FrameLong, C: b[4], A: b[5], CI: b[6], Data: b[7:]})
			checkTelegram(t, tg, err)
		}
		fr, n, err := DecodeFrame(b)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("DecodeFrame error %v is not a *FrameError", err)
			}
			return
		}
		enc, err := fr.Encode()
		if err != nil {
			t.Fatalf("decoded frame does not encode: %v", err)
		}
		if string(enc) != string(b[:n]) {
			t.Fatalf("encode(decode(%x)) = %x", b[:n], enc)
		}
		tg, err := ParseTelegram(b[:n])
		checkTelegram(t, tg, err)
	})
}

// checkTelegram checks what every decoded telegram must satisfy, even a
// partly decoded one.
func checkTelegram(t *testing.T, tg *Telegram, err error) {
	t.Helper()
	if err != nil {
		var fe *FrameError
		if !errors.As(err, &fe) && tg != nil && tg.Records != nil {
			t.Fatalf("record error %v is not a *FrameError", err)
		}
	}
	if tg == nil {
		return
	}
	if _, jerr := json.Marshal(tg); jerr != nil {
		t.Fatalf("telegram does not marshal: %v (decode error %v)", jerr, err)
	}
	seen := make(map[string]bool, len(tg.Records))
	for _, r := range tg.Records {
		if !validKey(r.Key) {
			t.Fatalf("key %q has characters outside [a-z0-9_]", r.Key)
		}
		if seen[r.Key] {
			t.Fatalf("key %q appears twice", r.Key)
		}
		seen[r.Key] = true
	}
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// TestHugeInputs checks that decoding stays fast on data far longer than
// a frame, where every record has the same key.
func TestHugeInputs(t *testing.T) {
	for _, c := range []byte{0x72, 0x01, 0x0D, 0x04, 0x7C} {
		data := make([]byte, 64<<10)
		for i := range data {
			data[i] = c
		}
		tg, err := DecodeTelegram(Frame{Type: FrameLong, CI: CIRespVarLong, Data: data})
		checkTelegram(t, tg, err)
	}
}
