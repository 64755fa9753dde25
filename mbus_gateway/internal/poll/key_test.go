package poll

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/logging"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

const testKeyHex = "000102030405060708090a0b0c0d0e0f"

// TestMeterKeyReachesBus: the key of an encrypting meter goes with each
// of its reads (also after SetMeters changes it); a meter without one is
// read with plain Read.
func TestMeterKeyReachesBus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := newBaudBus()
		ms := meters(2, time.Hour)
		ms[0].Key = testKeyHex
		p, ctx, stop := runOnBus(t, bus, ms)
		for _, key := range []string{"1", "2"} {
			if _, err := p.ReadNow(ctx, key); err != nil {
				t.Fatalf("ReadNow(%s): %v", key, err)
			}
		}
		const other = "ffeeddccbbaa99887766554433221100"
		ms[0].Key = other
		if _, err := p.SetMeters(ms...); err != nil {
			t.Fatal(err)
		}
		if _, err := p.ReadNow(ctx, "1"); err != nil {
			t.Fatal(err)
		}
		stop()
		if got, want := bus.keys["1"], []string{testKeyHex, testKeyHex, other}; !slices.Equal(got, want) {
			t.Errorf("keys of meter 1: got %v, want %v", got, want)
		}
		if got, want := bus.of("2"), []int{0, 0}; !slices.Equal(got, want) || len(bus.keys["2"]) != 0 {
			t.Errorf("meter 2: got speeds %v and keys %v, want a plain Read", got, bus.keys["2"])
		}
		// The key is nowhere in the status.
		b, err := json.Marshal(p.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(string(b)), other) {
			t.Errorf("snapshot shows the key: %s", b)
		}
	})
}

// TestEncryptedReadFails: a meter whose telegrams the master cannot
// decrypt has failed reads, counted by their reason and shown on the
// status.
func TestEncryptedReadFails(t *testing.T) {
	for _, tt := range []struct {
		err    error
		result string
	}{
		{mbus.ErrKeyNeeded, resultKeyNeeded},
		{mbus.ErrDecrypt, resultWrongKey},
	} {
		t.Run(tt.result, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				err := fmt.Errorf("read 1: REQ_UD2: security mode 5: %w", tt.err)
				ans := failing(time.Second, 100*time.Millisecond, err, func(string, time.Duration) bool { return true })
				h := newHarness(t, Options{Meters: meters(1, 10*time.Second)}, ans)
				h.runUntil(t, 25*time.Second)
				if got := testutil.ToFloat64(h.p.met.polls.WithLabelValues("addr_1", tt.result)); got != 3 {
					t.Errorf("polls with result %s: got %v, want 3", tt.result, got)
				}
				if got := h.p.Snapshot().Meters[0].LastError; got != err.Error() {
					t.Errorf("last error: got %q, want %q", got, err)
				}
			})
		})
	}
}

func TestMeterKeyInvalid(t *testing.T) {
	for _, key := range []string{"0011", "zz0102030405060708090a0b0c0d0e0f"} {
		ms := meters(1, time.Hour)
		ms[0].Key = logging.Secret("AB" + key)
		_, err := New(Options{Meters: ms}, &fakeBus{}, &fakeSink{}, &fakeAvail{}, zeroLog, newRegistry())
		if err == nil || !strings.Contains(err.Error(), "meter 1: key: want 32 hex digits") || strings.Contains(err.Error(), key) {
			t.Errorf("key %s: got %v, want an error without the key", key, err)
		}
	}
}
