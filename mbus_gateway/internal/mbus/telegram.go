package mbus

import (
	"encoding/binary"
	"encoding/json"
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
	// -1 when the telegram is not an error report. AppErrorName names it.
	AppError int
	// Alarm is the report of an alarm telegram (CI 0x71, 0x74, 0x75),
	// nil for other telegrams.
	Alarm *AlarmReport
	// SecurityMode is the security mode of an encrypted telegram (5 or
	// 7), 0 for plaintext.
	SecurityMode byte
}

// ErrUnsupportedCI reports a CI field the decoder does not handle.
var ErrUnsupportedCI = errors.New("unsupported CI field")

// dataOff is the frame offset of the first data byte: 68 L L 68 C A CI.
const dataOff = 7

// ParseTelegram decodes a complete RSP_UD frame and its application layer.
// When some records cannot be decoded, the telegram holds every record
// before the problem and the error says where decoding stopped.
func ParseTelegram(b []byte) (*Telegram, error) { return ParseTelegramKey(b, nil) }

// ParseTelegramKey is ParseTelegram with the key of an encrypted meter
// (see DecodeTelegramKey).
func ParseTelegramKey(b, key []byte) (*Telegram, error) {
	f, n, err := DecodeFrame(b)
	if err != nil {
		return nil, err
	}
	if n != len(b) {
		return nil, frameErr(n, fmt.Errorf("%d bytes after the frame", len(b)-n))
	}
	return DecodeTelegramKey(f, key)
}

// DecodeTelegram decodes the application layer of a long or control
// frame: variable data with long, short or no header (CI 0x72, 0x76,
// 0x7A, 0x78), the fixed data structure (CI 0x73, 0x77), application
// error reports (CI 0x70) and alarms (CI 0x71, 0x74, 0x75). The
// telegram does not alias f.Data.
//
// When a record cannot be decoded, the telegram holds every record before
// it and the error is a *FrameError whose offset counts from the start
// of the frame.
func DecodeTelegram(f Frame) (*Telegram, error) { return DecodeTelegramKey(f, nil) }

// DecodeTelegramKey is DecodeTelegram for a meter whose telegrams may be
// encrypted: a payload in security mode 5 is decrypted with key (16
// bytes, AES-128). An encrypted payload is never read as plaintext:
// without a key, or in mode 7, the telegram holds the header only and
// the error wraps ErrKeyNeeded; with the wrong key, ErrDecrypt.
func DecodeTelegramKey(f Frame, key []byte) (*Telegram, error) {
	if f.Type != FrameLong && f.Type != FrameControl {
		return nil, fmt.Errorf("mbus: %v frame has no application layer", f.Type)
	}
	t := &Telegram{C: f.C, A: f.A, CI: f.CI, AppError: -1}
	// The reader is made first because it holds the telegram's text
	// buffer, which the header uses too.
	var r recordReader
	txt := &r.txt
	hdrLen, variable := varHeaderLen(f.CI)
	var err error
	switch {
	case variable:
	case f.CI == CIRespFixed, f.CI == CIRespFixed2:
		return t, decodeFixed(t, f.Data, f.CI == CIRespFixed2, txt)
	case f.CI == CIAppError:
		// A report without data is an unspecified error (code 0).
		t.AppError = 0
		if len(f.Data) > 0 {
			t.AppError = int(f.Data[0])
		}
		return t, nil
	case f.CI == CIAlarm, f.CI == CIAlarmShort, f.CI == CIAlarmLong:
		return t, decodeAlarm(t, f, txt)
	default:
		return t, frameErr(6, fmt.Errorf("0x%02X: %w", f.CI, ErrUnsupportedCI))
	}
	var body []byte
	if len(f.Data) > hdrLen {
		body = f.Data[hdrLen:]
	}
	if hdrLen > 0 && len(f.Data) >= hdrLen {
		if body, err = decrypted(t, f, hdrLen, body, key, txt); err != nil {
			return t, err
		}
	}
	r.b, r.base, r.msbFirst = body, dataOff+hdrLen, f.CI == CIRespVarLong2
	n, end, recErr := r.scan()
	txt.prepare(n, len(f.Data), end)
	// One copy of the records' bytes, in the text buffer, for the whole
	// telegram: Record.DIF, Record.VIF and byte values are substrings of
	// it, never of f.Data.
	r.s = txt.keep(body[:end])
	switch f.CI {
	case CIRespVarLong, CIRespVarLong2:
		err = decodeLongHeader(&t.Header, f.Data, txt)
	case CIRespVarShort:
		t.Header, err = decodeShortHeader(f.Data)
	}
	if err != nil {
		return t, frameErr(dataOff+len(f.Data), err)
	}
	r.mfr = t.Header.Manufacturer
	r.decodeRecords(t, n, end)
	return t, recErr
}

// varHeaderLen returns the length of the data header of a variable data
// response with CI field ci (long, short or none); ok is false for other
// CI fields.
func varHeaderLen(ci byte) (n int, ok bool) {
	switch ci {
	case CIRespVarLong, CIRespVarLong2:
		return longHeaderLen, true
	case CIRespVarShort:
		return shortHeaderLen, true
	case CIRespVarNone:
		return 0, true
	}
	return 0, false
}

// decrypted returns body, decrypted when the header announces security
// mode 5 or 7 (see DecodeTelegramKey). For an encrypted payload it fills
// in t.Header and t.SecurityMode.
func decrypted(t *Telegram, f Frame, hdrLen int, body, key []byte, txt *telegramText) ([]byte, error) {
	var sig uint16
	if hdrLen == longHeaderLen {
		sig = binary.LittleEndian.Uint16(f.Data[10:12])
	} else {
		sig = binary.LittleEndian.Uint16(f.Data[2:4])
	}
	h := Header{Signature: sig}
	mode := h.SecurityMode()
	if mode != SecurityModeAESCBC && mode != SecurityModeAESCBCEphem {
		return body, nil
	}
	t.SecurityMode = mode
	if hdrLen == longHeaderLen {
		if err := decodeLongHeader(&t.Header, f.Data, txt); err != nil {
			return nil, frameErr(dataOff, err)
		}
	} else {
		t.Header, _ = decodeShortHeader(f.Data)
		if mode == SecurityModeAESCBC && len(key) > 0 {
			// The IV needs the meter's address, which a short header lacks.
			return nil, frameErr(dataOff, fmt.Errorf("security mode 5 with a short header: %w", ErrKeyNeeded))
		}
	}
	plain, err := decryptBody(&t.Header, f.Data[:hdrLen], body, key)
	if err != nil {
		return nil, frameErr(dataOff+hdrLen, err)
	}
	t.Header = Header{} // decoded again with the records
	return plain, nil
}

// Application error codes of CI 0x70 (EN 13757-3:2018, table 10).
var appErrorNames = [...]string{
	0: "unspecified_error",
	1: "unimplemented_ci",
	2: "buffer_too_long",
	3: "too_many_records",
	4: "premature_end_of_record",
	5: "too_many_difes",
	6: "too_many_vifes",
	7: "reserved",
	8: "application_busy",
	9: "too_many_readouts",
}

// AppErrorName names an application error code in snake_case
// ("application_busy"); codes the standard reserves are "reserved".
func AppErrorName(code int) string {
	if code >= 0 && code < len(appErrorNames) {
		return appErrorNames[code]
	}
	return "reserved"
}

// appErrorJSON is the JSON form of an application error report.
type appErrorJSON struct {
	Code int    `json:"code"`
	Name string `json:"name"`
}

// telegramJSON is the JSON form of a telegram (the contract of
// `mbus-gateway decode`).
type telegramJSON struct {
	Header            Header        `json:"header"`
	Records           []Record      `json:"records"`
	MoreRecordsFollow bool          `json:"more_records_follow"`
	ManufacturerData  HexBytes      `json:"manufacturer_data,omitempty"`
	AppError          *appErrorJSON `json:"app_error,omitempty"`
	Alarm             *AlarmReport  `json:"alarm,omitempty"`
	SecurityMode      byte          `json:"security_mode,omitempty"`
}

// MarshalJSON writes header, records (never null) and
// more_records_follow; manufacturer data (hex), an application error
// report, an alarm report and the security mode of a decrypted telegram
// appear only when present.
func (t *Telegram) MarshalJSON() ([]byte, error) {
	j := telegramJSON{
		Header:            t.Header,
		Records:           t.Records,
		MoreRecordsFollow: t.MoreRecordsFollow,
		ManufacturerData:  t.ManufacturerData,
		Alarm:             t.Alarm,
		SecurityMode:      t.SecurityMode,
	}
	if j.Records == nil {
		j.Records = []Record{}
	}
	if t.AppError >= 0 {
		j.AppError = &appErrorJSON{Code: t.AppError, Name: AppErrorName(t.AppError)}
	}
	return json.Marshal(j)
}
