package mbus

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibmbusErrorFrames checks the frames libmbus rejects: each gives a
// FrameError naming what is wrong and where, and keeps the records before
// the problem.
func TestLibmbusErrorFrames(t *testing.T) {
	tests := []struct {
		file    string
		want    error
		offset  int
		records int
		text    string
	}{
		{"error-frames/premature_end_of_data1", ErrTruncated, 32, 2, "DIF 0x8B needs 3 data bytes, 0 left"},
		{"error-frames/premature_end_of_data2", ErrTruncated, 32, 2, "DIF 0x8B needs 3 data bytes, 2 left"},
		{"error-frames/premature_end_of_dif1", ErrTruncated, 30, 2, "DIFE expected after 0x8B"},
		{"error-frames/premature_end_of_dif2", ErrTruncated, 31, 2, "DIFE expected after 0x8B"},
		{"error-frames/premature_end_of_vif1", ErrTruncated, 31, 2, "VIF expected"},
		{"error-frames/premature_end_of_var_vif1", ErrTruncated, 43, 3, "plain-text VIF of 19 characters, 6 bytes left"},
		{"error-frames/too_long_var_vif", ErrTruncated, 43, 3, "plain-text VIF of 243 characters"},
		{"error-frames/too_many_dife", ErrTooManyDIFE, 40, 2, "more than 10 DIFEs"},
		{"error-frames/too_many_vife", ErrTooManyVIFE, 42, 2, "more than 10 VIFEs"},
		{"error-frames/too_short_header", ErrTruncated, 12, 0, "long header needs 12 bytes, have 5"},
		{"unsupported-frames/invalid_length2", ErrTruncated, 22, 0, "fixed data structure needs 16 bytes, have 15"},
		{"unsupported-frames/manual_frame4", ErrUnsupportedCI, 6, 0, "0x51: unsupported CI field"},
		{"unsupported-frames/manual_frame5", ErrUnsupportedCI, 6, 0, "0x51"},
		{"unsupported-frames/manual_frame6", ErrUnsupportedCI, 6, 0, "0x51"},
		{"unsupported-frames/invalid_length", ErrLengthMismatch, 1, 0, "length field 0 below 3"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			tg, err := ParseTelegram(readHexFile(t, filepath.Join("testdata/libmbus", tt.file+".hex")))
			var fe *FrameError
			if !errors.As(err, &fe) || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want a FrameError wrapping %v", err, tt.want)
			}
			if fe.Offset != tt.offset || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("got %q (offset %d), want %q at offset %d", err, fe.Offset, tt.text, tt.offset)
			}
			got := 0
			if tg != nil {
				got = len(tg.Records)
			}
			if got != tt.records {
				t.Errorf("got %d records before the error, want %d", got, tt.records)
			}
		})
	}
}

// TestLibmbusUnsupportedOther covers the unsupported frames that are not
// valid hex or are decodable after all.
func TestLibmbusUnsupportedOther(t *testing.T) {
	// manual_frame1.hex starts with a one-digit byte "D".
	if _, err := ParseHex(string(mustRead(t, "testdata/libmbus/unsupported-frames/manual_frame1.hex"))); err == nil ||
		err.Error() != "character 1: invalid hex: byte with a single hex digit" {
		t.Errorf("manual_frame1: got %v", err)
	}
	// svm_f22_telegram2 is valid: its data is all manufacturer specific
	// after DIF 0x1F, which libmbus does not show.
	tg, err := ParseTelegram(readHexFile(t, "testdata/libmbus/unsupported-frames/svm_f22_telegram2.hex"))
	if err != nil {
		t.Fatalf("svm_f22_telegram2: %v", err)
	}
	if got, want := tg.Header.Manufacturer, "SVM"; got != want {
		t.Errorf("manufacturer: got %q, want %q", got, want)
	}
	if !tg.MoreRecordsFollow || len(tg.Records) != 0 || len(tg.ManufacturerData) != 206 {
		t.Errorf("got more=%v, %d records, %d manufacturer bytes; want true, 0, 206",
			tg.MoreRecordsFollow, len(tg.Records), len(tg.ManufacturerData))
	}
}

// TestLibmbusAppErrors decodes the CI 0x70 error frames and checks the
// code against libmbus's text.
func TestLibmbusAppErrors(t *testing.T) {
	libmbusText := map[string]string{
		"Unspecified error":          "unspecified_error",
		"Unimplemented CI-Field":     "unimplemented_ci",
		"Buffer too long, truncated": "buffer_too_long",
		"Too many records":           "too_many_records",
		"Premature end of record":    "premature_end_of_record",
		"More than 10 DIFE´s":        "too_many_difes",
		"More than 10 VIFE´s":        "too_many_vifes",
		"Application busy":           "application_busy",
		"Too many readouts":          "too_many_readouts",
	}
	files, _ := filepath.Glob("testdata/libmbus/error-frames/*.xml")
	if len(files) != 10 {
		t.Fatalf("got %d error frames with XML, want 10", len(files))
	}
	for _, x := range files {
		name := strings.TrimSuffix(filepath.Base(x), ".xml")
		t.Run(name, func(t *testing.T) {
			tg, err := ParseTelegram(readHexFile(t, strings.TrimSuffix(x, ".xml")+".hex"))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want, ok := libmbusText[readLibmbusXML(t, x).Slave.Error]
			if !ok {
				t.Fatalf("unknown libmbus error %q", readLibmbusXML(t, x).Slave.Error)
			}
			if tg.CI != CIAppError || AppErrorName(tg.AppError) != want {
				t.Errorf("got CI 0x%02X, error %d %q, want %q", tg.CI, tg.AppError, AppErrorName(tg.AppError), want)
			}
		})
	}
}
