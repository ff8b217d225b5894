package e2e

import (
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/slipway-dev/slipway/internal/api"
	"github.com/slipway-dev/slipway/internal/testapp"
)

// scrape reads /metrics with the Prometheus text parser.
func (d *daemon) scrape() map[string]*dto.MetricFamily {
	d.t.Helper()
	resp, err := d.api(http.MethodGet, "/metrics", nil)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		d.t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// metric finds the metric of family name whose labels include labels.
func metric(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// TestMetrics: /metrics parses, and its counters match the requests sent.
func TestMetrics(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "metered")
	d.mustCLI("deploy", "-a", "metered", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	client := d.httpClient()
	for range 40 {
		d.body("metered", "/")
	}
	for range 7 {
		if code, _, err := d.get(t.Context(), client, "metered", "/nope"); err != nil || code != 404 {
			t.Fatalf("GET /nope: %d %v", code, err)
		}
	}
	fams := d.scrape()
	counter := func(name string, labels map[string]string) float64 {
		m := metric(fams, name, labels)
		if m == nil {
			t.Errorf("no %s%v in /metrics", name, labels)
			return -1
		}
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	if got := counter("slipway_http_requests_total", map[string]string{"app": "metered", "code": "2xx"}); got != 40 {
		t.Errorf("2xx requests: %v, want 40", got)
	}
	if got := counter("slipway_http_requests_total", map[string]string{"app": "metered", "code": "4xx"}); got != 7 {
		t.Errorf("4xx requests: %v, want 7", got)
	}
	if h := metric(fams, "slipway_http_request_duration_seconds", map[string]string{"app": "metered"}); h == nil || h.Histogram.GetSampleCount() != 47 {
		t.Errorf("latency histogram: %v, want 47 samples", h)
	}
	if got := counter("slipway_deployments_total", map[string]string{"app": "metered", "kind": "deploy", "outcome": "succeeded"}); got != 1 {
		t.Errorf("succeeded deployments: %v, want 1", got)
	}
	if got := counter("slipway_instances", map[string]string{"app": "metered", "state": "ready"}); got != 1 {
		t.Errorf("ready instances: %v, want 1", got)
	}
	if got := counter("slipway_http_requests_in_flight", map[string]string{"app": "metered"}); got != 0 {
		t.Errorf("in flight: %v, want 0", got)
	}
	if h := metric(fams, "slipway_warmup_duration_seconds", map[string]string{"app": "metered"}); h == nil || h.Histogram.GetSampleCount() != 1 {
		t.Errorf("warmup histogram: %v, want 1 sample", h)
	}

	var st api.Status
	d.getJSON("/api/v1/apps/metered/status", &st)
	if tr := st.Traffic; tr.Requests != 47 || tr.ErrorRate != 0 || tr.P95 <= 0 {
		t.Errorf("status traffic %+v, want 47 requests, no errors, a p95", tr)
	}
	if out := d.mustCLI("status", "-a", "metered"); !strings.Contains(out, "Last minute: 47 requests (0.8/s), 0.0% errors (5xx), p95 ≤ ") {
		t.Errorf("slipway status:\n%s", out)
	}
}

// TestAccessLog: off by default; once on, each request is a line in the
// app's log with method, path, status, duration, bytes, instance, client.
func TestAccessLog(t *testing.T) {
	d := startDaemon(t)
	d.mustCLI("apps", "create", "audited")
	d.mustCLI("deploy", "-a", "audited", testapp.Jar(t, "app.jar", map[string]string{"version": "1"}))
	d.get(t.Context(), d.httpClient(), "audited", "/before-access-log")
	d.mustCLI("config", "options", "-a", "audited", "--access-log")
	d.get(t.Context(), d.httpClient(), "audited", "/with-access-log")
	inst := d.app("audited").Instances[0].ID
	out := d.mustCLI("logs", "-a", "audited", "-n", "1000", "--source", "app")
	if strings.Contains(out, "before-access-log") {
		t.Errorf("the access log was on by default:\n%s", out)
	}
	want := `method=GET path="/with-access-log" status=404 duration_ms=`
	if !strings.Contains(out, want) || !strings.Contains(out, "bytes=10 instance="+inst+" client=127.0.0.1") {
		t.Errorf("the log lacks the access line %q … instance=%s client=127.0.0.1:\n%s", want, inst, out)
	}
}
