package sim

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// waitFor polls cond until it holds or the test's patience runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(readWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Each fault kind over TCP: the master sends REQ_UD2 to a faulty meter,
// the test clears the fault once the bus has seen the request, and a
// SND_NKE follows. What the master reads is the faulty answer (if any)
// followed by E5.
func TestFaultKinds(t *testing.T) {
	kam := frameFile(t, "kamstrup_multical_601.hex")
	tel := withAddress(kam, 1)
	req := reqUD2(t, 1, true)
	corrupt := append([]byte(nil), tel...)
	corrupt[len(tel)/2] ^= 0xFF
	badCS := append([]byte(nil), tel...)
	badCS[len(tel)-2]++
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		kind    FaultKind
		want    []byte
		wantErr error // of decoding the answer, nil: not checked
	}{
		{FaultNoAnswer, cat(ack), nil},
		{FaultCorrupt, cat(corrupt, ack), mbus.ErrChecksum},
		{FaultChecksum, cat(badCS, ack), mbus.ErrChecksum},
		{FaultTruncate, cat(tel[:len(tel)/2], ack), mbus.ErrTruncated},
		{FaultEcho, cat(req, tel, ack), nil},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			bus := newBus(t, Options{}, Meter{Primary: 1, Telegrams: [][]byte{kam}, Faults: []Fault{{Kind: tt.kind}}})
			m := serveTCP(t, bus)
			if _, err := m.conn.Write(req); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the request", func() bool { return bus.Meters()[0].Requests == 1 })
			if err := bus.SetFault(1); err != nil {
				t.Fatal(err)
			}
			if _, err := m.conn.Write(sndNKE(t, 1)); err != nil {
				t.Fatal(err)
			}
			got := m.bytes(len(tt.want))
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got  %X\nwant %X", got, tt.want)
			}
			if tt.wantErr != nil {
				if _, _, err := mbus.DecodeFrame(got[:len(got)-1]); !errors.Is(err, tt.wantErr) {
					t.Errorf("decoding the answer: got %v, want %v", err, tt.wantErr)
				}
			}
			if got := m.ask(sndNKE(t, 1)); !bytes.Equal(got, ack) {
				t.Errorf("after the fault was cleared: got %X, want E5", got)
			}
			st := bus.Meters()[0]
			wantAnswers := uint64(3)
			if tt.kind == FaultNoAnswer {
				wantAnswers = 2
			}
			if st.Answers != wantAnswers || st.Requests != 3 {
				t.Errorf("counters: got requests %d answers %d, want 3 %d", st.Requests, st.Answers, wantAnswers)
			}
		})
	}
}

// answered runs n SND_NKE through the bus and tells which were answered.
func answered(t *testing.T, b *Bus, n int) []bool {
	t.Helper()
	req := sndNKE(t, 1)
	f, _, err := mbus.DecodeFrame(req)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = len(b.handle(f, req).segs) > 0
	}
	return out
}

func TestFaultSchedule(t *testing.T) {
	kam := frameFile(t, "kamstrup_multical_601.hex")
	meter := func(f ...Fault) Meter { return Meter{Primary: 1, Telegrams: [][]byte{kam}, Faults: f} }

	got := answered(t, newBus(t, Options{}, meter(Fault{Kind: FaultNoAnswer, Every: 3})), 7)
	want := []bool{true, true, false, true, true, false, true}
	if !slices.Equal(got, want) {
		t.Errorf("every 3: got %v, want %v", got, want)
	}

	half := Fault{Kind: FaultNoAnswer, Probability: 0.5}
	a := answered(t, newBus(t, Options{Seed: 7}, meter(half)), 400)
	b := answered(t, newBus(t, Options{Seed: 7}, meter(half)), 400)
	c := answered(t, newBus(t, Options{Seed: 8}, meter(half)), 400)
	if !slices.Equal(a, b) {
		t.Error("probability: the same seed gave different faults")
	}
	if slices.Equal(a, c) {
		t.Error("probability: different seeds gave the same 400 faults")
	}
	if n := count(a); n < 150 || n > 250 {
		t.Errorf("probability 0.5: %d of 400 answered, want about 200", n)
	}

	// SetFault while running starts the count afresh.
	bus := newBus(t, Options{}, meter())
	if err := bus.SetFault(1, Fault{Kind: FaultNoAnswer, Every: 2}); err != nil {
		t.Fatal(err)
	}
	got = answered(t, bus, 4)
	want = []bool{true, false, true, false}
	if !slices.Equal(got, want) {
		t.Errorf("every 2 set at run time: got %v, want %v", got, want)
	}
	sa := bus.Meters()[0].Secondary
	if err := bus.SetFaultSecondary(sa); err != nil {
		t.Fatal(err)
	}
	if got := answered(t, bus, 2); !slices.Equal(got, []bool{true, true}) {
		t.Errorf("after clearing by secondary address: got %v, want all answered", got)
	}
}

func count(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

func TestFaultValidate(t *testing.T) {
	tests := []struct {
		f    Fault
		want string
	}{
		{Fault{Kind: 0}, "fault: unknown kind FaultKind(0)"},
		{Fault{Kind: FaultSlow, Every: -1}, "fault slow: every must be positive, got -1"},
		{Fault{Kind: FaultEcho, Probability: 1.5}, "fault echo: probability must be between 0 and 1, got 1.5"},
		{Fault{Kind: FaultEcho, Probability: 0.5, Every: 2}, "fault echo: give every or probability, not both"},
		{Fault{Kind: FaultSlow, Delay: -time.Second}, "fault slow: delay must not be negative, got -1s"},
	}
	for _, tt := range tests {
		err := tt.f.Validate()
		if err == nil || err.Error() != tt.want {
			t.Errorf("%+v: got %v, want %q", tt.f, err, tt.want)
		}
	}
	bus := newBus(t, Options{})
	if err := bus.SetFault(3, Fault{Kind: FaultEcho}); !errors.Is(err, ErrUnknownMeter) {
		t.Errorf("SetFault on an empty bus: got %v, want ErrUnknownMeter", err)
	}
	if _, err := ParseFaultKind("flaky"); err == nil || err.Error() != `unknown fault "flaky" (want one of no_answer, corrupt, checksum, truncate, echo, slow, hang_up)` {
		t.Errorf("ParseFaultKind: got %v", err)
	}
}
