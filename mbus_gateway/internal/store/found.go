package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Found is a meter found by a scan, kept so the user can copy its address
// into the options and the status page can list it.
type Found struct {
	// Bus is the name of the bus it was found on, empty for the single bus
	// of the single-bus options.
	Bus string
	// Address is what to put in meters[].address: "0"-"250" or 16 hex
	// digits. With Bus it identifies the entry.
	Address string
	// Primary is the primary address the meter answered on, or -1 when it
	// was found by secondary address only.
	Primary int
	// Secondary is the 16-hex-digit secondary address, empty if unknown.
	Secondary    string
	Manufacturer string
	Medium       string
	// FirstSeen and LastSeen are kept in milliseconds, in UTC.
	FirstSeen, LastSeen time.Time
}

// SaveFound inserts or updates scan results by Bus and Address in one
// transaction.
// An existing entry keeps its earlier FirstSeen and the later LastSeen.
func (s *Store) SaveFound(ctx context.Context, found []Found) error {
	for _, f := range found {
		if f.Address == "" {
			return errors.New("store: save found: entry without address")
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, f := range found {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO found (bus, address, primary_addr, secondary, manufacturer, medium, first_seen, last_seen)
				 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				 ON CONFLICT (bus, address) DO UPDATE SET
					primary_addr = excluded.primary_addr,
					secondary    = excluded.secondary,
					manufacturer = excluded.manufacturer,
					medium       = excluded.medium,
					first_seen   = min(found.first_seen, excluded.first_seen),
					last_seen    = max(found.last_seen, excluded.last_seen)`,
				f.Bus, f.Address, f.Primary, f.Secondary, f.Manufacturer, f.Medium,
				f.FirstSeen.UnixMilli(), f.LastSeen.UnixMilli())
			if err != nil {
				return fmt.Errorf("address %s: %w", f.Address, err)
			}
		}
		return nil
	})
	if err != nil {
		return wrap("save found", err)
	}
	return nil
}

// Found lists the scan results of all buses: by bus, then primary
// addresses in numeric order, then secondary addresses.
func (s *Store) Found(ctx context.Context) ([]Found, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT bus, address, primary_addr, secondary, manufacturer, medium, first_seen, last_seen
		 FROM found ORDER BY bus, length(address), address`)
	if err != nil {
		return nil, wrap("found", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Found
	for rows.Next() {
		var f Found
		var first, last int64
		if err := rows.Scan(&f.Bus, &f.Address, &f.Primary, &f.Secondary, &f.Manufacturer, &f.Medium, &first, &last); err != nil {
			return nil, wrap("found", err)
		}
		f.FirstSeen = time.UnixMilli(first).UTC()
		f.LastSeen = time.UnixMilli(last).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("found", err)
	}
	return out, nil
}
