package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading/readingtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(killHelperEnv) != "" {
		os.Exit(runKillHelper())
	}
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sampleReading is a realistic heat meter reading of ten records.
func sampleReading(meter string, at time.Time) reading.Reading {
	num := readingtest.Number
	powerMax := num("power_max", "power", "kW", 14.9)
	powerMax.Function = mbus.FuncMaximum
	stored := num("energy_storage_1", "energy", "kWh", 36012)
	stored.Storage = 1
	return readingtest.Heat(meter, "06855817", at,
		num("energy", "energy", "kWh", 37351),
		num("volume", "volume", "m³", 1234.56),
		num("on_time", "on_time", "h", 7344),
		num("flow_temperature", "flow_temperature", "°C", 71.3),
		num("return_temperature", "return_temperature", "°C", 43.9),
		num("temperature_difference", "temperature_difference", "K", 27.4),
		num("power", "power", "kW", 3.2),
		powerMax,
		num("volume_flow", "volume_flow", "m³/h", 0.101),
		stored,
	)
}

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "gateway.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openRaw opens path with the store's settings but without migrating.
func openRaw(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", dsn(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, db.Ping()
}

func pragmaInt(t *testing.T, s *Store, name string) int {
	t.Helper()
	var v int
	if err := s.db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestOpenSettings(t *testing.T) {
	// A directory that does not exist yet, with characters that mean
	// something in an SQLite URI.
	path := filepath.Join(t.TempDir(), "a?b#c%41", "gateway.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() { _ = s.Close() }()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
	var mode string
	if err := s.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"journal_mode", mode, "wal"},
		{"synchronous", pragmaInt(t, s, "synchronous"), 1}, // NORMAL
		{"foreign_keys", pragmaInt(t, s, "foreign_keys"), 1},
		{"busy_timeout", pragmaInt(t, s, "busy_timeout"), int(busyTimeout.Milliseconds())},
		{"user_version", pragmaInt(t, s, "user_version"), SchemaVersion()},
		{"temp_store", pragmaInt(t, s, "temp_store"), 2}, // MEMORY: no files outside the data directory
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// The database and its -wal and -shm files are the gateway's alone, new
// ones and those a former version made readable for all.
func TestFileModes(t *testing.T) {
	for _, tt := range []struct {
		name string
		prep func(t *testing.T, path string)
	}{
		{"new", func(*testing.T, string) {}},
		{"world-readable", func(t *testing.T, path string) {
			s, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			mustEnqueue(t, s, sampleReading("kam_1", t0))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil { //nolint:gosec // G302: the mode a former version left
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gateway.db")
			tt.prep(t, path)
			s, err := Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			mustEnqueue(t, s, sampleReading("kam_1", t0.Add(time.Minute)))
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != 0o600 {
					t.Errorf("%s: mode %v, want -rw-------", filepath.Base(p), got)
				}
			}
		})
	}
}

func TestOpenBadPath(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db"} {
		_, err := Open(context.Background(), path)
		var oe *OpenError
		if !errors.As(err, &oe) {
			t.Errorf("Open(%q) = %v, want *OpenError", path, err)
		}
	}
}

func TestOpenUnwritable(t *testing.T) {
	// A path below a regular file fails with ENOTDIR, also for root.
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		filepath.Join(file, "gateway.db"),
		filepath.Join(file, "sub", "gateway.db"),
	} {
		_, err := Open(context.Background(), path)
		var oe *OpenError
		if !errors.As(err, &oe) || oe.Path != path {
			t.Fatalf("Open(%q) = %v, want *OpenError for the path", path, err)
		}
		if !errors.Is(err, ErrUnwritable) {
			t.Errorf("Open(%q) = %v, want ErrUnwritable", path, err)
		}
		if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "writable") {
			t.Errorf("message %q should name the file and what to check", msg)
		}
	}
	// A directory where the file should be.
	dir := t.TempDir()
	_, err := Open(context.Background(), dir)
	if !errors.Is(err, ErrUnwritable) {
		t.Errorf("Open(directory) = %v, want ErrUnwritable", err)
	}
}

func TestOpenCorruptAndQuarantine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.db")
	garbage := bytes.Repeat([]byte("this is not an sqlite file \x00\xff"), 200)
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path)
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Path != path || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open(garbage) = %v, want *OpenError with ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("message %q does not name the file", err)
	}

	now := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	moved, err := quarantine(path, now)
	if err != nil {
		t.Fatalf("quarantine: %v", err)
	}
	if want := path + ".corrupt-20260504T030201Z"; moved != want {
		t.Errorf("moved to %q, want %q", moved, want)
	}
	got, err := os.ReadFile(moved)
	if err != nil || !bytes.Equal(got, garbage) {
		t.Errorf("quarantined file changed or missing: %v", err)
	}
	// A second corrupt file in the same second gets its own name.
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	moved2, err := quarantine(path, now)
	if err != nil || moved2 == moved || !exists(moved) || !exists(moved2) {
		t.Errorf("second quarantine = %q, %v; want a new name next to %q", moved2, err, moved)
	}

	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open after quarantine: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := QuarantineCorrupt(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("QuarantineCorrupt(missing file) succeeded")
	}
}

func TestOpenDamagedPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	// Page 3 is a b-tree page; the header on page 1 stays valid.
	if pages := corruptStore(t, path, 200, 0, func(int) []int { return []int{3} }); pages < 4 {
		t.Fatalf("database has %d pages, want several", pages)
	}
	_, err := Open(context.Background(), path)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open(damaged) = %v, want ErrCorrupt", err)
	}
}

func TestMigrateUpgradesOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	// Write a version 1 file the way the first release did.
	old, err := openRaw(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := migrate(ctx, old, migrations[:1]); err != nil {
		t.Fatalf("migrate to v1: %v", err)
	}
	if _, err := old.ExecContext(ctx, `INSERT INTO outbox (meter, time, payload) VALUES ('kam_1', 5, '{"meter":"kam_1"}')`); err != nil {
		t.Fatal(err)
	}
	_ = old.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open(v1 file): %v", err)
	}
	defer func() { _ = s.Close() }()
	if got, want := pragmaInt(t, s, "user_version"), SchemaVersion(); got != want {
		t.Errorf("user_version = %d, want %d", got, want)
	}
	rows, err := s.Pending(ctx, 0, 10)
	if err != nil || len(rows) != 1 || rows[0].Meter != "kam_1" {
		t.Errorf("Pending after upgrade = %+v, %v; want the v1 row", rows, err)
	}
	if err := s.SaveFound(ctx, []Found{{Address: "5"}}); err != nil {
		t.Errorf("SaveFound after upgrade: %v", err)
	}
	var idx int
	if err := s.db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'outbox_time'`).Scan(&idx); err != nil || idx != 1 {
		t.Errorf("index outbox_time: count %d, %v; want 1", idx, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.db")
	db, err := openRaw(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	_, err = Open(context.Background(), path)
	var oe *OpenError
	if !errors.As(err, &oe) || !errors.Is(err, ErrTooNew) {
		t.Fatalf("Open(v99 file) = %v, want *OpenError with ErrTooNew", err)
	}
	for _, want := range []string{path, "99", "newer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}
