package mbus

import (
	"bytes"
	"errors"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    Frame
		wire []byte
	}{
		{"ack", Frame{Type: FrameAck}, []byte{0xE5}},
		{"short SND_NKE", Frame{Type: FrameShort, C: CSndNKE, A: 5}, []byte{0x10, 0x40, 0x05, 0x45, 0x16}},
		{"short REQ_UD2 FCB", Frame{Type: FrameShort, C: CReqUD2 | FCB, A: 0xFE}, []byte{0x10, 0x7B, 0xFE, 0x79, 0x16}},
		{"control", Frame{Type: FrameControl, C: CSndUD, A: 0xFE, CI: CIAppReset}, []byte{0x68, 0x03, 0x03, 0x68, 0x53, 0xFE, 0x50, 0xA1, 0x16}},
		{"long", Frame{Type: FrameLong, C: CSndUD, A: 0xFE, CI: CIDataSend, Data: []byte{0x01, 0x7A, 0x08}},
			[]byte{0x68, 0x06, 0x06, 0x68, 0x53, 0xFE, 0x51, 0x01, 0x7A, 0x08, 0x25, 0x16}},
		{"long max", Frame{Type: FrameLong, C: CRspUD, A: 1, CI: CIRespVarLong, Data: make([]byte, 252)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.Encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if tt.wire != nil && !bytes.Equal(got, tt.wire) {
				t.Fatalf("encode: got % X, want % X", got, tt.wire)
			}
			n, err := FrameLen(got)
			if err != nil || n != len(got) {
				t.Fatalf("FrameLen: got %d, %v, want %d", n, err, len(got))
			}
			back, n, err := DecodeFrame(got)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if n != len(got) || back.Type != tt.f.Type || back.C != tt.f.C || back.A != tt.f.A || back.CI != tt.f.CI || !bytes.Equal(back.Data, tt.f.Data) {
				t.Fatalf("decode: got %+v (%d bytes), want %+v", back, n, tt.f)
			}
		})
	}
}

func TestFrameErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		want   error
		offset int
	}{
		{"bad start", []byte{0x11, 0x00}, ErrBadStart, 0},
		{"short truncated", []byte{0x10, 0x40}, ErrTruncated, 2},
		{"short checksum", []byte{0x10, 0x40, 0x05, 0x46, 0x16}, ErrChecksum, 3},
		{"short stop", []byte{0x10, 0x40, 0x05, 0x45, 0x17}, ErrBadStop, 4},
		{"length fields", []byte{0x68, 0x03, 0x04, 0x68}, ErrLengthMismatch, 2},
		{"second start", []byte{0x68, 0x03, 0x03, 0x69}, ErrBadStart, 3},
		{"length below 3", []byte{0x68, 0x02, 0x02, 0x68, 0x08, 0x01, 0x09, 0x16}, ErrLengthMismatch, 1},
		{"long truncated", []byte{0x68, 0x03, 0x03, 0x68, 0x08, 0x01}, ErrTruncated, 6},
		{"long checksum", []byte{0x68, 0x03, 0x03, 0x68, 0x08, 0x01, 0x72, 0x00, 0x16}, ErrChecksum, 7},
		{"long stop", []byte{0x68, 0x03, 0x03, 0x68, 0x08, 0x01, 0x72, 0x7B, 0x00}, ErrBadStop, 8},
		{"empty", nil, ErrTruncated, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeFrame(tt.in)
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FrameError", err)
			}
			if !errors.Is(err, tt.want) || fe.Offset != tt.offset {
				t.Fatalf("got %v (offset %d), want %v at offset %d", err, fe.Offset, tt.want, tt.offset)
			}
		})
	}
}

func TestFrameEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		f    Frame
		want error
	}{
		{"too long", Frame{Type: FrameLong, Data: make([]byte, 253)}, ErrTooLong},
		{"control with data", Frame{Type: FrameControl, Data: []byte{1}}, nil},
		{"unknown type", Frame{Type: 9}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.f.Encode()
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("got %v, want error %v", err, tt.want)
			}
		})
	}
}

func TestParseTelegramTrailingBytes(t *testing.T) {
	wire := []byte{0x68, 0x03, 0x03, 0x68, 0x08, 0x01, 0x70, 0x79, 0x16, 0xE5}
	_, err := ParseTelegram(wire)
	var fe *FrameError
	if !errors.As(err, &fe) || fe.Offset != 9 {
		t.Fatalf("got %v, want an error at byte 9", err)
	}
}

func TestParseHex(t *testing.T) {
	tests := []struct {
		in      string
		want    []byte
		wantErr string
	}{
		{"68 AE ae 68", []byte{0x68, 0xAE, 0xAE, 0x68}, ""},
		{"68AE\n\tAE68\r\n", []byte{0x68, 0xAE, 0xAE, 0x68}, ""},
		{"0x68,0xE5", []byte{0x68, 0xE5}, ""},
		{"", nil, "invalid hex: no hex digits"},
		{"  \n", nil, "invalid hex: no hex digits"},
		{"6", nil, "character 1: invalid hex: odd number of hex digits"},
		{"68 A", nil, "character 4: invalid hex: odd number of hex digits"},
		{"D 04", nil, "character 1: invalid hex: byte with a single hex digit"},
		{"68 G1", nil, `character 4: invalid hex: 'G' is not a hex digit`},
		{"68\x00", nil, "character 3: invalid hex: byte 0x00 is not a hex digit"},
	}
	for _, tt := range tests {
		got, err := ParseHex(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrHex) {
				t.Errorf("ParseHex(%q): got error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("ParseHex(%q): got % X, %v, want % X", tt.in, got, err, tt.want)
		}
	}
}
