package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// TestRetry: attempts follow the backoff (1 s, doubling, capped at a
// minute), failed hears every failure, and the first success ends it.
func TestRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var at []time.Duration
		var waits []time.Duration
		const failures = 9
		got, err := retry(t.Context(), storeBackoff, func(context.Context) (string, error) {
			at = append(at, time.Since(start))
			if len(at) <= failures {
				return "", errors.New("permission denied")
			}
			return "open", nil
		}, func(err error, n int, wait time.Duration) {
			if n != len(at) || err.Error() != "permission denied" {
				t.Errorf("failed(%v, %d): want the error of attempt %d", err, n, len(at))
			}
			waits = append(waits, wait)
		})
		if got != "open" || err != nil {
			t.Fatalf("got %q, %v; want open, nil", got, err)
		}
		s := time.Second
		wantWaits := []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 60 * s, 60 * s, 60 * s}
		if !slices.Equal(waits, wantWaits) {
			t.Errorf("waits: got %v, want %v", waits, wantWaits)
		}
		wantAt := []time.Duration{0}
		for _, w := range wantWaits {
			wantAt = append(wantAt, wantAt[len(wantAt)-1]+w)
		}
		if !slices.Equal(at, wantAt) {
			t.Errorf("attempts at: got %v, want %v", at, wantAt)
		}
	})
}

// TestRetryCancel: ending ctx while waiting ends retry at once, with ctx's
// error; an attempt that failed because ctx ended is not reported.
func TestRetryCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(90*time.Second, cancel)
		start := time.Now()
		reported := 0
		_, err := retry(ctx, storeBackoff, func(ctx context.Context) (int, error) {
			if ctx.Err() != nil {
				t.Error("attempt after ctx ended")
			}
			return 0, errors.New("no")
		}, func(error, int, time.Duration) { reported++ })
		if !errors.Is(err, context.Canceled) || time.Since(start) != 90*time.Second {
			t.Errorf("got %v after %v, want context.Canceled after 90s", err, time.Since(start))
		}
		// Attempts at 0, 1, 3, 7, 15, 31, 63 s; the cancel comes during the
		// wait after the seventh.
		if reported != 7 {
			t.Errorf("failures reported: got %d, want 7", reported)
		}

		ctx, cancel = context.WithCancel(t.Context())
		_, err = retry(ctx, storeBackoff, func(context.Context) (int, error) {
			cancel()
			return 0, context.Canceled
		}, func(err error, _ int, _ time.Duration) { t.Errorf("reported %v after ctx ended", err) })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("attempt ended by ctx: got %v, want context.Canceled", err)
		}
	})
}

// TestStoreWait: the waiting loop is alive while attempts keep coming,
// and its error is the last reason, or that nothing was tried yet.
func TestStoreWait(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	w := newStoreWait(func() time.Time { return now })
	if err := w.err(); err == nil || err.Error() != "database not open yet" {
		t.Errorf("before any attempt: got %v, want database not open yet", err)
	}
	if !w.failed("cannot open the database /x: denied") || w.failed("cannot open the database /x: denied") {
		t.Error("failed: want changed for a new reason only")
	}
	if got := w.snapshot().Bus.LastError; !strings.HasSuffix(got, "cannot open the database /x: denied") {
		t.Errorf("snapshot: got bus error %q, want the reason", got)
	}
	steps := []struct {
		advance time.Duration
		try     bool
		stuck   bool
	}{
		{storeBackoff.Max, false, false},
		{openSlack, false, false},
		{time.Second, false, true},
		{0, true, false},
		{storeBackoff.Max + openSlack + time.Second, false, true},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if s.try {
			w.trying()
		}
		if err := w.alive(); (err != nil) != s.stuck {
			t.Errorf("step %d: got %v, want stuck %v", i, err, s.stuck)
		}
	}
}

// TestOpenProblem: the reason names the file, the cause and the remedy.
func TestOpenProblem(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "data", storeFile)
	_, err := store.Open(t.Context(), path)
	if !errors.Is(err, store.ErrUnwritable) {
		t.Fatalf("open below a file: got %v, want ErrUnwritable", err)
	}
	got := openProblem(err)
	for _, want := range []string{"cannot open the database " + path + ": ", "not a directory", "; check that the directory exists, is a directory and is writable"} {
		if !strings.Contains(got, want) {
			t.Errorf("got %q, want it to contain %q", got, want)
		}
	}
	if got, want := openProblem(errors.New("boom")), "cannot open the database: boom"; got != want {
		t.Errorf("other error: got %q, want %q", got, want)
	}
}

// TestQuarantineNote: the warning about a corrupt database moved aside is
// kept in the new one and shown for a week, or until the file is gone.
func TestQuarantineNote(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(t.Context(), filepath.Join(dir, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	moved := filepath.Join(dir, storeFile+".corrupt-20260101T120000Z")
	if err := os.WriteFile(moved, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if got, err := quarantineNote(t.Context(), st, "", t0); got != "" || err != nil {
		t.Errorf("nothing recorded: got %q, %v; want none", got, err)
	}
	if got, err := quarantineNote(t.Context(), st, moved, t0); got != moved || err != nil {
		t.Errorf("just moved: got %q, %v; want %s", got, err, moved)
	}
	steps := []struct {
		name   string
		at     time.Time
		remove bool
		want   string
	}{
		{"next start", t0.Add(time.Minute), false, moved},
		{"six days later", t0.Add(6 * 24 * time.Hour), false, moved},
		{"eight days later", t0.Add(8 * 24 * time.Hour), false, ""},
		{"file removed", t0.Add(time.Hour), true, ""},
	}
	for _, s := range steps {
		if s.remove {
			if err := os.Remove(moved); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := quarantineNote(t.Context(), st, "", s.at); got != s.want || err != nil {
			t.Errorf("%s: got %q, %v; want %q", s.name, got, err, s.want)
		}
	}
}

// TestOpenStoreCorrupt: a corrupt file is moved aside, never deleted, and
// an empty database opens in its place; when it cannot be moved, the
// error says so and nothing changes on disk.
func TestOpenStoreCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, storeFile)
	garbage := []byte(strings.Repeat("not a database ", 512))
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	log := zerolog.Nop()
	if os.Geteuid() != 0 { // root moves files out of read-only directories
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		_, _, err := openStore(t.Context(), dir, log)
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(openProblem(err), "moving it aside failed") {
			t.Errorf("read-only directory: got %v, want ErrCorrupt and that moving it aside failed", err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != string(garbage) {
			t.Errorf("read-only directory: the corrupt file changed (%d bytes, %v)", len(got), err)
		}
	}
	st, moved, err := openStore(t.Context(), dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := os.ReadFile(moved); err != nil || string(got) != string(garbage) || !strings.HasPrefix(moved, path+".corrupt-") {
		t.Errorf("moved to %s: got %d bytes (%v), want the corrupt file under %s.corrupt-…", moved, len(got), err, path)
	}
	if n, err := st.Depth(t.Context()); n != 0 || err != nil {
		t.Errorf("new database: got depth %d, %v; want an empty one", n, err)
	}
}
