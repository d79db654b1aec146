package metrics_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/metrics"
)

// recorder is a Sink that writes down what it receives.
type recorder struct{ got []string }

func (r *recorder) add(format string, args ...any) {
	r.got = append(r.got, fmt.Sprintf(format, args...))
}
func (r *recorder) Authentication(res metrics.Result, reason metrics.AuthReason) {
	r.add("auth %s %s", res, reason)
}
func (r *recorder) Registration(res metrics.Result)                { r.add("reg %s", res) }
func (r *recorder) CeremonyDuration(c metrics.Ceremony, s float64) { r.add("ceremony %s", c) }
func (r *recorder) AttestationFailure(reason metrics.AttestationReason) {
	r.add("attestation %s", reason)
}
func (r *recorder) RateLimited(l metrics.Limiter)               { r.add("limited %s", l) }
func (r *recorder) KeyEvent(k metrics.KeyEvent)                 { r.add("key %s", k) }
func (r *recorder) Recovery(o metrics.RecoveryOutcome)          { r.add("recovery %s", o) }
func (r *recorder) HTTPDuration(route, class string, _ float64) { r.add("http %s %s", route, class) }
func (r *recorder) Handler() http.Handler                       { return http.NotFoundHandler() }

// TestMetricsShouldKeepLabelsToTheKnownSets: what reaches the sink is
// always one of the declared values; unknown ones become "other" (or a
// failure), so no caller can grow the number of series.
func TestMetricsShouldKeepLabelsToTheKnownSets(t *testing.T) {
	var r recorder
	m := metrics.New(&r)
	m.AuthSucceeded()
	m.AuthFailed(metrics.AuthReasonSignature)
	m.AuthFailed("made-up")
	m.AuthFailed(metrics.AuthReasonNone)
	m.Registration("made-up")
	m.ObserveCeremony("made-up", time.Millisecond)
	m.AttestationFailed("made-up")
	m.RateLimited("made-up")
	m.KeyEvent("made-up")
	m.Recovery("made-up")
	want := []string{
		"auth success none", "auth failure signature", "auth failure other", "auth failure other",
		"reg failure", "ceremony other", "attestation other", "limited other", "key other", "recovery other",
	}
	if !slices.Equal(r.got, want) {
		t.Fatalf("sink got\n%q\nwant\n%q", r.got, want)
	}
}

// TestMetricsShouldRecordRoutesNotPaths: a request is recorded under the
// ServeMux pattern that routed it, or "unmatched", never its raw path.
func TestMetricsShouldRecordRoutesNotPaths(t *testing.T) {
	var r recorder
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users/{name}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := metrics.New(&r).InstrumentHandler(mux)
	for _, path := range []string{"/v1/users/alice", "/secret-scanner-probe"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	want := []string{"http GET /v1/users/{name} 4xx", "http unmatched 4xx"}
	if !slices.Equal(r.got, want) {
		t.Fatalf("sink got %q, want %q", r.got, want)
	}
}

// TestNilMetricsShouldRecordNothing: code under test runs without
// metrics; a nil *Metrics passes requests through and serves 404.
func TestNilMetricsShouldRecordNothing(t *testing.T) {
	var m *metrics.Metrics
	m.AuthSucceeded()
	m.AuthFailed(metrics.AuthReasonOther)
	m.Registration(metrics.ResultSuccess)
	m.ObserveCeremony(metrics.CeremonyLoginBegin, time.Millisecond)
	m.AttestationFailed(metrics.AttestationReasonOther)
	m.RateLimited(metrics.LimiterIP)
	m.KeyEvent(metrics.KeyRevoked)
	m.Recovery(metrics.RecoveryGranted)
	called := false
	m.InstrumentHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if !called {
		t.Fatal("the handler was not called")
	}
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != http.StatusNotFound {
		t.Fatalf("/metrics of nil Metrics: %d", w.Code)
	}
}

// TestKnownLabelListsAreCopies: a sink that changes a list it was given
// cannot change what Metrics records.
func TestKnownLabelListsAreCopies(t *testing.T) {
	l := metrics.AuthReasons()
	l[0] = "changed"
	if metrics.AuthReasons()[0] == "changed" {
		t.Fatal("AuthReasons returned the package's own slice")
	}
}
