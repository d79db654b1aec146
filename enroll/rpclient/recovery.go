package rpclient

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/rp/api"
)

// The desktop's side of account recovery (rp/api's package doc): the QR
// handoff's start, events, status and redeem, which authenticate with the
// handoff's desktop token rather than a session, and the redemption of a
// recovery code. Package recovery builds the flow on them; these are the
// wire calls only.

// MaxRecoveryWait bounds a status long poll's wait: the server answers
// after at most 30 seconds.
const MaxRecoveryWait = 30 * time.Second

// RecoveryHandoff is a started QR handoff as the server answered it. Its
// Secret (in URL's fragment), TypedCode and DesktopToken are secrets: the
// first two go to the screen only (the QR code, the fallback code), the
// desktop token only to the server. Formatting a RecoveryHandoff with fmt
// or log/slog shows its session ID and nothing secret.
type RecoveryHandoff struct {
	api.RecoveryStart
	// ServerTime is the Date of the server's answer (zero when it sent
	// none): with ExpiresAt, which is on the server's clock, it gives the
	// handoff's lifetime on a desktop whose clock differs.
	ServerTime time.Time
}

// String names the handoff without its secrets.
func (h RecoveryHandoff) String() string { return "recovery handoff " + h.SessionID }

// GoString is String, so that %#v shows no secret either.
func (h RecoveryHandoff) GoString() string { return h.String() }

// LogValue is what log/slog records of the handoff: its ID and expiry.
func (h RecoveryHandoff) LogValue() slog.Value {
	return slog.GroupValue(slog.String("sessionId", h.SessionID), slog.Time("expiresAt", h.ExpiresAt))
}

// StartRecovery starts a QR handoff for username's account, naming the
// desktop desktopName (its host name, say) on the phone, and binding the
// handoff to the desktop's ephemeral ECDSA P-256 public key,
// desktopPublicKey as an X.509 SubjectPublicKeyInfo (DER). The answer
// looks the same whether the account exists or not.
//
// It is sent again only when it certainly never reached the server: a
// repeat would start a second handoff, which the server counts against
// the account's and the address's budget (ErrRateLimited) and announces
// to the account's owner.
func (c *Client) StartRecovery(ctx context.Context, username, desktopName string, desktopPublicKey []byte) (*RecoveryHandoff, error) {
	const op = "start recovery"
	if len(desktopPublicKey) == 0 || len(desktopPublicKey) > 1023 {
		return nil, badArgument(op, "the desktop's public key is a SubjectPublicKeyInfo, DER, of at most 1023 bytes")
	}
	body, err := marshal(op, api.RecoveryStartRequest{Username: username, DesktopName: desktopName,
		DesktopPublicKey: base64.RawURLEncoding.EncodeToString(desktopPublicKey)})
	if err != nil {
		return nil, err
	}
	var h RecoveryHandoff
	err = c.do(ctx, call{op: op, method: http.MethodPost, path: api.Version + "/recovery/sessions", body: body,
		retry: retryUnsent, want: http.StatusCreated, out: &h.RecoveryStart,
		check: func() error { return checkRecoveryStart(&h.RecoveryStart) },
		header: func(hd http.Header) {
			if t, err := http.ParseTime(hd.Get("Date")); err == nil {
				h.ServerTime = t
			}
		}})
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// RecoveryStatus asks for a handoff's status with its desktop token: at
// once when wait is 0, else as soon as the status is other than since
// ("pending", say), or after wait (at most MaxRecoveryWait) with the
// status unchanged. It is the events stream's fallback, for a network
// that cannot keep a stream open; the call's timeout is lengthened by
// wait. A wrong token is ErrWrongDesktop; a handoff the server no longer
// knows ErrNotFound.
func (c *Client) RecoveryStatus(ctx context.Context, id, desktopToken, since string, wait time.Duration) (*api.RecoveryStatus, error) {
	const op = "read recovery status"
	if err := checkRecoveryArgs(op, id, desktopToken); err != nil {
		return nil, err
	}
	wait = min(max(wait, 0), MaxRecoveryWait)
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	secs := int((wait + time.Second - 1) / time.Second)
	q.Set("wait", strconv.Itoa(secs))
	var st api.RecoveryStatus
	err := c.do(ctx, call{op: op, method: http.MethodGet, path: recoveryPath(id, "status") + "?" + q.Encode(), bearer: desktopToken,
		retry: retrySafe, want: http.StatusOK, out: &st, wait: time.Duration(secs) * time.Second,
		check: func() error { return checkRecoveryStatus(&st, id) }})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// RedeemRecovery trades an approved handoff for a recovery session, with
// signature: the desktop's ephemeral key's ECDSA signature (ASN.1 DER)
// over SHA-256 of api.RecoveryRedeemMessage(id, nonce), nonce being what
// the approved status carries. The client uses the new session from then
// on; the token is returned apart, as LoginFinish does.
//
// A redeem is single use: it is sent again only when it certainly never
// reached the server. After a lost answer the server may have opened the
// session that nobody received; the handoff is then used
// (ErrRecoveryUsed) and the user starts again. Refusals: ErrWrongDesktop
// (another desktop's token or key; a wrong signature also stops the
// handoff), ErrRecoveryRefused, ErrRecoveryExpired, ErrRecoveryUsed,
// ErrRecoveryNotApproved.
func (c *Client) RedeemRecovery(ctx context.Context, id, desktopToken string, signature []byte) (*api.Session, string, error) {
	const op = "redeem recovery"
	if err := checkRecoveryArgs(op, id, desktopToken); err != nil {
		return nil, "", err
	}
	if len(signature) == 0 || len(signature) > 256 {
		return nil, "", badArgument(op, "the signature is an ECDSA signature, ASN.1 DER")
	}
	body, err := marshal(op, api.RecoveryRedeemRequest{Signature: base64.RawURLEncoding.EncodeToString(signature)})
	if err != nil {
		return nil, "", err
	}
	var s api.Session
	err = c.do(ctx, call{op: op, method: http.MethodPost, path: recoveryPath(id, "redeem"), body: body, bearer: desktopToken,
		retry: retryUnsent, want: http.StatusOK, out: &s, check: func() error { return checkSession(&s) }})
	if err != nil {
		return nil, "", err
	}
	return c.adopt(&s)
}

// RedeemRecoveryCode trades a user name and one of the user's one-time
// recovery codes for a recovery session, which the client uses from then
// on (the token is returned apart). A wrong code is ErrUnauthorized
// ("bad_recovery_code", which does not say whether the user exists), a
// used one ErrRecoveryCodeUsed, too many attempts ErrRateLimited (see
// Error.RetryAfter). Sent again only when it certainly never reached the
// server: a repeat of a redemption that worked would find its code used.
func (c *Client) RedeemRecoveryCode(ctx context.Context, username, code string) (*api.Session, string, error) {
	const op = "redeem recovery code"
	body, err := marshal(op, api.RecoveryCodeRedeemRequest{Username: username, Code: code})
	if err != nil {
		return nil, "", err
	}
	var s api.Session
	err = c.do(ctx, call{op: op, method: http.MethodPost, path: api.Version + "/recovery/codes/redeem", body: body,
		retry: retryUnsent, want: http.StatusOK, out: &s, check: func() error { return checkSession(&s) }})
	if err != nil {
		return nil, "", err
	}
	return c.adopt(&s)
}

// GenerateRecoveryCodes makes the session user's new set of ten one-time
// recovery codes, which replaces any older set: shown once, to be printed
// or stored by the user, never by Keydesk. It needs a full session signed
// in within the last few minutes (ErrStepUpRequired). A lost answer is
// retried: only the set of the answer received is valid.
func (c *Client) GenerateRecoveryCodes(ctx context.Context) (*api.RecoveryCodes, error) {
	var rc api.RecoveryCodes
	err := c.do(ctx, call{op: "generate recovery codes", method: http.MethodPost, path: api.Version + "/me/recovery-codes", auth: true,
		retry: retrySafe, want: http.StatusCreated, out: &rc, check: func() error {
			if len(rc.Codes) == 0 {
				return missing("codes")
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	return &rc, nil
}

// RecoveryCodesStatus says how many of the session user's recovery codes
// are left (a full session).
func (c *Client) RecoveryCodesStatus(ctx context.Context) (*api.RecoveryCodesStatus, error) {
	var st api.RecoveryCodesStatus
	err := c.do(ctx, call{op: "read recovery codes", method: http.MethodGet, path: api.Version + "/me/recovery-codes", auth: true,
		retry: retrySafe, want: http.StatusOK, out: &st})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// recoveryPath is the path of one of handoff id's desktop routes.
func recoveryPath(id, route string) string {
	return api.Version + "/recovery/sessions/" + url.PathEscape(id) + "/" + route
}

// maxRecoveryIDLength is the server's bound on a handoff's ID.
const maxRecoveryIDLength = 64

// checkRecoveryArgs checks a handoff's ID (base64url, one path segment)
// and its desktop token.
func checkRecoveryArgs(op, id, desktopToken string) error {
	if id == "" || len(id) > maxRecoveryIDLength || !isBase64URL(id) {
		return badArgument(op, "a recovery handoff's ID is base64url, as StartRecovery gives it")
	}
	if desktopToken == "" {
		return badArgument(op, "no desktop token: use the one StartRecovery gave")
	}
	if err := checkToken(desktopToken); err != nil {
		return badArgument(op, "the desktop token cannot be a bearer token")
	}
	return nil
}

// checkRecoveryStart checks a started handoff: what the desktop shows and
// sends must be there, and the QR code's link must keep the secret in its
// fragment, which browsers never send, and be a secure origin's.
func checkRecoveryStart(s *api.RecoveryStart) error {
	switch {
	case s.SessionID == "" || len(s.SessionID) > maxRecoveryIDLength || !isBase64URL(s.SessionID):
		return missing("sessionId")
	case s.Secret == "":
		return missing("secret")
	case s.DesktopToken == "" || checkToken(s.DesktopToken) != nil:
		return missing("desktopToken")
	case s.TypedCode == "" || len(s.TypedCode) > 32:
		return missing("typedCode")
	case s.Number < 10 || s.Number > 99:
		return errors.New(`the answer's "number" is not a two-digit number`)
	case s.ExpiresAt.IsZero():
		return missing("expiresAt")
	}
	u, err := url.Parse(s.URL)
	if err != nil || u.Host == "" {
		return errors.New(`the answer's "url" is not a web address`)
	}
	if _, err := webauthn.ParseOrigin(u.Scheme + "://" + u.Host); err != nil {
		return fmt.Errorf(`the answer's "url" is not a secure origin's: %w`, err)
	}
	if u.Fragment != s.Secret || strings.Contains(u.EscapedPath(), s.Secret) || strings.Contains(u.RawQuery, s.Secret) {
		return errors.New(`the answer's "url" does not carry the secret in its fragment only`)
	}
	return nil
}

// The statuses of a handoff (api.RecoveryStatus.Status).
var recoveryStatuses = map[string]bool{"pending": true, "approved": true, "refused": true, "redeemed": true, "expired": true}

// checkRecoveryStatus checks a status of handoff id: its own, a known
// status, and a nonce when approved.
func checkRecoveryStatus(st *api.RecoveryStatus, id string) error {
	switch {
	case st.SessionID != id:
		return errors.New("the answer is about another recovery handoff")
	case !recoveryStatuses[st.Status]:
		return fmt.Errorf("the status %s is not one the API defines", printable(st.Status))
	case st.Status == "approved" && (st.Nonce == "" || !isBase64URL(st.Nonce)):
		return missing("nonce")
	}
	return nil
}
