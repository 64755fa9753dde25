package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	for i := range n {
		mustEnqueue(t, s, sampleReading("kam_1", t0.Add(time.Duration(i)*time.Minute)))
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
// before and after the damaged page, in order and with their times,
// and the meters added on the page; the readings on the damaged page are
// counted as lost, those delivered before are neither.
func TestSalvage(t *testing.T) {
	ctx := context.Background()
	const n, acked = 400, 10
	path := filepath.Join(t.TempDir(), "gateway.db")
	var damaged int
	corruptStore(t, path, n, acked, func(pages int) []int {
		damaged = pages * 2 / 3 // an outbox leaf: the file is mostly outbox
		return []int{damaged}
	})
	if _, err := Open(ctx, path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open(damaged page %d) = %v, want ErrCorrupt", damaged, err)
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
	t.Logf("salvaged %+v", got)
	if !got.Complete || got.Lost == 0 || got.Readings == 0 || got.Readings+got.Lost != n-acked || got.Meters != 1 {
		t.Errorf("salvaged %+v, want readings and lost adding up to the %d queued, and the added meter", got, n-acked)
	}
	rows, err := s.Pending(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != got.Readings {
		t.Fatalf("outbox after salvage: %d rows, want %d", len(rows), got.Readings)
	}
	if first := rows[0].Time; !first.Equal(t0.Add(acked * time.Minute)) {
		t.Errorf("first salvaged reading from %v, want the first not delivered, %v", first, t0.Add(acked*time.Minute))
	}
	if last := rows[len(rows)-1].Time; !last.Equal(t0.Add((n - 1) * time.Minute)) {
		t.Errorf("last salvaged reading from %v, want the newest, %v", last, t0.Add((n-1)*time.Minute))
	}
	gaps := 0
	for i := 1; i < len(rows); i++ {
		switch d := rows[i].Time.Sub(rows[i-1].Time); {
		case d <= 0:
			t.Fatalf("rows %d and %d out of order", i-1, i)
		case d > time.Minute:
			gaps++
			if missing := int(d/time.Minute) - 1; missing != got.Lost {
				t.Errorf("gap of %d readings, want the %d counted lost", missing, got.Lost)
			}
		}
	}
	if gaps != 1 {
		t.Errorf("gaps in the salvaged readings: got %d, want the one damaged page", gaps)
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
