package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migration moves the schema from version i to i+1, where i is its index in
// migrations. Migrations are append-only: a released one never changes,
// because files in the field already carry its result.
type migration func(ctx context.Context, tx *sql.Tx) error

// migrations is the schema history; PRAGMA user_version counts how many of
// them a file has applied.
var migrations = []migration{
	migrateV1,
	migrateV2,
	migrateV3,
	migrateV4,
	migrateV5,
}

// migrateV1 is the first schema: outbox, last state per meter, key/value.
// Times are Unix nanoseconds (outbox, for ordering and age) or
// milliseconds (scan results, which may hold the zero time).
func migrateV1(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx,
		`CREATE TABLE outbox (
			seq     INTEGER PRIMARY KEY AUTOINCREMENT,
			meter   TEXT    NOT NULL,
			time    INTEGER NOT NULL,
			payload TEXT    NOT NULL
		)`,
		`CREATE TABLE last_state (
			meter   TEXT PRIMARY KEY,
			time    INTEGER NOT NULL,
			payload TEXT    NOT NULL
		) WITHOUT ROWID`,
		`CREATE TABLE kv (
			key   TEXT PRIMARY KEY,
			value TEXT NOT NULL
		) WITHOUT ROWID`,
	)
}

// migrateV2 adds the meters found by scans and an index for trimming the
// outbox by age.
func migrateV2(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx,
		`CREATE TABLE found (
			address      TEXT    PRIMARY KEY,
			primary_addr INTEGER NOT NULL,
			secondary    TEXT    NOT NULL,
			manufacturer TEXT    NOT NULL,
			medium       TEXT    NOT NULL,
			first_seen   INTEGER NOT NULL,
			last_seen    INTEGER NOT NULL
		) WITHOUT ROWID`,
		`CREATE INDEX outbox_time ON outbox(time)`,
	)
}

// migrateV4 adds the meters' identities (see reading.Identity).
func migrateV4(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx,
		`CREATE TABLE meter_identity (
			meter        TEXT    PRIMARY KEY,
			bus          TEXT    NOT NULL,
			address      TEXT    NOT NULL,
			manufacturer TEXT    NOT NULL,
			serial       TEXT    NOT NULL,
			medium       TEXT    NOT NULL,
			first_seen   INTEGER NOT NULL,
			replaced     INTEGER NOT NULL
		) WITHOUT ROWID`,
	)
}

// migrateV5 gives the meters added on the status page and the meters
// found by scans their bus: the same address may be used on two buses.
// Rows from before are the single bus's, whose name is empty.
func migrateV5(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx,
		`CREATE TABLE added_meter_v5 (
			seq     INTEGER PRIMARY KEY AUTOINCREMENT,
			bus     TEXT    NOT NULL,
			address TEXT    NOT NULL,
			name    TEXT    NOT NULL,
			UNIQUE (bus, address)
		)`,
		`INSERT INTO added_meter_v5 (seq, bus, address, name) SELECT seq, '', address, name FROM added_meter`,
		`DROP TABLE added_meter`,
		`ALTER TABLE added_meter_v5 RENAME TO added_meter`,
		`CREATE TABLE found_v5 (
			bus          TEXT    NOT NULL,
			address      TEXT    NOT NULL,
			primary_addr INTEGER NOT NULL,
			secondary    TEXT    NOT NULL,
			manufacturer TEXT    NOT NULL,
			medium       TEXT    NOT NULL,
			first_seen   INTEGER NOT NULL,
			last_seen    INTEGER NOT NULL,
			PRIMARY KEY (bus, address)
		) WITHOUT ROWID`,
		`INSERT INTO found_v5 SELECT '', address, primary_addr, secondary, manufacturer, medium, first_seen, last_seen FROM found`,
		`DROP TABLE found`,
		`ALTER TABLE found_v5 RENAME TO found`,
	)
}

func execAll(ctx context.Context, tx *sql.Tx, stmts ...string) error {
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// migrate applies the migrations a file lacks, each in its own transaction
// together with the new user_version, so a crash leaves a consistent
// version. A file newer than list is refused with ErrTooNew.
func migrate(ctx context.Context, db *sql.DB, list []migration) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(list) {
		return fmt.Errorf("%w: file has schema version %d, this program knows up to %d", ErrTooNew, version, len(list))
	}
	for v := version; v < len(list); v++ {
		if err := applyMigration(ctx, db, v, list[v]); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, from int, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if err := m(ctx, tx); err != nil {
		return fmt.Errorf("schema migration %d to %d: %w", from, from+1, err)
	}
	// PRAGMA takes no bound parameters; from is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", from+1)); err != nil { //nolint:gosec // G201: an int
		return err
	}
	return tx.Commit()
}

// SchemaVersion is the schema version this program writes.
func SchemaVersion() int { return len(migrations) }
