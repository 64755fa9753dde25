package master

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/transport"
)

// speedPort is a fakePort whose speed can be switched; it notes the
// speed each request went out at and every SetBaud call.
type speedPort struct {
	*fakePort
	err error // what SetBaud returns; nil: it switches

	mu    sync.Mutex
	baud  int
	calls []int
	sent  []string // "speed request" per Write
}

func (p *speedPort) SetBaud(baud int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, baud)
	if p.err != nil {
		return p.err
	}
	p.baud = baud
	return nil
}

func (p *speedPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.sent = append(p.sent, fmt.Sprintf("%d % X", p.baud, b))
	p.mu.Unlock()
	return p.fakePort.Write(b)
}

func (p *speedPort) log() (calls []int, sent []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls), slices.Clone(p.sent)
}

// twoSpeeds answers SND_NKE and REQ_UD2 at primary addresses 1 and 2.
func twoSpeeds(t *testing.T) *script {
	s := newScript()
	for _, a := range []byte{1, 2} {
		sec := fmt.Sprintf("0000000%dA5110107", a)
		s.on(sndNKE(a), now(ack), now(ack))
		s.on(reqUD2(a, true), now(telegram(t, a, sec, 1, false)), now(telegram(t, a, sec, 3, false)))
		s.on(reqUD2(a, false), now(telegram(t, a, sec, 2, false)))
	}
	return s
}

// TestReadAtSwitchesLazily: the port changes speed only when a request
// needs another one, reads at the bus speed switch back, and a scan runs
// at the bus speed.
func TestReadAtSwitchesLazily(t *testing.T) {
	s := twoSpeeds(t)
	p := &speedPort{fakePort: newFakePort(t, s.answer), baud: 2400}
	m := New(p, Options{Baud: 2400, Retries: -1})
	ctx := t.Context()
	steps := []struct {
		addr byte
		baud int
	}{{1, 9600}, {1, 9600}, {2, 0}, {1, 9600}}
	for _, st := range steps {
		if _, err := m.ReadAt(ctx, mbus.Address{Primary: st.addr}, st.baud); err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", st.addr, st.baud, err)
		}
	}
	if _, err := m.ScanPrimaryRange(ctx, 2, 2, nil); err != nil {
		t.Fatal(err)
	}
	calls, sent := p.log()
	if want := []int{9600, 2400, 9600, 2400}; !slices.Equal(calls, want) {
		t.Errorf("SetBaud calls: got %v, want %v", calls, want)
	}
	want := []string{
		"9600 10 40 01 41 16", "9600 10 7B 01 7C 16", // SND_NKE, REQ_UD2 at 9600
		"9600 10 5B 01 5C 16", // no switch for the second read
		"2400 10 40 02 42 16", "2400 10 7B 02 7D 16",
		"9600 10 7B 01 7C 16",
		"2400 10 40 02 42 16", "2400 10 7B 02 7D 16", // the scan's probe and identification
	}
	if !slices.Equal(sent, want) {
		t.Errorf("requests:\n got %q\nwant %q", sent, want)
	}
}

// TestReadAtTimeouts: the answer timeout follows the meter's speed: a
// 300 baud meter that answers after 0.4 s (within its 330 bit times +
// 50 ms = 1.15 s) is read, where at 2400 baud the wait ends after 0.19 s.
func TestReadAtTimeouts(t *testing.T) {
	const sec = "00000001A5110107"
	late := 400 * time.Millisecond
	lateMeter := func() *Master {
		s := newScript().
			on(sndNKE(1), []chunk{{after: late, b: ack}}).
			on(reqUD2(1, true), []chunk{{after: late, b: telegram(t, 1, sec, 1, false)}})
		return New(&speedPort{fakePort: newFakePort(t, s.answer), baud: 2400}, Options{Baud: 2400, Retries: -1})
	}
	if _, err := lateMeter().Read(t.Context(), mbus.Address{Primary: 1}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("at 2400 baud: got %v, want ErrTimeout", err)
	}
	res, err := lateMeter().ReadAt(t.Context(), mbus.Address{Primary: 1}, 300)
	if err != nil {
		t.Fatalf("at 300 baud: %v", err)
	}
	if got := len(res.Telegrams); got != 1 {
		t.Errorf("got %d telegrams, want 1", got)
	}
}

// TestReadAtFixedSpeed: a port that cannot switch (a TCP converter) is
// asked once; the meter is read at the bus speed, and later reads do not
// ask again.
func TestReadAtFixedSpeed(t *testing.T) {
	s := twoSpeeds(t)
	p := &speedPort{fakePort: newFakePort(t, s.answer), baud: 2400, err: fmt.Errorf("tcp://conv: %w", transport.ErrBaudFixed)}
	m := New(p, Options{Baud: 2400, Retries: -1})
	for range 2 {
		if _, err := m.ReadAt(t.Context(), mbus.Address{Primary: 1}, 9600); err != nil {
			t.Fatalf("ReadAt on a fixed port: %v", err)
		}
	}
	calls, _ := p.log()
	if want := []int{9600}; !slices.Equal(calls, want) {
		t.Errorf("SetBaud calls: got %v, want %v", calls, want)
	}
	if got, want := m.firstByte, AnswerTimeout(2400); got != want {
		t.Errorf("answer timeout: got %v, want %v (the bus speed's)", got, want)
	}
}

// TestReadAtSwitchFails: a port that fails to switch fails the read with
// the cause, and the next read tries again.
func TestReadAtSwitchFails(t *testing.T) {
	p := &speedPort{fakePort: newFakePort(t, twoSpeeds(t).answer), baud: 2400, err: syscall.EIO}
	m := New(p, Options{Baud: 2400, Retries: -1})
	_, err := m.ReadAt(t.Context(), mbus.Address{Primary: 1}, 9600)
	if want := "read 1 at 9600 baud: SND_NKE: switch to 9600 baud: input/output error"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("got %v, want it to wrap EIO", err)
	}
	p.err = nil
	if _, err := m.ReadAt(t.Context(), mbus.Address{Primary: 1}, 9600); err != nil {
		t.Fatalf("after the port recovered: %v", err)
	}
}

// TestSimMixedBaud: on a pseudo-terminal bus with a 2400 baud and a
// 9600 baud meter, each answers only at its own speed, ReadAt reads both
// through the real serial code, and a scan runs at the bus speed.
func TestSimMixedBaud(t *testing.T) {
	const secSlow, secFast = "00002400A5110107", "00009600A5110107"
	bus := newBus(t, sim.Options{},
		sim.Meter{Primary: 1, Baud: 2400, Secondary: secondary(t, secSlow), Telegrams: [][]byte{telegram(t, 0, secSlow, 2400, false)}},
		sim.Meter{Primary: 2, Baud: 9600, Secondary: secondary(t, secFast), Telegrams: [][]byte{telegram(t, 0, secFast, 9600, false)}},
	)
	port, err := transport.OpenReopening(t.Context(), servePTY(t, bus), transport.Options{Baud: 2400}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { port.Close() })
	m := New(port, Options{Baud: 2400, Retries: -1})
	ctx := t.Context()

	if _, err := m.Read(ctx, mustAddr(t, "2")); !errors.Is(err, ErrTimeout) {
		t.Fatalf("9600 baud meter read at 2400: got %v, want ErrTimeout", err)
	}
	tests := []struct {
		addr string
		baud int
		want float64 // kWh
	}{
		{"2", 9600, 9.6},
		{"1", 0, 2.4},
		{secFast, 9600, 9.6},
		{"1", 2400, 2.4},
	}
	for _, tt := range tests {
		res, err := m.ReadAt(ctx, mustAddr(t, tt.addr), tt.baud)
		if err != nil {
			t.Fatalf("ReadAt(%s, %d): %v", tt.addr, tt.baud, err)
		}
		if got := energies(t, res); !slices.Equal(got, []float64{tt.want}) {
			t.Errorf("ReadAt(%s, %d): got %v, want [%v]", tt.addr, tt.baud, got, tt.want)
		}
	}
	if _, err := m.ReadAt(ctx, mustAddr(t, "1"), 9600); !errors.Is(err, ErrTimeout) {
		t.Fatalf("2400 baud meter read at 9600: got %v, want ErrTimeout", err)
	}
	found, err := m.ScanPrimaryRange(ctx, 1, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Primary != 1 {
		t.Errorf("scan at 2400 baud: got %+v, want only the meter at 1", found)
	}
}

// TestSimFixedSpeedTCP: over a TCP converter the speed cannot be
// switched; ReadAt reads at the bus speed (the simulated converter
// passes every request to every meter).
func TestSimFixedSpeedTCP(t *testing.T) {
	const sec = "00009600A5110107"
	bus := newBus(t, sim.Options{}, sim.Meter{Primary: 2, Baud: 9600, Secondary: secondary(t, sec), Telegrams: [][]byte{telegram(t, 0, sec, 9600, false)}})
	m := connect(t, serveTCP(t, bus), Options{})
	if _, err := m.ReadAt(t.Context(), mustAddr(t, "2"), 9600); err != nil {
		t.Fatal(err)
	}
	if !m.fixed || m.baud != simBaud {
		t.Errorf("after ReadAt over TCP: fixed=%v baud=%d, want fixed at %d", m.fixed, m.baud, simBaud)
	}
}
