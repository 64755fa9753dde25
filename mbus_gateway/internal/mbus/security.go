package mbus

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
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

// EncryptFrame is the encode side of security mode 5 (EN 13757-7:2018,
// AES-128-CBC with the IV of modeFiveIV): it returns the variable data
// response f (long header, CI 0x72 or 0x76) with its records encrypted
// with key, as a meter in mode 5 sends them. The records are preceded by the two idle fillers
// (2F 2F) the receiver checks and padded with fillers to whole 16-byte
// blocks; the configuration field announces mode 5 and the number of
// blocks, its other bits are kept. f is not changed.
func EncryptFrame(f Frame, key []byte) (Frame, error) {
	if f.Type != FrameLong || (f.CI != CIRespVarLong && f.CI != CIRespVarLong2) {
		return f, fmt.Errorf("mbus: encrypt: %v frame with CI 0x%02X: want a variable data response with a long header", f.Type, f.CI)
	}
	if len(f.Data) < longHeaderLen {
		return f, fmt.Errorf("mbus: encrypt: long header needs %d bytes, have %d: %w", longHeaderLen, len(f.Data), ErrTruncated)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return f, fmt.Errorf("mbus: encrypt: key: %w", err)
	}
	hdr, records := f.Data[:longHeaderLen], f.Data[longHeaderLen:]
	n := (2 + len(records) + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
	if blocks := n / aes.BlockSize; blocks > 0x0F {
		return f, fmt.Errorf("mbus: encrypt: %d blocks, the configuration field counts at most 15", blocks)
	}
	data := make([]byte, longHeaderLen, longHeaderLen+n)
	copy(data, hdr)
	sig := binary.LittleEndian.Uint16(hdr[10:12])&^0x1FF0 | SecurityModeAESCBC<<8 | uint16(n/aes.BlockSize)<<4
	binary.LittleEndian.PutUint16(data[10:12], sig)
	data = append(data, difFiller, difFiller)
	data = append(data, records...)
	for len(data) < longHeaderLen+n {
		data = append(data, difFiller)
	}
	body := data[longHeaderLen:]
	cipher.NewCBCEncrypter(block, modeFiveIV(data)).CryptBlocks(body, body)
	f.Data = data
	return f, nil
}
