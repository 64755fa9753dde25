package outbox

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mqtt"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading/readingtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// TestPending: the store's rows come as the client's, in order, and a row
// that cannot be decoded as a *mqtt.RowError after the rows before it.
func TestPending(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	heat := readingtest.Heat("kam_06855817", "06855817", at, readingtest.Number("energy", "energy", "kWh", 37351))
	if _, err := s.Enqueue(ctx, heat); err != nil {
		t.Fatal(err)
	}
	// A row a damaged file could hold, written past the store's checks.
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO outbox (meter, time, payload) VALUES ('kam_1', 5, 'not json')`)
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}

	rows, err := Outbox{s}.Pending(ctx, 0, 10)
	if len(rows) != 1 || rows[0].Meter != heat.Meter || !rows[0].Reading.Time.Equal(at) || len(rows[0].Payload) == 0 {
		t.Errorf("rows: got %+v, want the heat meter's reading with its payload", rows)
	}
	re, ok := errors.AsType[*mqtt.RowError](err)
	if !ok || re.Seq != rows[0].Seq+1 || re.Err == nil {
		t.Fatalf("error: got %v, want *mqtt.RowError of the row after %d", err, rows[0].Seq)
	}
	if rows, err := (Outbox{s}).Pending(ctx, re.Seq, 10); len(rows) != 0 || err != nil {
		t.Errorf("after the bad row: got %d rows, %v; want none", len(rows), err)
	}
}
