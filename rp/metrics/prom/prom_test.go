package prom_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keydesk/keydesk/rp/metrics"
	"github.com/keydesk/keydesk/rp/metrics/prom"
)

func newMetrics(t *testing.T) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// scrape fetches /metrics through m's Handler as Prometheus would.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("scrape: Content-Type %q, want the text format", ct)
	}
	return string(body)
}

// hasLine reports whether the exposition text has the line want, or a
// line starting with want when want ends in a space (for HELP lines).
func hasLine(text, want string) bool {
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		if line == want || strings.HasSuffix(want, " ") && strings.HasPrefix(line, want) {
			return true
		}
	}
	return false
}

func TestScrapeShowsRecordedSamples(t *testing.T) {
	tests := []struct {
		name   string
		record func(*metrics.Metrics)
		want   []string
	}{
		{
			name:   "ShouldCountAuthSuccessWithReasonNone",
			record: func(m *metrics.Metrics) { m.AuthSucceeded(); m.AuthSucceeded() },
			want:   []string{`keydesk_rp_authentications_total{reason="none",result="success"} 2`},
		},
		{
			name:   "ShouldCountAuthFailureByReason",
			record: func(m *metrics.Metrics) { m.AuthFailed(metrics.AuthReasonSignature) },
			want: []string{
				`keydesk_rp_authentications_total{reason="signature",result="failure"} 1`,
				`keydesk_rp_authentications_total{reason="challenge",result="failure"} 0`,
			},
		},
		{
			name: "ShouldCountRegistrationsByResult",
			record: func(m *metrics.Metrics) {
				m.Registration(metrics.ResultSuccess)
				m.Registration(metrics.ResultFailure)
				m.Registration(metrics.ResultFailure)
			},
			want: []string{
				`keydesk_rp_registrations_total{result="success"} 1`,
				`keydesk_rp_registrations_total{result="failure"} 2`,
			},
		},
		{
			name: "ShouldBucketCeremonyDurations",
			record: func(m *metrics.Metrics) {
				m.ObserveCeremony(metrics.CeremonyLoginFinish, 3*time.Millisecond)
				m.ObserveCeremony(metrics.CeremonyLoginFinish, 1500*time.Millisecond)
			},
			want: []string{
				`keydesk_rp_ceremony_duration_seconds_bucket{ceremony="login_finish",le="0.001"} 0`,
				`keydesk_rp_ceremony_duration_seconds_bucket{ceremony="login_finish",le="0.005"} 1`,
				`keydesk_rp_ceremony_duration_seconds_bucket{ceremony="login_finish",le="1"} 1`,
				`keydesk_rp_ceremony_duration_seconds_bucket{ceremony="login_finish",le="2"} 2`,
				`keydesk_rp_ceremony_duration_seconds_sum{ceremony="login_finish"} 1.503`,
				`keydesk_rp_ceremony_duration_seconds_count{ceremony="login_finish"} 2`,
				`keydesk_rp_ceremony_duration_seconds_count{ceremony="registration_begin"} 0`,
			},
		},
		{
			name:   "ShouldCountAttestationFailuresByReason",
			record: func(m *metrics.Metrics) { m.AttestationFailed(metrics.AttestationReasonAAGUIDDenied) },
			want:   []string{`keydesk_rp_attestation_failures_total{reason="aaguid_denied"} 1`},
		},
		{
			name:   "ShouldCountRateLimitedByLimiter",
			record: func(m *metrics.Metrics) { m.RateLimited(metrics.LimiterIP); m.RateLimited(metrics.LimiterGrant) },
			want: []string{
				`keydesk_rp_rate_limited_requests_total{limiter="ip"} 1`,
				`keydesk_rp_rate_limited_requests_total{limiter="grant"} 1`,
				`keydesk_rp_rate_limited_requests_total{limiter="account"} 0`,
			},
		},
		{
			name:   "ShouldCountKeyEventsByKind",
			record: func(m *metrics.Metrics) { m.KeyEvent(metrics.KeyRevoked) },
			want: []string{
				`keydesk_rp_key_events_total{kind="revoked"} 1`,
				`keydesk_rp_key_events_total{kind="registered"} 0`,
			},
		},
		{
			name:   "ShouldCountRecoveryByOutcome",
			record: func(m *metrics.Metrics) { m.Recovery(metrics.RecoveryExpired) },
			want:   []string{`keydesk_rp_recovery_requests_total{outcome="expired"} 1`},
		},
		{
			name:   "ShouldDocumentEachMetric",
			record: func(*metrics.Metrics) {},
			want: []string{
				"# HELP keydesk_rp_authentications_total ",
				"# TYPE keydesk_rp_authentications_total counter",
				"# HELP keydesk_rp_registrations_total ",
				"# TYPE keydesk_rp_ceremony_duration_seconds histogram",
				"# HELP keydesk_rp_attestation_failures_total ",
				"# HELP keydesk_rp_rate_limited_requests_total ",
				"# HELP keydesk_rp_key_events_total ",
				"# HELP keydesk_rp_recovery_requests_total ",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newMetrics(t)
			tt.record(m)
			text := scrape(t, m)
			for _, w := range tt.want {
				if !hasLine(text, w) {
					t.Errorf("exposition lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("exposition:\n%s", text)
			}
		})
	}
}

func TestUnknownLabelValuesAreFolded(t *testing.T) {
	m, reg := newMetrics(t)
	before, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		s := strings.Repeat("x", i)
		m.AuthFailed(metrics.AuthReason(s))
		m.AttestationFailed(metrics.AttestationReason(s))
		m.RateLimited(metrics.Limiter(s))
		m.KeyEvent(metrics.KeyEvent(s))
		m.Recovery(metrics.RecoveryOutcome(s))
		m.ObserveCeremony(metrics.Ceremony(s), time.Millisecond)
		m.Registration(metrics.Result(s))
	}
	m.AuthFailed(metrics.AuthReasonNone) // a failure cannot claim no reason
	after, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	// Series "other" appear for limiter, key event and ceremony, whose
	// "other" is not created up front; the rest already had theirs.
	if want := before + 3; after != want {
		t.Errorf("%d series after unknown label values, want %d (before: %d)", after, want, before)
	}
	tests := []struct {
		name string
		want string
	}{
		{"ShouldFoldAuthReasons", `keydesk_rp_authentications_total{reason="other",result="failure"} 51`},
		{"ShouldFoldLimiters", `keydesk_rp_rate_limited_requests_total{limiter="other"} 50`},
		{"ShouldFoldCeremonies", `keydesk_rp_ceremony_duration_seconds_count{ceremony="other"} 50`},
		{"ShouldCountUnknownResultsAsFailures", `keydesk_rp_registrations_total{result="failure"} 50`},
	}
	text := scrape(t, m)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !hasLine(text, tt.want) {
				t.Errorf("exposition lacks %q", tt.want)
			}
		})
	}
}

func TestInstrumentHandlerLabelsByRoutePattern(t *testing.T) {
	m, reg := newMetrics(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "{}")
	})
	mux.HandleFunc("POST /v1/login/finish", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {}) // writes nothing: 200
	srv := httptest.NewServer(m.InstrumentHandler(mux))
	defer srv.Close()

	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/keys/a1"}, {"GET", "/v1/keys/b2"}, {"GET", "/v1/keys/missing"},
		{"POST", "/v1/login/finish"}, {"GET", "/healthz"},
		{"GET", "/wp-admin.php"}, {"GET", "/v1/keys/a1/../../etc"}, {"DELETE", "/healthz"},
	} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	want := []string{
		"# HELP keydesk_rp_http_request_duration_seconds ",
		`keydesk_rp_http_request_duration_seconds_count{code_class="2xx",route="GET /v1/keys/{id}"} 2`,
		`keydesk_rp_http_request_duration_seconds_count{code_class="4xx",route="GET /v1/keys/{id}"} 1`,
		`keydesk_rp_http_request_duration_seconds_count{code_class="4xx",route="POST /v1/login/finish"} 1`,
		`keydesk_rp_http_request_duration_seconds_count{code_class="2xx",route="GET /healthz"} 1`,
	}
	text := scrape(t, m)
	for _, w := range want {
		if !hasLine(text, w) {
			t.Errorf("exposition lacks %q", w)
		}
	}
	if strings.Contains(text, "wp-admin") || strings.Contains(text, "a1") {
		t.Error("a raw request path reached a label")
	}
	// Unmatched requests (the scanner's 404, the path-cleaning redirect
	// and its 404, the 405) all land under one route label.
	for _, w := range []string{
		`keydesk_rp_http_request_duration_seconds_count{code_class="3xx",route="unmatched"} 1`,
		`keydesk_rp_http_request_duration_seconds_count{code_class="4xx",route="unmatched"} 3`,
	} {
		if !hasLine(text, w) {
			t.Errorf("exposition lacks %q", w)
		}
	}
	n, err := testutil.GatherAndCount(reg, "keydesk_rp_http_request_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("%d HTTP duration series, want 6: 4 routed, 2 unmatched", n)
	}
}

func TestTwoMetricsInTwoRegistriesDoNotConflict(t *testing.T) {
	a, _ := newMetrics(t)
	b, _ := newMetrics(t)
	a.AuthSucceeded()
	b.AuthFailed(metrics.AuthReasonOrigin)
	if got := scrape(t, a); !hasLine(got, `keydesk_rp_authentications_total{reason="none",result="success"} 1`) ||
		!hasLine(got, `keydesk_rp_authentications_total{reason="origin",result="failure"} 0`) {
		t.Errorf("first registry saw the second's counts:\n%s", got)
	}
	if got := scrape(t, b); !hasLine(got, `keydesk_rp_authentications_total{reason="none",result="success"} 0`) ||
		!hasLine(got, `keydesk_rp_authentications_total{reason="origin",result="failure"} 1`) {
		t.Errorf("second registry saw the first's counts:\n%s", got)
	}
}

func TestNewTwiceOnOneRegistryFails(t *testing.T) {
	_, reg := newMetrics(t)
	_, err := prom.New(reg)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Errorf("second New on one registry: %v, want an AlreadyRegisteredError", err)
	}
	if _, err := prom.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}

func TestHandlerWithoutGathererAnswers500(t *testing.T) {
	m, err := prom.New(prometheus.WrapRegistererWithPrefix("x_", prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", w.Code)
	}
}

func TestCountersAreSafeForConcurrentUse(t *testing.T) {
	m, _ := newMetrics(t)
	const goroutines, each = 8, 1000
	done := make(chan struct{})
	for range goroutines {
		go func() {
			defer func() { done <- struct{}{} }()
			for range each {
				m.KeyEvent(metrics.KeyRegistered)
				m.ObserveCeremony(metrics.CeremonyRegistrationFinish, time.Millisecond)
			}
		}()
	}
	for range goroutines {
		<-done
	}
	if !hasLine(scrape(t, m), `keydesk_rp_key_events_total{kind="registered"} 8000`) {
		t.Error("lost increments under concurrency")
	}
}
