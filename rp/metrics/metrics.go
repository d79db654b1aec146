// Package metrics records the relying party's service-level indicators,
// the ones an operator alerts on, through a [Sink]: the Prometheus one
// (rp/metrics/prom, served at /metrics by keydesk-rp) or none. This
// package does not import Prometheus, so a program that embeds the
// relying party without exporting metrics (the desktop app's local
// demo) neither links nor initializes it.
//
// Label values come only from this package's typed constants; a value
// outside the known set is recorded as "other", so no caller can grow
// the number of series. The Prometheus sink names every metric
// keydesk_rp_* and creates all known series at zero, so rate() and
// absent-series alerts work from the first scrape.
//
// The metrics:
//
//   - keydesk_rp_authentications_total{result,reason}: finished login
//     ceremonies; result is "success" (reason "none") or "failure" with an
//     [AuthReason].
//   - keydesk_rp_registrations_total{result}: finished registration
//     ceremonies by [Result].
//   - keydesk_rp_ceremony_duration_seconds{ceremony}: server time for each
//     [Ceremony] step, buckets from 1 ms to 2 s.
//   - keydesk_rp_attestation_failures_total{reason}: registrations
//     refused for their attestation, by [AttestationReason].
//   - keydesk_rp_rate_limited_requests_total{limiter}: requests answered
//     429, by [Limiter].
//   - keydesk_rp_key_events_total{kind}: credential lifecycle changes, by
//     [KeyEvent].
//   - keydesk_rp_recovery_requests_total{outcome}: account recovery
//     attempts, by [RecoveryOutcome].
//   - keydesk_rp_http_request_duration_seconds{route,code_class}: every
//     HTTP request, by the [net/http.ServeMux] pattern that matched it
//     and the status class ("2xx"), via [Metrics.InstrumentHandler].
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/keydesk/keydesk/rp/httpstatus"
)

// Result is the outcome of a ceremony.
type Result string

// Ceremony results.
const (
	// ResultSuccess is a ceremony that finished and was accepted.
	ResultSuccess Result = "success"
	// ResultFailure is a ceremony the RP refused or could not finish.
	ResultFailure Result = "failure"
)

// AuthReason says why a login ceremony failed, at the granularity an
// operator acts on. The caller picks the closest one; finer detail goes
// to the logs and the audit log.
type AuthReason string

// Login failure reasons.
const (
	// AuthReasonNone is the reason recorded with a success.
	AuthReasonNone AuthReason = "none"
	// AuthReasonMalformed is a request or assertion that did not parse.
	AuthReasonMalformed AuthReason = "malformed"
	// AuthReasonChallenge is an unknown, expired or already used challenge.
	AuthReasonChallenge AuthReason = "challenge"
	// AuthReasonOrigin is a wrong origin in clientDataJSON or a wrong
	// rpIdHash in authenticatorData.
	AuthReasonOrigin AuthReason = "origin"
	// AuthReasonUnknownCredential is a credential ID the RP never
	// registered (or not for this user).
	AuthReasonUnknownCredential AuthReason = "unknown_credential"
	// AuthReasonRevokedCredential is a credential that was revoked.
	AuthReasonRevokedCredential AuthReason = "revoked_credential"
	// AuthReasonDisabledUser is an account an admin disabled.
	AuthReasonDisabledUser AuthReason = "disabled_user"
	// AuthReasonSignature is an assertion signature that did not verify.
	AuthReasonSignature AuthReason = "signature"
	// AuthReasonUserVerification is a missing UV flag that policy requires.
	AuthReasonUserVerification AuthReason = "user_verification"
	// AuthReasonSignCount is a signature counter that went backwards,
	// refused by policy: a possible cloned authenticator.
	AuthReasonSignCount AuthReason = "sign_count"
	// AuthReasonInternal is a failure on the RP's side, such as the
	// database.
	AuthReasonInternal AuthReason = "internal"
	// AuthReasonOther is any other reason, and what unknown values become.
	AuthReasonOther AuthReason = "other"
)

var authReasons = []AuthReason{
	AuthReasonMalformed, AuthReasonChallenge, AuthReasonOrigin,
	AuthReasonUnknownCredential, AuthReasonRevokedCredential,
	AuthReasonDisabledUser, AuthReasonSignature,
	AuthReasonUserVerification, AuthReasonSignCount, AuthReasonInternal,
	AuthReasonOther,
}

// Ceremony is one HTTP step of a WebAuthn ceremony, timed separately
// because begin is a database write and finish a signature check.
type Ceremony string

// Ceremony steps.
const (
	// CeremonyRegistrationBegin issues PublicKeyCredentialCreationOptions.
	CeremonyRegistrationBegin Ceremony = "registration_begin"
	// CeremonyRegistrationFinish verifies an attestation and stores the
	// credential.
	CeremonyRegistrationFinish Ceremony = "registration_finish"
	// CeremonyLoginBegin issues PublicKeyCredentialRequestOptions.
	CeremonyLoginBegin Ceremony = "login_begin"
	// CeremonyLoginFinish verifies an assertion and opens a session.
	CeremonyLoginFinish Ceremony = "login_finish"
	// CeremonyOther is what unknown values become.
	CeremonyOther Ceremony = "other"
)

var ceremonies = []Ceremony{
	CeremonyRegistrationBegin, CeremonyRegistrationFinish,
	CeremonyLoginBegin, CeremonyLoginFinish,
}

// AttestationReason says why a registration's attestation was refused.
type AttestationReason string

// Attestation failure reasons.
const (
	// AttestationReasonMalformed is an attestation object that did not
	// parse.
	AttestationReasonMalformed AttestationReason = "malformed"
	// AttestationReasonFormat is an attestation statement format the RP
	// does not support.
	AttestationReasonFormat AttestationReason = "format"
	// AttestationReasonSignature is an attestation signature that did not
	// verify.
	AttestationReasonSignature AttestationReason = "signature"
	// AttestationReasonCertificate is an attestation certificate chain
	// that is invalid or not anchored in the metadata.
	AttestationReasonCertificate AttestationReason = "certificate"
	// AttestationReasonRequired is a "none" attestation where policy
	// requires one.
	AttestationReasonRequired AttestationReason = "required"
	// AttestationReasonMetadataMissing is an AAGUID absent from the FIDO
	// Metadata Service blob when policy requires verified attestation.
	AttestationReasonMetadataMissing AttestationReason = "metadata_missing"
	// AttestationReasonMetadataStatus is an authenticator whose metadata
	// status report marks it revoked or compromised.
	AttestationReasonMetadataStatus AttestationReason = "metadata_status"
	// AttestationReasonAAGUIDDenied is an AAGUID the policy denies or does
	// not allow.
	AttestationReasonAAGUIDDenied AttestationReason = "aaguid_denied"
	// AttestationReasonOther is any other reason, and what unknown values
	// become.
	AttestationReasonOther AttestationReason = "other"
)

var attestationReasons = []AttestationReason{
	AttestationReasonMalformed, AttestationReasonFormat,
	AttestationReasonSignature, AttestationReasonCertificate,
	AttestationReasonRequired, AttestationReasonMetadataMissing,
	AttestationReasonMetadataStatus, AttestationReasonAAGUIDDenied,
	AttestationReasonOther,
}

// Limiter names the rate limiter that refused a request.
type Limiter string

// Rate limiters.
const (
	// LimiterIP limits requests per client address.
	LimiterIP Limiter = "ip"
	// LimiterAccount limits requests per user account.
	LimiterAccount Limiter = "account"
	// LimiterGrant limits attempts at redeeming enrollment grants and
	// recovery codes, against guessing.
	LimiterGrant Limiter = "grant"
	// LimiterRecovery limits the recovery handoffs started per account
	// name and per client address, and the attempts at answering them.
	LimiterRecovery Limiter = "recovery"
	// LimiterOther is what unknown values become.
	LimiterOther Limiter = "other"
)

var limiters = []Limiter{LimiterIP, LimiterAccount, LimiterGrant, LimiterRecovery}

// KeyEvent is a change in a credential's life.
type KeyEvent string

// Key lifecycle events.
const (
	// KeyRegistered is a credential stored after a registration.
	KeyRegistered KeyEvent = "registered"
	// KeyProvisioned is a credential an admin registered on a user's
	// behalf.
	KeyProvisioned KeyEvent = "provisioned"
	// KeyRenamed is a credential given a new nickname.
	KeyRenamed KeyEvent = "renamed"
	// KeyRevoked is a credential revoked by its user, helpdesk or an admin.
	KeyRevoked KeyEvent = "revoked"
	// KeyEventOther is what unknown values become.
	KeyEventOther KeyEvent = "other"
)

var keyEvents = []KeyEvent{KeyRegistered, KeyProvisioned, KeyRenamed, KeyRevoked}

// RecoveryOutcome is how an account recovery attempt (QR handoff step-up,
// recovery code, helpdesk enrollment grant) ended.
type RecoveryOutcome string

// Recovery outcomes.
const (
	// RecoveryGranted is an attempt that gave the user a way back in.
	RecoveryGranted RecoveryOutcome = "granted"
	// RecoveryDenied is an attempt refused by policy or authorization.
	RecoveryDenied RecoveryOutcome = "denied"
	// RecoveryInvalid is a wrong or already used code or grant.
	RecoveryInvalid RecoveryOutcome = "invalid"
	// RecoveryExpired is a code, grant or handoff that had expired.
	RecoveryExpired RecoveryOutcome = "expired"
	// RecoveryOther is any other outcome, and what unknown values become.
	RecoveryOther RecoveryOutcome = "other"
)

var recoveryOutcomes = []RecoveryOutcome{
	RecoveryGranted, RecoveryDenied, RecoveryInvalid, RecoveryExpired,
	RecoveryOther,
}

// RouteUnmatched is the route label of requests that no ServeMux pattern
// matched (404s, 405s), so scanners cannot create series.
const RouteUnmatched = "unmatched"

// Sink receives what [Metrics] records, its label values already
// reduced to the known sets. The Prometheus one is rp/metrics/prom.
type Sink interface {
	Authentication(result Result, reason AuthReason)
	Registration(result Result)
	CeremonyDuration(c Ceremony, seconds float64)
	AttestationFailure(reason AttestationReason)
	RateLimited(limiter Limiter)
	KeyEvent(kind KeyEvent)
	Recovery(outcome RecoveryOutcome)
	// HTTPDuration records a request's handling time by ServeMux route
	// pattern (or RouteUnmatched) and status class ("2xx").
	HTTPDuration(route, codeClass string, seconds float64)
	// Handler serves the metrics, for /metrics.
	Handler() http.Handler
}

// Metrics holds the relying party's metrics. Its methods are safe for
// concurrent use when its Sink's are, and a nil *Metrics records
// nothing, so code under test may run without one.
type Metrics struct {
	sink Sink
}

// New returns Metrics that record to sink.
func New(sink Sink) *Metrics { return &Metrics{sink: sink} }

// The known label values, for a Sink that creates every series ahead.

// AuthReasons are the reasons a login failure is recorded with.
func AuthReasons() []AuthReason { return slices.Clone(authReasons) }

// Ceremonies are the ceremony steps timed.
func Ceremonies() []Ceremony { return slices.Clone(ceremonies) }

// AttestationReasons are the reasons an attestation refusal is recorded
// with.
func AttestationReasons() []AttestationReason { return slices.Clone(attestationReasons) }

// Limiters are the rate limiters.
func Limiters() []Limiter { return slices.Clone(limiters) }

// KeyEvents are the credential lifecycle events.
func KeyEvents() []KeyEvent { return slices.Clone(keyEvents) }

// RecoveryOutcomes are the outcomes of account recovery attempts.
func RecoveryOutcomes() []RecoveryOutcome { return slices.Clone(recoveryOutcomes) }

// known returns v if it is in set and fallback otherwise, keeping label
// values to the declared constants.
func known[T comparable](v T, set []T, fallback T) T {
	for _, s := range set {
		if v == s {
			return v
		}
	}
	return fallback
}

// AuthSucceeded counts a login ceremony that opened a session.
func (m *Metrics) AuthSucceeded() {
	if m == nil {
		return
	}
	m.sink.Authentication(ResultSuccess, AuthReasonNone)
}

// AuthFailed counts a login ceremony refused for reason. [AuthReasonNone]
// and unknown reasons count as [AuthReasonOther].
func (m *Metrics) AuthFailed(reason AuthReason) {
	if m == nil {
		return
	}
	reason = known(reason, authReasons, AuthReasonOther)
	m.sink.Authentication(ResultFailure, reason)
}

// Registration counts a finished registration ceremony. An unknown result
// counts as a failure.
func (m *Metrics) Registration(result Result) {
	if m == nil {
		return
	}
	if result != ResultSuccess {
		result = ResultFailure
	}
	m.sink.Registration(result)
}

// ObserveCeremony records that one step of a ceremony took d on the
// server. Unknown ceremonies are recorded as [CeremonyOther].
func (m *Metrics) ObserveCeremony(c Ceremony, d time.Duration) {
	if m == nil {
		return
	}
	c = known(c, ceremonies, CeremonyOther)
	m.sink.CeremonyDuration(c, d.Seconds())
}

// AttestationFailed counts a registration refused for its attestation.
// Unknown reasons count as [AttestationReasonOther].
func (m *Metrics) AttestationFailed(reason AttestationReason) {
	if m == nil {
		return
	}
	reason = known(reason, attestationReasons, AttestationReasonOther)
	m.sink.AttestationFailure(reason)
}

// RateLimited counts a request that limiter answered with 429. It fits
// the OnRefuse hook of the rp/ratelimit package.
func (m *Metrics) RateLimited(limiter Limiter) {
	if m == nil {
		return
	}
	limiter = known(limiter, limiters, LimiterOther)
	m.sink.RateLimited(limiter)
}

// KeyEvent counts a credential lifecycle event. Unknown kinds count as
// [KeyEventOther].
func (m *Metrics) KeyEvent(kind KeyEvent) {
	if m == nil {
		return
	}
	kind = known(kind, keyEvents, KeyEventOther)
	m.sink.KeyEvent(kind)
}

// Recovery counts an account recovery attempt that ended with outcome.
// Unknown outcomes count as [RecoveryOther].
func (m *Metrics) Recovery(outcome RecoveryOutcome) {
	if m == nil {
		return
	}
	outcome = known(outcome, recoveryOutcomes, RecoveryOther)
	m.sink.Recovery(outcome)
}

// Handler serves the sink's metrics, for /metrics; nothing (404) for a
// nil *Metrics.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.sink.Handler()
}

// InstrumentHandler times every request through next and records it in
// the sink under the pattern of the
// [http.ServeMux] that routed it ("POST /v1/login/finish"), never the
// raw path, so cardinality stays that of the registered routes. next
// must be, or pass the request unchanged to, the ServeMux, which records
// the pattern on the request; requests it did not route are labelled
// [RouteUnmatched]. A handler that panics is not recorded.
func (m *Metrics) InstrumentHandler(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := httpstatus.Wrap(w)
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = RouteUnmatched
		}
		m.sink.HTTPDuration(route, codeClass(sw.Status()), time.Since(start).Seconds())
	})
}

// codeClass maps a status code to its class, "2xx"; a handler that wrote
// nothing answered 200.
func codeClass(status int) string {
	switch {
	case status == 0:
		return "2xx"
	case status >= 100 && status <= 599:
		return strconv.Itoa(status/100) + "xx"
	default:
		return "other"
	}
}
