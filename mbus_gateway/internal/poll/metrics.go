package poll

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the result label of mbus_polls_total.
const (
	resultOK       = "ok"        // answered, every record decoded
	resultPartial  = "partial"   // answered, some records could not be decoded
	resultAppError = "app_error" // answered with an application error report
	resultTimeout  = "timeout"   // no answer in time
	resultError    = "error"     // garbled answer or another meter-level failure
	resultBusError = "bus_error" // the bus itself failed during the read
	resultBusDown  = "bus_down"  // not attempted: the bus health held the bus back
	// answered with encrypted telegrams: no key configured (or a mode
	// that cannot be decrypted), or the key does not decrypt them
	resultKeyNeeded = "key_needed"
	resultWrongKey  = "wrong_key"
	// another meter answered: a late answer, or a replacement not yet
	// confirmed (see ErrOtherMeter)
	resultOtherMeter = "other_meter"
)

// metrics are the poller's Prometheus collectors.
type metrics struct {
	polls       *prometheus.CounterVec
	duration    prometheus.Histogram
	breaker     *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	deliveryErr prometheus.Counter
	dropped     prometheus.Counter
	pending     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mbus_polls_total",
			Help: "Reads of meters by outcome.",
		}, []string{"meter", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mbus_poll_duration_seconds",
			Help: "Time the bus was busy with one read of one meter.",
			// From one fast telegram at 9600 baud to several at 300 baud.
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mbus_breaker_state",
			Help: "Circuit breaker of each meter: 0 closed, 1 half-open, 2 open.",
		}, []string{"meter"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mbus_meter_last_success_timestamp_seconds",
			Help: "Unix time of the last successful read of each meter.",
		}, []string{"meter"}),
		deliveryErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mbus_delivery_errors_total",
			Help: "Failed attempts to commit a reading to the outbox.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mbus_readings_dropped_total",
			Help: "Readings dropped because the outbox kept failing and the memory queue was full.",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mbus_delivery_pending",
			Help: "Readings waiting in memory for the outbox.",
		}),
	}
	for _, c := range []prometheus.Collector{m.polls, m.duration, m.breaker, m.lastSuccess, m.deliveryErr, m.dropped, m.pending} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// rename moves a meter's series to a new label once its identifier is
// known; the old series would otherwise stay behind, frozen.
func (m *metrics) rename(from, to string, st BreakerState, lastOK time.Time) {
	if from == to {
		return
	}
	m.forget(from)
	m.breaker.WithLabelValues(to).Set(float64(st))
	if !lastOK.IsZero() {
		m.setLastSuccess(to, lastOK)
	}
}

// forget removes the series of a meter that is no longer read, so that
// /metrics does not keep a frozen breaker state or last success for it.
func (m *metrics) forget(meter string) {
	l := prometheus.Labels{"meter": meter}
	m.polls.DeletePartialMatch(l)
	m.breaker.DeletePartialMatch(l)
	m.lastSuccess.DeletePartialMatch(l)
}

func (m *metrics) setLastSuccess(meter string, t time.Time) {
	m.lastSuccess.WithLabelValues(meter).Set(float64(t.UnixNano()) / 1e9)
}
