package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

const kamstrupHex = "internal/mbus/testdata/libmbus/test-frames/kamstrup_multical_601.hex"

func runDecode(t *testing.T, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cmdDecode(context.Background(), args, bytes.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeJSON(t *testing.T) {
	hex := readFile(t, kamstrupHex)
	for _, tc := range []struct {
		name  string
		stdin []byte
		args  []string
	}{
		{"stdin", hex, nil},
		{"dash", hex, []string{"-"}},
		{"args", nil, strings.Fields(string(hex))},
		{"one arg", nil, []string{strings.ReplaceAll(string(hex), " ", "")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runDecode(t, tc.stdin, tc.args...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			var got struct {
				Header struct {
					ID           string `json:"id"`
					Manufacturer string `json:"manufacturer"`
					Medium       string `json:"medium"`
				} `json:"header"`
				Records []struct {
					Key   string `json:"key"`
					Unit  string `json:"unit"`
					Value any    `json:"value"`
				} `json:"records"`
				More *bool `json:"more_records_follow"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if got.Header.ID != "06855817" || got.Header.Manufacturer != "KAM" || got.Header.Medium != "heat_outlet" || got.More == nil {
				t.Errorf("header: got %+v", got.Header)
			}
			r := got.Records[1]
			if r.Key != "energy" || r.Unit != "kWh" || r.Value != 37351.0 {
				t.Errorf("record 1: got %+v, want energy 37351 kWh", r)
			}
		})
	}
}

func TestDecodeSeveralTelegrams(t *testing.T) {
	two := append(append(readFile(t, kamstrupHex), '\n'), readFile(t, "internal/mbus/testdata/libmbus/error-frames/application_busy.hex")...)
	out, errOut, code := runDecode(t, two)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"app_error":{"code":8,"name":"application_busy"}`) {
		t.Fatalf("got %d lines:\n%s", len(lines), out)
	}
}

func TestDecodeText(t *testing.T) {
	out, errOut, code := runDecode(t, readFile(t, kamstrupHex), "--format", "text")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"telegram 1: CI 0x72, id 06855817, manufacturer KAM", "energy ", "37351", "kWh", "date_s1", "2010-12-31"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	kam := readFile(t, kamstrupHex)
	badSum := bytes.Replace(kam, []byte("16\n"), []byte("16"), 1)
	badSum = append(bytes.TrimSpace(badSum), []byte(" 68 03 03 68 08 01 70 00 16")...)
	random := make([]byte, 10<<20)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin []byte
		args  []string
		code  int
		want  string
	}{
		{"empty", nil, nil, 1, "decode: input: invalid hex: no hex digits\n"},
		{"odd digits", []byte("68 0"), nil, 1, "decode: input: character 4: invalid hex: odd number of hex digits\n"},
		{"single digit byte", []byte("D 04"), nil, 1, "decode: input: character 1: invalid hex: byte with a single hex digit\n"},
		{"odd at end", []byte("680"), nil, 1, "decode: input: character 3: invalid hex: odd number of hex digits\n"},
		{"non-hex", []byte("68 zz"), nil, 1, "decode: input: character 4: invalid hex: 'z' is not a hex digit\n"},
		{"garbage frame", []byte("01 02 03"), nil, 1, "decode: telegram 1: mbus: at byte 0: 0x01: bad start character\n"},
		{"truncated", []byte("68 10 10 68 08"), nil, 1, "decode: telegram 1: mbus: at byte 5: truncated frame\n"},
		{"second checksum", badSum, nil, 1, "decode: telegram 2: mbus: at byte 7: checksum mismatch: got 0x00, want 0x79\n"},
		{"records", readFile(t, "internal/mbus/testdata/libmbus/error-frames/too_many_vife.hex"), nil, 1,
			"decode: telegram 1: mbus: at byte 42: more than 10 VIFEs\n"},
		{"ack", []byte("E5"), nil, 1, "decode: telegram 1: mbus: ack frame has no application layer\n"},
		{"bad format", nil, []string{"--format", "xml", "E5"}, 2, "decode: --format \"xml\": want json or text\n"},
		{"dash and hex", nil, []string{"-", "E5"}, 1, "decode: \"-\" (stdin) cannot be mixed with hex arguments\n"},
		{"random 10 MB", random, nil, 1, "decode: input: character "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runDecode(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.HasPrefix(errOut, tt.want) {
				t.Errorf("got exit %d, stderr %q; want exit %d, stderr %q", code, errOut, tt.code, tt.want)
			}
		})
	}
}

func TestDecodeKey(t *testing.T) {
	frame := readFile(t, "internal/mbus/testdata/frames/mode5_aes.hex")
	key := strings.TrimSpace(string(readFile(t, "internal/mbus/testdata/frames/mode5_aes.key")))
	out, errOut, code := runDecode(t, frame, "--key", key)
	if code != 0 || errOut != "" || !strings.Contains(out, `"remaining_battery_life"`) || !strings.Contains(out, `"security_mode":5`) {
		t.Fatalf("with key: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	out, errOut, code = runDecode(t, frame)
	if code != 1 || out != "" || !strings.Contains(errOut, "encrypted, key needed") {
		t.Fatalf("without key: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	_, errOut, code = runDecode(t, frame, "--key", "0011")
	if code != 2 || !strings.Contains(errOut, "32 hex digits") || strings.Contains(errOut, "0011") {
		t.Fatalf("short key: exit %d, stderr %q", code, errOut)
	}
}
