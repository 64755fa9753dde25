package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// The acknowledgement mark remembers, next to the database, that every
// outbox row up to a sequence number was acknowledged by the broker,
// for when deleting those rows fails (a full disk). Pending and Depth
// skip such rows, so they are never published again, also after a
// restart; they are deleted once a delete succeeds.
//
// The mark lives in a small file of fixed size, made when the store
// opens (while there is space) and then overwritten in place: on a full
// disk that still works where a database write does not.

// ackedSuffix names the mark file: the database path plus this.
const ackedSuffix = "-acked"

// ackedWidth is the mark file's size: a sequence number in decimal,
// padded with spaces, and a newline.
const ackedWidth = 21

// MarkAcked records that every outbox row with a sequence number up to
// seq was acknowledged and may no longer be published, whether or not
// deleting it has worked. Rows are acknowledged in the order they are
// published, oldest first, so one number describes them all.
func (s *Store) MarkAcked(seq int64) error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	if seq <= s.acked {
		return nil
	}
	s.acked = seq
	if err := writeMark(s.path+ackedSuffix, seq); err != nil {
		return fmt.Errorf("store: mark acknowledged: %w", err)
	}
	return nil
}

// ackedThrough is the mark: rows up to it are gone for Pending and Depth.
func (s *Store) ackedThrough() int64 {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	return s.acked
}

// loadMark reads the mark of the database at path and makes its file if
// there is none; it applies the mark (deleting the acknowledged rows
// where possible) and returns it. A mark beyond the newest sequence
// number the database ever gave belongs to another file and is reset.
func loadMark(ctx context.Context, s *Store) error {
	path := s.path + ackedSuffix
	mark, err := readMark(path)
	if err != nil {
		return err
	}
	var issued int64
	err = s.db.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)`).Scan(&issued)
	if err != nil {
		return err
	}
	if mark > issued {
		mark = 0
	}
	if err := writeMark(path, mark); err != nil {
		return err
	}
	s.acked = mark
	if mark > 0 {
		// On a full disk this fails; the rows stay skipped until a later
		// delete of acknowledged rows takes them.
		_, _ = s.db.ExecContext(ctx, `DELETE FROM outbox WHERE seq <= ?`, mark)
	}
	return nil
}

// readMark reads a mark file; a missing or unreadable one is 0.
func readMark(path string) (int64, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: next to the database, in the operator's data_dir
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0, nil // a torn write: the rows are sent again, never lost
	}
	return n, nil
}

// writeMark writes seq into the mark file in place.
func writeMark(path string, seq int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, fileMode) //nolint:gosec // G304: next to the database, in the operator's data_dir
	if err != nil {
		return err
	}
	line := fmt.Sprintf("%-*d\n", ackedWidth-1, seq)
	_, werr := io.WriteString(f, line)
	if err := f.Close(); werr == nil {
		werr = err
	}
	return werr
}
