package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// corruptStore makes a database at path with n queued readings of one
// meter a minute apart (the first acked ones marked delivered) and a
// meter added on the page, then overwrites page damage (1-based) of the
// file with garbage, as a failing SD card would. It returns the page
// count.
func corruptStore(t *testing.T, path string, n, acked int, damage func(pages int) []int) int {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]reading.Reading, n)
	for i := range rs {
		rs[i] = sampleReading("kam_1", t0.Add(time.Duration(i)*time.Minute))
	}
	if _, err := s.EnqueueBatch(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMeter(ctx, AddedMeter{Address: "17", Name: "Boiler"}); err != nil {
		t.Fatal(err)
	}
	if acked > 0 {
		if err := s.MarkAcked(int64(acked)); err != nil {
			t.Fatal(err)
		}
	}
	pageSize := pragmaInt(t, s, "page_size")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pages := len(b) / pageSize
	for _, p := range damage(pages) {
		copy(b[(p-1)*pageSize:p*pageSize], bytes.Repeat([]byte{0xA5}, pageSize))
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return pages
}

// What a damaged database still holds is taken over: the queued readings
// before, between and after the damaged pages, in order and with their
// times, and the meters added on the page; the readings on the damaged
// pages are counted as lost, those delivered before are neither.
func TestSalvage(t *testing.T) {
	for _, tt := range []struct {
		name    string
		n       int
		damaged func(pages int) []int // outbox leaves: the file is mostly outbox
	}{
		{"one page", 400, func(pages int) []int { return []int{pages * 2 / 3} }},
		{"two pages, several batches", 3 * salvageBatch, func(pages int) []int { return []int{pages / 3, pages * 2 / 3} }},
	} {
		t.Run(tt.name, func(t *testing.T) { salvageDamaged(t, tt.n, tt.damaged) })
	}
}

func salvageDamaged(t *testing.T, n int, damaged func(int) []int) {
	ctx := context.Background()
	const acked = 10
	path := filepath.Join(t.TempDir(), "gateway.db")
	var pages []int
	corruptStore(t, path, n, acked, func(total int) []int {
		pages = damaged(total)
		return pages
	})
	if _, err := Open(ctx, path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open(damaged pages %v) = %v, want ErrCorrupt", pages, err)
	}
	moved, err := QuarantineCorrupt(path)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(moved)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()

	got, err := Salvage(ctx, moved, s)
	if err != nil {
		t.Fatalf("Salvage: %v", err)
	}
	t.Logf("pages %v damaged; salvaged %+v", pages, got)
	if !got.Complete || got.Lost == 0 || got.Readings == 0 || got.Readings+got.Lost != n-acked || got.Meters != 1 {
		t.Errorf("salvaged %+v, want readings and lost adding up to the %d queued, and the added meter", got, n-acked)
	}
	rows, err := s.Pending(ctx, 0, 10*n)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != got.Readings {
		t.Fatalf("outbox after salvage: %d rows, want %d", len(rows), got.Readings)
	}
	if first := rows[0].Time; !first.Equal(t0.Add(acked * time.Minute)) {
		t.Errorf("first salvaged reading from %v, want the first not delivered, %v", first, t0.Add(acked*time.Minute))
	}
	if last := rows[len(rows)-1].Time; !last.Equal(t0.Add(time.Duration(n-1) * time.Minute)) {
		t.Errorf("last salvaged reading from %v, want the newest, %v", last, t0.Add(time.Duration(n-1)*time.Minute))
	}
	gaps, missing := 0, 0
	for i := 1; i < len(rows); i++ {
		switch d := rows[i].Time.Sub(rows[i-1].Time); {
		case d <= 0:
			t.Fatalf("rows %d and %d out of order", i-1, i)
		case d > time.Minute:
			gaps++
			missing += int(d/time.Minute) - 1
		}
	}
	if gaps != len(pages) || missing != got.Lost {
		t.Errorf("gaps in the salvaged readings: got %d missing %d readings, want one per damaged page missing the %d lost", gaps, missing, got.Lost)
	}
	if m, err := s.AddedMeters(ctx); err != nil || len(m) != 1 || m[0].Name != "Boiler" {
		t.Errorf("added meters after salvage: %+v, %v", m, err)
	}
	after, err := os.ReadFile(moved)
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the corrupt file changed during the salvage (%v)", err)
	}
	if matches, _ := filepath.Glob(moved + ".salvage*"); len(matches) != 0 {
		t.Errorf("copies left behind: %v", matches)
	}
}

// A file with nothing readable gives nothing and says the count of lost
// readings is unknown.
func TestSalvageGarbage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	moved := filepath.Join(dir, "old.db")
	if err := os.WriteFile(moved, bytes.Repeat([]byte("not sqlite"), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openTemp(t)
	got, err := Salvage(ctx, moved, s)
	if err != nil || got != (Salvaged{}) {
		t.Errorf("Salvage(garbage) = %+v, %v; want nothing and unknown loss", got, err)
	}
	if _, err := Salvage(ctx, filepath.Join(dir, "missing.db"), s); err == nil {
		t.Error("Salvage(missing file) succeeded")
	}
}
