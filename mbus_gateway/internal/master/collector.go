package master

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Values of the kind label of mbus_bus_errors_total.
const (
	KindTimeout   = "timeout"   // no answer within the EN 13757-2 response time
	KindChecksum  = "checksum"  // a frame with a wrong checksum
	KindFraming   = "framing"   // bytes that were no valid frame for another reason
	KindCollision = "collision" // several meters answered one probe
	KindEcho      = "echo"      // the gateway's own request read back
	KindStray     = "stray"     // another meter's late answer, skipped
)

// Collector exports the link layer's counters (Stats) to Prometheus. It
// reads them at every scrape, so every series exists from the start, at 0,
// and the exchanges need no metrics code of their own.
type Collector struct {
	stats    func() Stats
	requests *prometheus.Desc
	retries  *prometheus.Desc
	errs     *prometheus.Desc
	bytes    *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector of the counters stats returns,
// typically (*Master).Stats.
func NewCollector(stats func() Stats) *Collector {
	return &Collector{
		stats: stats,
		requests: prometheus.NewDesc("mbus_bus_requests_total",
			"Frames the gateway sent on the bus, repeats included.", nil, nil),
		retries: prometheus.NewDesc("mbus_bus_retries_total",
			"Exchanges repeated after a timeout or a garbled answer.", nil, nil),
		errs: prometheus.NewDesc("mbus_bus_errors_total",
			"Failed exchanges on the bus by kind: timeout, checksum, framing, collision, echo (own request read back), stray (another meter's late answer, skipped).",
			[]string{"kind"}, nil),
		bytes: prometheus.NewDesc("mbus_bus_bytes_total",
			"Bytes sent (tx) and received (rx, echoes and garbage included) on the bus.",
			[]string{"direction"}, nil),
	}
}

// Describe sends the descriptors of the metrics.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.retries
	ch <- c.errs
	ch <- c.bytes
}

// Collect sends the current counters.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	// Garbled counts checksum errors too; framing is the rest. The two
	// counters are read one after the other, so guard against a moment
	// where the checksum count is ahead.
	framing := s.Garbled - min(s.ChecksumErrors, s.Garbled)
	for _, m := range []struct {
		desc  *prometheus.Desc
		value uint64
		label []string
	}{
		{c.requests, s.Requests, nil},
		{c.retries, s.Retries, nil},
		{c.errs, s.Timeouts, []string{KindTimeout}},
		{c.errs, s.ChecksumErrors, []string{KindChecksum}},
		{c.errs, framing, []string{KindFraming}},
		{c.errs, s.Collisions, []string{KindCollision}},
		{c.errs, s.Echoes, []string{KindEcho}},
		{c.errs, s.Strays, []string{KindStray}},
		{c.bytes, s.TxBytes, []string{"tx"}},
		{c.bytes, s.RxBytes, []string{"rx"}},
	} {
		metric, err := prometheus.NewConstMetric(m.desc, prometheus.CounterValue, float64(m.value), m.label...)
		if err != nil {
			metric = prometheus.NewInvalidMetric(m.desc, err)
		}
		ch <- metric
	}
}
