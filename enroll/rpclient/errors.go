package rpclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The failures callers branch on with errors.Is. Every failed call returns
// an *Error; it matches the sentinel of its HTTP status (ErrUnauthorized
// for 401...) and, for the API codes that call for a specific reaction,
// that code's sentinel too: a revocation refused for want of a fresh
// sign-in is both ErrStepUpRequired and ErrForbidden, so a caller can test
// the specific case first and fall back on the general one.
var (
	// ErrUnauthorized is a 401: no session, a session that ended or was
	// signed out ("unauthenticated", "session_expired"), a sign-in whose
	// assertion did not verify ("login_failed"), or a wrong enrollment
	// code ("bad_code"). The user signs in again.
	ErrUnauthorized = errors.New("not signed in, or the sign-in was refused")
	// ErrForbidden is a 403: the session may not do this (a registration
	// session listing keys, a disabled account, a revoked key signing
	// in, a helpdesk route without the helpdesk role, a helpdesk member
	// acting on a helpdesk or admin account ("admin_only")...).
	ErrForbidden = errors.New("this session may not do this")
	// ErrNotFound is a 404: no such key (or user).
	ErrNotFound = errors.New("not found")
	// ErrConflict is a 409: the request contradicts the server's state,
	// such as a finish for a ceremony another request finished
	// ("ceremony_used"); begin again.
	ErrConflict = errors.New("conflicts with the server's state")
	// ErrRateLimited is a 429; Error.RetryAfter says how long to wait.
	// It is never retried here: the wait may be long, and showing it is
	// the caller's choice.
	ErrRateLimited = errors.New("too many requests")
	// ErrStepUpRequired is the server's "step_up_required": revoking one's
	// own key needs a sign-in within the last few minutes. Sign in again
	// (with another key) and repeat the revocation.
	ErrStepUpRequired = errors.New("a fresh sign-in is needed")
	// ErrLastKey is the server's "last_key": the key is the account's last
	// usable one, and revoking it would lock the user out. Enroll another
	// key first.
	ErrLastKey = errors.New("the account's last key cannot be revoked")
	// ErrKeyRevoked is the server's "key_revoked": a sign-in with a key
	// that was revoked.
	ErrKeyRevoked = errors.New("the key was revoked")
	// ErrCeremonyExpired is a 410 ("ceremony_expired"): the ceremony was
	// begun too long ago; begin again.
	ErrCeremonyExpired = errors.New("the ceremony timed out")
	// ErrRecoveryRefused is the server's "recovery_refused": the recovery
	// handoff was stopped (a wrong number picked on the phone, "this was
	// not me", or a redeem signed by another key than the desktop's) and
	// can never be used. Start again.
	ErrRecoveryRefused = errors.New("the recovery request was stopped")
	// ErrRecoveryExpired is the server's "recovery_expired" (a 410): the
	// handoff was not approved, or not redeemed, in time. Start again.
	ErrRecoveryExpired = errors.New("the recovery request expired")
	// ErrRecoveryUsed is the server's "recovery_used": the handoff was
	// redeemed already; each approval gives one recovery session.
	ErrRecoveryUsed = errors.New("the recovery request was already used")
	// ErrRecoveryNotApproved is the server's "recovery_not_approved": a
	// redeem before the phone approved.
	ErrRecoveryNotApproved = errors.New("the recovery request was not approved yet")
	// ErrWrongDesktop is the server's "bad_desktop_token" or
	// "bad_signature": the request did not come from the desktop that
	// started the handoff (its desktop token, its ephemeral key). A wrong
	// signature with the right token also stops the handoff.
	ErrWrongDesktop = errors.New("this is not the computer that started the recovery request")
	// ErrRecoveryCodeUsed is the server's "recovery_code_used": the
	// recovery code is right but was used already (a wrong one is
	// ErrUnauthorized, "bad_recovery_code").
	ErrRecoveryCodeUsed = errors.New("the recovery code was already used")
	// ErrGrantPending is the server's "grant_pending" (a 403): a
	// helpdesk recovery code, right, that waits for a second helpdesk
	// member's approval (policy recoveryFourEyes). Have another member
	// approve it (ApproveRecoveryGrant), then redeem it again.
	ErrGrantPending = errors.New("the recovery code waits for a second helpdesk member's approval")
	// ErrSelfApproval is the server's "self_approval" (a 403): the
	// helpdesk member who issued a recovery grant cannot also approve it;
	// another member must.
	ErrSelfApproval = errors.New("a recovery grant must be approved by another helpdesk member than its issuer")
	// ErrAlreadyApproved is the server's "already_approved" (a 409): the
	// recovery grant needs no more approval (it was approved, or
	// revoked). It is how an approval repeated after a lost answer
	// learns that the first one went through, unless the grant was
	// revoked meanwhile.
	ErrAlreadyApproved = errors.New("the recovery grant was already approved")
	// ErrVerificationIncomplete is the server's "incomplete_verification"
	// or "bad_verification" (a 400): a recovery grant's verification does
	// not list exactly the items of the server's checklist, which may have
	// changed since it was read. Read it again (RecoveryChecklist) and
	// have every item checked.
	ErrVerificationIncomplete = errors.New("the recovery checklist was not completed")
	// ErrUserExists is the server's "user_exists" (a 409): a user of that
	// name exists. After a CreateUser whose answer was lost, it may be the
	// user that call created.
	ErrUserExists = errors.New("a user of that name exists")
	// ErrBadRequest is a 400, 413, 415 or 422: the server refused what was
	// sent, such as a nickname that is too long; its message says what.
	ErrBadRequest = errors.New("the server refused the request")
	// ErrUserDisabled: the account is disabled ("user_disabled"), with
	// ErrConflict.
	ErrUserDisabled = errors.New("the account is disabled")
	// ErrKeyNotAllowed: the service's policy refuses the key's model or
	// its attestation ("model_denied", "model_not_allowed",
	// "attestation_required", "attestation_not_verified"), with
	// ErrForbidden.
	ErrKeyNotAllowed = errors.New("the service's policy does not allow this key")
	// ErrServer is a 5xx: the server (or a proxy in front of it) failed.
	ErrServer = errors.New("the server failed")
	// ErrNetwork is a failure to exchange a request and its answer: no
	// connection, a connection cut, or no answer within the call's
	// timeout. Error.Attempts says how many times the call was tried.
	ErrNetwork = errors.New("could not reach the server")
	// ErrCertificate is a server whose TLS certificate is not trusted (an
	// unknown authority, another host's name, expired). It is kept apart
	// from ErrNetwork because trying again cannot help and the cause may
	// be an interception: the user must not be told to simply retry.
	ErrCertificate = errors.New("the server's certificate is not trusted")
	// ErrBadResponse is an answer that is not the API's: HTML from a web
	// server at the wrong address, a redirect, an oversized body, or JSON
	// that is malformed or lacks what the API promises.
	ErrBadResponse = errors.New("the server's answer is not the Keydesk API's")

	// ErrBadURL is a base URL New cannot use: not http(s)://host[:port]
	// with an optional path, or with a user name, query or fragment.
	ErrBadURL = errors.New("the server address is not a valid API base URL")
	// ErrInsecureConfig is a configuration that would send sessions
	// unprotected: plain http to a host other than this computer, or an
	// HTTP client that skips TLS certificate verification.
	ErrInsecureConfig = errors.New("the configuration would send sessions unprotected")
	// ErrBadArgument is an argument the client refuses before sending
	// anything, such as a key ID that is not base64url or a credential
	// that is not JSON.
	ErrBadArgument = errors.New("invalid argument")
)

// Error is a failed call. Message is the server's explanation for people
// (bounded and stripped of control characters), shown as it is; the rest
// is for programs and logs. No Error ever holds a session token, an
// enrollment code, a credential or a request body.
type Error struct {
	// Op names the call, such as "finish sign-in".
	Op string
	// Status is the HTTP status of the last answer; 0 when there was
	// none (a network failure, a refused certificate, a cancellation).
	Status int
	// Code is the API's stable error code (api.Problem.Error), such as
	// "step_up_required"; "" when the answer carried no API problem.
	Code string
	// Message is the server's message for people, or "" when it sent
	// none.
	Message string
	// RetryAfter is the server's Retry-After, 0 when absent.
	RetryAfter time.Duration
	// Attempts is how many times the call was sent.
	Attempts int
	// Err is the underlying cause, if any (a transport error, a context
	// error, a JSON decoding error), for logs.
	Err error

	// kind is the sentinel of what happened besides the status: a code's
	// sentinel, ErrNetwork, ErrCertificate or ErrBadResponse; nil for a
	// cancellation and for codes without one.
	kind error
}

// Error describes the failure for a log: the call, the status and code,
// and the server's message or the cause.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("rpclient: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch {
	case e.Status != 0 && e.kind != ErrBadResponse:
		fmt.Fprintf(&b, "HTTP %d", e.Status)
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
		if e.Message != "" {
			b.WriteString(": " + e.Message)
		} else if s := statusSentinel(e.Status); s != nil {
			b.WriteString(": " + s.Error())
		}
	case e.kind != nil:
		b.WriteString(e.kind.Error())
		if e.Status != 0 {
			fmt.Fprintf(&b, " (HTTP %d)", e.Status)
		}
	default:
		b.WriteString("cancelled")
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Is matches the sentinel of the status and that of the code or failure
// kind, so that errors.Is(err, ErrStepUpRequired) and errors.Is(err,
// ErrForbidden) both hold for a step-up refusal.
func (e *Error) Is(target error) bool {
	if target == nil {
		return false
	}
	if target == e.kind {
		return true
	}
	return e.kind != ErrBadResponse && target == statusSentinel(e.Status)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// statusSentinel is the sentinel of an HTTP status, nil for none.
func statusSentinel(status int) error {
	switch {
	case status == http.StatusBadRequest, status == http.StatusRequestEntityTooLarge,
		status == http.StatusUnsupportedMediaType, status == http.StatusUnprocessableEntity:
		return ErrBadRequest
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusConflict:
		return ErrConflict
	case status == http.StatusGone:
		return ErrCeremonyExpired
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500 && status <= 599:
		return ErrServer
	}
	return nil
}

// codeSentinel is the sentinel of an API error code that callers react to
// specifically (rp/server's codes), nil for the others, which their
// status covers.
func codeSentinel(code string) error {
	switch code {
	case "step_up_required":
		return ErrStepUpRequired
	case "last_key":
		return ErrLastKey
	case "key_revoked":
		return ErrKeyRevoked
	case "ceremony_expired":
		return ErrCeremonyExpired
	case "rate_limited":
		return ErrRateLimited
	case "recovery_refused":
		return ErrRecoveryRefused
	case "recovery_expired":
		return ErrRecoveryExpired
	case "recovery_used":
		return ErrRecoveryUsed
	case "recovery_not_approved":
		return ErrRecoveryNotApproved
	case "bad_desktop_token", "bad_signature":
		return ErrWrongDesktop
	case "recovery_code_used":
		return ErrRecoveryCodeUsed
	case "grant_pending":
		return ErrGrantPending
	case "self_approval":
		return ErrSelfApproval
	case "already_approved":
		return ErrAlreadyApproved
	case "incomplete_verification", "bad_verification":
		return ErrVerificationIncomplete
	case "user_exists":
		return ErrUserExists
	case "user_disabled":
		return ErrUserDisabled
	case "model_denied", "model_not_allowed", "attestation_required", "attestation_not_verified":
		return ErrKeyNotAllowed
	}
	return nil
}

// Bounds of what an answer may put in an Error: a message is shown to
// people and must fit a dialog; a code is an identifier.
const (
	maxMessageBytes = 400
	maxCodeBytes    = 64
	// maxRetryAfter bounds a Retry-After, so that a broken header cannot
	// ask a GUI to count down for years.
	maxRetryAfter = 24 * time.Hour
)

// cleanMessage makes a server's message safe to show: valid UTF-8,
// without control or formatting characters (which could reorder the text
// a dialog shows, as bidi overrides do), spaces collapsed, and at most
// maxMessageBytes long, cut between characters.
func cleanMessage(s string) string {
	if len(s) > 4*maxMessageBytes {
		s = s[:4*maxMessageBytes] // ToValidUTF8 repairs a cut character
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	out := b.String()
	if len(out) > maxMessageBytes {
		cut := maxMessageBytes - len("…")
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = strings.TrimRight(out[:cut], " ") + "…"
	}
	return out
}

// cleanCode keeps an API error code only when it looks like one
// (lowercase letters, digits and '_'), so that a code can be compared and
// logged without surprises.
func cleanCode(s string) string {
	if s == "" || len(s) > maxCodeBytes {
		return ""
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return ""
		}
	}
	return s
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date (RFC 9110 §10.2.3); 0 when absent or unreadable.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// isCertificateError reports whether err is a refused server
// certificate, which no retry can fix.
func isCertificateError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}
