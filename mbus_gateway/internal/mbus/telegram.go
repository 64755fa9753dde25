package mbus

import (
	"errors"
	"fmt"
)

// Telegram is the application layer of one RSP_UD frame.
type Telegram struct {
	C      byte // control field of the frame (RSP_UD, with ACD/DFC bits)
	A      byte // primary address of the answering slave
	CI     byte
	Header Header
	// Records are in telegram order.
	Records []Record
	// MoreRecordsFollow is set by DIF 0x1F: the master must request the
	// next telegram (toggling FCB) to get the rest.
	MoreRecordsFollow bool
	// ManufacturerData is everything after DIF 0x0F or 0x1F.
	ManufacturerData []byte
	// AppError is the error code of a CI 0x70 application error report,
	// -1 when the telegram is not an error report.
	AppError int
}

// ErrUnsupportedCI reports a CI field the decoder does not handle.
var ErrUnsupportedCI = errors.New("unsupported CI field")

// ParseTelegram decodes a complete RSP_UD frame and its application layer.
// When some records cannot be decoded, the telegram holds every record
// before the problem and the error says where decoding stopped.
func ParseTelegram(b []byte) (*Telegram, error) {
	f, n, err := DecodeFrame(b)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, frameErr(n, fmt.Errorf("%d bytes after the frame", len(b)-n))
	}
	return DecodeTelegram(f)
}

// DecodeTelegram decodes the application layer of a long frame.
func DecodeTelegram(f Frame) (*Telegram, error) {
	if f.Type != FrameLong && f.Type != FrameControl {
		return nil, fmt.Errorf("mbus: %v frame has no application layer", f.Type)
	}
	t := &Telegram{C: f.C, A: f.A, CI: f.CI, AppError: -1}
	// Offsets in errors count from the start of the frame: 7 bytes precede the data.
	const dataOff = 7
	var body []byte
	var err error
	switch f.CI {
	case CIRespVarLong, CIRespVarLong2:
		if t.Header, err = decodeLongHeader(f.Data); err != nil {
			return t, frameErr(dataOff+len(f.Data), err)
		}
		body = f.Data[longHeaderLen:]
	case CIRespVarShort:
		if t.Header, err = decodeShortHeader(f.Data); err != nil {
			return t, frameErr(dataOff+len(f.Data), err)
		}
		body = f.Data[shortHeaderLen:]
	case CIRespVarNone:
		body = f.Data
	default:
		return t, frameErr(6, fmt.Errorf("0x%02X: %w", f.CI, ErrUnsupportedCI))
	}
	_ = body
	return t, errors.New("mbus: record decoding not implemented yet")
}
