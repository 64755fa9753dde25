package sim

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// TestHangUpMidFrame: a hang_up fault sends half of the telegram and then
// ends the conversation (end of file for the master); the converter keeps
// listening, and the next connection is served as usual.
func TestHangUpMidFrame(t *testing.T) {
	kam := frameFile(t, "kamstrup_multical_601.hex")
	bus := newBus(t, Options{}, Meter{Primary: 7, Telegrams: [][]byte{kam}, Faults: []Fault{{Kind: FaultHangUp, Every: 2}}})
	addr := listenTCP(t, bus)

	m := dialTCP(t, addr)
	if got := m.ask(sndNKE(t, 7)); !bytes.Equal(got, ack) { // answer 1: no fault
		t.Fatalf("SND_NKE: got %X, want E5", got)
	}
	if _, err := m.conn.Write(reqUD2(t, 7, true)); err != nil { // answer 2: hang-up
		t.Fatal(err)
	}
	if err := m.conn.SetReadDeadline(time.Now().Add(readWait)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(m.conn)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read after the hang-up: %v", err)
	}
	want := withAddress(kam, 7)[:len(kam)/2]
	if !bytes.Equal(got, want) {
		t.Errorf("before the hang-up:\ngot  %X\nwant %X (the first half of the telegram)", got, want)
	}

	again := dialTCP(t, addr)
	// Answer 3, no fault: the next telegram, whole (its access number
	// has moved on, see stamp).
	if got := again.ask(reqUD2(t, 7, false)); len(got) != len(kam) || got[0] != 0x68 {
		t.Errorf("after reconnecting: got %X, want a whole telegram of %d bytes", got, len(kam))
	}
}

// TestIntactCounts: Transmissions counts new telegrams, retries of one
// once; Intact counts those of which one copy went out whole and alone.
func TestIntactCounts(t *testing.T) {
	kam := frameFile(t, "kamstrup_multical_601.hex")
	for _, tt := range []struct {
		name          string
		faults        []Fault
		twin          bool   // a second meter at the same address: collisions
		fcbs          []bool // REQ_UD2 in turn; the same FCB twice is a retry
		transmissions uint64
		intact        uint64
	}{
		{"clean", nil, false, []bool{true, false, true}, 3, 3},
		{"retry of a clean answer counts once", nil, false, []bool{true, true, false}, 2, 2},
		{"corrupt, then the retry gets through", []Fault{{Kind: FaultCorrupt, Every: 2}}, false, []bool{true, false, false}, 2, 2},
		{"checksum every time", []Fault{{Kind: FaultChecksum}}, false, []bool{true, false}, 2, 0},
		{"truncated every time", []Fault{{Kind: FaultTruncate}}, false, []bool{true, false}, 2, 0},
		{"echo leaves the answer whole", []Fault{{Kind: FaultEcho}}, false, []bool{true, false}, 2, 2},
		{"silent every other answer", []Fault{{Kind: FaultNoAnswer, Every: 2}}, false, []bool{true, false, true}, 3, 2},
		{"slow answers are too late", []Fault{{Kind: FaultSlow, Delay: time.Millisecond}}, false, []bool{true}, 1, 0},
		{"collisions", nil, true, []bool{true, false}, 2, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			meters := []Meter{{Primary: 7, Telegrams: [][]byte{kam}, Faults: tt.faults}}
			if tt.twin {
				meters = append(meters, Meter{Primary: 7, Telegrams: [][]byte{frameFile(t, "kamstrup_multical_601.hex")}})
			}
			meters = append(meters, Meter{Primary: 8, Telegrams: [][]byte{kam}}) // for settle
			bus := newBus(t, Options{}, meters...)
			m := serveTCP(t, bus)
			for _, fcb := range tt.fcbs {
				if _, err := m.conn.Write(reqUD2(t, 7, fcb)); err != nil {
					t.Fatal(err)
				}
				m.readAll(100 * time.Millisecond) // whatever comes, or silence
			}
			m.settle(bus, 8, len(tt.fcbs))
			st := bus.Meters()[0]
			if st.Transmissions != tt.transmissions || st.Intact != tt.intact {
				t.Errorf("got transmissions %d intact %d, want %d %d", st.Transmissions, st.Intact, tt.transmissions, tt.intact)
			}
		})
	}
}

// TestIntactLate: a transmission whose whole copies all left late counts
// as Late; one copy in time is enough to take it back.
func TestIntactLate(t *testing.T) {
	for _, tt := range []struct {
		name         string
		copies       []bool // late, per copy of one transmission
		intact, late uint64
	}{
		{"in time", []bool{false}, 1, 0},
		{"late", []bool{true}, 1, 1},
		{"late, then a repeat in time", []bool{true, false}, 1, 0},
		{"in time, then a late repeat", []bool{false, true}, 1, 0},
		{"late twice", []bool{true, true}, 1, 1},
	} {
		m := &meter{}
		for _, l := range tt.copies {
			m.noteIntact(0, l)
		}
		if m.intact != tt.intact || m.late != tt.late {
			t.Errorf("%s: got intact %d late %d, want %d %d", tt.name, m.intact, m.late, tt.intact, tt.late)
		}
	}
}
