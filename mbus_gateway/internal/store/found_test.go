package store

import (
	"context"
	"reflect"
	"testing"
	"time"
)

func TestFound(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	later := t0.Add(time.Hour)
	first := []Found{
		{Address: "10", Primary: 10, Manufacturer: "ABB", Medium: "electricity", FirstSeen: t0, LastSeen: t0},
		{Address: "5", Primary: 5, Secondary: "0685581709042D2C", Manufacturer: "KAM", Medium: "heat_outlet", FirstSeen: t0, LastSeen: t0},
		{Address: "1234567801020304", Primary: -1, Secondary: "1234567801020304", Manufacturer: "ACW", Medium: "water", FirstSeen: t0, LastSeen: t0},
	}
	if err := s.SaveFound(ctx, first); err != nil {
		t.Fatal(err)
	}
	// The same meter seen again: its first sighting stays.
	again := Found{Address: "5", Primary: 5, Secondary: "0685581709042D2C", Manufacturer: "KAM", Medium: "heat_inlet", FirstSeen: later, LastSeen: later}
	if err := s.SaveFound(ctx, []Found{again}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Found(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Found{
		{Address: "5", Primary: 5, Secondary: "0685581709042D2C", Manufacturer: "KAM", Medium: "heat_inlet", FirstSeen: t0, LastSeen: later},
		first[0],
		first[2],
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Found =\n%+v\nwant\n%+v", got, want)
	}
	if err := s.SaveFound(ctx, []Found{{Primary: 3}}); err == nil {
		t.Error("SaveFound without address succeeded")
	}
}
