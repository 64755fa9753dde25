package mbus

import "iter"

// ParseTelegrams parses a dump of frames one after another (as
// `mbus-gateway decode` reads them), decrypting with key where a telegram
// needs it (nil: none). It yields each telegram with the error of
// ParseTelegramKey, which may come with the records decoded before it; a
// dump that does not go on with a whole frame yields a nil telegram with
// the error (e.g. ErrTruncated) and ends.
func ParseTelegrams(raw, key []byte) iter.Seq2[*Telegram, error] {
	return func(yield func(*Telegram, error) bool) {
		for len(raw) > 0 {
			n, err := wholeFrameLen(raw)
			if err != nil {
				yield(nil, err)
				return
			}
			t, err := ParseTelegramKey(raw[:n], key)
			raw = raw[n:]
			if !yield(t, err) {
				return
			}
		}
	}
}

// wholeFrameLen tells how many bytes the frame at the start of b takes,
// or why b does not start with a whole frame (an error of DecodeFrame).
func wholeFrameLen(b []byte) (int, error) {
	n, err := FrameLen(b)
	if err != nil {
		return 0, err
	}
	if n == 0 || n > len(b) {
		_, _, err := DecodeFrame(b)
		return 0, err
	}
	return n, nil
}
