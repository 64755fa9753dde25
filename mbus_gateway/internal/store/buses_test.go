package store

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
)

// The same address on two buses is two entries, added and found alike.
func TestSameAddressOnTwoBuses(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	for _, m := range []AddedMeter{{Bus: "cellar", Address: "5", Name: "heat"}, {Bus: "attic", Address: "5", Name: "water"}} {
		if err := s.AddMeter(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	added, err := s.AddedMeters(ctx)
	if want := []AddedMeter{{Bus: "cellar", Address: "5", Name: "heat"}, {Bus: "attic", Address: "5", Name: "water"}}; err != nil || !reflect.DeepEqual(added, want) {
		t.Errorf("AddedMeters = %+v, %v; want %+v", added, err, want)
	}
	if removed, err := s.RemoveMeter(ctx, "attic", "5"); err != nil || !removed {
		t.Errorf("RemoveMeter(attic, 5) = %v, %v; want true", removed, err)
	}
	if added, _ := s.AddedMeters(ctx); len(added) != 1 || added[0].Bus != "cellar" {
		t.Errorf("after removing attic's meter: %+v, want cellar's left", added)
	}

	found := []Found{{Bus: "cellar", Address: "5", Primary: 5, FirstSeen: t0, LastSeen: t0}, {Bus: "attic", Address: "5", Primary: 5, FirstSeen: t0, LastSeen: t0}}
	if err := s.SaveFound(ctx, found); err != nil {
		t.Fatal(err)
	}
	got, err := s.Found(ctx)
	if want := []Found{found[1], found[0]}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Found = %+v, %v; want %+v", got, err, want)
	}
}

// A version 4 file keeps its added and found meters, as the single bus's.
func TestMigrateV5KeepsMeters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	old, err := openRaw(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, old, migrations[:4]); err != nil {
		t.Fatalf("migrate to v4: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO added_meter (address, name) VALUES ('7', 'heat')`,
		`INSERT INTO found (address, primary_addr, secondary, manufacturer, medium, first_seen, last_seen) VALUES ('7', 7, '', 'KAM', 'heat', 1, 2)`,
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	_ = old.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open(v4 file): %v", err)
	}
	defer func() { _ = s.Close() }()
	added, err := s.AddedMeters(ctx)
	if want := []AddedMeter{{Address: "7", Name: "heat"}}; err != nil || !reflect.DeepEqual(added, want) {
		t.Errorf("AddedMeters = %+v, %v; want %+v", added, err, want)
	}
	found, err := s.Found(ctx)
	if err != nil || len(found) != 1 || found[0].Bus != "" || found[0].Address != "7" || found[0].Manufacturer != "KAM" {
		t.Errorf("Found = %+v, %v; want the meter at 7 of the single bus", found, err)
	}
	if err := s.AddMeter(ctx, AddedMeter{Address: "8"}); err != nil {
		t.Fatal(err)
	}
	if added, _ := s.AddedMeters(ctx); len(added) != 2 || added[1].Address != "8" {
		t.Errorf("a meter added after the migration: %+v, want it last", added)
	}
}
