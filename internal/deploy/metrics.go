package deploy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the orchestrator's Prometheus metrics.
type metrics struct {
	deployments *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	warmup      *prometheus.HistogramVec
	restarts    *prometheus.CounterVec
}

var slowBuckets = []float64{0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800}

func newMetrics() *metrics {
	return &metrics{
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slipway_deployments_total",
			Help: "Deployments that ended, by kind and outcome (succeeded, failed, cancelled)."}, []string{"app", "kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "slipway_deployment_duration_seconds",
			Help: "Time from a deployment's start to its end.", Buckets: slowBuckets}, []string{"app"}),
		warmup: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "slipway_warmup_duration_seconds",
			Help: "Time from an instance's start to its first accepted warmup answer.", Buckets: slowBuckets}, []string{"app"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slipway_instance_restarts_total",
			Help: "Instances replaced because they exited or failed their health checks."}, []string{"app", "reason"}),
	}
}

var instancesDesc = prometheus.NewDesc("slipway_instances", "Instances by state.", []string{"app", "state"}, nil)

// Describe and Collect make the Manager a Prometheus collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	m.metrics.deployments.Describe(ch)
	m.metrics.duration.Describe(ch)
	m.metrics.warmup.Describe(ch)
	m.metrics.restarts.Describe(ch)
	ch <- instancesDesc
}

func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	m.metrics.deployments.Collect(ch)
	m.metrics.duration.Collect(ch)
	m.metrics.warmup.Collect(ch)
	m.metrics.restarts.Collect(ch)
	m.mu.Lock()
	counts := map[[2]string]int{}
	for app, insts := range m.live {
		for _, i := range insts {
			counts[[2]string{app, i.state}]++
		}
	}
	for app, insts := range m.sick {
		for _, i := range insts {
			counts[[2]string{app, i.state}]++
		}
	}
	m.mu.Unlock()
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}

func (m *Manager) observeDeployment(app, kind, outcome string, d time.Duration) {
	m.metrics.deployments.WithLabelValues(app, kind, outcome).Inc()
	m.metrics.duration.WithLabelValues(app).Observe(d.Seconds())
}
