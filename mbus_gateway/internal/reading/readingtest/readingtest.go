// Package readingtest is test support for building readings as the poller
// hands them on: a heat meter's header and numeric records.
package readingtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// Number is a numeric record of the current value (storage 0,
// instantaneous). Its DIF 04 and VIF 06 (32-bit integer, energy in kWh)
// only stand in for raw bytes: what the outbox and the broker carry are
// the decoded key, quantity, unit and value.
func Number(key, quantity, unit string, v float64) mbus.Record {
	return mbus.Record{
		Key: key, Quantity: quantity, Unit: unit,
		Value: mbus.Value{Kind: mbus.KindNumber, Num: v},
		DIF:   "\x04", VIF: "\x06",
	}
}

// Heat is a read at time at of a Kamstrup heat meter (medium 04, version
// 8, access number 4) with identification number id at primary address 5,
// published as meter.
func Heat(meter, id string, at time.Time, records ...mbus.Record) reading.Reading {
	return reading.Reading{
		Meter:   meter,
		Address: "5",
		Time:    at,
		Header: mbus.Header{
			ID: id, Manufacturer: "KAM", Version: 8,
			Medium: mbus.Medium(0x04), AccessNumber: 4,
		},
		Records: records,
	}
}

// RoundTrip returns r as the outbox and the last state give it back:
// through its JSON form, where dates become text.
func RoundTrip(t testing.TB, r reading.Reading) reading.Reading {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back reading.Reading
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back
}
