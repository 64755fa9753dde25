package store

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Rows marked acknowledged are never pending again, also after a
// restart, and are deleted once the store can.
func TestMarkAcked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		mustEnqueue(t, s, sampleReading("kam_1", t0.Add(time.Duration(i)*time.Minute)))
	}
	if err := s.MarkAcked(3); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkAcked(2); err != nil { // an older mark changes nothing
		t.Fatal(err)
	}
	if got := pendingSeqs(t, s); !slices.Equal(got, []int64{4, 5}) {
		t.Errorf("pending after the mark: got %v, want [4 5]", got)
	}
	if got := mustDepth(t, s); got != 2 {
		t.Errorf("depth after the mark: got %d, want 2", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if got := pendingSeqs(t, s); !slices.Equal(got, []int64{4, 5}) {
		t.Errorf("pending after restart: got %v, want [4 5]", got)
	}
	var rows int
	if err := s.db.QueryRow(`SELECT count(*) FROM outbox`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 2 {
		t.Errorf("rows in the table after restart: got %d, want the acknowledged ones deleted", rows)
	}
	// Trimming deletes acknowledged rows without counting them dropped.
	mustEnqueue(t, s, sampleReading("kam_1", t0.Add(time.Hour)))
	if err := s.MarkAcked(5); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Trim(ctx, 1000, 0, t0); err != nil || n != 0 {
		t.Errorf("Trim: got %d dropped, %v; want 0", n, err)
	}
	if got := pendingSeqs(t, s); !slices.Equal(got, []int64{6}) {
		t.Errorf("pending after trimming: got %v, want [6]", got)
	}
	fi, err := os.Stat(path + ackedSuffix)
	if err != nil || fi.Size() != ackedWidth || fi.Mode().Perm() != 0o600 {
		t.Errorf("mark file: %v, %v; want %d bytes, -rw-------", fi, err, ackedWidth)
	}
}

// A mark that does not fit the database (left by another file) is
// reset, never hides new rows; the mark moves aside with a corrupt file.
func TestMarkOfAnotherFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	if err := writeMark(path+ackedSuffix, 1000); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, s, sampleReading("kam_1", t0))
	if got := pendingSeqs(t, s); !slices.Equal(got, []int64{1}) {
		t.Errorf("pending: got %v, want [1]", got)
	}
	if err := s.MarkAcked(1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	moved, err := QuarantineCorrupt(path)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := readMark(moved + ackedSuffix); err != nil || n != 1 {
		t.Errorf("mark moved aside: got %d, %v; want 1", n, err)
	}
	if exists(path + ackedSuffix) {
		t.Error("mark file left behind for the new database")
	}
}
