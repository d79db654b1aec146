package rpclient

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{"ShouldReadSeconds", "7", 7 * time.Second},
		{"ShouldReadAnHTTPDate", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"ShouldReadAPastDateAsNoWait", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"ShouldIgnoreAbsence", "", 0},
		{"ShouldIgnoreGarbage", "soon", 0},
		{"ShouldIgnoreANegativeNumber", "-5", 0},
		{"ShouldCapAHugeNumber", "99999999999999", maxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Fatalf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestBackoffGrowsThreefoldAndIsCapped(t *testing.T) {
	c := &Client{backoff: DefaultRetryBackoff}
	for attempt, want := range map[int]time.Duration{1: 200 * time.Millisecond, 2: 600 * time.Millisecond, 3: 1800 * time.Millisecond, 10: maxBackoff} {
		if got := c.backoffFor(attempt); got != want {
			t.Errorf("after attempt %d: wait %v, want %v", attempt, got, want)
		}
	}
}

func TestCleanMessage(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"ShouldKeepAPlainMessage", "Sign in again.", "Sign in again."},
		{"ShouldCollapseWhitespace", "  a \t\n b  ", "a b"},
		{"ShouldRepairInvalidUTF8", "a\xffb", "a\uFFFDb"},
		{"ShouldDropFormattingCharacters", "a\u200Bb\u2066c", "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cleanMessage(tt.in); got != tt.want {
				t.Fatalf("cleanMessage(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	t.Run("ShouldCutBetweenCharacters", func(t *testing.T) {
		got := cleanMessage(strings.Repeat("€", 1000))
		if len(got) > maxMessageBytes || !strings.HasSuffix(got, "…") || strings.ContainsRune(got, '\uFFFD') {
			t.Fatalf("%d bytes, ends %q", len(got), got[len(got)-6:])
		}
	})
}

// TestErrorMatchesStatusAndCode checks which sentinels an *Error matches.
func TestErrorMatchesStatusAndCode(t *testing.T) {
	all := []error{ErrUnauthorized, ErrForbidden, ErrNotFound, ErrConflict, ErrRateLimited, ErrStepUpRequired,
		ErrLastKey, ErrKeyRevoked, ErrCeremonyExpired, ErrBadRequest, ErrServer, ErrNetwork, ErrCertificate, ErrBadResponse}
	tests := []struct {
		name string
		err  *Error
		want []error
	}{
		{"ShouldMatchStepUpAndForbidden", &Error{Status: 403, Code: "step_up_required", kind: codeSentinel("step_up_required")}, []error{ErrStepUpRequired, ErrForbidden}},
		{"ShouldMatchLastKeyAndConflict", &Error{Status: 409, Code: "last_key", kind: codeSentinel("last_key")}, []error{ErrLastKey, ErrConflict}},
		{"ShouldMatchKeyRevokedAndForbidden", &Error{Status: 403, Code: "key_revoked", kind: codeSentinel("key_revoked")}, []error{ErrKeyRevoked, ErrForbidden}},
		{"ShouldMatchAModelDeniedAndForbidden", &Error{Status: 403, Code: "model_denied", kind: codeSentinel("model_denied")}, []error{ErrKeyNotAllowed, ErrForbidden}},
		{"ShouldMatchAttestationRequiredAndForbidden", &Error{Status: 403, Code: "attestation_required", kind: codeSentinel("attestation_required")}, []error{ErrKeyNotAllowed, ErrForbidden}},
		{"ShouldMatchUserDisabledAndConflict", &Error{Status: 409, Code: "user_disabled", kind: codeSentinel("user_disabled")}, []error{ErrUserDisabled, ErrConflict}},
		{"ShouldMatchLoginFailedAsUnauthorized", &Error{Status: 401, Code: "login_failed"}, []error{ErrUnauthorized}},
		{"ShouldMatchAGatewayErrorAsServer", &Error{Status: 504}, []error{ErrServer}},
		{"ShouldMatchAPayloadTooLargeAsBadRequest", &Error{Status: 413, Code: "body_too_large"}, []error{ErrBadRequest}},
		{"ShouldMatchOnlyBadResponseForABadSuccess", &Error{Status: 200, kind: ErrBadResponse}, []error{ErrBadResponse}},
		{"ShouldMatchOnlyBadResponseForARedirect", &Error{Status: 302, kind: ErrBadResponse}, []error{ErrBadResponse}},
		{"ShouldMatchNetwork", &Error{kind: ErrNetwork, Err: errors.New("reset")}, []error{ErrNetwork}},
		{"ShouldMatchNothingForACancellation", &Error{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range all {
				want := false
				for _, w := range tt.want {
					want = want || w == s
				}
				if got := errors.Is(tt.err, s); got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", tt.err, s, got, want)
				}
			}
		})
	}
}
