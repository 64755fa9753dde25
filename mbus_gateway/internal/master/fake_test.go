package master

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"
)

// chunk is part of a scripted answer: bytes that arrive after a delay
// counted from the request (afterWindow: once the master's wait for an
// answer ran out), never before the chunks ahead of them.
type chunk struct {
	after time.Duration
	b     []byte
}

// afterWindow as chunk.after delivers the chunk when a Read of the master
// that watched the line ends at its deadline: an answer that is late
// however slow the machine.
const afterWindow time.Duration = -1

// fakePort is an in-process peer: every Write is handed to answer, whose
// chunks become readable at their time, in their order. Reads honour the
// deadline, which may be moved from another goroutine, as on a real port.
type fakePort struct {
	t      testing.TB
	answer func(req []byte) []chunk

	mu       sync.Mutex
	in       []byte
	deadline time.Time
	reqs     [][]byte
	drains   int
	timers   []*time.Timer
	late     []chunk // chunks waiting for a deadline to pass
	closed   bool
	wake     chan struct{}
}

var _ Port = (*fakePort)(nil)

func newFakePort(t testing.TB, answer func(req []byte) []chunk) *fakePort {
	p := &fakePort{t: t, answer: answer, wake: make(chan struct{}, 1)}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.closed = true
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
	start := time.Now()
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	p.schedule(start, p.answer(req))
	return len(b), nil
}

// schedule delivers chunks one after the other, each at its time counted
// from start or, when a chunk ahead of it came late, right behind that
// one: timers that fire late on a busy machine never reorder an answer.
func (p *fakePort) schedule(start time.Time, chunks []chunk) {
	for i, c := range chunks {
		switch {
		case c.after == afterWindow:
			p.mu.Lock()
			p.late = append(p.late, chunks[i:]...)
			p.mu.Unlock()
			return
		case c.after > 0 && time.Since(start) < c.after:
			rest := chunks[i+1:]
			p.mu.Lock()
			if !p.closed {
				p.timers = append(p.timers, time.AfterFunc(time.Until(start.Add(c.after)), func() {
					p.deliver(c.b)
					p.schedule(start, rest)
				}))
			}
			p.mu.Unlock()
			return
		}
		p.deliver(c.b)
	}
}

func (p *fakePort) Read(b []byte) (int, error) {
	began := time.Now()
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
			if began.Before(dl.Add(-lookAgain)) {
				// The master watched the line until the window closed:
				// it does not look again (see receive).
				p.lateAnswer()
			}
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

// lateAnswer delivers the chunks that wait for a window to close.
func (p *fakePort) lateAnswer() {
	p.mu.Lock()
	late := p.late
	p.late = nil
	p.mu.Unlock()
	if len(late) > 0 {
		p.deliver(late[0].b)
		p.schedule(time.Now(), late[1:])
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
