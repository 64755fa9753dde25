package bridge

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mbus-gateway/mbus-gateway/mbus_gateway/internal/master"
)

func TestBusCollector(t *testing.T) {
	tests := []struct {
		name  string
		stats master.Stats
		want  string
	}{
		{"zero: every series exists before the first error", master.Stats{}, `
# HELP mbus_bus_errors_total Failed exchanges on the bus by kind: timeout, checksum, framing, collision, echo (own request read back).
# TYPE mbus_bus_errors_total counter
mbus_bus_errors_total{kind="checksum"} 0
mbus_bus_errors_total{kind="collision"} 0
mbus_bus_errors_total{kind="echo"} 0
mbus_bus_errors_total{kind="framing"} 0
mbus_bus_errors_total{kind="timeout"} 0
# HELP mbus_bus_requests_total Frames the gateway sent on the bus, repeats included.
# TYPE mbus_bus_requests_total counter
mbus_bus_requests_total 0
`},
		{"counts", master.Stats{Requests: 40, Timeouts: 3, ChecksumErrors: 2, Garbled: 5, Collisions: 1, Echoes: 7}, `
# HELP mbus_bus_errors_total Failed exchanges on the bus by kind: timeout, checksum, framing, collision, echo (own request read back).
# TYPE mbus_bus_errors_total counter
mbus_bus_errors_total{kind="checksum"} 2
mbus_bus_errors_total{kind="collision"} 1
mbus_bus_errors_total{kind="echo"} 7
mbus_bus_errors_total{kind="framing"} 3
mbus_bus_errors_total{kind="timeout"} 3
# HELP mbus_bus_requests_total Frames the gateway sent on the bus, repeats included.
# TYPE mbus_bus_requests_total counter
mbus_bus_requests_total 40
`},
		{"checksum read ahead of garbled", master.Stats{ChecksumErrors: 2, Garbled: 1}, `
# HELP mbus_bus_errors_total Failed exchanges on the bus by kind: timeout, checksum, framing, collision, echo (own request read back).
# TYPE mbus_bus_errors_total counter
mbus_bus_errors_total{kind="checksum"} 2
mbus_bus_errors_total{kind="collision"} 0
mbus_bus_errors_total{kind="echo"} 0
mbus_bus_errors_total{kind="framing"} 0
mbus_bus_errors_total{kind="timeout"} 0
# HELP mbus_bus_requests_total Frames the gateway sent on the bus, repeats included.
# TYPE mbus_bus_requests_total counter
mbus_bus_requests_total 0
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewBusCollector(func() master.Stats { return tt.stats })
			if err := testutil.CollectAndCompare(c, strings.NewReader(tt.want), "mbus_bus_errors_total", "mbus_bus_requests_total"); err != nil {
				t.Error(err)
			}
			if got, want := testutil.CollectAndCount(c), 9; got != want {
				t.Errorf("%d series, want %d", got, want)
			}
		})
	}
}
