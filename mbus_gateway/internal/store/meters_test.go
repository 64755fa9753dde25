package store

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestAddedMeters(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	for _, m := range []AddedMeter{{Address: "7", Name: "heat"}, {Address: "1234567801020304"}, {Address: "3", Name: "water"}} {
		if err := s.AddMeter(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// Renaming keeps the place.
	if err := s.AddMeter(ctx, AddedMeter{Address: "7", Name: "heat meter"}); err != nil {
		t.Fatal(err)
	}
	removed, err := s.RemoveMeter(ctx, "", "1234567801020304")
	if err != nil || !removed {
		t.Fatalf("RemoveMeter = %v, %v; want true, nil", removed, err)
	}
	if removed, err := s.RemoveMeter(ctx, "", "99"); err != nil || removed {
		t.Errorf("RemoveMeter(not added) = %v, %v; want false, nil", removed, err)
	}
	got, err := s.AddedMeters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []AddedMeter{{Address: "7", Name: "heat meter"}, {Address: "3", Name: "water"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AddedMeters = %+v, want %+v", got, want)
	}
	if err := s.AddMeter(ctx, AddedMeter{Name: "x"}); err == nil {
		t.Error("AddMeter without address succeeded")
	}
}

func TestQuarantineRecords(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	if _, ok, err := s.LastQuarantine(ctx); ok || err != nil {
		t.Fatalf("LastQuarantine of a new store = %v, %v; want none", ok, err)
	}
	older := Quarantine{Path: "/data/mbus-gateway.db.corrupt-1", At: t0}
	newer := Quarantine{Path: "/data/mbus-gateway.db.corrupt-2", At: t0.Add(time.Hour)}
	for _, q := range []Quarantine{newer, older} {
		if err := s.RecordQuarantine(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := s.LastQuarantine(ctx)
	if err != nil || !ok || got != newer {
		t.Errorf("LastQuarantine = %+v, %v, %v; want %+v", got, ok, err, newer)
	}
	if err := s.RecordQuarantine(ctx, Quarantine{At: t0}); err == nil {
		t.Error("RecordQuarantine without path succeeded")
	}
}

// TestMigrateV3MovesJSON opens a version 2 file whose key/value table holds
// the JSON earlier versions wrote: the entries become rows and leave the
// key/value table; an entry that is not such JSON stays.
func TestMigrateV3MovesJSON(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		added, quar string
		wantAdded   []AddedMeter
		wantQuar    Quarantine
		wantKV      []string // keys left in kv
	}{
		{
			name:      "both",
			added:     `[{"address":"7","name":"heat"},{"address":"1234567801020304"},{"address":"7","name":"again"},{"name":"no address"}]`,
			quar:      `{"path":"/data/mbus-gateway.db.corrupt-20260301T120000Z","at":"2026-03-01T12:00:00.123456Z"}`,
			wantAdded: []AddedMeter{{Address: "7", Name: "heat"}, {Address: "1234567801020304"}},
			wantQuar:  Quarantine{Path: "/data/mbus-gateway.db.corrupt-20260301T120000Z", At: t0.Add(123 * time.Millisecond)},
		},
		{name: "none"},
		{
			name:   "not JSON",
			added:  `{"address":`,
			quar:   `[]`,
			wantKV: []string{oldAddedMetersKey, oldQuarantineKey},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gateway.db")
			old, err := openRaw(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := migrate(ctx, old, migrations[:2]); err != nil {
				t.Fatalf("migrate to v2: %v", err)
			}
			for key, value := range map[string]string{oldAddedMetersKey: tc.added, oldQuarantineKey: tc.quar, "mqtt.client_id": "gw-1"} {
				if value == "" {
					continue
				}
				if _, err := old.ExecContext(ctx, `INSERT INTO kv (key, value) VALUES (?, ?)`, key, value); err != nil {
					t.Fatal(err)
				}
			}
			_ = old.Close()

			s, err := Open(ctx, path)
			if err != nil {
				t.Fatalf("Open(v2 file): %v", err)
			}
			defer func() { _ = s.Close() }()
			added, err := s.AddedMeters(ctx)
			if err != nil || !reflect.DeepEqual(added, tc.wantAdded) {
				t.Errorf("AddedMeters = %+v, %v; want %+v", added, err, tc.wantAdded)
			}
			q, ok, err := s.LastQuarantine(ctx)
			if err != nil || q != tc.wantQuar || ok != (tc.wantQuar.Path != "") {
				t.Errorf("LastQuarantine = %+v, %v, %v; want %+v", q, ok, err, tc.wantQuar)
			}
			for _, key := range []string{oldAddedMetersKey, oldQuarantineKey} {
				_, kept, err := s.Get(ctx, key)
				if want := slices.Contains(tc.wantKV, key); err != nil || kept != want {
					t.Errorf("kv %s kept = %v, %v; want %v", key, kept, err, want)
				}
			}
			if id, _, _ := s.Get(ctx, "mqtt.client_id"); id != "gw-1" {
				t.Errorf("mqtt.client_id = %q, want it untouched", id)
			}
		})
	}
}
