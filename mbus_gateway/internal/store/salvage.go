package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// Salvaged is what Salvage took over from a corrupt database.
type Salvaged struct {
	// Readings is the number of queued readings copied into the new
	// outbox; Lost those known to have been queued that could not be
	// read. Complete is false when the outbox could not be read at all,
	// so that how many were lost is unknown.
	Readings int  `json:"readings"`
	Lost     int  `json:"lost"`
	Complete bool `json:"complete"`
	// Meters counts the meters added on the status page that were kept.
	Meters int `json:"meters"`
}

// Salvage copies what can still be read from the corrupt database at
// from (as QuarantineCorrupt left it) into s: the readings still queued
// in its outbox, in their order and with their times, and the meters
// added on the status page. The corrupt file itself is not changed: a
// copy is read and removed again.
//
// A damaged page of the outbox stops a scan in key order, so the table
// is read from both ends; the rows between the last readable ones from
// either side are the lost ones (the outbox holds consecutive sequence
// numbers: rows leave it from the oldest end only). Rows up to the old
// file's acknowledgement mark were delivered and are not taken over.
func Salvage(ctx context.Context, from string, s *Store) (Salvaged, error) {
	var out Salvaged
	tmp := from + ".salvage"
	defer removeCopy(tmp)
	if err := copyDB(from, tmp); err != nil {
		return out, fmt.Errorf("store: salvage: %w", err)
	}
	db := sql.OpenDB(connector{dsn: dsn(tmp)})
	db.SetMaxOpenConns(1)
	defer func() { _ = db.Close() }()

	mark, err := readMark(from + ackedSuffix)
	if err != nil {
		mark = 0 // readings sent twice rather than lost
	}
	rows, lost, complete := salvageOutbox(ctx, db, mark)
	out.Lost, out.Complete = lost, complete
	readings := make([]reading.Reading, 0, len(rows))
	for _, r := range rows {
		var rd reading.Reading
		if err := json.Unmarshal(r, &rd); err != nil {
			out.Lost++
			continue
		}
		if _, err := encodeReading(rd); err != nil {
			out.Lost++
			continue
		}
		readings = append(readings, rd)
	}
	// One transaction for all: a salvage is done completely or not at all.
	if _, err := s.EnqueueBatch(ctx, readings); err != nil {
		return Salvaged{}, fmt.Errorf("store: salvage: %w", err)
	}
	out.Readings = len(readings)
	for _, m := range salvageMeters(ctx, db) {
		if err := s.AddMeter(ctx, m); err != nil {
			return out, fmt.Errorf("store: salvage: %w", err)
		}
		out.Meters++
	}
	return out, nil
}

// salvageOutbox reads the payloads of the outbox rows after mark, in
// order, from both ends; lost counts the rows between, complete says
// whether the table could be read at all.
func salvageOutbox(ctx context.Context, db *sql.DB, mark int64) (payloads [][]byte, lost int, complete bool) {
	type row struct {
		seq     int64
		payload []byte
	}
	scan := func(query string, args ...any) ([]row, bool) {
		rs, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, false
		}
		defer func() { _ = rs.Close() }()
		var out []row
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.seq, &r.payload); err != nil {
				return out, false
			}
			out = append(out, r)
		}
		return out, rs.Err() == nil
	}
	up, whole := scan(`SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq`, mark)
	if whole {
		for _, r := range up {
			payloads = append(payloads, r.payload)
		}
		return payloads, 0, true
	}
	after := mark
	if len(up) > 0 {
		after = up[len(up)-1].seq
	}
	down, _ := scan(`SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq DESC`, after)
	for _, r := range up {
		payloads = append(payloads, r.payload)
	}
	for i := len(down) - 1; i >= 0; i-- {
		payloads = append(payloads, down[i].payload)
	}
	switch {
	case len(down) > 0:
		lost = int(down[len(down)-1].seq - after - 1)
	default:
		// Nothing readable after the damage: the newest sequence number
		// given out bounds what was there.
		var issued int64
		if err := db.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'outbox'`).Scan(&issued); err != nil {
			return payloads, 0, false
		}
		lost = int(issued - after)
	}
	return payloads, max(lost, 0), len(up) > 0 || len(down) > 0
}

// salvageMeters reads the meters added on the status page, as far as
// they can be read.
func salvageMeters(ctx context.Context, db *sql.DB) []AddedMeter {
	rs, err := db.QueryContext(ctx, `SELECT address, name FROM added_meter ORDER BY seq`)
	if err != nil {
		return nil
	}
	defer func() { _ = rs.Close() }()
	var out []AddedMeter
	for rs.Next() {
		var m AddedMeter
		if err := rs.Scan(&m.Address, &m.Name); err != nil || m.Address == "" {
			break
		}
		out = append(out, m)
	}
	_ = rs.Err() // what was read before a damaged page is kept all the same
	return out
}

// copyDB copies the database file at from and its WAL to to.
func copyDB(from, to string) error {
	if err := copyFile(from, to); err != nil {
		return err
	}
	err := copyFile(from+"-wal", to+"-wal")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func copyFile(from, to string) error {
	in, err := os.Open(from) //nolint:gosec // G304: a file the store moved aside in the operator's data_dir
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode) //nolint:gosec // G304: next to it
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// removeCopy deletes the copy Salvage read and its companions.
func removeCopy(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		_ = os.Remove(p)
	}
}
