package master

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"
)

// chunk is part of a scripted answer: bytes that arrive after a delay
// counted from the request.
type chunk struct {
	after time.Duration
	b     []byte
}

// fakePort is an in-process peer: every Write is handed to answer, whose
// chunks become readable at their time. Reads honour the deadline, which
// may be moved from another goroutine, as on a real port.
type fakePort struct {
	t      testing.TB
	answer func(req []byte) []chunk

	mu       sync.Mutex
	in       []byte
	deadline time.Time
	reqs     [][]byte
	drains   int
	timers   []*time.Timer
	wake     chan struct{}
}

var _ Port = (*fakePort)(nil)

func newFakePort(t testing.TB, answer func(req []byte) []chunk) *fakePort {
	p := &fakePort{t: t, answer: answer, wake: make(chan struct{}, 1)}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, tm := range p.timers {
			tm.Stop()
		}
	})
	return p
}

// now returns the answer at once.
func now(b ...[]byte) []chunk {
	return []chunk{{b: bytes.Join(b, nil)}}
}

func (p *fakePort) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *fakePort) deliver(b []byte) {
	p.mu.Lock()
	p.in = append(p.in, b...)
	p.mu.Unlock()
	p.poke()
}

func (p *fakePort) Write(b []byte) (int, error) {
	req := bytes.Clone(b)
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	for _, c := range p.answer(req) {
		if c.after == 0 {
			p.deliver(c.b)
			continue
		}
		p.mu.Lock()
		p.timers = append(p.timers, time.AfterFunc(c.after, func() { p.deliver(c.b) }))
		p.mu.Unlock()
	}
	return len(b), nil
}

func (p *fakePort) Read(b []byte) (int, error) {
	for {
		p.mu.Lock()
		if len(p.in) > 0 {
			n := copy(b, p.in)
			p.in = p.in[n:]
			p.mu.Unlock()
			return n, nil
		}
		dl := p.deadline
		p.mu.Unlock()
		if dl.IsZero() {
			<-p.wake
			continue
		}
		left := time.Until(dl)
		if left <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		tm := time.NewTimer(left)
		select {
		case <-p.wake:
		case <-tm.C:
		}
		tm.Stop()
	}
}

func (p *fakePort) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	p.deadline = t
	p.mu.Unlock()
	p.poke()
	return nil
}

func (p *fakePort) Drain() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drains++
	p.in = nil
	return nil
}

// requests returns the frames written so far.
func (p *fakePort) requests() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.reqs...)
}
