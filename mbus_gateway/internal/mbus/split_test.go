package mbus

import (
	"errors"
	"os"
	"testing"
)

// TestParseTelegrams: a dump of two telegrams and the start of a third
// gives the two, then the third's truncation, and ends.
func TestParseTelegrams(t *testing.T) {
	text, err := os.ReadFile("testdata/libmbus/test-frames/kamstrup_multical_601.hex")
	if err != nil {
		t.Fatal(err)
	}
	one, err := ParseHex(string(text))
	if err != nil {
		t.Fatal(err)
	}
	dump := append(append(append([]byte{}, one...), one...), one[:10]...)
	var got []error
	ids := 0
	for tg, err := range ParseTelegrams(dump, nil) {
		got = append(got, err)
		if tg != nil && tg.Header.ID != "" {
			ids++
		}
	}
	if len(got) != 3 || got[0] != nil || got[1] != nil || !errors.Is(got[2], ErrTruncated) || ids != 2 {
		t.Errorf("got errors %v and %d telegrams with an ID; want nil, nil, ErrTruncated and 2", got, ids)
	}
	n := 0
	for _, err := range ParseTelegrams(dump, nil) {
		n++
		if err != nil || n == 1 {
			break // stopping early must not panic
		}
	}
}
