package mbus

// WholeFrameLen tells how many bytes the frame at the start of b takes,
// or why b does not start with a whole frame (an error of DecodeFrame,
// e.g. ErrTruncated). It splits a dump of several frames.
func WholeFrameLen(b []byte) (int, error) {
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
