package sim

import (
	"context"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// byteNs is how long n bytes take at baud, computed here independently
// of the package: 11 bits per byte.
func byteNs(n, baud int) time.Duration {
	return time.Duration(int64(n) * 11 * int64(time.Second) / int64(baud))
}

// TestPacing measures, on the fake clock of testing/synctest, when the
// first byte and the last byte of an answer reach the master.
func TestPacing(t *testing.T) {
	kam := frameFile(t, "kamstrup_multical_601.hex") // 253 bytes
	const n = 253
	tests := []struct {
		name        string
		opts        Options
		meter       Meter
		req         func(testing.TB) []byte
		wantLen     int
		first, last time.Duration
	}{
		{
			name: "no pacing", opts: Options{ResponseDelay: 10 * time.Millisecond},
			wantLen: n, first: 10 * time.Millisecond, last: 10 * time.Millisecond,
		},
		{
			// 2400 baud: the 5-byte request goes out on the bus, then
			// the delay; the first byte alone, then chunks of 4 bytes
			// (about 20 ms), the whole frame done exactly 253 byte times
			// after the delay.
			name: "2400 baud", opts: Options{Baud: 2400, ResponseDelay: 10 * time.Millisecond},
			wantLen: n, first: byteNs(5, 2400) + 10*time.Millisecond + byteNs(1, 2400), last: byteNs(5, 2400) + 10*time.Millisecond + byteNs(n, 2400),
		},
		{
			name: "300 baud, meter delay", opts: Options{Baud: 300, ResponseDelay: 10 * time.Millisecond},
			meter:   Meter{Delay: 40 * time.Millisecond},
			wantLen: n, first: byteNs(5, 300) + 50*time.Millisecond + byteNs(1, 300), last: byteNs(5, 300) + 50*time.Millisecond + byteNs(n, 300),
		},
		{
			name: "9600 baud E5", opts: Options{Baud: 9600, ResponseDelay: 10 * time.Millisecond},
			req:     func(t testing.TB) []byte { return sndNKE(t, 1) },
			wantLen: 1, first: byteNs(5, 9600) + 10*time.Millisecond + byteNs(1, 9600), last: byteNs(5, 9600) + 10*time.Millisecond + byteNs(1, 9600),
		},
		{
			// The window is 330 bit times + 50 ms = 187.5 ms at 2400
			// baud, and the slow answer starts 1 s after it.
			name: "slow", opts: Options{Baud: 2400, ResponseDelay: 10 * time.Millisecond},
			meter:   Meter{Faults: []Fault{{Kind: FaultSlow}}},
			wantLen: n, first: byteNs(5, 2400) + 1187500*time.Microsecond + byteNs(1, 2400), last: byteNs(5, 2400) + 1187500*time.Microsecond + byteNs(n, 2400),
		},
		{
			name: "slow, own delay, no pacing", opts: Options{ResponseDelay: 10 * time.Millisecond},
			meter:   Meter{Faults: []Fault{{Kind: FaultSlow, Delay: 3 * time.Second}}},
			wantLen: n, first: 3050 * time.Millisecond, last: 3050 * time.Millisecond,
		},
		{
			// The echo goes out with the request; the answer follows the
			// delay after both.
			name: "echo", opts: Options{Baud: 2400, ResponseDelay: 10 * time.Millisecond},
			meter:   Meter{Faults: []Fault{{Kind: FaultEcho}}},
			wantLen: 5 + n, first: byteNs(1, 2400), last: byteNs(5, 2400) + 10*time.Millisecond + byteNs(n, 2400),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := tt.meter
				m.Primary, m.Telegrams = 1, [][]byte{kam}
				bus := newBus(t, tt.opts, m)
				srv, cli := net.Pipe()
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- bus.Serve(ctx, srv) }()
				defer func() {
					cancel()
					if err := <-done; err != nil {
						t.Errorf("Serve: %v", err)
					}
					cli.Close()
				}()

				req := reqUD2(t, 1, true)
				if tt.req != nil {
					req = tt.req(t)
				}
				if _, err := cli.Write(req); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				var got []byte
				var first time.Duration
				buf := make([]byte, 512)
				for len(got) < tt.wantLen {
					k, err := cli.Read(buf)
					if err != nil {
						t.Fatalf("read after %d bytes: %v", len(got), err)
					}
					if len(got) == 0 {
						first = time.Since(start)
					}
					got = append(got, buf[:k]...)
				}
				last := time.Since(start)
				if first != tt.first || last != tt.last {
					t.Errorf("first byte after %v, last after %v; want %v and %v", first, last, tt.first, tt.last)
				}
				if len(got) != tt.wantLen {
					t.Errorf("got %d bytes, want %d", len(got), tt.wantLen)
				}
			})
		})
	}
}
