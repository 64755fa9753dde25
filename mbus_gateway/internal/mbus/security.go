package mbus

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

// Security modes of the configuration field (EN 13757-7:2018, clause 7:
// the long header's signature word). Meters in the field fill the word
// with other values (0xFFFF, …); only these two modes say that the
// payload is encrypted.
const (
	SecurityModeAESCBC      = 5 // AES-128-CBC with a static key
	SecurityModeAESCBCEphem = 7 // AES-128-CBC with an ephemeral key
)

// Errors of encrypted telegrams.
var (
	// ErrKeyNeeded reports an encrypted payload that was not decrypted:
	// no key was given, or the mode cannot be decrypted here.
	ErrKeyNeeded = errors.New("encrypted, key needed")
	// ErrDecrypt reports a payload that the given key does not decrypt
	// (the result does not start with 2F 2F).
	ErrDecrypt = errors.New("decryption failed: wrong key")
)

// SecurityMode returns the security mode in the configuration field of
// h (bits 8-12 of the signature word).
func (h Header) SecurityMode() byte { return byte(h.Signature >> 8 & 0x1F) }

// encryptedBlocks returns the number of encrypted 16-byte blocks that
// the configuration field of mode 5 announces (bits 4-7).
func (h Header) encryptedBlocks() int { return int(h.Signature >> 4 & 0x0F) }

// modeFiveIV makes the initialisation vector of security mode 5: the
// manufacturer (2 bytes) and the ID, version and medium (6 bytes) as the
// long header sends them, then the access number eight times.
func modeFiveIV(hdr []byte) []byte {
	iv := make([]byte, 0, aes.BlockSize)
	iv = append(iv, hdr[4:6]...)
	iv = append(iv, hdr[0:4]...)
	iv = append(iv, hdr[6:8]...)
	for range 8 {
		iv = append(iv, hdr[8])
	}
	return iv
}

// decryptBody returns the records of a telegram whose long header hdr
// announces security mode 5 or 7, decrypted with key: the encrypted
// blocks replaced by their plaintext, whatever follows them unchanged.
// The result never aliases body.
func decryptBody(h *Header, hdr, body, key []byte) ([]byte, error) {
	mode := h.SecurityMode()
	if mode != SecurityModeAESCBC {
		return nil, fmt.Errorf("security mode %d: %w (only mode 5 can be decrypted)", mode, ErrKeyNeeded)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("security mode 5: %w", ErrKeyNeeded)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("security mode 5: key: %w", err)
	}
	n := h.encryptedBlocks() * aes.BlockSize
	if n > len(body) {
		return nil, fmt.Errorf("security mode 5: %d encrypted bytes announced, %d sent: %w", n, len(body), ErrTruncated)
	}
	out := append([]byte(nil), body...)
	cipher.NewCBCDecrypter(block, modeFiveIV(hdr)).CryptBlocks(out[:n], out[:n])
	if n >= 2 && (out[0] != difFiller || out[1] != difFiller) {
		return nil, fmt.Errorf("security mode 5: %w", ErrDecrypt)
	}
	return out, nil
}
