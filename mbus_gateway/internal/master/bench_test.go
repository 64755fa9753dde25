package master

import (
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// Benchmarks against the simulator over loopback TCP, paced at 2400 baud
// with its default response delay. Run with
//
//	go test -run '^$' -bench . -benchtime 20x ./mbus_gateway/internal/master/
//
// Each reports its time against the floor the bus itself imposes:
// "x_wire" is elapsed time / floor (1.00 = nothing lost to the master).

const benchBaud = 2400

// floor is the least time the exchanges counted by st can take: every
// byte on the wire at 11 bits, each answer's response delay, and the full
// response window for each unanswered request.
func floor(st Stats, delay time.Duration) time.Duration {
	answered := st.Requests - st.Timeouts
	return WireTime(int(st.TxBytes+st.RxBytes), benchBaud) +
		time.Duration(answered)*delay +
		time.Duration(st.Timeouts)*AnswerTimeout(benchBaud)
}

func benchMaster(b *testing.B, bus *sim.Bus) *Master {
	return connect(b, serveTCP(b, bus), Options{Baud: benchBaud})
}

// BenchmarkReadMeter reads a meter with a 255-byte telegram by primary
// address.
func BenchmarkReadMeter(b *testing.B) {
	bus := newBus(b, sim.Options{Baud: benchBaud, ResponseDelay: sim.DefaultResponseDelay},
		sim.Meter{Primary: 1, Telegrams: [][]byte{libmbusFrame(b, "kamstrup_multical_601.hex")}})
	m := benchMaster(b, bus)
	addr := mustAddr(b, "1")
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if _, err := m.Read(b.Context(), addr); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	st := m.Stats()
	b.ReportMetric(elapsed.Seconds()/floor(st, sim.DefaultResponseDelay).Seconds(), "x_wire")
	b.ReportMetric(float64(st.Requests)/float64(b.N), "requests/op")
}

// BenchmarkScanSecondary10 finds the ten meters of tenMeters by
// secondary address.
func BenchmarkScanSecondary10(b *testing.B) {
	m := benchMaster(b, tenMeterBus(b, sim.Options{Baud: benchBaud, ResponseDelay: sim.DefaultResponseDelay}))
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		found, err := m.ScanSecondary(b.Context(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(found) != len(tenMeters) {
			b.Fatalf("found %d meters, want %d", len(found), len(tenMeters))
		}
	}
	elapsed := time.Since(start)
	st := m.Stats()
	b.ReportMetric(elapsed.Seconds()/floor(st, sim.DefaultResponseDelay).Seconds(), "x_wire")
	b.ReportMetric(float64(st.Requests)/float64(b.N), "probes/op")
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/op")
}
