package master

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/bushealth"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// TestSimReadEncrypted reads a meter whose three telegrams the simulator
// encrypts in security mode 5, over TCP. Each telegram hides its "more
// records follow" behind the encryption, so only a master that decrypts
// reads all three. Without the key, or with the wrong one, the read
// fails naming the problem, and the bus stays up: the meter answered.
func TestSimReadEncrypted(t *testing.T) {
	const sec = "00000007A5110107"
	key := []byte("0123456789abcdef")
	bus := newBus(t, sim.Options{},
		sim.Meter{Primary: 7, Secondary: secondary(t, sec), Telegrams: threeTelegrams(t, sec), Key: key})
	health := bushealth.New(bushealth.Options{SuspectAfter: 1, DownAfter: 2})
	m := connect(t, serveTCP(t, bus), Options{Health: health})
	ctx := t.Context()

	for _, addr := range []string{"7", sec} {
		for i := range 2 { // the sequence wraps
			res, err := m.ReadWith(ctx, mustAddr(t, addr), ReadOptions{Key: key})
			if err != nil {
				t.Fatalf("read %s with the key, %d: %v", addr, i, err)
			}
			if got, want := energies(t, res), []float64{1, 2, 3}; !slices.Equal(got, want) {
				t.Errorf("read %s with the key, %d: got %v, want %v", addr, i, got, want)
			}
			for _, tg := range res.Telegrams {
				if tg.SecurityMode != mbus.SecurityModeAESCBC {
					t.Errorf("read %s: telegram in security mode %d, want 5", addr, tg.SecurityMode)
				}
			}
			// The raw telegrams are what came over the wire: encrypted.
			if _, err := mbus.ParseTelegram(res.Raw[0]); !errors.Is(err, mbus.ErrKeyNeeded) {
				t.Errorf("read %s: raw telegram without the key: got %v, want ErrKeyNeeded", addr, err)
			}
		}
	}

	wrong := bytes.Clone(key)
	wrong[0] ^= 1
	for _, tt := range []struct {
		name string
		key  []byte
		want error
		text string
	}{
		{"no key", nil, mbus.ErrKeyNeeded, "read 7: REQ_UD2: mbus: at byte 19: security mode 5: encrypted, key needed"},
		{"wrong key", wrong, mbus.ErrDecrypt, "decryption failed: wrong key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 3 {
				res, err := m.ReadWith(ctx, mustAddr(t, "7"), ReadOptions{Key: tt.key})
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
					t.Fatalf("got %v, want %v with %q", err, tt.want, tt.text)
				}
				if len(res.Telegrams) != 1 || len(res.Telegrams[0].Records) != 0 {
					t.Fatalf("got %d telegrams, want the first one, without records", len(res.Telegrams))
				}
			}
			if s := health.Snapshot(); s.State != bushealth.Up {
				t.Errorf("bus %v (%s) after reads of an encrypted meter; want up", s.State, s.LastError)
			}
		})
	}

	// After a failed read the next one starts at the first telegram.
	res, err := m.ReadWith(ctx, mustAddr(t, "7"), ReadOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := energies(t, res), []float64{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("read after the failures: got %v, want %v", got, want)
	}
}
