package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/backoff"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/poll"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// storeBackoff is the schedule of attempts to open the database: one
// second after the first failure, doubling up to a minute. Someone is
// usually fixing the cause (permissions, a mount) right then, and the
// first minutes decide how soon the gateway notices.
var storeBackoff = backoff.Backoff{Min: time.Second, Max: time.Minute}

// openSlack is how long one attempt to open the database may take (SQLite
// waits up to five seconds for a lock, quick_check reads the whole file)
// before the waiting loop counts as stuck.
const openSlack = time.Minute

// retry calls try until it succeeds or ctx ends, and then returns ctx's
// error. After the n-th failure it tells failed the error, n and the wait
// before the next attempt: b.Delay(n), that is b.Min, 2×b.Min, … up to
// b.Max.
func retry[T any](ctx context.Context, b backoff.Backoff, try func(context.Context) (T, error), failed func(err error, n int, wait time.Duration)) (T, error) {
	var zero T
	for n := 1; ; n++ {
		v, err := try(ctx)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return zero, ctx.Err()
		}
		wait := b.Delay(n)
		failed(err, n, wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, ctx.Err()
		case <-t.C:
		}
	}
}

// storeWait is what the gateway knows while its database is not open:
// why the last attempt failed and when it started. The web side shows it,
// the health check and the watchdog judge by it.
type storeWait struct {
	now func() time.Time

	mu      sync.Mutex
	problem string    // why the last attempt failed; "" before the first failure
	tried   time.Time // start of the last attempt
}

func newStoreWait(now func() time.Time) *storeWait {
	return &storeWait{now: now, tried: now()}
}

// trying records the start of an attempt.
func (w *storeWait) trying() {
	w.mu.Lock()
	w.tried = w.now()
	w.mu.Unlock()
}

// failed records why an attempt failed and reports whether the reason
// differs from the previous one (the log repeats only changes).
func (w *storeWait) failed(problem string) (changed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed = problem != w.problem
	w.problem = problem
	return changed
}

// err is why the database is not open.
func (w *storeWait) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.problem == "" {
		return errors.New("database not open yet")
	}
	return errors.New(w.problem)
}

// alive returns nil while attempts keep coming, at most storeBackoff.Max
// apart, each taking at most openSlack.
func (w *storeWait) alive() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if idle := w.now().Sub(w.tried); idle > storeBackoff.Max+openSlack {
		return fmt.Errorf("no attempt to open the database for %v", idle.Round(time.Second))
	}
	return nil
}

// snapshot is the bus as the page shows it meanwhile: not read.
func (w *storeWait) snapshot() poll.Snapshot {
	return poll.Snapshot{Bus: poll.BusStatus{
		State:     bushealth.Down.String(),
		LastError: "not read until the database is open: " + w.err().Error(),
	}}
}

// openProblem says why the database cannot be opened in the words of the
// log, /health and the page: the file, the cause, what to do.
func openProblem(err error) string {
	var oe *store.OpenError
	if !errors.As(err, &oe) {
		return "cannot open the database: " + err.Error()
	}
	msg := "cannot open the database " + oe.Path + ": " + oe.Err.Error()
	if h := oe.Hint(); h != "" {
		msg += "; " + h
	}
	return msg
}

// quarantineShown is how long after the move the page keeps warning about
// a corrupt database moved aside, unless the file is gone before (someone
// looked at it).
const quarantineShown = 7 * 24 * time.Hour

// quarantineNote returns the corrupt database the page should warn about,
// "" for none. moved is where one was moved just now ("" if not): it is
// recorded in s. Otherwise the recorded one counts for quarantineShown and
// while its file exists. An error is about the record only; the
// returned name holds all the same.
func quarantineNote(ctx context.Context, s *store.Store, moved string, now time.Time) (string, error) {
	if moved != "" {
		if err := s.RecordQuarantine(ctx, store.Quarantine{Path: moved, At: now.UTC()}); err != nil {
			return moved, fmt.Errorf("record the quarantine: %w", err)
		}
		return moved, nil
	}
	rec, ok, err := s.LastQuarantine(ctx)
	if err != nil || !ok {
		return "", err
	}
	if now.Sub(rec.At) > quarantineShown {
		return "", nil
	}
	if _, err := os.Lstat(rec.Path); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return rec.Path, nil
}
