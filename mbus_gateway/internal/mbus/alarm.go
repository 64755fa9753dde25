package mbus

import "fmt"

// CI fields of alarm telegrams with a short or long header (EN
// 13757-3:2018, clause 9); CIAlarm has none.
const (
	CIAlarmShort = 0x74
	CIAlarmLong  = 0x75
)

// AlarmReport is what an alarm telegram (EN 13757-3:2018, clause 9)
// reports: its alarm status byte, whose bits the meter's maker defines,
// and any bytes after it.
type AlarmReport struct {
	Status byte     `json:"status"`
	Data   HexBytes `json:"data,omitempty"`
}

// decodeAlarm reads an alarm telegram into t: the header its CI field
// announces, then the alarm status. A report without data is status 0.
func decodeAlarm(t *Telegram, f Frame, txt *telegramText) error {
	data := f.Data
	switch f.CI {
	case CIAlarmLong:
		if err := decodeLongHeader(&t.Header, data, txt); err != nil {
			return frameErr(dataOff, err)
		}
		data = data[longHeaderLen:]
	case CIAlarmShort:
		h, err := decodeShortHeader(data)
		if err != nil {
			return frameErr(dataOff, err)
		}
		t.Header, data = h, data[shortHeaderLen:]
	}
	t.Alarm = &AlarmReport{}
	if len(data) > 0 {
		t.Alarm.Status = data[0]
		if len(data) > 1 {
			t.Alarm.Data = append(HexBytes(nil), data[1:]...)
		}
	}
	if h := &t.Header; h.SecurityMode() == SecurityModeAESCBC || h.SecurityMode() == SecurityModeAESCBCEphem {
		t.Alarm = nil
		return frameErr(dataOff, fmt.Errorf("alarm in security mode %d: %w", h.SecurityMode(), ErrKeyNeeded))
	}
	return nil
}
