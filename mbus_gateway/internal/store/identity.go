package store

import (
	"context"
	"errors"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// SaveIdentity inserts or replaces the identity of a meter, by its Meter.
// Times are kept in milliseconds; a zero Replaced stays zero.
func (s *Store) SaveIdentity(ctx context.Context, id reading.Identity) error {
	if id.Meter == "" {
		return errors.New("store: save identity: no meter identifier")
	}
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO meter_identity (meter, bus, address, manufacturer, serial, medium, first_seen, replaced)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (meter) DO UPDATE SET
			bus          = excluded.bus,
			address      = excluded.address,
			manufacturer = excluded.manufacturer,
			serial       = excluded.serial,
			medium       = excluded.medium,
			first_seen   = excluded.first_seen,
			replaced     = excluded.replaced`,
		id.Meter, id.Bus, id.Address, id.Manufacturer, id.Serial, id.Medium,
		id.FirstSeen.UnixMilli(), milli(id.Replaced))
	if err != nil {
		return wrap("save identity "+id.Meter, err)
	}
	return nil
}

// Identities lists every identity ever given, replaced ones included,
// ordered by Meter.
func (s *Store) Identities(ctx context.Context) ([]reading.Identity, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT meter, bus, address, manufacturer, serial, medium, first_seen, replaced
		 FROM meter_identity ORDER BY meter`)
	if err != nil {
		return nil, wrap("identities", err)
	}
	defer func() { _ = rows.Close() }()
	var out []reading.Identity
	for rows.Next() {
		var id reading.Identity
		var first, replaced int64
		if err := rows.Scan(&id.Meter, &id.Bus, &id.Address, &id.Manufacturer, &id.Serial, &id.Medium, &first, &replaced); err != nil {
			return nil, wrap("identities", err)
		}
		id.FirstSeen = time.UnixMilli(first).UTC()
		if replaced != 0 {
			id.Replaced = time.UnixMilli(replaced).UTC()
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("identities", err)
	}
	return out, nil
}

// milli is t in Unix milliseconds, 0 for the zero time.
func milli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
