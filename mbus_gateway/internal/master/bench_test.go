package master

import (
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/sim"
)

// Benchmarks against the simulator over loopback TCP, paced at 2400 baud:
// a TCP converter, with the extra answer time the gateway gives one
// (DefaultTCPExtra). Run with
//
//	go test -run '^$' -bench . -benchtime 3x ./mbus_gateway/internal/master/
//
// Each reports its time against the floor the bus itself imposes:
// "x_wire" is elapsed time / floor (1.00 = nothing lost to the master).

const benchBaud = 2400

// floor is the least time the exchanges counted by st can take: every
// byte on the wire at 11 bits (an echo is the request itself, not more
// bytes: echoed says the converter loops every request back), each
// answer's response delay, and the full response window of EN 13757-2 for
// each unanswered request. With idle, each answer is also followed by the
// line-idle interval of 33 bit times that tells it is complete, which a
// scan must wait for to see a second meter.
func floor(st Stats, delay time.Duration, echoed, idle bool) time.Duration {
	answered := time.Duration(st.Requests - st.Timeouts)
	onWire := st.TxBytes + st.RxBytes
	if echoed {
		onWire -= st.TxBytes
	}
	f := WireTime(int(onWire), benchBaud) + answered*delay + time.Duration(st.Timeouts)*AnswerTimeout(benchBaud)
	if idle {
		f += answered * bits(idleBits, benchBaud)
	}
	return f
}

func benchMaster(b *testing.B, bus *sim.Bus) *Master {
	dev := serveTCP(b, bus)
	return connect(b, dev, Options{Baud: benchBaud, Extra: ExtraFor(dev, 0)})
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
	b.ReportMetric(elapsed.Seconds()/floor(st, sim.DefaultResponseDelay, false, false).Seconds(), "x_wire")
	b.ReportMetric(float64(st.Requests)/float64(b.N), "requests/op")
}

// scanMeters are the ten meters of the scan benchmark: five prefixes that
// collide (the root, 1, 5, 9 and E), hex digits, no ID with an F; the
// least search takes 76 probes.
var scanMeters = []string{
	"00000000A5110107",
	"11111111A5110107",
	"1A2B3C4DA5110107",
	"55555555A5110107",
	"5B000001A5110107",
	"90000001A5110107",
	"9C000002A5110107",
	"9D000003A5110107",
	"E0E0E0E0A5110107",
	"EE000000A5110107",
}

// BenchmarkScanSecondary finds the ten meters of scanMeters by secondary
// address on a bus answering 20 ms after a request, with and without a
// converter that echoes.
func BenchmarkScanSecondary(b *testing.B) {
	for _, echo := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "echo"}[echo]
		b.Run(name, func(b *testing.B) {
			primaries := make([]byte, len(scanMeters))
			for i := range primaries {
				primaries[i] = byte(i + 1)
			}
			bus := scanBus(b, sim.Options{Echo: echo}, scanMeters, primaries, nil)
			m := benchMaster(b, bus)
			want := minimalProbes(scanMeters)
			probes := 0
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				found, err := m.ScanSecondary(b.Context(), func(p Progress) { probes = p.Probes })
				if err != nil {
					b.Fatal(err)
				}
				if len(found) != len(scanMeters) || probes != want {
					b.Fatalf("found %d meters in %d probes, want %d in %d", len(found), probes, len(scanMeters), want)
				}
			}
			elapsed := time.Since(start)
			st := m.Stats()
			b.ReportMetric(elapsed.Seconds()/floor(st, scanDelay, echo, true).Seconds(), "x_wire")
			b.ReportMetric(float64(probes), "probes/op")
			b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/op")
		})
	}
}
