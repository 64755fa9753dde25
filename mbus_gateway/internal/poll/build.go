package poll

import (
	"errors"
	"strconv"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// ErrNoTelegram reports a read that ended without any telegram.
var ErrNoTelegram = errors.New("no telegram in the answer")

// appError is a meter that answered with an application error report
// (CI 0x70, EN 13757-3 clause 10) and no data: it is alive, but there is
// nothing to deliver.
type appError struct{ code int }

func (e *appError) Error() string {
	return "meter reported application error " + strconv.Itoa(e.code)
}

// buildReading turns the result of one read into a Reading taken at t.
// The header is the first telegram's; the records are those of all
// telegrams in order.
func buildReading(res master.Result, name, addr string, t time.Time) (reading.Reading, error) {
	ts := make([]*mbus.Telegram, 0, len(res.Telegrams))
	for _, tg := range res.Telegrams {
		if tg != nil {
			ts = append(ts, tg)
		}
	}
	if len(ts) == 0 {
		return reading.Reading{}, ErrNoTelegram
	}
	r := reading.Reading{
		Meter:   reading.MeterID(ts[0].Header, addr),
		Name:    name,
		Address: addr,
		Time:    t,
		Header:  ts[0].Header,
		Records: mergeRecords(ts),
	}
	if len(r.Records) == 0 && ts[0].AppError >= 0 {
		return r, &appError{code: ts[0].AppError}
	}
	return r, nil
}

// mergeRecords concatenates the records of all telegrams. Keys are
// unique within one telegram, not across them: a key that an earlier
// telegram already used gets the suffix "_t<n>" (n the 1-based telegram
// number), and "_<k>" on top in the unlikely case that is taken too.
// The result depends only on the telegrams, so the same meter model
// always gives the same keys.
func mergeRecords(ts []*mbus.Telegram) []mbus.Record {
	n := 0
	for _, t := range ts {
		n += len(t.Records)
	}
	out := make([]mbus.Record, 0, n)
	used := make(map[string]bool, n)
	for i, t := range ts {
		for _, rec := range t.Records {
			key := rec.Key
			if used[key] {
				key = rec.Key + "_t" + strconv.Itoa(i+1)
				for k := 2; used[key]; k++ {
					key = rec.Key + "_t" + strconv.Itoa(i+1) + "_" + strconv.Itoa(k)
				}
			}
			used[key] = true
			rec.Key = key
			out = append(out, rec)
		}
	}
	return out
}

// cloneRecords copies records, so a snapshot shares no slice with the
// poller. A Record holds only values and strings, so a shallow copy is
// a deep one.
func cloneRecords(rs []mbus.Record) []mbus.Record {
	if rs == nil {
		return nil
	}
	return append([]mbus.Record(nil), rs...)
}

func cloneBytes[S ~[]byte](b S) S {
	if b == nil {
		return nil
	}
	return append(S(nil), b...)
}
