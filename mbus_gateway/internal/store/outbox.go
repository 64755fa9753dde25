package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// Row is one reading waiting in the outbox.
type Row struct {
	// Seq orders the outbox: it only grows, also across restarts.
	Seq   int64
	Meter string
	// Time is the time of the read, in UTC.
	Time    time.Time
	Reading reading.Reading
	// Payload is the stored JSON of Reading, ready to publish as is.
	Payload []byte
}

// RowError reports an outbox row whose payload cannot be decoded. The
// caller may Delete Seq to get past it.
type RowError struct {
	Seq int64
	Err error
}

// Error names the row.
func (e *RowError) Error() string { return fmt.Sprintf("outbox row %d: %v", e.Seq, e.Err) }

// Unwrap gives the decoding error.
func (e *RowError) Unwrap() error { return e.Err }

// Times outside this range do not fit Unix nanoseconds or are clearly wrong.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// checkReading refuses readings the outbox cannot keep.
func checkReading(r reading.Reading) error {
	if r.Meter == "" {
		return errors.New("reading has no meter")
	}
	if r.Time.Before(minTime) || !r.Time.Before(maxTime) {
		return fmt.Errorf("reading of %s has time %v, want 1970 to 2261", r.Meter, r.Time)
	}
	return nil
}

// pendingRow is a reading ready for the database.
type pendingRow struct {
	meter   string
	nanos   int64
	payload []byte
}

func encodeReading(r reading.Reading) (pendingRow, error) {
	if err := checkReading(r); err != nil {
		return pendingRow{}, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return pendingRow{}, fmt.Errorf("reading of %s: %w", r.Meter, err)
	}
	return pendingRow{meter: r.Meter, nanos: r.Time.UnixNano(), payload: b}, nil
}

// Enqueue commits r to the outbox and makes it the meter's last reading
// (unless a newer one is already stored), in one transaction. When it
// returns nil the reading survives a crash of the process.
func (s *Store) Enqueue(ctx context.Context, r reading.Reading) (int64, error) {
	seqs, err := s.enqueue(ctx, []reading.Reading{r})
	if err != nil {
		return 0, wrap("enqueue", err)
	}
	return seqs[0], nil
}

// EnqueueBatch commits several readings in one transaction: all or none.
// It returns their sequence numbers in the order given. One commit for many
// readings is much cheaper than one each, for a caller that has several at
// hand (a bus that read several meters in one cycle).
func (s *Store) EnqueueBatch(ctx context.Context, rs []reading.Reading) ([]int64, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	seqs, err := s.enqueue(ctx, rs)
	if err != nil {
		return nil, wrap("enqueue batch", err)
	}
	return seqs, nil
}

func (s *Store) enqueue(ctx context.Context, rs []reading.Reading) ([]int64, error) {
	rows := make([]pendingRow, len(rs))
	for i, r := range rs {
		var err error
		if rows[i], err = encodeReading(r); err != nil {
			return nil, err
		}
	}
	return s.insert(ctx, rows)
}

// insert commits rows to the outbox and the last state in one
// transaction.
func (s *Store) insert(ctx context.Context, rows []pendingRow) ([]int64, error) {
	seqs := make([]int64, 0, len(rows))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, p := range rows {
			var seq int64
			err := tx.QueryRowContext(ctx,
				`INSERT INTO outbox (meter, time, payload) VALUES (?, ?, ?) RETURNING seq`,
				p.meter, p.nanos, p.payload).Scan(&seq)
			if err != nil {
				return err
			}
			// A reading older than the stored one (a delayed retry) must
			// not replace it.
			_, err = tx.ExecContext(ctx,
				`INSERT INTO last_state (meter, time, payload) VALUES (?, ?, ?)
				 ON CONFLICT (meter) DO UPDATE SET time = excluded.time, payload = excluded.payload
				 WHERE excluded.time >= last_state.time`,
				p.meter, p.nanos, p.payload)
			if err != nil {
				return err
			}
			seqs = append(seqs, seq)
		}
		return nil
	})
	return seqs, err
}

// inTx runs f in a write transaction and commits it.
func (s *Store) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Pending returns up to limit outbox rows with Seq > afterSeq, oldest first,
// leaving out rows marked acknowledged (MarkAcked).
// A row that cannot be decoded stops the list with a *RowError; the rows
// before it are returned with the error.
func (s *Store) Pending(ctx context.Context, afterSeq int64, limit int) ([]Row, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("store: pending: limit %d, want at least 1", limit)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT seq, meter, time, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`,
		max(afterSeq, s.ackedThrough()), limit)
	if err != nil {
		return nil, wrap("pending", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Row
	for rows.Next() {
		var r Row
		var nanos int64
		if err := rows.Scan(&r.Seq, &r.Meter, &nanos, &r.Payload); err != nil {
			return out, wrap("pending", err)
		}
		r.Time = time.Unix(0, nanos).UTC()
		if err := json.Unmarshal(r.Payload, &r.Reading); err != nil {
			return out, wrap("pending", &RowError{Seq: r.Seq, Err: err})
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return out, wrap("pending", err)
	}
	return out, nil
}

// Delete removes outbox rows, typically after the broker acknowledged them.
// Sequence numbers not in the outbox are ignored.
func (s *Store) Delete(ctx context.Context, seqs ...int64) error {
	if len(seqs) == 0 {
		return nil
	}
	// Chunks stay far below SQLite's limit on bound parameters.
	const chunk = 500
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for len(seqs) > 0 {
			n := min(chunk, len(seqs))
			args := make([]any, n)
			for i, v := range seqs[:n] {
				args[i] = v
			}
			// Only placeholders are concatenated; the values are bound.
			q := `DELETE FROM outbox WHERE seq IN (?` + strings.Repeat(",?", n-1) + `)` //nolint:gosec // G202: placeholders only
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
			seqs = seqs[n:]
		}
		return nil
	})
	if err != nil {
		return wrap("delete", err)
	}
	return nil
}

// Depth is the number of rows in the outbox not marked acknowledged.
func (s *Store) Depth(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE seq > ?`, s.ackedThrough()).Scan(&n); err != nil {
		return 0, wrap("depth", err)
	}
	return n, nil
}

// Trim keeps the outbox bounded: it drops rows older than now-maxAge and
// then the oldest rows beyond the newest maxRows. A limit of zero or less is
// not applied. It returns how many rows were dropped. Deleting needs no new
// pages, so Trim works on a full disk and is the way out of ErrFull.
func (s *Store) Trim(ctx context.Context, maxRows int, maxAge time.Duration, now time.Time) (int, error) {
	var dropped int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Rows marked acknowledged were delivered, not dropped.
		if mark := s.ackedThrough(); mark > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq <= ?`, mark); err != nil {
				return err
			}
		}
		if maxAge > 0 {
			res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE time < ?`, now.Add(-maxAge).UnixNano())
			if err != nil {
				return err
			}
			dropped += affected(res)
		}
		if maxRows > 0 {
			// The subquery finds the newest row that has to go; NULL (fewer
			// rows than the limit) deletes nothing.
			res, err := tx.ExecContext(ctx,
				`DELETE FROM outbox WHERE seq <= (SELECT seq FROM outbox ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
				maxRows)
			if err != nil {
				return err
			}
			dropped += affected(res)
		}
		return nil
	})
	if err != nil {
		return 0, wrap("trim", err)
	}
	return int(dropped), nil
}

// affected reads RowsAffected, which go-sqlite3 always supports.
func affected(res sql.Result) int64 {
	n, err := res.RowsAffected()
	if err != nil {
		return 0
	}
	return n
}

// LastReadings returns the newest reading of every meter, ordered by meter.
// It is what the gateway shows and rediscovers after a restart.
func (s *Store) LastReadings(ctx context.Context) ([]reading.Reading, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT meter, payload FROM last_state ORDER BY meter`)
	if err != nil {
		return nil, wrap("last readings", err)
	}
	defer func() { _ = rows.Close() }()
	var out []reading.Reading
	for rows.Next() {
		var meter string
		var payload []byte
		if err := rows.Scan(&meter, &payload); err != nil {
			return nil, wrap("last readings", err)
		}
		var r reading.Reading
		if err := json.Unmarshal(payload, &r); err != nil {
			return nil, wrap("last readings", fmt.Errorf("meter %s: %w", meter, err))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("last readings", err)
	}
	return out, nil
}
