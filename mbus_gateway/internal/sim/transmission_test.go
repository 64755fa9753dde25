package sim

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSentRecord: with Options.Record every new telegram is kept with
// its access number and copies; the master's next request tells whether
// it took it (FCB toggled) or started over (SND_NKE), and a damaged
// transmission is not intact.
func TestSentRecord(t *testing.T) {
	kam := frameFile(t, "kamstrup_multical_601.hex")
	bus := newBus(t, Options{Record: true}, Meter{Primary: 7, Telegrams: [][]byte{kam}},
		Meter{Primary: 8, Telegrams: [][]byte{kam}}) // for settle
	m := serveTCP(t, bus)
	steps := []struct {
		req    []byte
		faults []Fault
	}{
		{reqUD2(t, 7, true), nil},                             // 0
		{reqUD2(t, 7, true), nil},                             // 0 again: a retry
		{reqUD2(t, 7, false), nil},                            // 1: takes 0
		{sndNKE(t, 7), nil},                                   // starts over
		{reqUD2(t, 7, true), []Fault{{Kind: FaultTruncate}}},  // 2: abandons 1, cut short
		{reqUD2(t, 7, false), []Fault{{Kind: FaultNoAnswer}}}, // 3: takes 2 (by its FCB), silent
	}
	for _, s := range steps {
		if err := bus.SetFault(7, s.faults...); err != nil {
			t.Fatal(err)
		}
		if _, err := m.conn.Write(s.req); err != nil {
			t.Fatal(err)
		}
		m.readAll(100 * time.Millisecond)
	}
	m.settle(bus, 8, len(steps))
	// Late is left out: it says the simulator was held up, which a busy
	// machine may do to any of them.
	type fate struct {
		copies                   int
		intact, acked, abandoned bool
	}
	want := []fate{{2, true, true, false}, {1, true, false, true}, {1, false, true, false}, {0, false, false, false}}
	got := bus.Sent(0)
	if len(got) != len(want) {
		t.Fatalf("got %d transmissions, want %d: %+v", len(got), len(want), got)
	}
	first := got[0].Access
	for i, tx := range got {
		f := fate{tx.Copies, tx.Intact, tx.Acked, tx.Abandoned}
		if tx.N != uint64(i) || f != want[i] || tx.Access != first+byte(i) || tx.At.IsZero() || (tx.Late && !tx.Intact) {
			t.Errorf("transmission %d: got N %d access %d %+v at %v, want access %d %+v", i, tx.N, tx.Access, f, tx.At, first+byte(i), want[i])
		}
	}
	if plain := newBus(t, Options{}, Meter{Primary: 7, Telegrams: [][]byte{kam}}); plain.Sent(0) != nil {
		t.Error("Sent without Options.Record: want nil")
	}
}

// TestUnplugInFlight: a telegram still unread on the terminal when the
// adapter is pulled out is marked as gone with it; one the master has
// read is not.
func TestUnplugInFlight(t *testing.T) {
	for _, tt := range []struct {
		name string
		read bool
	}{{"unread", false}, {"read", true}} {
		t.Run(tt.name, func(t *testing.T) {
			bus := newBus(t, Options{Record: true}, Meter{Primary: 7, Telegrams: [][]byte{frameFile(t, "kamstrup_multical_601.hex")}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, err := bus.OpenPTY(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			f, err := os.OpenFile(p.Device(), os.O_RDWR|syscall.O_NOCTTY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(reqUD2(t, 7, true)); err != nil {
				t.Fatal(err)
			}
			size := len(frameFile(t, "kamstrup_multical_601.hex"))
			deadline := time.Now().Add(10 * time.Second)
			for unreadBytes(f) < size {
				if time.Now().After(deadline) {
					t.Fatalf("the answer did not arrive: %d bytes", unreadBytes(f))
				}
				time.Sleep(5 * time.Millisecond) // polling the terminal's queue
			}
			if tt.read {
				if _, err := f.Read(make([]byte, size)); err != nil {
					t.Fatal(err)
				}
			}
			pulled := time.Now()
			if err := p.Unplug(); err != nil {
				t.Fatal(err)
			}
			tx := bus.Sent(0)
			if len(tx) != 1 || !tx[0].Intact {
				t.Fatalf("got %+v, want one whole transmission", tx)
			}
			if gone := !tx[0].Unplugged.IsZero(); gone == tt.read || (gone && tx[0].Unplugged.Before(pulled)) {
				t.Errorf("Unplugged: got %v (pulled at %v), want it set only for an unread telegram", tx[0].Unplugged, pulled)
			}
		})
	}
}
