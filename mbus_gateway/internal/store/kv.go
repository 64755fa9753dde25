package store

import (
	"context"
	"database/sql"
	"errors"
)

// heartbeatKey is the key/value entry Check rewrites. Keys starting with
// "store." are reserved for the store itself.
const heartbeatKey = "store.heartbeat"

// Get returns the value stored under key and whether there is one.
func (s *Store) Get(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, wrap("get "+key, err)
	}
	return v, true, nil
}

// Set stores value under key, replacing what was there.
func (s *Store) Set(ctx context.Context, key, value string) error {
	if key == "" {
		return errors.New("store: set: empty key")
	}
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		key, value)
	if err != nil {
		return wrap("set "+key, err)
	}
	return nil
}

// Check is the health probe: it commits a real write (a counter in the
// key/value table), so a full disk, a read-only file system or a lock held
// too long by another process shows up as an error.
func (s *Store) Check(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO kv (key, value) VALUES (?, '1')
		 ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)`,
		heartbeatKey)
	if err != nil {
		return wrap("check", err)
	}
	return nil
}
