package simtest

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServeTCP: a meter on the served bus acknowledges SND_NKE over the
// returned address, and once the test that served it ends, the port is
// closed.
func TestServeTCP(t *testing.T) {
	nke, err := mbus.Frame{Type: mbus.FrameShort, C: mbus.CSndNKE, A: 1}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// An RSP_UD of a 12-byte long data header and no records.
	telegram, err := mbus.Frame{Type: mbus.FrameLong, C: mbus.CRspUD, A: 1, CI: mbus.CIRespVarLong, Data: make([]byte, 12)}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	t.Run("serve", func(t *testing.T) {
		bus := sim.NewBus(sim.Options{})
		if err := bus.AddMeter(sim.Meter{Primary: 1, Telegrams: [][]byte{telegram}}); err != nil {
			t.Fatal(err)
		}
		addr = ServeTCP(t, bus)
		if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
			t.Fatalf("address %q: got host %q (%v), want 127.0.0.1", addr, host, err)
		}
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(nke); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 1)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("reading the answer to SND_NKE: %v", err)
		}
		if want := []byte{0xE5}; !bytes.Equal(got, want) {
			t.Errorf("answer to SND_NKE: got % X, want % X", got, want)
		}
	})
	var d net.Dialer
	if c, err := d.DialContext(context.Background(), "tcp", addr); err == nil {
		c.Close()
		t.Errorf("dial %s after the test ended: got a connection, want it refused", addr)
	}
}
