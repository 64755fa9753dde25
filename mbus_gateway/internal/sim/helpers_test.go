package sim

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mbus"
)

// libmbusDir holds real telegrams of real meters.
const libmbusDir = "../mbus/testdata/libmbus/test-frames"

// frameFile reads one libmbus test frame.
func frameFile(t testing.TB, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(libmbusDir, name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseHex(string(text))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// encode builds a request frame.
func encode(t testing.TB, f mbus.Frame) []byte {
	t.Helper()
	b, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sndNKE(t testing.TB, a byte) []byte {
	return encode(t, mbus.Frame{Type: mbus.FrameShort, C: mbus.CSndNKE, A: a})
}

func reqUD2(t testing.TB, a byte, fcb bool) []byte {
	c := byte(mbus.CReqUD2)
	if fcb {
		c |= mbus.FCB
	}
	return encode(t, mbus.Frame{Type: mbus.FrameShort, C: c, A: a})
}

func selectFrame(t testing.TB, pattern string) []byte {
	t.Helper()
	sa, err := mbus.ParseSecondaryAddress(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return encode(t, mbus.Frame{Type: mbus.FrameLong, C: mbus.CSndUD, A: mbus.AddrNetwork, CI: mbus.CISelect, Data: sa[:]})
}

func setAddress(t testing.TB, a, to byte) []byte {
	return encode(t, mbus.Frame{Type: mbus.FrameLong, C: mbus.CSndUD, A: a, CI: mbus.CIDataSend, Data: []byte{0x01, 0x7A, to}})
}

// master is the test's side of a conversation: it writes requests and
// reads whole frames, each within a deadline so a silent bus fails the
// read instead of hanging the test.
type master struct {
	t    testing.TB
	conn Conn
	buf  []byte
}

const readWait = 5 * time.Second

// ask sends req and reads one frame (or n bytes when n > 0).
func (m *master) ask(req []byte) []byte {
	m.t.Helper()
	if _, err := m.conn.Write(req); err != nil {
		m.t.Fatalf("write: %v", err)
	}
	return m.frame()
}

// frame reads the next frame off the line, as long as its length says.
func (m *master) frame() []byte {
	m.t.Helper()
	for {
		n, err := mbus.FrameLen(m.buf)
		if err == nil && n > 0 && n <= len(m.buf) {
			out := m.buf[:n:n]
			m.buf = m.buf[n:]
			return out
		}
		if err != nil {
			// Not a frame: hand back everything that came, for the
			// test to compare.
			return m.readAll(readWait / 10)
		}
		m.fill(time.Now().Add(readWait))
	}
}

// bytes reads exactly n bytes.
func (m *master) bytes(n int) []byte {
	m.t.Helper()
	for len(m.buf) < n {
		m.fill(time.Now().Add(readWait))
	}
	out := m.buf[:n:n]
	m.buf = m.buf[n:]
	return out
}

func (m *master) fill(deadline time.Time) {
	m.t.Helper()
	if err := m.conn.SetReadDeadline(deadline); err != nil {
		m.t.Fatal(err)
	}
	tmp := make([]byte, 512)
	n, err := m.conn.Read(tmp)
	m.buf = append(m.buf, tmp[:n]...)
	if err != nil {
		m.t.Fatalf("read after %d bytes %X: %v", len(m.buf), m.buf, err)
	}
}

// settle sends SND_NKE to sentinel, a meter of its own, after n
// requests and waits for its E5: the bus answers in turn, so by then
// every answer before it is out and counted, however long a busy machine
// held them up. It leaves the buffer empty.
func (m *master) settle(bus *Bus, sentinel byte, n int) {
	m.t.Helper()
	if _, err := m.conn.Write(sndNKE(m.t, sentinel)); err != nil {
		m.t.Fatal(err)
	}
	for len(m.buf) == 0 || m.buf[len(m.buf)-1] != ack[0] || bus.Stats().Requests <= uint64(n) {
		m.fill(time.Now().Add(readWait))
	}
	m.buf = nil
}

// readAll returns what is buffered plus what arrives until the line has
// been idle for idle.
func (m *master) readAll(idle time.Duration) []byte {
	m.t.Helper()
	tmp := make([]byte, 512)
	for {
		if err := m.conn.SetReadDeadline(time.Now().Add(idle)); err != nil {
			m.t.Fatal(err)
		}
		n, err := m.conn.Read(tmp)
		m.buf = append(m.buf, tmp[:n]...)
		if err != nil {
			out := m.buf
			m.buf = nil
			return out
		}
	}
}

// serveTCP serves bus on a loopback port until the test ends and returns
// a connected master.
func serveTCP(t testing.TB, bus *Bus) *master {
	t.Helper()
	return dialTCP(t, listenTCP(t, bus))
}

// listenTCP serves bus on a loopback port until the test ends.
func listenTCP(t testing.TB, bus *Bus) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.ServeTCP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeTCP: %v", err)
		}
	})
	return ln.Addr().String()
}

// dialTCP connects a master to addr for the rest of the test.
func dialTCP(t testing.TB, addr string) *master {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, readWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &master{t: t, conn: c.(*net.TCPConn)}
}

// newBus builds a bus from meters, failing the test on bad meters.
func newBus(t testing.TB, opts Options, meters ...Meter) *Bus {
	t.Helper()
	b := NewBus(opts)
	for _, m := range meters {
		if err := b.AddMeter(m); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// withAddress is telegram as a meter at primary address a sends it.
func withAddress(telegram []byte, a byte) []byte {
	out := append([]byte(nil), telegram...)
	out[5] = a
	var cs byte
	for _, v := range out[4 : len(out)-2] {
		cs += v
	}
	out[len(out)-2] = cs
	return out
}
