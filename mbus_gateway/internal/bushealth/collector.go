package bushealth

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports a Health to Prometheus: the state as a number, the
// older yes/no gauge, and the transitions counted by state pair.
type Collector struct {
	h                  *Health
	state, up, changes *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the metrics of h.
func NewCollector(h *Health) *Collector {
	return &Collector{
		h: h,
		state: prometheus.NewDesc("mbus_bus_state",
			"State of the bus: 0 up, 1 suspect (garbled answers in a row), 2 down (port failed; waiting to retry), 3 reopening.", nil, nil),
		up: prometheus.NewDesc("mbus_bus_up",
			"1 while the bus (adapter, port or converter) works (state up or suspect), 0 while it is down or being reopened.", nil, nil),
		changes: prometheus.NewDesc("mbus_bus_transitions_total",
			"Changes of the bus state, by the state left and the state entered.", []string{"from", "to"}, nil),
	}
}

// Describe sends the descriptors.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.up
	ch <- c.changes
}

// Collect sends the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.h.State()
	up := 0.0
	if s.Working() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, float64(s))
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	for t, n := range c.h.Transitions() {
		ch <- prometheus.MustNewConstMetric(c.changes, prometheus.CounterValue, float64(n), t.From.String(), t.To.String())
	}
}
