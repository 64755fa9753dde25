package sim

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// sampleBus is the bus of testdata/sample.bus.yaml without delays, with
// fixed access numbers: the tests compare telegrams byte for byte with the
// files (stamp_test.go covers the counting).
func sampleBus(t *testing.T) (*Bus, Setup) {
	t.Helper()
	s, err := LoadBusFile("testdata/sample.bus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.Options = Options{FixedAccessNumber: true}
	b, err := s.NewBus()
	if err != nil {
		t.Fatal(err)
	}
	return b, s
}

// sent is telegram i of the sample meter named name, as sent from address a.
func sent(t *testing.T, s Setup, name string, i int, a byte) []byte {
	t.Helper()
	for _, m := range s.Meters {
		if m.Name == name {
			return withAddress(m.Telegrams[i], a)
		}
	}
	t.Fatalf("no meter %q in the sample", name)
	return nil
}

func TestTCPReadOneMeter(t *testing.T) {
	kam := frameFile(t, "kamstrup_multical_601.hex")
	bus := newBus(t, Options{}, Meter{Primary: 7, Telegrams: [][]byte{kam}})
	m := serveTCP(t, bus)
	if got := m.ask(sndNKE(t, 7)); !bytes.Equal(got, ack) {
		t.Fatalf("SND_NKE: got %X, want E5", got)
	}
	got := m.ask(reqUD2(t, 7, true))
	want := withAddress(kam, 7)
	if !bytes.Equal(got, want) {
		t.Fatalf("REQ_UD2:\ngot  %X\nwant %X", got, want)
	}
	st := bus.Meters()[0]
	if st.Requests != 2 || st.Answers != 2 || st.TelegramsSent != 1 {
		t.Errorf("counters: got requests %d answers %d telegrams %d, want 2 2 1", st.Requests, st.Answers, st.TelegramsSent)
	}
}

// step is one request and the answer the master must see.
type step struct {
	name string
	req  []byte
	want []byte // nil: silence
}

// run sends the steps in order. A silent step is proven silent by the
// answer of the next step arriving first: one conversation is answered in
// order, so any bytes from the silent one would come before it.
func run(t *testing.T, m *master, steps []step) {
	t.Helper()
	for i, s := range steps {
		if _, err := m.conn.Write(s.req); err != nil {
			t.Fatal(err)
		}
		if s.want == nil {
			if i == len(steps)-1 {
				t.Fatalf("step %q: a silent step needs a step after it", s.name)
			}
			continue
		}
		if got := m.frame(); !bytes.Equal(got, s.want) {
			t.Fatalf("step %d %q:\ngot  %X\nwant %X", i, s.name, got, s.want)
		}
	}
}

func TestFCBSequence(t *testing.T) {
	bus, s := sampleBus(t)
	m := serveTCP(t, bus)
	t1 := sent(t, s, "heat, three telegrams", 0, 6)
	t2 := sent(t, s, "heat, three telegrams", 1, 6)
	t3 := sent(t, s, "heat, three telegrams", 2, 6)
	noFCV := encode(t, mbus.Frame{Type: mbus.FrameShort, C: mbus.CReqUD2 &^ mbus.FCV, A: 6})
	run(t, m, []step{
		{"reset", sndNKE(t, 6), ack},
		{"first request", reqUD2(t, 6, true), t1},
		{"toggled: next", reqUD2(t, 6, false), t2},
		{"same FCB: retry", reqUD2(t, 6, false), t2},
		{"toggled: last", reqUD2(t, 6, true), t3},
		{"toggled after the last: wrap", reqUD2(t, 6, false), t1},
		{"toggled", reqUD2(t, 6, true), t2},
		{"reset mid-sequence", sndNKE(t, 6), ack},
		{"first after reset, either FCB", reqUD2(t, 6, false), t1},
		{"toggled", reqUD2(t, 6, true), t2},
		{"without FCV: first, sequence restarts", noFCV, t1},
		{"first with FCV after that", reqUD2(t, 6, true), t1},
		{"toggled", reqUD2(t, 6, false), t2},
		{"application reset", encode(t, mbus.Frame{Type: mbus.FrameControl, C: mbus.CSndUD, A: 6, CI: mbus.CIAppReset}), ack},
		{"first after application reset", reqUD2(t, 6, true), t1},
	})
}

func TestSecondarySelect(t *testing.T) {
	e1, e2 := "electricity 1", "electricity 2"
	tests := []struct {
		pattern    string
		selectWant []byte // E5, or nil when nobody matches
		readFrom   []string
	}{
		{"0500023E434C1202", ack, []string{e1}},                             // ID with hex digits, exact
		{"050002E5FFFFFFFF", ack, []string{e2}},                             // ID with hex digits, rest wildcard
		{"050002FFFFFF12FF", ack, []string{e1, e2}},                         // both: E5 and E5 overlap as E5
		{"FFFFFF3EFFFFFFFF", ack, []string{e1}},                             // wildcard on the high digits
		{"15312420FFFFFF04", ack, []string{"heat, three telegrams"}},        // medium
		{"06855817FFFFFF07", nil, nil},                                      // medium does not match
		{"FFFFFFFF2D2CFFFF", ack, []string{"heat (Kamstrup Multical 601)"}}, // manufacturer KAM
		{"0500023D434C1202", nil, nil},                                      // nobody (an F digit would be a wildcard)
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			bus, s := sampleBus(t)
			m := serveTCP(t, bus)
			steps := []step{{"select " + tt.pattern, selectFrame(t, tt.pattern), tt.selectWant}}
			var want []byte
			for _, name := range tt.readFrom {
				tel := sent(t, s, name, 0, primaryOf(t, s, name))
				if want == nil {
					want = tel
				} else {
					want = collide(want, tel)
				}
			}
			steps = append(steps,
				step{"read 253", reqUD2(t, mbus.AddrNetwork, true), want},
				step{"marker", sndNKE(t, 1), ack})
			run(t, m, steps)
			var selected []string
			for _, st := range bus.Meters() {
				if st.Selected {
					selected = append(selected, st.Name)
				}
			}
			if !slices.Equal(selected, tt.readFrom) {
				t.Errorf("selected: got %q, want %q", selected, tt.readFrom)
			}
		})
	}
}

func primaryOf(t *testing.T, s Setup, name string) byte {
	t.Helper()
	for _, m := range s.Meters {
		if m.Name == name {
			return m.Primary
		}
	}
	t.Fatalf("no meter %q", name)
	return 0
}

func TestDeselect(t *testing.T) {
	bus, s := sampleBus(t)
	m := serveTCP(t, bus)
	kam := sent(t, s, "heat (Kamstrup Multical 601)", 0, 1)
	gas := sent(t, s, "gas (Itron Cyble)", 0, 3)
	run(t, m, []step{
		{"select kamstrup", selectFrame(t, "06855817FFFFFFFF"), ack},
		{"read it", reqUD2(t, mbus.AddrNetwork, true), kam},
		{"select gas: kamstrup deselects", selectFrame(t, "10020387FFFFFFFF"), ack},
		{"read gas", reqUD2(t, mbus.AddrNetwork, true), gas},
		{"SND_NKE to 253 deselects", sndNKE(t, mbus.AddrNetwork), ack},
		{"nobody selected", reqUD2(t, mbus.AddrNetwork, true), nil},
		{"marker", sndNKE(t, 1), ack},
	})
}

func TestCollisionsAndBroadcasts(t *testing.T) {
	bus, s := sampleBus(t)
	m := serveTCP(t, bus)
	e1 := sent(t, s, "electricity 1", 0, 5)
	e2 := sent(t, s, "electricity 2", 0, 5)
	// A 0 bit of either sender wins; both frames are 152 bytes.
	mixed := make([]byte, len(e1))
	for i := range e1 {
		mixed[i] = e1[i] & e2[i]
	}
	run(t, m, []step{
		{"two meters at 5 acknowledge as one", sndNKE(t, 5), ack},
		{"two meters at 5 collide", reqUD2(t, 5, true), mixed},
		{"255: nobody answers", sndNKE(t, mbus.AddrBroadcast), nil},
		{"254: everybody acknowledges", sndNKE(t, mbus.AddrBroadcastAll), ack},
		{"address nobody has", reqUD2(t, 99, true), nil},
		{"marker", sndNKE(t, 1), ack},
	})
	if _, _, err := mbus.DecodeFrame(mixed); err == nil {
		t.Errorf("collided frame %X decodes; want an error", mixed)
	}
	for _, st := range bus.Meters() {
		// Everybody hears 254 and 255; the two at 5 hear two more
		// requests, the Kamstrup at 1 the marker.
		want := uint64(2)
		switch st.Primary {
		case 5:
			want = 4
		case 1:
			want = 3
		}
		if st.Requests != want {
			t.Errorf("%s: requests got %d, want %d", st.Name, st.Requests, want)
		}
	}
}

func TestSetPrimaryAddress(t *testing.T) {
	bus, s := sampleBus(t)
	m := serveTCP(t, bus)
	run(t, m, []step{
		{"set 1 to 42", setAddress(t, 1, 42), ack},
		{"old address is silent", reqUD2(t, 1, true), nil},
		{"new address answers", reqUD2(t, 42, true), sent(t, s, "heat (Kamstrup Multical 601)", 0, 42)},
		{"out of range is ignored", setAddress(t, 42, 251), nil},
		{"unknown CI 51 write is acknowledged", encode(t, mbus.Frame{Type: mbus.FrameLong, C: mbus.CSndUD, A: 42, CI: mbus.CIDataSend, Data: []byte{0x0C, 0x13, 0, 0, 0, 0}}), ack},
		{"baud switch acknowledged", encode(t, mbus.Frame{Type: mbus.FrameControl, C: mbus.CSndUD, A: 42, CI: mbus.CIBaudBase + 3}), ack},
		{"REQ_UD1 acknowledged", encode(t, mbus.Frame{Type: mbus.FrameShort, C: mbus.CReqUD1, A: 42}), ack},
		{"set via secondary: select", selectFrame(t, "10020387FFFFFFFF"), ack},
		{"set via secondary: set", setAddress(t, mbus.AddrNetwork, 9), ack},
		{"gas at 9", reqUD2(t, 9, true), sent(t, s, "gas (Itron Cyble)", 0, 9)},
	})
	if err := bus.SetFault(1, Fault{Kind: FaultNoAnswer}); !errors.Is(err, ErrUnknownMeter) {
		t.Errorf("SetFault at the old address: got %v, want ErrUnknownMeter", err)
	}
}

func TestGarbageIsSkipped(t *testing.T) {
	bus := newBus(t, Options{IdleTimeout: 20 * time.Millisecond},
		Meter{Primary: 1, Telegrams: [][]byte{frameFile(t, "kamstrup_multical_601.hex")}})
	m := serveTCP(t, bus)
	badCS := sndNKE(t, 1)
	badCS[3]++
	tests := []struct {
		name    string
		noise   []byte
		garbage uint64 // bytes the bus counts as skipped
	}{
		{"noise", []byte{0x00, 0xFF, 0x42, 0xE5}, 4},
		{"bad checksum", badCS, 5},
		{"bad stop", []byte{0x10, 0x40, 0x01, 0x41, 0x17}, 5},
		{"partial long frame, dropped when idle", []byte{0x68, 0x10, 0x10, 0x68, 0x53}, 5},
		{"length fields disagree", []byte{0x68, 0x10, 0x11, 0x68}, 4},
	}
	var total uint64
	for _, tt := range tests {
		if _, err := m.conn.Write(tt.noise); err != nil {
			t.Fatal(err)
		}
		if got := m.ask(sndNKE(t, 1)); !bytes.Equal(got, ack) {
			t.Fatalf("%s: got %X, want E5", tt.name, got)
		}
		total += tt.garbage
		if got := bus.Stats().Garbage; got != total {
			t.Errorf("%s: garbage got %d, want %d", tt.name, got, total)
		}
	}
}

// Several masters may be connected at once; a hang-up ends only its own
// conversation.
func TestTCPSeveralConnections(t *testing.T) {
	bus, _ := sampleBus(t)
	addr := listenTCP(t, bus)
	a, b := dialTCP(t, addr), dialTCP(t, addr)
	if got := a.ask(sndNKE(t, 1)); !bytes.Equal(got, ack) {
		t.Fatalf("first connection: got %X, want E5", got)
	}
	a.conn.Close()
	if got := b.ask(sndNKE(t, 1)); !bytes.Equal(got, ack) {
		t.Fatalf("second connection after the first hung up: got %X, want E5", got)
	}
}
