package poll

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// recovery is how soon after the outbox can take readings again they
// must be committed: the longest retry wait plus the delivery itself.
const recovery = 5 * time.Second

// A full disk for ten minutes: the retry wait stays short, so readings
// are committed within seconds of space returning and none is dropped
// after that; the log has one line for the failure, one for the first
// drop and one for the recovery, however long it lasted. With room in
// memory the retry wait decides; with memory full, every reading that
// would push out an older one tries a commit first.
func TestSinkRecoversWithinSeconds(t *testing.T) {
	t.Run("memory full", func(t *testing.T) { sinkRecovers(t, 64) })
	t.Run("room in memory", func(t *testing.T) { sinkRecovers(t, 1000) })
}

func sinkRecovers(t *testing.T, maxPending int) {
	synctest.Test(t, func(t *testing.T) {
		const back = 10 * time.Minute
		h := newHarness(t, Options{Meters: meters(1, time.Second), MaxPending: maxPending}, good(0))
		h.sink.fail = func(_ int, since time.Duration) error {
			if since < back {
				return errors.New("store: enqueue: database or disk is full")
			}
			return nil
		}
		h.start()
		h.sleepUntil(back)
		atBack := h.p.Snapshot().Sink
		h.sleepUntil(back + 2*time.Minute)
		h.stop(t)

		got := h.sink.readings()
		if len(got) == 0 {
			t.Fatal("nothing delivered after the disk had space again")
		}
		if first := h.sink.attempts[len(h.sink.attempts)-len(got)]; first > back+recovery {
			t.Errorf("first commit %v after space returned, want within %v", first-back, recovery)
		}
		end := h.p.Snapshot().Sink
		if end.Dropped != atBack.Dropped || end.Pending != 0 || end.Failing {
			t.Errorf("after space returned: got %+v, want none dropped beyond the %d before", end, atBack.Dropped)
		}
		// Every reading from the oldest kept one on arrives, in order.
		for i := 1; i < len(got); i++ {
			if d := got[i].Time.Sub(got[i-1].Time); d != time.Second {
				t.Fatalf("readings %d and %d are %v apart, want 1s (none missing, none reordered)", i-1, i, d)
			}
		}
		if kept := min(back/time.Second, time.Duration(maxPending)); got[0].Time.Sub(h.epoch) > back-(kept-1)*time.Second {
			t.Errorf("oldest reading delivered read at %v, want the %d kept in memory", got[0].Time.Sub(h.epoch), kept)
		}
		msgs := []string{"cannot commit reading to the outbox", "outbox accepts readings again"}
		if atBack.Dropped > 0 {
			msgs = append(msgs, "dropping the oldest")
		}
		lines := strings.Split(h.log.String(), "\n")
		for _, msg := range msgs {
			n := 0
			for _, l := range lines {
				if strings.Contains(l, msg) && !strings.Contains(l, `"level":"debug"`) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("log lines %q above debug: got %d, want 1", msg, n)
			}
		}
	})
}

// storeSink commits to a real store, as the daemon's sink does.
type storeSink struct{ s *store.Store }

func (k storeSink) Deliver(ctx context.Context, r reading.Reading) error {
	_, err := k.s.Enqueue(ctx, r)
	return err
}

// The same on a real SQLite file capped with max_page_count (the
// diagnostic cap MBUS_DIAG_DB_MAX_PAGES sets): SQLite reports the disk
// full; once there is space again (the cap raised), commits resume within
// seconds and nothing read after that is lost.
func TestStoreFullTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gateway.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := st.Close(); err != nil {
				t.Error(err)
			}
		}()
		pages, err := st.Pages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.LimitPages(ctx, pages+3); err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, Options{Meters: meters(1, time.Second), MaxPending: 32}, good(0))
		p, err := New(h.p.opts, h.bus, storeSink{st}, h.avail, zeroLog, newRegistry())
		if err != nil {
			t.Fatal(err)
		}
		h.p = p
		h.start()
		for !p.Snapshot().Sink.Failing {
			time.Sleep(time.Second)
			if time.Since(h.epoch) > time.Hour {
				t.Fatal("the capped database never filled")
			}
		}
		full := p.Snapshot().Sink
		if !strings.Contains(full.LastError, "full") {
			t.Errorf("sink error: got %q, want the full disk named", full.LastError)
		}
		time.Sleep(3 * time.Minute)                                // long enough for a long retry wait to grow
		if _, err := st.LimitPages(ctx, pages+10000); err != nil { // space is back
			t.Fatal(err)
		}
		freed := time.Now()
		atFree := p.Snapshot().Sink
		before, err := st.Depth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(recovery)
		s := p.Snapshot().Sink
		after, err := st.Depth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Failing || after < before+atFree.Pending {
			t.Errorf("%v after space returned: sink %+v, outbox %d rows, want the %d held in memory committed to the %d",
				recovery, s, after, atFree.Pending, before)
		}
		time.Sleep(time.Minute)
		h.stop(t)
		if s := p.Snapshot().Sink; s.Dropped != atFree.Dropped {
			t.Errorf("dropped after space returned: got %d, want still %d", s.Dropped, atFree.Dropped)
		}
		rows, err := st.Pending(ctx, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		// What was held in memory and read since is there without a gap.
		for i := before + 1; i < len(rows); i++ {
			if d := rows[i].Time.Sub(rows[i-1].Time); d != time.Second {
				t.Fatalf("outbox rows %d and %d are %v apart, want 1s (none missing, none reordered)", i-1, i, d)
			}
		}
		if last := rows[len(rows)-1].Time; last.Before(freed.Add(time.Minute - time.Second)) {
			t.Errorf("newest committed reading from %v, want the reads up to the end", last.Sub(freed))
		}
	})
}
