package master

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	tests := []struct {
		name  string
		stats Stats
		want  string
	}{
		{"zero: every series exists before the first error", Stats{}, busMetrics(0, 0, 0, 0, 0, 0, 0)},
		{"counts", Stats{Requests: 40, Timeouts: 3, ChecksumErrors: 2, Garbled: 5, Collisions: 1, Echoes: 7, Strays: 4}, busMetrics(2, 1, 7, 3, 4, 3, 40)},
		{"checksum read ahead of garbled", Stats{ChecksumErrors: 2, Garbled: 1}, busMetrics(2, 0, 0, 0, 0, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCollector(func() Stats { return tt.stats })
			if err := testutil.CollectAndCompare(c, strings.NewReader(tt.want), "mbus_bus_errors_total", "mbus_bus_requests_total"); err != nil {
				t.Error(err)
			}
			if got, want := testutil.CollectAndCount(c), 10; got != want {
				t.Errorf("%d series, want %d", got, want)
			}
		})
	}
}

// busMetrics is the exposition the collector should give for these counts.
func busMetrics(checksum, collision, echo, framing, stray, timeout, requests int) string {
	return fmt.Sprintf(`
# HELP mbus_bus_errors_total Failed exchanges on the bus by kind: timeout, checksum, framing, collision, echo (own request read back), stray (another meter's late answer, skipped).
# TYPE mbus_bus_errors_total counter
mbus_bus_errors_total{kind="checksum"} %d
mbus_bus_errors_total{kind="collision"} %d
mbus_bus_errors_total{kind="echo"} %d
mbus_bus_errors_total{kind="framing"} %d
mbus_bus_errors_total{kind="stray"} %d
mbus_bus_errors_total{kind="timeout"} %d
# HELP mbus_bus_requests_total Frames the gateway sent on the bus, repeats included.
# TYPE mbus_bus_requests_total counter
mbus_bus_requests_total %d
`, checksum, collision, echo, framing, stray, timeout, requests)
}
