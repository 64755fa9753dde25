package store

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

func TestIdentities(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	heat := reading.Identity{Meter: "kam_06855817", Address: "5", Manufacturer: "KAM", Serial: "06855817", Medium: "heat_outlet", FirstSeen: t0}
	twin := reading.Identity{Meter: "kam_06855817_at_6", Address: "6", Manufacturer: "KAM", Serial: "06855817", Medium: "heat_outlet", FirstSeen: t0.Add(time.Minute)}
	for _, id := range []reading.Identity{heat, twin} {
		if err := s.SaveIdentity(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// The heat meter is swapped: the same entry, now with its end.
	heat.Replaced = t0.Add(time.Hour)
	if err := s.SaveIdentity(ctx, heat); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveIdentity(ctx, reading.Identity{Address: "7"}); err == nil {
		t.Error("SaveIdentity without meter identifier succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// They survive a restart.
	if s, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	got, err := s.Identities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []reading.Identity{heat, twin}; !reflect.DeepEqual(got, want) {
		t.Errorf("Identities =\n%+v\nwant\n%+v", got, want)
	}
}
