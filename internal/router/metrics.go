package router

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets are the upper bounds, in seconds, of the request latency
// histogram.
var latencyBuckets = [numBuckets - 1]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// numBuckets counts the histogram's buckets: one per bound, and one for
// the answers slower than the last.
const numBuckets = 15

// routeStats counts an app's requests with atomics only, so the request
// path takes no lock; Collector turns them into metrics at scrape time.
type routeStats struct {
	byClass [6]atomic.Uint64 // index 1–5: 1xx–5xx; 0: other
	buckets [numBuckets]atomic.Uint64
	sumNs   atomic.Uint64
	count   atomic.Uint64
	recent  recentStats
	history historyStats
}

func (s *routeStats) observe(now time.Time, status int, d time.Duration) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	s.byClass[class].Add(1)
	secs := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && secs > latencyBuckets[i] {
		i++
	}
	s.buckets[i].Add(1)
	s.sumNs.Add(uint64(d))
	s.count.Add(1)
	s.recent.observe(now, status, i)
	s.history.observe(now, status)
}

var (
	requestsDesc = prometheus.NewDesc("slipway_http_requests_total",
		"Requests the router answered for an app, by status class.", []string{"app", "code"}, nil)
	durationDesc = prometheus.NewDesc("slipway_http_request_duration_seconds",
		"Time from the router receiving a request to the end of its answer.", []string{"app"}, nil)
	inflightDesc = prometheus.NewDesc("slipway_http_requests_in_flight",
		"Requests an app's instances are serving now.", []string{"app"}, nil)
)

var classNames = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Collector returns a Prometheus collector of the router's metrics.
func (r *Router) Collector() prometheus.Collector { return routerCollector{r} }

type routerCollector struct{ r *Router }

func (c routerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- durationDesc
	ch <- inflightDesc
}

func (c routerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, rt := range c.r.table.Load().apps {
		c.collectRoute(ch, rt)
	}
}

func (c routerCollector) collectRoute(ch chan<- prometheus.Metric, rt *route) {
	s := &rt.stats
	for i, name := range classNames {
		if n := s.byClass[i].Load(); n > 0 || (i >= 2 && i <= 5) {
			ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n), rt.app, name)
		}
	}
	buckets := make(map[float64]uint64, len(latencyBuckets))
	var cum uint64
	for i, ub := range latencyBuckets {
		cum += s.buckets[i].Load()
		buckets[ub] = cum
	}
	ch <- prometheus.MustNewConstHistogram(durationDesc, s.count.Load(), float64(s.sumNs.Load())/1e9, buckets, rt.app)
	var inflight int64
	for _, b := range *rt.backends.Load() {
		inflight += b.InFlight()
	}
	ch <- prometheus.MustNewConstMetric(inflightDesc, prometheus.GaugeValue, float64(inflight), rt.app)
}
