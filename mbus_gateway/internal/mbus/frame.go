package mbus

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Link-layer start and stop characters (EN 13757-2, clause 5.2).
const (
	startAck   = 0xE5 // single character acknowledgement
	startShort = 0x10 // short frame: 10 C A CS 16
	startLong  = 0x68 // control and long frames: 68 L L 68 C A CI ... CS 16
	stopByte   = 0x16
)

// Control field values (EN 13757-2, table 4). The FCB and FCV bits are
// combined with the request codes by the master.
const (
	CSndNKE = 0x40 // link reset, slave answers E5
	CSndUD  = 0x53 // send user data to the slave
	CReqUD2 = 0x5B // request class 2 data
	CReqUD1 = 0x5A // request class 1 data
	CRspUD  = 0x08 // slave response with user data
	FCB     = 0x20 // frame count bit
	FCV     = 0x10 // frame count bit valid
	ACD     = 0x20 // access demand (slave to master)
	DFC     = 0x10 // data flow control (slave to master)
)

// Special primary addresses (EN 13757-2, clause 5.4).
const (
	AddrUnconfigured = 0   // factory default of many meters
	AddrMaxPrimary   = 250 // highest assignable primary address
	AddrNetwork      = 253 // secondary addressing: the selected slave answers
	AddrBroadcastAll = 254 // every slave answers (collisions on a shared bus)
	AddrBroadcast    = 255 // every slave listens, none answers
)

// CI fields used by the master (EN 13757-3, table 2).
const (
	CIAppReset     = 0x50 // application reset
	CIDataSend     = 0x51 // data send (e.g. set primary address)
	CISelect       = 0x52 // selection of a slave by secondary address
	CIBaudBase     = 0xB8 // baud rate switch: 0xB8 300 ... 0xBF 38400
	CIRespVarLong  = 0x72 // variable data response, long header
	CIRespVarLong2 = 0x76 // variable data response, long header (mode 2, MSB first)
	CIRespVarShort = 0x7A // variable data response, short header
	CIRespVarNone  = 0x78 // variable data response, no header
	CIRespFixed    = 0x73 // fixed data structure
	CIRespFixed2   = 0x77 // fixed data structure, mode 2
	CIAppError     = 0x70 // application error report
	CIAlarm        = 0x71 // alarm status
)

// FrameType tells the kinds of frames on the wire apart.
type FrameType uint8

// Frame types (EN 13757-2, clause 5.2).
const (
	FrameAck     FrameType = iota + 1 // E5
	FrameShort                        // 10 C A CS 16
	FrameControl                      // 68 03 03 68 C A CI CS 16
	FrameLong                         // 68 L L 68 C A CI data CS 16
)

func (t FrameType) String() string {
	switch t {
	case FrameAck:
		return "ack"
	case FrameShort:
		return "short"
	case FrameControl:
		return "control"
	case FrameLong:
		return "long"
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// MaxFrameLen is the longest frame on the wire: L may be 255 (4 header
// bytes, 255 bytes C..data, checksum and stop).
const MaxFrameLen = 4 + 255 + 2

// Frame is one link-layer frame. For short frames CI and Data are unused;
// for control frames Data is empty.
type Frame struct {
	Type FrameType
	C    byte // control field
	A    byte // primary address
	CI   byte // control information (control and long frames)
	Data []byte
}

// Sentinel errors of the link layer; FrameError wraps them with an offset.
var (
	ErrTruncated      = errors.New("truncated frame")
	ErrBadStart       = errors.New("bad start character")
	ErrBadStop        = errors.New("bad stop character")
	ErrLengthMismatch = errors.New("length fields disagree")
	ErrChecksum       = errors.New("checksum mismatch")
	ErrTooLong        = errors.New("frame too long")
)

// FrameError reports where in the input decoding stopped and why.
type FrameError struct {
	Offset int   // byte offset from the start of the frame
	Err    error // one of the sentinel errors, or a more specific error
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("mbus: at byte %d: %v", e.Offset, e.Err)
}

func (e *FrameError) Unwrap() error { return e.Err }

func frameErr(off int, err error) error { return &FrameError{Offset: off, Err: err} }

// FrameLen reports how long the frame that starts at b[0] is. It returns
// n > 0 once the length is known (n may exceed len(b): read n-len(b) more
// bytes), n == 0 with a nil error when more bytes are needed to tell, and an
// error when b cannot start a valid frame. A reader uses it to stop reading
// as soon as a frame is complete instead of waiting for the line to go idle.
func FrameLen(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	switch b[0] {
	case startAck:
		return 1, nil
	case startShort:
		return 5, nil
	case startLong:
		if len(b) < 3 {
			return 0, nil
		}
		if b[1] != b[2] {
			return 0, frameErr(2, ErrLengthMismatch)
		}
		if len(b) >= 4 && b[3] != startLong {
			return 0, frameErr(3, ErrBadStart)
		}
		if b[1] < 3 {
			return 0, frameErr(1, fmt.Errorf("length field %d below 3: %w", b[1], ErrLengthMismatch))
		}
		return int(b[1]) + 6, nil
	}
	return 0, frameErr(0, fmt.Errorf("0x%02X: %w", b[0], ErrBadStart))
}

// DecodeFrame decodes the frame at the start of b and returns it with the
// number of bytes it used. Data aliases b.
func DecodeFrame(b []byte) (Frame, int, error) {
	n, err := FrameLen(b)
	if err != nil {
		return Frame{}, 0, err
	}
	if n == 0 || n > len(b) {
		return Frame{}, 0, frameErr(len(b), ErrTruncated)
	}
	switch b[0] {
	case startAck:
		return Frame{Type: FrameAck}, 1, nil
	case startShort:
		if cs := b[1] + b[2]; cs != b[3] {
			return Frame{}, 0, frameErr(3, fmt.Errorf("%w: got 0x%02X, want 0x%02X", ErrChecksum, b[3], cs))
		}
		if b[4] != stopByte {
			return Frame{}, 0, frameErr(4, fmt.Errorf("0x%02X: %w", b[4], ErrBadStop))
		}
		return Frame{Type: FrameShort, C: b[1], A: b[2]}, 5, nil
	}
	// Long or control frame: 68 L L 68 | C A CI data | CS 16
	body := b[4 : n-2]
	cs := checksum(body)
	if b[n-2] != cs {
		return Frame{}, 0, frameErr(n-2, fmt.Errorf("%w: got 0x%02X, want 0x%02X", ErrChecksum, b[n-2], cs))
	}
	if b[n-1] != stopByte {
		return Frame{}, 0, frameErr(n-1, fmt.Errorf("0x%02X: %w", b[n-1], ErrBadStop))
	}
	f := Frame{Type: FrameLong, C: body[0], A: body[1], CI: body[2], Data: body[3:]}
	if len(f.Data) == 0 {
		f.Type = FrameControl
		f.Data = nil
	}
	return f, n, nil
}

// checksum is the arithmetic sum of b modulo 256 (EN 13757-2, clause
// 5.4). Eight bytes are added at a time: the even and the odd bytes of
// each word go into separate 16-bit lanes, which cannot overflow within
// 128 words (128 × 2 × 255 < 65536), so the lanes are folded that often.
func checksum(b []byte) byte {
	const lanes = 0x00FF00FF00FF00FF
	var sum, acc uint64
	for len(b) >= 8 {
		for i := 0; i < 128 && len(b) >= 8; i++ {
			w := binary.LittleEndian.Uint64(b)
			acc += w&lanes + w>>8&lanes
			b = b[8:]
		}
		// Fold the four lanes; only the low byte of the sum matters.
		sum += acc + acc>>16 + acc>>32 + acc>>48
		acc = 0
	}
	for _, v := range b {
		sum += uint64(v)
	}
	return byte(sum)
}

// Encode returns the frame as bytes on the wire.
func (f Frame) Encode() ([]byte, error) {
	return f.AppendEncode(nil)
}

// AppendEncode appends the wire form of f to dst.
func (f Frame) AppendEncode(dst []byte) ([]byte, error) {
	switch f.Type {
	case FrameAck:
		return append(dst, startAck), nil
	case FrameShort:
		return append(dst, startShort, f.C, f.A, f.C+f.A, stopByte), nil
	case FrameControl, FrameLong:
		if f.Type == FrameControl && len(f.Data) > 0 {
			return dst, fmt.Errorf("mbus: control frame with %d data bytes", len(f.Data))
		}
		l := 3 + len(f.Data)
		if l > 255 {
			return dst, fmt.Errorf("mbus: %d data bytes: %w", len(f.Data), ErrTooLong)
		}
		dst = append(dst, startLong, byte(l), byte(l), startLong, f.C, f.A, f.CI)
		dst = append(dst, f.Data...)
		cs := f.C + f.A + f.CI
		for _, v := range f.Data {
			cs += v
		}
		return append(dst, cs, stopByte), nil
	}
	return dst, fmt.Errorf("mbus: cannot encode frame type %v", f.Type)
}
