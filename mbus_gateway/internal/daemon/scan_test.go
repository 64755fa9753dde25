package daemon

import (
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/daemon/daemontest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/demo"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim/simtest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/store"
)

// TestScanOnStart: without meters the gateway scans once, keeps what it
// found and reads it; the next start reads the same meters without a scan.
func TestScanOnStart(t *testing.T) {
	setup, err := demo.Setup()
	if err != nil {
		t.Fatal(err)
	}
	// Two meters keep the secondary search short.
	setup.Options, setup.Meters = sim.Options{}, setup.Meters[:2]
	bus, err := setup.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	broker := mosquittotest.Start(t)
	dataDir := t.TempDir()
	o := testOptions(t, simtest.ServeTCP(t, bus), broker.Addr(), dataDir, map[string]any{"meters": []any{}, "scan_mode": "secondary"})

	gw := startGateway(t, o, Deps{})
	var st status
	daemontest.Eventually(t, 60*time.Second, "the two meters found and read", func() bool {
		return gw.get("status", &st) == http.StatusOK && st.read() == 2
	})
	if err := gw.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if gw.log.Count("scan done") != 1 {
		t.Error(`first start: no "scan done" in the log`)
	}
	s, err := store.Open(t.Context(), filepath.Join(dataDir, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	found, err := s.Found(t.Context())
	if cerr := s.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil || len(found) != 2 || found[0].Secondary == "" || found[0].Manufacturer == "" {
		t.Errorf("store: found %+v, %v; want both meters with their secondary address and manufacturer", found, err)
	}

	again := startGateway(t, o, Deps{})
	daemontest.Eventually(t, 20*time.Second, "the two stored meters read after the restart", func() bool {
		return again.get("status", &st) == http.StatusOK && st.read() == 2
	})
	if err := again.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if again.log.Count("scanning") != 0 {
		t.Error("second start: scanned again")
	}
}

// TestFoundFromScan: a meter with a secondary address is kept by it, one
// without by its primary address; collisions, patterns and impossible
// primary addresses are left out.
func TestFoundFromScan(t *testing.T) {
	sec, err := mbus.ParseSecondaryAddress("068558172D2C0804")
	if err != nil {
		t.Fatal(err)
	}
	pattern, err := mbus.ParseSecondaryAddress("FFFFFFFFFFFFFFFF")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	got := foundFromScan([]master.Found{
		{Primary: 5, Secondary: sec},
		{Primary: 7},
		{Primary: 9, Collision: true},
		{Primary: 300},
		{Primary: 11, Secondary: pattern},
	}, at)
	want := []store.Found{
		{Address: "068558172D2C0804", Primary: 5, Secondary: "068558172D2C0804", Manufacturer: got[0].Manufacturer, Medium: got[0].Medium, FirstSeen: at, LastSeen: at},
		{Address: "7", Primary: 7, FirstSeen: at, LastSeen: at},
		{Address: "11", Primary: 11, FirstSeen: at, LastSeen: at},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if got[0].Manufacturer != "KAM" || got[0].Medium == "" {
		t.Errorf("manufacturer %q, medium %q: want KAM and a medium", got[0].Manufacturer, got[0].Medium)
	}
}
