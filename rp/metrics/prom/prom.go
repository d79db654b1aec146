// Package prom is the Prometheus sink of rp/metrics: every metric named
// keydesk_rp_* and registered on the [prometheus.Registerer] given to
// [New], never the global one, so tests and several servers in one
// process keep separate counts; every known series is created at zero,
// so rate() and absent-series alerts work from the first scrape.
package prom

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keydesk/keydesk/rp/metrics"
)

// durationBuckets are the histogram buckets, in seconds, of the ceremony
// and HTTP durations: 1 ms to 2 s, dense around the 20 ms p95 target.
var durationBuckets = []float64{.001, .0025, .005, .01, .015, .02, .03, .05, .1, .25, .5, 1, 2}

// sink records to Prometheus collectors.
type sink struct {
	gatherer         prometheus.Gatherer
	authentications  *prometheus.CounterVec
	registrations    *prometheus.CounterVec
	ceremonyDuration *prometheus.HistogramVec
	attestation      *prometheus.CounterVec
	rateLimited      *prometheus.CounterVec
	keyEvents        *prometheus.CounterVec
	recovery         *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
}

// New creates the metrics, registers them on reg and creates every known
// series at zero. It fails if reg already holds metrics of the same names,
// such as from an earlier New on the same reg. The Metrics' Handler
// serves reg when reg is also a [prometheus.Gatherer], as a
// [prometheus.Registry] is.
func New(reg prometheus.Registerer) (*metrics.Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil Registerer")
	}
	const ns, sub = "keydesk", "rp"
	m := &sink{
		authentications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "authentications_total",
			Help: "Finished WebAuthn login ceremonies, by result and failure reason (none for a success).",
		}, []string{"result", "reason"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "registrations_total",
			Help: "Finished WebAuthn registration ceremonies, by result.",
		}, []string{"result"}),
		ceremonyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "ceremony_duration_seconds",
			Help:    "Server-side time of each WebAuthn ceremony step, in seconds.",
			Buckets: durationBuckets,
		}, []string{"ceremony"}),
		attestation: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "attestation_failures_total",
			Help: "Registrations refused because of their attestation, by reason.",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rate_limited_requests_total",
			Help: "Requests answered 429 Too Many Requests, by the limiter that refused them.",
		}, []string{"limiter"}),
		keyEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "key_events_total",
			Help: "Credential lifecycle events, by kind.",
		}, []string{"kind"}),
		recovery: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "recovery_requests_total",
			Help: "Account recovery attempts, by outcome.",
		}, []string{"outcome"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "http_request_duration_seconds",
			Help:    "HTTP request handling time in seconds, by ServeMux route pattern and status class.",
			Buckets: durationBuckets,
		}, []string{"route", "code_class"}),
	}
	for _, c := range []prometheus.Collector{
		m.authentications, m.registrations, m.ceremonyDuration, m.attestation,
		m.rateLimited, m.keyEvents, m.recovery, m.httpDuration,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	}

	m.authentications.WithLabelValues(string(metrics.ResultSuccess), string(metrics.AuthReasonNone))
	for _, r := range metrics.AuthReasons() {
		m.authentications.WithLabelValues(string(metrics.ResultFailure), string(r))
	}
	m.registrations.WithLabelValues(string(metrics.ResultSuccess))
	m.registrations.WithLabelValues(string(metrics.ResultFailure))
	for _, c := range metrics.Ceremonies() {
		m.ceremonyDuration.WithLabelValues(string(c))
	}
	for _, r := range metrics.AttestationReasons() {
		m.attestation.WithLabelValues(string(r))
	}
	for _, l := range metrics.Limiters() {
		m.rateLimited.WithLabelValues(string(l))
	}
	for _, k := range metrics.KeyEvents() {
		m.keyEvents.WithLabelValues(string(k))
	}
	for _, o := range metrics.RecoveryOutcomes() {
		m.recovery.WithLabelValues(string(o))
	}
	return metrics.New(m), nil
}

func (m *sink) Authentication(result metrics.Result, reason metrics.AuthReason) {
	m.authentications.WithLabelValues(string(result), string(reason)).Inc()
}

func (m *sink) Registration(result metrics.Result) {
	m.registrations.WithLabelValues(string(result)).Inc()
}

func (m *sink) CeremonyDuration(c metrics.Ceremony, seconds float64) {
	m.ceremonyDuration.WithLabelValues(string(c)).Observe(seconds)
}

func (m *sink) AttestationFailure(reason metrics.AttestationReason) {
	m.attestation.WithLabelValues(string(reason)).Inc()
}

func (m *sink) RateLimited(limiter metrics.Limiter) {
	m.rateLimited.WithLabelValues(string(limiter)).Inc()
}

func (m *sink) KeyEvent(kind metrics.KeyEvent) {
	m.keyEvents.WithLabelValues(string(kind)).Inc()
}

func (m *sink) Recovery(outcome metrics.RecoveryOutcome) {
	m.recovery.WithLabelValues(string(outcome)).Inc()
}

func (m *sink) HTTPDuration(route, codeClass string, seconds float64) {
	m.httpDuration.WithLabelValues(route, codeClass).Observe(seconds)
}

// Handler serves the registry given to New in the Prometheus text
// format. If that registry is not a [prometheus.Gatherer], every scrape
// fails with 500.
func (m *sink) Handler() http.Handler {
	if m.gatherer == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "metrics: the Registerer given to New is not a Gatherer", http.StatusInternalServerError)
		})
	}
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
}
