package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// AddedMeter is a meter added on the status page: it is read from then
// on, across restarts, besides the meters of the options.
type AddedMeter struct {
	// Bus is the name of the meter's bus, empty for the single bus of the
	// single-bus options.
	Bus string
	// Address is the meter's address as mbus.Address.String gives it:
	// "0"-"250" or 16 hex digits. With Bus it identifies the entry.
	Address string
	// Name is the name given on the page; may be empty.
	Name string
}

// AddMeter keeps m, after the meters added before it; a meter already
// kept at m.Address on m.Bus gets m.Name and keeps its place.
func (s *Store) AddMeter(ctx context.Context, m AddedMeter) error {
	if m.Address == "" {
		return errors.New("store: add meter: empty address")
	}
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO added_meter (bus, address, name) VALUES (?, ?, ?)
		 ON CONFLICT (bus, address) DO UPDATE SET name = excluded.name`,
		m.Bus, m.Address, m.Name)
	if err != nil {
		return wrap("add meter "+m.Address, err)
	}
	return nil
}

// AddedMeters lists the meters added on the status page, of all buses,
// oldest first.
func (s *Store) AddedMeters(ctx context.Context) ([]AddedMeter, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT bus, address, name FROM added_meter ORDER BY seq`)
	if err != nil {
		return nil, wrap("added meters", err)
	}
	defer func() { _ = rows.Close() }()
	var out []AddedMeter
	for rows.Next() {
		var m AddedMeter
		if err := rows.Scan(&m.Bus, &m.Address, &m.Name); err != nil {
			return nil, wrap("added meters", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("added meters", err)
	}
	return out, nil
}

// RemoveMeter forgets the added meter at address on bus and reports
// whether there was one.
func (s *Store) RemoveMeter(ctx context.Context, bus, address string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM added_meter WHERE bus = ? AND address = ?`, bus, address)
	if err != nil {
		return false, wrap("remove meter "+address, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap("remove meter "+address, err)
	}
	return n > 0, nil
}

// Quarantine records a corrupt database file moved aside (see
// QuarantineCorrupt), kept in the database that replaced it so that the
// warning about it survives restarts.
type Quarantine struct {
	// Path is where the corrupt file was moved to.
	Path string
	// At is when, kept in milliseconds, in UTC.
	At time.Time
}

// RecordQuarantine keeps q.
func (s *Store) RecordQuarantine(ctx context.Context, q Quarantine) error {
	if q.Path == "" {
		return errors.New("store: record quarantine: empty path")
	}
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO quarantine (path, at) VALUES (?, ?) ON CONFLICT (path) DO UPDATE SET at = excluded.at`,
		q.Path, q.At.UnixMilli())
	if err != nil {
		return wrap("record quarantine", err)
	}
	return nil
}

// LastQuarantine returns the newest quarantine record, if any.
func (s *Store) LastQuarantine(ctx context.Context) (Quarantine, bool, error) {
	var q Quarantine
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT path, at FROM quarantine ORDER BY at DESC LIMIT 1`).Scan(&q.Path, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Quarantine{}, false, nil
	}
	if err != nil {
		return Quarantine{}, false, wrap("last quarantine", err)
	}
	q.At = time.UnixMilli(at).UTC()
	return q, true, nil
}

// Keys of the key/value table under which versions before schema 3 kept,
// as JSON, the meters added on the status page (a list of {"address",
// "name"}) and the quarantine record ({"path", "at"}).
const (
	oldAddedMetersKey = "web.added_meters"
	oldQuarantineKey  = "data.quarantined"
)

// migrateV3 gives the meters added on the status page and the quarantine
// records tables of their own and moves what earlier versions kept as
// JSON in the key/value table into them. A value that is not the JSON
// they wrote stays where it is: nothing is lost, and the file still opens.
func migrateV3(ctx context.Context, tx *sql.Tx) error {
	err := execAll(ctx, tx,
		`CREATE TABLE added_meter (
			seq     INTEGER PRIMARY KEY AUTOINCREMENT,
			address TEXT    NOT NULL UNIQUE,
			name    TEXT    NOT NULL
		)`,
		`CREATE TABLE quarantine (
			path TEXT    PRIMARY KEY,
			at   INTEGER NOT NULL
		) WITHOUT ROWID`,
	)
	if err != nil {
		return err
	}
	var added []struct {
		Address string `json:"address"`
		Name    string `json:"name"`
	}
	err = moveJSON(ctx, tx, oldAddedMetersKey, &added, func() error {
		for _, m := range added {
			if m.Address == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO added_meter (address, name) VALUES (?, ?) ON CONFLICT (address) DO NOTHING`,
				m.Address, m.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var q struct {
		Path string    `json:"path"`
		At   time.Time `json:"at"`
	}
	return moveJSON(ctx, tx, oldQuarantineKey, &q, func() error {
		if q.Path == "" {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO quarantine (path, at) VALUES (?, ?)`, q.Path, q.At.UnixMilli())
		return err
	})
}

// moveJSON decodes the key/value entry key into v, lets insert write it
// elsewhere and deletes the entry. A missing entry, or one that does not
// decode, is left alone.
func moveJSON(ctx context.Context, tx *sql.Tx, key string, v any, insert func() error) error {
	var raw string
	err := tx.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if json.Unmarshal([]byte(raw), v) != nil {
		return nil
	}
	if err := insert(); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM kv WHERE key = ?`, key)
	return err
}
