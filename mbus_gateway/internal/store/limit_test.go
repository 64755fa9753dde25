package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestLimitPages: the limit never goes below the pages in use, writes
// beyond it fail with ErrFull, and deleting rows makes room again without
// raising it.
func TestLimitPages(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	pages, err := s.Pages(ctx)
	if err != nil || pages <= 0 {
		t.Fatalf("Pages: got %d, %v; want a positive count", pages, err)
	}
	for _, tt := range []struct {
		n, want int
	}{
		{1, pages},             // below the pages in use: SQLite keeps those
		{pages + 4, pages + 4}, // room for a few pages more
	} {
		if got, err := s.LimitPages(ctx, tt.n); err != nil || got != tt.want {
			t.Errorf("LimitPages(%d): got %d, %v; want %d", tt.n, got, err, tt.want)
		}
	}
	for _, n := range []int{0, -1} {
		if _, err := s.LimitPages(ctx, n); err == nil {
			t.Errorf("LimitPages(%d): got no error, want one", n)
		}
	}

	var seqs []int64
	for i := 0; ; i++ {
		seq, err := s.Enqueue(ctx, sampleReading(fmt.Sprintf("kam_%d", i%3), t0.Add(time.Duration(i)*time.Second)))
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil || i > 10_000 {
			t.Fatalf("Enqueue %d: got %v, want success until ErrFull", i, err)
		}
		seqs = append(seqs, seq)
	}
	if got := mustDepth(t, s); got != len(seqs) {
		t.Errorf("depth when full: got %d, want the %d committed rows", got, len(seqs))
	}
	if err := s.Delete(ctx, seqs...); err != nil {
		t.Fatalf("Delete on a full database: %v", err)
	}
	if _, err := s.Enqueue(ctx, sampleReading("kam_0", t0)); err != nil {
		t.Errorf("Enqueue after deleting: got %v, want room again", err)
	}
	if got, err := s.Pages(ctx); err != nil || got > pages+4 {
		t.Errorf("Pages: got %d, %v; want at most the limit %d", got, err, pages+4)
	}
}
