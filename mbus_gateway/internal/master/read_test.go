package master

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// script answers requests from queues keyed by the request bytes: each
// request takes the next answer of its queue; an empty queue is silence.
type script struct {
	mu sync.Mutex
	q  map[string][][]chunk
}

func newScript() *script { return &script{q: map[string][][]chunk{}} }

// on queues answers to req.
func (s *script) on(req []byte, answers ...[]chunk) *script {
	k := hex.EncodeToString(req)
	s.q[k] = append(s.q[k], answers...)
	return s
}

func (s *script) answer(req []byte) []chunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := hex.EncodeToString(req)
	if len(s.q[k]) == 0 {
		return nil
	}
	a := s.q[k][0]
	s.q[k] = s.q[k][1:]
	return a
}

// fastOpts keep the tests quick: at 38400 baud a missing answer costs
// about 59 ms.
var fastOpts = Options{Baud: 38400}

// pauseOpts are fastOpts for answers with pauses in them: the pauses are
// timers, which a busy machine fires late, and no window may close on
// them. The answers end by their length, so the long windows cost
// nothing.
var pauseOpts = Options{Baud: 38400, Extra: time.Minute}

func newMaster(t testing.TB, s *script, o Options) (*Master, *fakePort) {
	p := newFakePort(t, s.answer)
	return New(p, o), p
}

func hexList(frames [][]byte) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = fmt.Sprintf("% X", f)
	}
	return out
}

func sameRequests(t *testing.T, got, want [][]byte) {
	t.Helper()
	g, w := hexList(got), hexList(want)
	if len(g) != len(w) {
		t.Fatalf("requests:\ngot  %q\nwant %q", g, w)
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("request %d:\ngot  %s\nwant %s\nall: %q", i, g[i], w[i], g)
		}
	}
}

const secA = "12345678A5110107" // ID 12345678, manufacturer bytes A5 11, version 1, medium 7

func TestReadPrimarySingle(t *testing.T) {
	s := newScript().
		on(sndNKE(5), now(ack)).
		on(reqUD2(5, true), now(telegram(t, 5, secA, 1000, false))).
		on(reqUD2(5, false), now(telegram(t, 5, secA, 2000, false)))
	m, p := newMaster(t, s, fastOpts)
	addr := mbus.Address{Primary: 5}

	res, err := m.Read(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.Telegrams), 1; got != want {
		t.Fatalf("telegrams: got %d, want %d", got, want)
	}
	if got, want := energy(t, res.Telegrams[0]), 1.0; got != want {
		t.Errorf("energy: got %v kWh, want %v", got, want)
	}
	if got, want := res.Telegrams[0].Header.ID, "12345678"; got != want {
		t.Errorf("ID: got %s, want %s", got, want)
	}
	if res.DecodeErr != nil {
		t.Errorf("decode error: %v", res.DecodeErr)
	}
	if !bytes.Equal(res.Raw[0], telegram(t, 5, secA, 1000, false)) {
		t.Errorf("raw: got % X", res.Raw[0])
	}

	// The link is up: the second read sends no SND_NKE, and the FCB has
	// toggled.
	res, err = m.Read(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := energy(t, res.Telegrams[0]), 2.0; got != want {
		t.Errorf("second read energy: got %v, want %v", got, want)
	}
	sameRequests(t, p.requests(), [][]byte{sndNKE(5), reqUD2(5, true), reqUD2(5, false)})
	if got, want := p.drains, 3; got != want {
		t.Errorf("drains: got %d, want one per request (%d)", got, want)
	}
	st := m.Stats()
	if st.Requests != 3 || st.Timeouts != 0 || st.Retries != 0 {
		t.Errorf("stats: got %v", st)
	}
}

func TestReadMultiTelegram(t *testing.T) {
	s := newScript().
		on(sndNKE(7), now(ack)).
		on(reqUD2(7, true), now(telegram(t, 7, secA, 1000, true)), now(telegram(t, 7, secA, 3000, false))).
		on(reqUD2(7, false), now(telegram(t, 7, secA, 2000, true)))
	m, p := newMaster(t, s, fastOpts)
	res, err := m.Read(t.Context(), mbus.Address{Primary: 7})
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, tg := range res.Telegrams {
		got = append(got, energy(t, tg))
	}
	if want := []float64{1, 2, 3}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("energies: got %v, want %v", got, want)
	}
	if got, want := len(res.Raw), 3; got != want {
		t.Errorf("raw frames: got %d, want %d", got, want)
	}
	sameRequests(t, p.requests(), [][]byte{sndNKE(7), reqUD2(7, true), reqUD2(7, false), reqUD2(7, true)})
}

func TestReadTooManyTelegrams(t *testing.T) {
	more := now(telegram(t, 7, secA, 1000, true))
	s := newScript().on(sndNKE(7), now(ack)).
		on(reqUD2(7, true), more, more).
		on(reqUD2(7, false), more, more)
	m, _ := newMaster(t, s, Options{Baud: 38400, MaxTelegrams: 3})
	res, err := m.Read(t.Context(), mbus.Address{Primary: 7})
	if !errors.Is(err, ErrTooManyTelegrams) {
		t.Fatalf("got %v, want ErrTooManyTelegrams", err)
	}
	if got, want := len(res.Telegrams), 3; got != want {
		t.Errorf("telegrams kept: got %d, want %d", got, want)
	}
}

func TestReadSecondary(t *testing.T) {
	s := newScript().
		on(selectReq(t, secA), now(ack), now(ack)).
		on(reqUD2(mbus.AddrNetwork, true), now(telegram(t, 0, secA, 1000, false))).
		on(reqUD2(mbus.AddrNetwork, false), now(telegram(t, 0, secA, 2000, false))).
		on(sndNKE(mbus.AddrNetwork), now(ack), now(ack))
	m, p := newMaster(t, s, fastOpts)
	addr, err := mbus.ParseAddress(secA)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{1, 2} {
		res, err := m.Read(t.Context(), addr)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if got := energy(t, res.Telegrams[0]); got != want {
			t.Errorf("read %d: energy got %v, want %v", i, got, want)
		}
	}
	sameRequests(t, p.requests(), [][]byte{
		selectReq(t, secA), reqUD2(253, true), sndNKE(253),
		selectReq(t, secA), reqUD2(253, false), sndNKE(253),
	})
}

func TestReadSecondaryWrongMeter(t *testing.T) {
	s := newScript().
		on(selectReq(t, secA), now(ack)).
		on(reqUD2(mbus.AddrNetwork, true), now(telegram(t, 0, "87654321A5110107", 1000, false))).
		on(sndNKE(mbus.AddrNetwork), now(ack))
	m, _ := newMaster(t, s, fastOpts)
	addr, _ := mbus.ParseAddress(secA)
	if _, err := m.Read(t.Context(), addr); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("got %v, want ErrUnexpected", err)
	}
}

// TestReadAnswers covers how the answer to REQ_UD2 arrives: whole, in
// pieces, after an echo, broken in each way, and repaired by a retry.
func TestReadAnswers(t *testing.T) {
	good := telegram(t, 9, secA, 4000, false)
	badSum := bytes.Clone(good)
	badSum[len(badSum)-2]++
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xFF
	req := reqUD2(9, true)
	// other is the late answer of the meter at address 7, read before.
	other := telegram(t, 7, secA, 1000, false)
	tests := []struct {
		name      string
		answers   [][]chunk // successive answers to REQ_UD2 (FCB 1)
		wantErr   []error   // nil: success
		wantReqs  int       // REQ_UD2 sent
		wantStats func(Stats) bool
		paused    bool // the answer pauses (pauseOpts)
	}{
		{name: "whole", answers: [][]chunk{now(good)}, wantReqs: 1},
		{name: "in pieces", answers: [][]chunk{{{0, good[:3]}, {5 * time.Millisecond, good[3:10]}, {10 * time.Millisecond, good[10:]}}}, wantReqs: 1, paused: true},
		{name: "after echo", answers: [][]chunk{now(req, good)}, wantReqs: 1,
			wantStats: func(s Stats) bool { return s.Echoes == 1 }},
		{name: "echo then pause", answers: [][]chunk{{{0, req}, {20 * time.Millisecond, good}}}, wantReqs: 1, paused: true,
			wantStats: func(s Stats) bool { return s.Echoes == 1 }},
		{name: "after another meter's late answer", answers: [][]chunk{now(other, good)}, wantReqs: 1,
			wantStats: func(s Stats) bool { return s.Strays == 1 && s.Garbled == 0 }},
		{name: "another meter's late answer, then a pause", answers: [][]chunk{{{0, other}, {20 * time.Millisecond, good}}}, wantReqs: 1, paused: true,
			wantStats: func(s Stats) bool { return s.Strays == 1 }},
		{name: "only other meters' answers", answers: [][]chunk{now(other), now(other), now(other)}, wantErr: []error{ErrTimeout}, wantReqs: 3,
			wantStats: func(s Stats) bool { return s.Strays == 3 && s.Timeouts == 3 }},
		{name: "silence", wantErr: []error{ErrTimeout}, wantReqs: 3,
			wantStats: func(s Stats) bool { return s.Timeouts == 3 && s.Retries == 2 }},
		{name: "echo only", answers: [][]chunk{now(req), now(req), now(req)}, wantErr: []error{ErrTimeout}, wantReqs: 3,
			wantStats: func(s Stats) bool { return s.Echoes == 3 && s.Timeouts == 3 }},
		{name: "checksum", answers: [][]chunk{now(badSum), now(badSum), now(badSum)}, wantErr: []error{ErrGarbage, mbus.ErrChecksum}, wantReqs: 3,
			wantStats: func(s Stats) bool { return s.ChecksumErrors == 3 && s.Garbled == 3 }},
		{name: "corrupt byte", answers: [][]chunk{now(corrupt), now(corrupt), now(corrupt)}, wantErr: []error{ErrGarbage, mbus.ErrChecksum}, wantReqs: 3},
		{name: "truncated", answers: [][]chunk{now(good[:10]), now(good[:10]), now(good[:10])}, wantErr: []error{ErrGarbage, mbus.ErrTruncated}, wantReqs: 3},
		{name: "noise", answers: [][]chunk{now([]byte{0x00, 0x42}), now([]byte{0xFF}), now([]byte{0x55})}, wantErr: []error{ErrGarbage, mbus.ErrBadStart}, wantReqs: 3},
		{name: "ack instead of data", answers: [][]chunk{now(ack), now(ack), now(ack)}, wantErr: []error{ErrUnexpected}, wantReqs: 3},
		// The answer comes right after the window: the repeat drains it.
		{name: "slow", answers: [][]chunk{{{afterWindow, good}}}, wantErr: []error{ErrTimeout}, wantReqs: 3,
			wantStats: func(s Stats) bool { return s.Timeouts == 3 && s.Garbled == 0 }},
		{name: "retry repairs checksum", answers: [][]chunk{now(badSum), now(good)}, wantReqs: 2,
			wantStats: func(s Stats) bool { return s.Retries == 1 && s.ChecksumErrors == 1 }},
		{name: "retry repairs silence", answers: [][]chunk{nil, now(good)}, wantReqs: 2,
			wantStats: func(s Stats) bool { return s.Retries == 1 && s.Timeouts == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript().on(sndNKE(9), now(ack)).on(req, tt.answers...)
			o := fastOpts
			if tt.paused {
				o = pauseOpts
			}
			m, p := newMaster(t, s, o)
			res, err := m.Read(t.Context(), mbus.Address{Primary: 9})
			if checkErr(t, "read", err, tt.wantErr) {
				if got, want := energy(t, res.Telegrams[0]), 4.0; got != want {
					t.Errorf("energy: got %v, want %v", got, want)
				}
			}
			n := 0
			for _, r := range p.requests() {
				if bytes.Equal(r, req) {
					n++
				}
			}
			if n != tt.wantReqs {
				t.Errorf("REQ_UD2 sent: got %d, want %d", n, tt.wantReqs)
			}
			if tt.wantStats != nil && !tt.wantStats(m.Stats()) {
				t.Errorf("stats: got %v", m.Stats())
			}
		})
	}
}

// TestReadAfterFailureResets: after a failed exchange the next read
// starts over with SND_NKE, so the FCB sequence is known again.
func TestReadAfterFailureResets(t *testing.T) {
	good := telegram(t, 3, secA, 1000, false)
	s := newScript().on(sndNKE(3), now(ack), now(ack)).
		on(reqUD2(3, true), nil, nil, nil, now(good))
	m, p := newMaster(t, s, fastOpts)
	if _, err := m.Read(t.Context(), mbus.Address{Primary: 3}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("first read: got %v, want ErrTimeout", err)
	}
	if _, err := m.Read(t.Context(), mbus.Address{Primary: 3}); err != nil {
		t.Fatalf("second read: %v", err)
	}
	r := reqUD2(3, true)
	sameRequests(t, p.requests(), [][]byte{sndNKE(3), r, r, r, sndNKE(3), r})
}

func TestReadNoMeter(t *testing.T) {
	m, p := newMaster(t, newScript(), fastOpts)
	_, err := m.Read(t.Context(), mbus.Address{Primary: 44})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	// A meter that does not answer SND_NKE is not asked for data.
	sameRequests(t, p.requests(), [][]byte{sndNKE(44), sndNKE(44), sndNKE(44)})
}

// TestReadKeepsUndecodableRecords: a valid frame whose records do not
// decode still counts as read.
func TestReadKeepsUndecodableRecords(t *testing.T) {
	sa := secondary(t, secA)
	data := append(append([]byte(nil), sa[:]...), 1, 0, 0, 0)
	data = append(data, 0x04, 0x03, 0xE8, 0x03, 0x00, 0x00) // 1 kWh
	data = append(data, 0x04, 0x03, 0x01)                   // cut short
	bad := encodeFrame(t, mbus.Frame{Type: mbus.FrameLong, C: mbus.CRspUD, A: 2, CI: mbus.CIRespVarLong, Data: data})
	s := newScript().on(sndNKE(2), now(ack)).on(reqUD2(2, true), now(bad))
	m, _ := newMaster(t, s, fastOpts)
	res, err := m.Read(t.Context(), mbus.Address{Primary: 2})
	if err != nil {
		t.Fatalf("got %v, want success", err)
	}
	if res.DecodeErr == nil {
		t.Error("DecodeErr: got nil, want the record problem")
	}
	if got, want := len(res.Telegrams), 1; got != want {
		t.Fatalf("telegrams: got %d, want %d", got, want)
	}
	if got, want := energy(t, res.Telegrams[0]), 1.0; got != want {
		t.Errorf("record before the problem: got %v, want %v", got, want)
	}
}

// TestReadCancel: cancelling ctx ends a wait at once even when the
// timeout is long.
func TestReadCancel(t *testing.T) {
	m, _ := newMaster(t, newScript(), Options{Baud: 300, Extra: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := m.Read(ctx, mbus.Address{Primary: 1})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestAppReset(t *testing.T) {
	appReset := encodeFrame(t, mbus.Frame{Type: mbus.FrameControl, C: mbus.CSndUD | mbus.FCB, A: 4, CI: mbus.CIAppReset})
	s := newScript().on(sndNKE(4), now(ack)).on(appReset, now(ack)).
		on(reqUD2(4, false), now(telegram(t, 4, secA, 1000, false)))
	m, p := newMaster(t, s, Options{Baud: 38400, AppReset: true})
	if _, err := m.Read(t.Context(), mbus.Address{Primary: 4}); err != nil {
		t.Fatal(err)
	}
	sameRequests(t, p.requests(), [][]byte{sndNKE(4), appReset, reqUD2(4, false)})
}

func TestSetPrimaryAddress(t *testing.T) {
	set := encodeFrame(t, mbus.Frame{Type: mbus.FrameLong, C: mbus.CSndUD | mbus.FCB, A: 0, CI: mbus.CIDataSend, Data: []byte{0x01, 0x7A, 17}})
	s := newScript().on(set, now(ack))
	m, p := newMaster(t, s, fastOpts)
	if err := m.SetPrimaryAddress(t.Context(), mbus.Address{Primary: 0}, 17); err != nil {
		t.Fatal(err)
	}
	sameRequests(t, p.requests(), [][]byte{set})

	for _, bad := range []int{-1, 251, 255} {
		if err := m.SetPrimaryAddress(t.Context(), mbus.Address{Primary: 0}, bad); err == nil {
			t.Errorf("new address %d: got success, want an error", bad)
		}
	}
	if got, want := len(p.requests()), 1; got != want {
		t.Errorf("requests after invalid calls: got %d, want %d", got, want)
	}
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		baud int
		want time.Duration
	}{
		{300, 1100*time.Millisecond + 50*time.Millisecond},
		{2400, 137500*time.Microsecond + 50*time.Millisecond},
		{9600, 34375*time.Microsecond + 50*time.Millisecond},
		{38400, 8593750*time.Nanosecond + 50*time.Millisecond},
	}
	for _, tt := range tests {
		if got := AnswerTimeout(tt.baud); got != tt.want {
			t.Errorf("AnswerTimeout(%d): got %v, want %v", tt.baud, got, tt.want)
		}
	}
	if got, want := WireTime(5, 2400), 22916666*time.Nanosecond; got != want {
		t.Errorf("WireTime(5, 2400): got %v, want %v", got, want)
	}
}

// heldUpPort is a fakePort on a busy machine: for its first misses
// reads the master is held up between setting the deadline and reading
// until the deadline has passed, and the read fails without looking, as
// a read on a Go file or socket does, whatever waits on the line.
type heldUpPort struct {
	*fakePort
	misses int
}

func (p *heldUpPort) SetReadDeadline(t time.Time) error {
	err := p.fakePort.SetReadDeadline(t)
	if p.misses > 0 {
		time.Sleep(time.Until(t) + time.Millisecond)
	}
	return err
}

func (p *heldUpPort) Read(b []byte) (int, error) {
	if p.misses > 0 {
		p.misses--
		return 0, os.ErrDeadlineExceeded
	}
	return p.fakePort.Read(b)
}

// TestReadHeldUp: an answer that came in time is taken even when the
// reads that should have found it started after their deadline, up to
// maxLooks of them: no repeat, no timeout counted. Held up once more,
// the exchange is repeated. (TestReadAnswers/slow: a read that waited
// until its deadline does not look again.)
func TestReadHeldUp(t *testing.T) {
	good := telegram(t, 9, secA, 4000, false)
	req := reqUD2(9, true)
	for _, tt := range []struct {
		misses, wantReqs int
		wantTimeouts     uint64
	}{{1, 1, 0}, {maxLooks, 1, 0}, {maxLooks + 1, 2, 1}} {
		s := newScript().on(sndNKE(9), now(ack)).on(req, now(good), now(good))
		p := &heldUpPort{fakePort: newFakePort(t, s.answer)}
		m := New(p, fastOpts)
		if err := m.Reset(t.Context(), 9); err != nil {
			t.Fatal(err)
		}
		p.misses = tt.misses
		res, err := m.Read(t.Context(), mbus.Address{Primary: 9})
		if err != nil {
			t.Fatalf("%d late reads: %v", tt.misses, err)
		}
		if got, want := energy(t, res.Telegrams[0]), 4.0; got != want {
			t.Errorf("%d late reads: energy: got %v, want %v", tt.misses, got, want)
		}
		n := 0
		for _, r := range p.requests() {
			if bytes.Equal(r, req) {
				n++
			}
		}
		if st := m.Stats(); n != tt.wantReqs || st.Timeouts != tt.wantTimeouts {
			t.Errorf("%d late reads: got %d REQ_UD2 and %d timeouts, want %d and %d", tt.misses, n, st.Timeouts, tt.wantReqs, tt.wantTimeouts)
		}
	}
}
