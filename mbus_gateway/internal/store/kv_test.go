package store

import (
	"context"
	"testing"
)

func TestKeyValue(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	if v, ok, err := s.Get(ctx, "discovery.hash"); v != "" || ok || err != nil {
		t.Errorf("Get(missing) = %q, %v, %v; want \"\", false, nil", v, ok, err)
	}
	for _, v := range []string{"one", "", "two"} {
		if err := s.Set(ctx, "discovery.hash", v); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.Get(ctx, "discovery.hash"); got != v || !ok || err != nil {
			t.Errorf("Get after Set(%q) = %q, %v, %v", v, got, ok, err)
		}
	}
	if err := s.Set(ctx, "", "x"); err == nil {
		t.Error("Set with empty key succeeded")
	}
}

func TestCheckWrites(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	for range 3 {
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, _, err := s.Get(ctx, heartbeatKey); got != "3" || err != nil {
		t.Errorf("heartbeat = %q, %v; want \"3\"", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err == nil {
		t.Error("Check on a closed store succeeded")
	}
}
