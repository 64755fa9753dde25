package sim

import (
	"bytes"
	"testing"
)

// BenchmarkReadTCP measures one REQ_UD2 round trip of a 253-byte telegram
// over loopback TCP without pacing: the simulator's own cost per reading.
//
//	go test -run '^$' -bench . -benchmem ./mbus_gateway/internal/sim/
func BenchmarkReadTCP(b *testing.B) {
	kam := frameFile(b, "kamstrup_multical_601.hex")
	bus := newBus(b, Options{}, Meter{Primary: 1, Telegrams: [][]byte{kam}})
	m := serveTCP(b, bus)
	req := reqUD2(b, 1, true)
	want := withAddress(kam, 1)
	for b.Loop() {
		if got := m.ask(req); !bytes.Equal(got, want) {
			b.Fatalf("got %X", got)
		}
	}
}

// BenchmarkCollide measures the overlay of two long answers.
func BenchmarkCollide(b *testing.B) {
	e1 := frameFile(b, "electricity-meter-1.hex")
	e2 := frameFile(b, "electricity-meter-2.hex")
	for b.Loop() {
		collide(e1, e2)
	}
}
