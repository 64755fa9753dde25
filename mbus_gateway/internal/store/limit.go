package store

import (
	"context"
	"errors"
	"fmt"
)

// LimitPages caps the database file at n pages (PRAGMA max_page_count)
// and returns the limit now in force: SQLite never sets it below the
// pages already in use. A write that needs more pages then fails with
// ErrFull exactly as on a full disk, while deletes still work and free
// pages for new rows. It exists to try the gateway's full-disk path
// without filling a real disk; the limit lasts as long as the Store (the
// PRAGMA belongs to the one connection the Store keeps open).
func (s *Store) LimitPages(ctx context.Context, n int) (int, error) {
	if n <= 0 {
		return 0, errors.New("store: limit pages: want a positive page count")
	}
	var got int
	// PRAGMA arguments cannot be bound; n is an int, so formatting is safe.
	if err := s.db.QueryRowContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", n)).Scan(&got); err != nil {
		return 0, wrap("limit pages", err)
	}
	return got, nil
}

// Pages is the number of pages the database file holds now (PRAGMA
// page_count), free ones included.
func (s *Store) Pages(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&n); err != nil {
		return 0, wrap("pages", err)
	}
	return n, nil
}
