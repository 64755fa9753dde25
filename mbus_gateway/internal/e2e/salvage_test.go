package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading/readingtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// TestRunSalvagesCorruptDatabase: a database with readings still queued
// has a damaged page (as a failing SD card leaves it). The gateway moves
// it aside, takes over every queued reading it can still read and
// publishes them, in order and with their times, and says in the log
// and on /status how many were saved and how many lost.
func TestRunSalvagesCorruptDatabase(t *testing.T) {
	const meter, queued = "kam_99000001", 300
	dir := t.TempDir()
	file := filepath.Join(dir, "mbus-gateway.db")
	first := time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Second)
	queue(t, file, meter, first, queued)
	damagePage(t, file, 2, 3)

	broker := mosquittotest.Start(t)
	rec := mosquittotest.Subscribe(t, broker.URL(), "mbus/"+meter+"/reading")
	path, metrics := gatewayOptions(t, dir, startBus(t), broker, map[string]any{"meters": []map[string]any{{"address": "1"}}})
	p := start(t, hermeticEnv(), "run", "--config", path)
	var st struct {
		Warnings []string `json:"warnings"`
		Salvage  *struct {
			File      string `json:"file"`
			Saved     int    `json:"saved"`
			Lost      int    `json:"lost"`
			LostKnown bool   `json:"lost_known"`
		} `json:"salvage"`
	}
	eventually(t, 30*time.Second, "/status tells the salvage", func() bool {
		return getJSON(t, endpoint(metrics, "/status"), &st) == http.StatusOK && st.Salvage != nil
	})
	s := *st.Salvage
	t.Logf("salvage: %+v", s)
	if !s.LostKnown || s.Saved == 0 || s.Lost == 0 || s.Saved+s.Lost != queued || !strings.Contains(s.File, ".corrupt-") {
		t.Errorf("salvage on /status: got %+v, want saved and lost readings adding up to the %d queued", s, queued)
	}
	if len(st.Warnings) == 0 || !strings.Contains(st.Warnings[0], "readings queued in it were saved") {
		t.Errorf("/status warnings: got %q, want the salvage told", st.Warnings)
	}
	msgs := rec.WaitCount("mbus/"+meter+"/reading", s.Saved, 60*time.Second)
	stop(t, p)

	var last time.Time
	for i, m := range msgs {
		var r reading.Reading
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Fatalf("reading %d: %v", i, err)
		}
		if !r.Time.After(last) {
			t.Fatalf("reading %d from %v after one from %v: want the queue's order", i, r.Time, last)
		}
		last = r.Time
	}
	if want := first.Add((queued - 1) * time.Minute); !last.Equal(want) {
		t.Errorf("newest salvaged reading from %v, want %v", last, want)
	}
	if got := len(rec.Messages("mbus/" + meter + "/reading")); got != s.Saved {
		t.Errorf("readings published: got %d, want the %d saved", got, s.Saved)
	}
	if log := p.stderr.String(); !strings.Contains(log, "took over what could be read from the corrupt database") {
		t.Errorf("log: want the salvage told, got:\n%s", log)
	}
}

// queue makes the gateway database at file with n readings of meter
// queued, a minute apart from first on.
func queue(t *testing.T, file, meter string, first time.Time, n int) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]reading.Reading, n)
	for i := range rs {
		rs[i] = readingtest.Heat(meter, strings.TrimPrefix(meter, "kam_"), first.Add(time.Duration(i)*time.Minute),
			readingtest.Number("energy", "energy", "kWh", float64(1000+i)))
	}
	if _, err := s.EnqueueBatch(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// damagePage overwrites page num of den pages of file (two thirds in:
// num=2, den=3) with garbage.
func damagePage(t *testing.T, file string, num, den int) {
	t.Helper()
	const pageSize = 4096
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	page := len(b) / pageSize * num / den
	copy(b[page*pageSize:(page+1)*pageSize], bytes.Repeat([]byte{0xA5}, pageSize))
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
