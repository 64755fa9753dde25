package poll

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// energyAnswers answers the reads of a heat meter with the given energy
// registers (kWh), one per read, the last one ever after.
func energyAnswers(values ...float64) answer {
	var mu sync.Mutex
	n := 0
	return func(addr string, _ time.Duration) (time.Duration, master.Result, error) {
		mu.Lock()
		v := values[min(n, len(values)-1)]
		n++
		mu.Unlock()
		res := okResult(addr)
		res.Telegrams[0].Records[0].Value = mbus.Value{Kind: mbus.KindNumber, Num: v}
		return 100 * time.Millisecond, res, nil
	}
}

// TestGuardInPoller checks that the poller guards what it delivers, judges
// the first reading after a start against the stored one, and lists a
// confirmed reset among its warnings; an unguarded meter passes every
// value on.
func TestGuardInPoller(t *testing.T) {
	for _, unguarded := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			ms := meters(1, time.Hour)
			ms[0].Unguarded = unguarded
			ms[0].Name = "Heating"
			stored := reading.Reading{Meter: "kam_00000001", Time: time.Now().Add(-time.Hour),
				Header:  mbus.Header{ID: "00000001", Manufacturer: "KAM", Medium: 0x04},
				Records: telegram("1", "energy").Records}
			stored.Records[0].Value.Num = 12000
			previous := func(meter string) (reading.Reading, bool) { return stored, meter == stored.Meter }
			h := newHarness(t, Options{Meters: ms, StartSpread: -1, Previous: previous}, energyAnswers(5, 9, 15))
			h.runUntil(t, 2*time.Hour+time.Minute)
			got := h.sink.readings()
			if len(got) != 3 {
				t.Fatalf("delivered %d readings, want 3", len(got))
			}
			want := []string{reading.GuardDrop, reading.GuardReset, ""}
			if unguarded {
				want = []string{"", "", ""}
			}
			for i, r := range got {
				if r.Records[0].Value.Num != []float64{5, 9, 15}[i] {
					t.Errorf("reading %d: record value %v changed", i, r.Records[0].Value.Num)
				}
				g := r.Guard["energy"]
				if g.Reason != want[i] {
					t.Errorf("unguarded=%v reading %d: guard %+v, want reason %q", unguarded, i, g, want[i])
				}
			}
			if !unguarded && got[0].Guard["energy"].Published != 12000 {
				t.Errorf("held reading publishes %v, want the stored 12000", got[0].Guard["energy"].Published)
			}
			w := strings.Join(h.p.Warnings(), "\n")
			if hasReset := strings.Contains(w, `meter "Heating": energy went down from 12000 to 9`); hasReset == unguarded {
				t.Errorf("unguarded=%v: warnings %q", unguarded, w)
			}
		})
	}
}
