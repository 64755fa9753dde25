package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

func mustEnqueue(t testing.TB, s *Store, r reading.Reading) int64 {
	t.Helper()
	seq, err := s.Enqueue(context.Background(), r)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return seq
}

func mustDepth(t testing.TB, s *Store) int {
	t.Helper()
	n, err := s.Depth(context.Background())
	if err != nil {
		t.Fatalf("Depth: %v", err)
	}
	return n
}

func pendingSeqs(t testing.TB, s *Store) []int64 {
	t.Helper()
	rows, err := s.Pending(context.Background(), 0, 1_000_000)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	seqs := make([]int64, len(rows))
	for i, r := range rows {
		seqs[i] = r.Seq
	}
	return seqs
}

func TestOutboxRoundTrip(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	in := []reading.Reading{
		sampleReading("kam_1", t0),
		sampleReading("kam_2", t0.Add(time.Second)),
		sampleReading("kam_1", t0.Add(time.Minute)),
	}
	var seqs []int64
	for _, r := range in {
		seqs = append(seqs, mustEnqueue(t, s, r))
	}
	if got := mustDepth(t, s); got != 3 {
		t.Fatalf("Depth = %d, want 3", got)
	}
	rows, err := s.Pending(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(in) {
		t.Fatalf("Pending returned %d rows, want %d", len(rows), len(in))
	}
	for i, row := range rows {
		if row.Seq != seqs[i] || row.Meter != in[i].Meter || !row.Time.Equal(in[i].Time) {
			t.Errorf("row %d = seq %d meter %s time %v, want %d %s %v", i, row.Seq, row.Meter, row.Time, seqs[i], in[i].Meter, in[i].Time)
		}
		if !reflect.DeepEqual(row.Reading, in[i]) {
			t.Errorf("row %d reading = %+v, want %+v", i, row.Reading, in[i])
		}
		var back reading.Reading
		if err := json.Unmarshal(row.Payload, &back); err != nil || !reflect.DeepEqual(back, in[i]) {
			t.Errorf("row %d payload does not hold the reading: %v", i, err)
		}
	}
	if seqs[0] >= seqs[1] || seqs[1] >= seqs[2] {
		t.Errorf("seqs %v not increasing", seqs)
	}

	page, err := s.Pending(ctx, seqs[0], 1)
	if err != nil || len(page) != 1 || page[0].Seq != seqs[1] {
		t.Errorf("Pending(after %d, 1) = %v, %v; want seq %d", seqs[0], page, err, seqs[1])
	}
	if err := s.Delete(ctx, seqs[0], seqs[2], 999999); err != nil {
		t.Fatal(err)
	}
	if got := pendingSeqs(t, s); !reflect.DeepEqual(got, []int64{seqs[1]}) {
		t.Errorf("after Delete pending = %v, want [%d]", got, seqs[1])
	}
	if err := s.Delete(ctx); err != nil {
		t.Errorf("Delete() = %v, want nil", err)
	}
	if _, err := s.Pending(ctx, 0, 0); err == nil {
		t.Error("Pending(limit 0) succeeded")
	}

	// Sequence numbers never come back, even after the outbox emptied.
	if err := s.Delete(ctx, seqs[1]); err != nil {
		t.Fatal(err)
	}
	if next := mustEnqueue(t, s, in[0]); next <= seqs[2] {
		t.Errorf("seq after emptying = %d, want > %d", next, seqs[2])
	}
}

func TestEnqueueRejectsBadReadings(t *testing.T) {
	s := openTemp(t)
	good := sampleReading("kam_1", t0)
	bad := map[string]reading.Reading{
		"no meter":  func() reading.Reading { r := good; r.Meter = ""; return r }(),
		"zero time": func() reading.Reading { r := good; r.Time = time.Time{}; return r }(),
		"1969":      func() reading.Reading { r := good; r.Time = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC); return r }(),
		"2300":      func() reading.Reading { r := good; r.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC); return r }(),
	}
	for name, r := range bad {
		if _, err := s.Enqueue(context.Background(), r); err == nil {
			t.Errorf("Enqueue(%s) succeeded", name)
		}
		if _, err := s.EnqueueBatch(context.Background(), []reading.Reading{good, r}); err == nil {
			t.Errorf("EnqueueBatch(good, %s) succeeded", name)
		}
	}
	if got := mustDepth(t, s); got != 0 {
		t.Errorf("Depth after rejected readings = %d, want 0", got)
	}
}

func TestEnqueueBatchAndLargeDelete(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	batch := make([]reading.Reading, 1200)
	for i := range batch {
		batch[i] = sampleReading(fmt.Sprintf("kam_%d", i%7), t0.Add(time.Duration(i)*time.Second))
	}
	seqs, err := s.EnqueueBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pendingSeqs(t, s), seqs) {
		t.Fatal("pending seqs differ from the batch's")
	}
	if err := s.Delete(ctx, seqs...); err != nil {
		t.Fatal(err)
	}
	if got := mustDepth(t, s); got != 0 {
		t.Errorf("Depth after deleting all = %d, want 0", got)
	}
	if got, err := s.EnqueueBatch(ctx, nil); got != nil || err != nil {
		t.Errorf("EnqueueBatch(nil) = %v, %v; want nil, nil", got, err)
	}
}

func TestLastReadings(t *testing.T) {
	s := openTemp(t)
	newer := sampleReading("kam_1", t0.Add(time.Minute))
	older := sampleReading("kam_1", t0)
	older.Records = older.Records[:1]
	other := sampleReading("abb_2", t0)
	for _, r := range []reading.Reading{newer, older, other} {
		mustEnqueue(t, s, r)
	}
	got, err := s.LastReadings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []reading.Reading{other, newer}; !reflect.DeepEqual(got, want) {
		t.Errorf("LastReadings = %+v\nwant %+v", got, want)
	}
	// Last state outlives the outbox rows.
	if err := s.Delete(context.Background(), pendingSeqs(t, s)...); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LastReadings(context.Background()); err != nil || len(got) != 2 {
		t.Errorf("LastReadings after Delete = %d readings, %v; want 2", len(got), err)
	}
}

func TestTrim(t *testing.T) {
	tests := []struct {
		name        string
		maxRows     int
		maxAge      time.Duration
		wantDropped int
		wantLeft    []int // indexes of the rows left, oldest first
	}{
		{"no limits", 0, 0, 0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"rows", 4, 0, 6, []int{6, 7, 8, 9}},
		{"rows above depth", 20, 0, 0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"age", 0, 5 * time.Minute, 4, []int{4, 5, 6, 7, 8, 9}},
		{"age and rows", 3, 5 * time.Minute, 7, []int{7, 8, 9}},
		{"only the newest is recent", 0, time.Second, 9, []int{9}},
		{"age cuts nothing", 0, time.Hour, 0, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTemp(t)
			var seqs []int64
			for i := range 10 {
				seqs = append(seqs, mustEnqueue(t, s, sampleReading("kam_1", t0.Add(time.Duration(i)*time.Minute))))
			}
			now := t0.Add(9 * time.Minute)
			dropped, err := s.Trim(context.Background(), tt.maxRows, tt.maxAge, now)
			if err != nil {
				t.Fatal(err)
			}
			if dropped != tt.wantDropped {
				t.Errorf("dropped %d, want %d", dropped, tt.wantDropped)
			}
			want := []int64{}
			for _, i := range tt.wantLeft {
				want = append(want, seqs[i])
			}
			if got := pendingSeqs(t, s); !reflect.DeepEqual(got, want) {
				t.Errorf("left %v, want %v", got, want)
			}
		})
	}
}

func TestDiskFull(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	pages := pragmaInt(t, s, "page_count")
	// max_page_count belongs to the connection; the store has just one.
	if _, err := s.db.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages+8)); err != nil {
		t.Fatal(err)
	}
	fill := func() []int64 {
		t.Helper()
		var committed []int64
		for i := range 10_000 {
			seq, err := s.Enqueue(ctx, sampleReading(fmt.Sprintf("kam_%d", i%3), t0.Add(time.Duration(i)*time.Second)))
			if err != nil {
				if !errors.Is(err, ErrFull) {
					t.Fatalf("Enqueue on a full database = %v, want ErrFull", err)
				}
				return committed
			}
			committed = append(committed, seq)
		}
		t.Fatal("the database never became full")
		return nil
	}
	committed := fill()
	if len(committed) == 0 {
		t.Fatal("nothing fit before the database was full")
	}
	if got := pendingSeqs(t, s); !reflect.DeepEqual(got, committed) {
		t.Fatalf("after ErrFull pending = %d rows, want the %d committed", len(got), len(committed))
	}

	// Trimming makes room without raising the limit.
	dropped, err := s.Trim(ctx, len(committed)/2, 0, t0)
	if err != nil {
		t.Fatalf("Trim on a full database: %v", err)
	}
	if want := len(committed) - len(committed)/2; dropped != want {
		t.Errorf("Trim dropped %d, want %d", dropped, want)
	}
	mustEnqueue(t, s, sampleReading("kam_0", t0))

	// Full again, then more space: writes work and nothing was lost.
	before := pendingSeqs(t, s)
	more := fill()
	if _, err := s.db.Exec("PRAGMA max_page_count = 1000000"); err != nil {
		t.Fatal(err)
	}
	last := mustEnqueue(t, s, sampleReading("kam_0", t0))
	want := append(append(before, more...), last)
	if got := pendingSeqs(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("after raising the limit pending = %d rows, want %d", len(got), len(want))
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check after recovery: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := openTemp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const writers, each = 4, 50
	var wg sync.WaitGroup
	written := make(chan int64, writers*each)
	errs := make(chan error, writers+2)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				seq, err := s.Enqueue(ctx, sampleReading(fmt.Sprintf("kam_%d", w), t0.Add(time.Duration(i)*time.Second)))
				if err != nil {
					errs <- err
					return
				}
				written <- seq
			}
		})
	}
	// A reader that checks health and last state while the writers run.
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := s.Check(ctx); err != nil {
				errs <- err
				return
			}
			if _, err := s.LastReadings(ctx); err != nil {
				errs <- err
				return
			}
		}
	})
	// A consumer like the publisher: read a page, delete it, go on.
	var consumed []int64
	wg.Go(func() {
		var after int64
		for len(consumed) < writers*each {
			rows, err := s.Pending(ctx, after, 16)
			if err != nil {
				errs <- err
				return
			}
			var seqs []int64
			for _, r := range rows {
				seqs = append(seqs, r.Seq)
				after = r.Seq
			}
			if err := s.Delete(ctx, seqs...); err != nil {
				errs <- err
				return
			}
			consumed = append(consumed, seqs...)
			if ctx.Err() != nil {
				errs <- ctx.Err()
				return
			}
		}
		close(done)
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(written)
	seen := map[int64]bool{}
	for seq := range written {
		seen[seq] = true
	}
	if len(seen) != writers*each {
		t.Errorf("%d distinct seqs, want %d", len(seen), writers*each)
	}
	for i, seq := range consumed {
		if !seen[seq] || i > 0 && seq <= consumed[i-1] {
			t.Fatalf("consumed %v: not the written seqs in order", consumed)
		}
	}
	if got := mustDepth(t, s); got != 0 {
		t.Errorf("Depth = %d, want 0", got)
	}
}

// killHelperEnv makes the test binary run runKillHelper instead of tests.
const killHelperEnv = "MBUS_STORE_KILL_HELPER_DB"

// runKillHelper enqueues readings forever, printing each seq once Enqueue
// returned, until the parent kills it.
func runKillHelper() int {
	s, err := Open(context.Background(), os.Getenv(killHelperEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := range 1_000_000 {
		seq, err := s.Enqueue(context.Background(), sampleReading("kam_1", t0.Add(time.Duration(i)*time.Second)))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, err := fmt.Fprintln(os.Stdout, seq); err != nil {
			return 1
		}
	}
	return 0
}

// TestCommittedSurvivesKill checks the durability promise: a reading whose
// Enqueue returned is in the database after SIGKILL of the process.
func TestCommittedSurvivesKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var reported []int64
	sc := bufio.NewScanner(out)
	for len(reported) < 200 && sc.Scan() {
		seq, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("helper printed %q", sc.Text())
		}
		reported = append(reported, seq)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want killed by SIGKILL", err)
	}
	if len(reported) < 200 {
		t.Fatalf("helper reported only %d commits", len(reported))
	}
	if !exists(path + "-wal") {
		t.Error("no WAL left behind: the helper was not killed mid-use")
	}

	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open after kill: %v", err)
	}
	defer func() { _ = s.Close() }()
	have := map[int64]bool{}
	for _, seq := range pendingSeqs(t, s) {
		have[seq] = true
	}
	for _, seq := range reported {
		if !have[seq] {
			t.Errorf("committed seq %d lost after SIGKILL", seq)
		}
	}
}

// BenchmarkEnqueue measures durable single-reading commits of a ten-record
// reading. Reproduce with:
//
//	go test -run '^$' -bench Enqueue -benchtime 3s ./mbus_gateway/internal/store/
func BenchmarkEnqueue(b *testing.B) {
	s := openTemp(b)
	r := sampleReading("kam_06855817", t0)
	ctx := context.Background()
	n := 0
	for b.Loop() {
		r.Time = r.Time.Add(time.Second)
		if _, err := s.Enqueue(ctx, r); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}

// BenchmarkEnqueueBatch commits ten readings per transaction.
func BenchmarkEnqueueBatch(b *testing.B) {
	s := openTemp(b)
	batch := make([]reading.Reading, 10)
	ctx := context.Background()
	n := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = sampleReading(fmt.Sprintf("kam_%d", i), t0.Add(time.Duration(n)*time.Second))
		}
		if _, err := s.EnqueueBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "readings/s")
}
