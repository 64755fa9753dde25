// Package store keeps the gateway's persistent state in one SQLite file:
// the outbox of readings not yet acknowledged by the broker, the newest
// reading of every meter, the meters found by scans and a small key/value
// table.
//
// # Durability
//
// The database runs in WAL mode with synchronous=NORMAL. A transaction is
// committed once its frames are written to the WAL file, which happens
// before Enqueue returns; the operating system keeps those bytes when the
// process dies in any way (panic, OOM kill, SIGKILL), so a committed reading
// survives a crash of the gateway. What NORMAL gives up is the fsync on
// every commit: after a power cut or kernel crash the transactions since the
// last checkpoint may be lost, but the file is never corrupted. Meters keep
// their registers, so a lost reading is replaced by the next one; an fsync
// per reading would cost far more (flash wear on SD cards, 10 ms+ each) than
// it saves.
//
// # Concurrency
//
// A Store is safe for concurrent use. All statements share one connection:
// SQLite allows one writer at a time anyway, and a single connection removes
// SQLITE_BUSY between our own goroutines.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Sentinel errors, tested with errors.Is.
var (
	// ErrFull means the disk (or the database's page limit) is full. What
	// was committed before is intact; Trim or free space, then retry.
	ErrFull = errors.New("database or disk is full")
	// ErrCorrupt means the file is not a readable SQLite database. The
	// daemon may move it aside with QuarantineCorrupt and start empty.
	ErrCorrupt = errors.New("database file is corrupt")
	// ErrTooNew means the file was written by a newer gateway whose schema
	// this version does not know.
	ErrTooNew = errors.New("database schema is newer than this program")
	// ErrUnwritable means the file or its directory cannot be created or
	// written.
	ErrUnwritable = errors.New("database file cannot be opened for writing")
)

// busyTimeout bounds how long a statement waits for a lock held by another
// process (a backup tool, the sqlite3 shell) before failing.
const busyTimeout = 5 * time.Second

// Store is an open gateway database.
type Store struct {
	db   *sql.DB
	path string

	ackMu sync.Mutex
	acked int64 // see MarkAcked
}

// OpenError reports why the database file at Path could not be opened. Err
// wraps ErrCorrupt, ErrTooNew or ErrUnwritable where the cause is known.
type OpenError struct {
	Path string
	Err  error
}

// Error names the file, the cause and what to do about it.
func (e *OpenError) Error() string {
	msg := "store: open " + e.Path + ": " + e.Err.Error()
	if h := e.Hint(); h != "" {
		msg += "; " + h
	}
	return msg
}

// Hint says what the operator can do about the error; "" when the cause
// is not one of the known ones.
func (e *OpenError) Hint() string {
	switch {
	case errors.Is(e.Err, ErrCorrupt):
		return "move it aside (the gateway does so on start) or restore a backup"
	case errors.Is(e.Err, ErrTooNew):
		return "run a newer mbus-gateway or restore a backup made by this version"
	case errors.Is(e.Err, ErrUnwritable):
		return "check that the directory exists, is a directory and is writable"
	case errors.Is(e.Err, ErrFull):
		return "free disk space"
	}
	return ""
}

// Unwrap gives the cause.
func (e *OpenError) Unwrap() error { return e.Err }

// Open opens the database at path, creating the file and its directory if
// needed, and brings its schema up to date. A file written by a newer
// version is refused with ErrTooNew, an unreadable one with ErrCorrupt; both
// come as *OpenError.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, &OpenError{Path: path, Err: fmt.Errorf("want a file path, got %q", path)}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil { //nolint:gosec // G703: the path comes from the operator's data_dir option
		return nil, &OpenError{Path: path, Err: fmt.Errorf("%w: %w", ErrUnwritable, err)}
	}
	if err := private(path); err != nil {
		return nil, &OpenError{Path: path, Err: fmt.Errorf("%w: %w", ErrUnwritable, err)}
	}
	db := sql.OpenDB(connector{dsn: dsn(path)})
	// One connection, kept forever: the PRAGMAs of the DSN apply per
	// connection, and one writer is all SQLite allows.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := prepare(ctx, db); err != nil {
		_ = db.Close() // the open error is what matters
		return nil, &OpenError{Path: path, Err: classifyOpen(err)}
	}
	s := &Store{db: db, path: path}
	if err := loadMark(ctx, s); err != nil {
		_ = db.Close() // the open error is what matters
		return nil, &OpenError{Path: path, Err: fmt.Errorf("%w: acknowledgement mark: %w", ErrUnwritable, err)}
	}
	return s, nil
}

// fileMode is the mode of the database and its -wal and -shm files: they
// hold meter values and the MQTT client ID, readable by the gateway only.
const fileMode = 0o600

// private makes the database file readable by its owner only: it creates
// an empty one with fileMode (SQLite takes an empty file for a new
// database, and gives the -wal and -shm files the mode of the database
// file) and narrows the mode of files a former version left wider.
func private(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode) //nolint:gosec // G304: the path comes from the operator's data_dir option
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, fileMode); err != nil && !errors.Is(err, os.ErrNotExist) { //nolint:gosec // G703: the path comes from the operator's data_dir option
			return err
		}
	}
	return nil
}

// connector opens connections with the store's settings. Temporary
// tables and indices (sorting, VACUUM) stay in memory: the add-on may
// write nowhere but /data, and the outbox is small.
type connector struct{ dsn string }

var sqliteDriver = &sqlite3.SQLiteDriver{
	ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec("PRAGMA temp_store = MEMORY", nil)
		return err
	},
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return sqliteDriver.Open(c.dsn) }

func (c connector) Driver() driver.Driver { return sqliteDriver }

// prepare checks the file and migrates its schema.
func prepare(ctx context.Context, db *sql.DB) error {
	if err := db.PingContext(ctx); err != nil {
		return err
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	// quick_check reads every page; the outbox is bounded, so this stays
	// cheap, and it finds damage now rather than in the middle of a write.
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check(1)").Scan(&check); err != nil {
		return err
	}
	if check != "ok" {
		return fmt.Errorf("%w: quick_check: %s", ErrCorrupt, check)
	}
	return migrate(ctx, db, migrations)
}

// dsn builds the go-sqlite3 connection string. The path goes into an SQLite
// URI, where '%', '?' and '#' have meaning, so those are escaped.
func dsn(path string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=on" +
		"&_txlock=immediate&_busy_timeout=" + fmt.Sprint(busyTimeout.Milliseconds())
}

// classifyOpen adds the sentinel that tells the caller what to do.
func classifyOpen(err error) error {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code {
	case sqlite3.ErrNotADB, sqlite3.ErrCorrupt:
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	case sqlite3.ErrCantOpen, sqlite3.ErrReadonly, sqlite3.ErrPerm, sqlite3.ErrIoErr, sqlite3.ErrAuth:
		return fmt.Errorf("%w: %w", ErrUnwritable, err)
	case sqlite3.ErrFull:
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

// wrap prefixes err with op and marks a full disk with ErrFull.
func wrap(op string, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrFull {
		return fmt.Errorf("store: %s: %w: %w", op, ErrFull, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// Path is the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close checkpoints the WAL into the database file and closes it.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return wrap("close", err)
	}
	return nil
}

// QuarantineCorrupt moves a corrupt database file (and its -wal and -shm
// companions) aside to "<path>.corrupt-<UTC time>" so the gateway can start
// with an empty one. Nothing is deleted: the old file stays for inspection
// or recovery. It returns the new name of the database file.
func QuarantineCorrupt(path string) (string, error) {
	return quarantine(path, time.Now())
}

func quarantine(path string, now time.Time) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("store: quarantine: %w", err)
	}
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	target := base
	for i := 1; exists(target) || exists(target+"-wal") || exists(target+"-shm") || exists(target+ackedSuffix); i++ {
		target = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, target); err != nil {
		return "", fmt.Errorf("store: quarantine: %w", err)
	}
	// A WAL left behind would be replayed into the new empty database;
	// the acknowledgement mark belongs to the old one.
	for _, suffix := range []string{"-wal", "-shm", ackedSuffix} {
		if !exists(path + suffix) {
			continue
		}
		if err := os.Rename(path+suffix, target+suffix); err != nil {
			return target, fmt.Errorf("store: quarantine: %w", err)
		}
	}
	return target, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
