package mqtt

import (
	"testing"
	"time"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/mosquittotest"
	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/reading"
)

// BenchmarkPublish measures how fast queued readings (two records each,
// so one reading and four retained states per row, all QoS 1) go from the
// SQLite outbox to a local Mosquitto and out of the outbox again.
//
//	go test -run '^$' -bench Publish -benchtime 20000x ./mbus_gateway/internal/mqtt/
func BenchmarkPublish(b *testing.B) {
	broker := mosquittotest.Start(b)
	box := openStore(b)
	const batch = 1000
	rs := make([]reading.Reading, 0, batch)
	meters := []string{"kam_00000001", "kam_00000002", "kam_00000003", "kam_00000004"}
	for i := range b.N {
		rs = append(rs, heatReading(meters[i%len(meters)], t0.Add(time.Duration(i)*time.Second), float64(i)))
		if len(rs) == batch || i == b.N-1 {
			enqueue(b, box, rs...)
			rs = rs[:0]
		}
	}
	b.ResetTimer()
	begin := time.Now()
	c := start(b, testConfig(broker.URL()), box)
	waitUntil(b, "every reading acknowledged", func() bool { return c.Snapshot().Acked >= int64(b.N) })
	elapsed := time.Since(begin)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "readings/s")
}
