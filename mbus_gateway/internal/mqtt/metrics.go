package mqtt

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the client's Prometheus metrics.
type metrics struct {
	connected     prometheus.Gauge
	published     prometheus.Counter
	acked         prometheus.Counter
	publishErrors prometheus.Counter
	depth         prometheus.Gauge
	dropped       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mbus_mqtt_connected",
			Help: "1 while the gateway is connected to the MQTT broker, else 0.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mbus_mqtt_published_total",
			Help: "Readings sent to the broker (including resends after a reconnect).",
		}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mbus_mqtt_acked_total",
			Help: "Readings the broker acknowledged, removed from the outbox.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mbus_mqtt_publish_errors_total",
			Help: "Publications that failed; their readings stay in the outbox.",
		}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mbus_outbox_depth",
			Help: "Readings in the outbox waiting for the broker.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mbus_outbox_dropped_total",
			Help: "Readings dropped from the outbox unpublished: too old, too many, or unreadable.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connected, m.published, m.acked, m.publishErrors, m.depth, m.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("mqtt: register metrics: %w", err)
		}
	}
	return m, nil
}
