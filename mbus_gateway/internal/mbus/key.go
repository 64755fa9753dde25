package mbus

import "errors"

// ErrKey is ParseKey's error. It never repeats the text it was given: a
// key is a secret.
var ErrKey = errors.New("want 32 hex digits (16 bytes) of an AES-128 key")

// ParseKey reads a meter's AES-128 key (security mode 5, EN 13757-7) given
// as 32 hex digits, spaced as ParseHex allows.
func ParseKey(s string) ([]byte, error) {
	k, err := ParseHex(s)
	if err != nil || len(k) != 16 {
		return nil, ErrKey
	}
	return k, nil
}
