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
// A damaged page stops a scan of the outbox in key order; the scan goes
// on after the damage, found by seeking sequence number after sequence
// number. The outbox holds consecutive sequence numbers (rows leave it
// from the oldest end), so the numbers skipped are the readings lost.
// Rows up to the old file's acknowledgement mark were delivered and are
// not taken over. Readings are committed in batches as they are read.
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
	// The payloads go over unchanged, as they would have been published.
	batch := make([]pendingRow, 0, salvageBatch)
	commit := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := s.insert(ctx, batch); err != nil {
			return wrap("salvage", err)
		}
		out.Readings += len(batch)
		batch = batch[:0]
		return nil
	}
	take := func(payload []byte) error {
		var rd reading.Reading
		if err := json.Unmarshal(payload, &rd); err != nil || checkReading(rd) != nil {
			out.Lost++
			return nil
		}
		if batch = append(batch, pendingRow{meter: rd.Meter, nanos: rd.Time.UnixNano(), payload: payload}); len(batch) == salvageBatch {
			return commit()
		}
		return nil
	}
	lost, complete, err := salvageOutbox(ctx, db, mark, take)
	if err == nil {
		err = commit()
	}
	out.Lost += lost
	out.Complete = complete
	if err != nil {
		return out, err
	}
	for _, m := range salvageMeters(ctx, db) {
		if err := s.AddMeter(ctx, m); err != nil {
			return out, fmt.Errorf("store: salvage: %w", err)
		}
		out.Meters++
	}
	return out, nil
}

// salvageBatch is how many readings Salvage commits in one transaction.
const salvageBatch = 500

// salvageOutbox hands the payloads of the readable outbox rows after mark
// to take, in order. lost counts the rows skipped for damage; complete
// says whether that count is known. An error comes from take only.
func salvageOutbox(ctx context.Context, db *sql.DB, mark int64, take func([]byte) error) (lost int, complete bool, err error) {
	top, known := newestSeq(ctx, db)
	after := mark
	var resumed int64 // where the last scan was resumed
	for {
		last, done, err := ascend(ctx, db, after, take)
		if err != nil || done {
			return lost, done, err
		}
		if !known {
			return lost, false, nil
		}
		from := last + 1
		if last == after && resumed > 0 {
			from = resumed + 1 // a seek reached that row, a scan did not
		}
		next, found := nextReadable(ctx, db, from, top)
		if !found {
			return lost + int(top-last), true, nil
		}
		lost += int(next - last - 1)
		after, resumed = next-1, next
	}
}

// ascend hands the rows after seq after to take, in order, until the
// table ends (done) or a damaged page stops the scan; last is the
// sequence number of the last row read.
func ascend(ctx context.Context, db *sql.DB, after int64, take func([]byte) error) (last int64, done bool, err error) {
	last = after
	// "seq >= after+1", not "seq > after": past damage, a seek for a
	// row's own number lands on it, while one for its predecessor may
	// land in the damaged page and step from there.
	rs, err := db.QueryContext(ctx, `SELECT seq, payload FROM outbox WHERE seq >= ? ORDER BY seq`, after+1)
	if err != nil {
		return last, false, nil
	}
	defer func() { _ = rs.Close() }()
	for rs.Next() {
		var seq int64
		var payload []byte
		if err := rs.Scan(&seq, &payload); err != nil {
			return last, false, nil
		}
		if err := take(payload); err != nil {
			return last, false, err
		}
		last = seq
	}
	return last, rs.Err() == nil, nil
}

// newestSeq is the highest sequence number in the outbox, or, if that
// cannot be read, the highest one the database gave out.
func newestSeq(ctx context.Context, db *sql.DB) (int64, bool) {
	var top int64
	if err := db.QueryRowContext(ctx, `SELECT seq FROM outbox ORDER BY seq DESC LIMIT 1`).Scan(&top); err == nil {
		return top, true
	}
	if err := db.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'outbox'`).Scan(&top); err == nil {
		return top, true
	}
	return 0, false
}

// nextReadable finds the first row at or after seq from, up to top, that
// a seek can reach past a damaged page.
func nextReadable(ctx context.Context, db *sql.DB, from, top int64) (int64, bool) {
	for x := from; x <= top && ctx.Err() == nil; x++ {
		var seq, n int64
		err := db.QueryRowContext(ctx, `SELECT seq, length(payload) FROM outbox WHERE seq >= ? ORDER BY seq LIMIT 1`, x).Scan(&seq, &n)
		if err == nil {
			return seq, true
		}
		if errors.Is(err, sql.ErrNoRows) {
			return 0, false
		}
	}
	return 0, false
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
