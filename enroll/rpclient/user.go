package rpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/keydesk/keydesk/rp/api"
)

// The user-facing routes of the API (rp/api/openapi.yaml): signing in,
// enrollment codes, registration, and the session user's own keys.

// LoginBegin begins a sign-in. With a user name, the options list that
// user's keys; with "", the sign-in is discoverable (the key offers its
// accounts). optionsJSON is the PublicKeyCredentialRequestOptionsJSON
// exactly as the server sent it, for webauthn.Client.Get; the ceremony
// must be finished with LoginFinish before expires. A lost answer is
// retried: a begin changes nothing a user sees.
func (c *Client) LoginBegin(ctx context.Context, username string) (ceremonyID string, optionsJSON []byte, expires time.Time, err error) {
	const op = "begin sign-in"
	body, err := marshal(op, api.LoginBeginRequest{Username: username})
	if err != nil {
		return "", nil, time.Time{}, err
	}
	return c.begin(ctx, op, api.Version+"/login/begin", body, false)
}

// LoginFinish sends the AuthenticationResponseJSON that
// webauthn.Client.Get made from LoginBegin's options, and returns the
// full session the server opened. The client uses the new session from
// then on. The token is returned apart and is not left in the Session,
// so that a Session can be shown or logged without it.
//
// A finish whose answer was lost is sent again, byte for byte: the server
// answers a repeat from the same address with its first answer, so the
// retry gets the same session rather than a refusal of the used ceremony.
// (The server also wants the same client address, since its answer holds
// a token: a retry from a network that changed meanwhile is ErrConflict,
// "ceremony_used"; sign in again.) A refused sign-in is ErrUnauthorized ("login_failed"), ErrKeyRevoked,
// ErrCeremonyExpired or ErrConflict.
func (c *Client) LoginFinish(ctx context.Context, ceremonyID string, credentialJSON []byte) (*api.Session, string, error) {
	const op = "finish sign-in"
	if err := checkFinish(op, ceremonyID, credentialJSON); err != nil {
		return nil, "", err
	}
	body, err := marshal(op, api.LoginFinishRequest{CeremonyID: ceremonyID, Credential: credentialJSON})
	if err != nil {
		return nil, "", err
	}
	var s api.Session
	err = c.do(ctx, call{op: op, method: http.MethodPost, path: api.Version + "/login/finish", body: body,
		retry: retrySafe, want: http.StatusOK, out: &s, check: func() error { return checkSession(&s) }})
	if err != nil {
		return nil, "", err
	}
	return c.adopt(&s)
}

// RedeemGrant trades a user name and an enrollment code (from the
// helpdesk, or from keydesk-rp bootstrap-admin) for a session that may
// only register keys; the client uses it from then on. The token is
// returned apart, as LoginFinish does. A wrong, expired or used code is
// ErrUnauthorized ("bad_code"); too many attempts ErrRateLimited. A
// helpdesk recovery code (IssueRecoveryGrant) redeems here too, to a
// session of scope "recovery"; one still waiting for its second
// approval is ErrGrantPending (and ErrForbidden).
//
// The request is sent again only when it certainly never reached the
// server: the server does not recognise a repeated redemption, which
// would spend another use of the code, or fail as a wrong code after the
// first one used it up.
func (c *Client) RedeemGrant(ctx context.Context, username, code string) (*api.Session, string, error) {
	const op = "redeem enrollment code"
	body, err := marshal(op, api.GrantRedeemRequest{Username: username, Code: code})
	if err != nil {
		return nil, "", err
	}
	var s api.Session
	err = c.do(ctx, call{op: op, method: http.MethodPost, path: api.Version + "/grants/redeem", body: body,
		retry: retryUnsent, want: http.StatusOK, out: &s, check: func() error { return checkSession(&s) }})
	if err != nil {
		return nil, "", err
	}
	return c.adopt(&s)
}

// adopt makes s the client's session and takes its token out of it.
func (c *Client) adopt(s *api.Session) (*api.Session, string, error) {
	token := s.Token
	s.Token = ""
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
	return s, token, nil
}

// RegistrationBegin begins registering a key for the session's user (a
// full session, or one from an enrollment code). optionsJSON is the
// PublicKeyCredentialCreationOptionsJSON exactly as the server sent it,
// for webauthn.Client.Create; nickname ("" for none) names the key unless
// RegistrationFinish names it.
func (c *Client) RegistrationBegin(ctx context.Context, nickname string) (ceremonyID string, optionsJSON []byte, expires time.Time, err error) {
	const op = "begin registration"
	body, err := marshal(op, api.RegistrationBeginRequest{Nickname: nickname})
	if err != nil {
		return "", nil, time.Time{}, err
	}
	return c.begin(ctx, op, api.Version+"/registration/begin", body, true)
}

// begin runs a ceremony's begin and returns its options verbatim.
func (c *Client) begin(ctx context.Context, op, path string, body []byte, auth bool) (string, []byte, time.Time, error) {
	var b api.CeremonyBegin
	err := c.do(ctx, call{op: op, method: http.MethodPost, path: path, body: body, auth: auth,
		retry: retrySafe, want: http.StatusOK, out: &b, check: func() error { return checkBegin(&b) }})
	if err != nil {
		return "", nil, time.Time{}, err
	}
	return b.CeremonyID, []byte(b.PublicKey), b.ExpiresAt, nil
}

// RegistrationFinish sends the RegistrationResponseJSON that
// webauthn.Client.Create made from RegistrationBegin's options and
// returns the registered key. nickname, when not "", replaces the one
// given at the begin. A lost answer is retried as LoginFinish's is, and
// gets the same key: the key is never registered twice.
func (c *Client) RegistrationFinish(ctx context.Context, ceremonyID string, credentialJSON []byte, nickname string) (*api.Key, error) {
	const op = "finish registration"
	if err := checkFinish(op, ceremonyID, credentialJSON); err != nil {
		return nil, err
	}
	body, err := marshal(op, api.RegistrationFinishRequest{CeremonyID: ceremonyID, Nickname: nickname, Credential: credentialJSON})
	if err != nil {
		return nil, err
	}
	return c.key(ctx, call{op: op, method: http.MethodPost, path: api.Version + "/registration/finish", body: body, auth: true})
}

// Me describes the session: its user, scope, expiry and when a key was
// last used in it (a revocation needs that to be recent).
func (c *Client) Me(ctx context.Context) (*api.Me, error) {
	var m api.Me
	err := c.do(ctx, call{op: "read session", method: http.MethodGet, path: api.Version + "/me", auth: true,
		retry: retrySafe, want: http.StatusOK, out: &m, check: func() error { return checkMe(&m) }})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// MyKeys lists the session user's keys, revoked ones included (with
// RevokedAt set). It needs a full session: one from an enrollment code is
// ErrForbidden.
func (c *Client) MyKeys(ctx context.Context) ([]api.Key, error) {
	var ks api.Keys
	err := c.do(ctx, call{op: "list keys", method: http.MethodGet, path: api.Version + "/me/keys", auth: true,
		retry: retrySafe, want: http.StatusOK, out: &ks, check: func() error { return checkKeys(&ks) }})
	if err != nil {
		return nil, err
	}
	return ks.Keys, nil
}

// RenameKey gives one of the user's keys (id as MyKeys lists it) a new
// nickname, at most 64 bytes without control characters.
func (c *Client) RenameKey(ctx context.Context, id, nickname string) (*api.Key, error) {
	const op = "rename key"
	if err := checkKeyID(op, id); err != nil {
		return nil, err
	}
	body, err := marshal(op, api.RenameKeyRequest{Nickname: nickname})
	if err != nil {
		return nil, err
	}
	return c.key(ctx, call{op: op, method: http.MethodPatch, path: api.Version + "/me/keys/" + url.PathEscape(id), body: body, auth: true})
}

// RevokeKey revokes one of the user's keys for reason ("lost",
// "stolen"...). The server wants a sign-in within the last few minutes
// (ErrStepUpRequired: sign in again, with another key, and repeat) and
// keeps the last usable key (ErrLastKey). Revoking a revoked key answers
// as the first revocation did, which is what makes a retry harmless.
func (c *Client) RevokeKey(ctx context.Context, id, reason string) (*api.Key, error) {
	const op = "revoke key"
	if err := checkKeyID(op, id); err != nil {
		return nil, err
	}
	body, err := marshal(op, api.RevokeKeyRequest{Reason: reason})
	if err != nil {
		return nil, err
	}
	return c.key(ctx, call{op: op, method: http.MethodPost, path: api.Version + "/me/keys/" + url.PathEscape(id) + "/revoke", body: body, auth: true})
}

// key runs k, which answers a key.
func (c *Client) key(ctx context.Context, k call) (*api.Key, error) {
	var key api.Key
	k.retry, k.want, k.out = retrySafe, http.StatusOK, &key
	k.check = func() error { return checkKey(&key) }
	if err := c.do(ctx, k); err != nil {
		return nil, err
	}
	return &key, nil
}

// Logout ends the session on the server and forgets its token. A session
// the server no longer knows (ended, or signed out by a first attempt
// whose answer was lost) counts as signed out: the token is dead either
// way. Without a session it does nothing.
func (c *Client) Logout(ctx context.Context) error {
	token := c.Token()
	if token == "" {
		return nil
	}
	err := c.do(ctx, call{op: "sign out", method: http.MethodPost, path: api.Version + "/logout", auth: true,
		retry: retrySafe, want: http.StatusNoContent})
	if err != nil && !errors.Is(err, ErrUnauthorized) {
		return err
	}
	c.mu.Lock()
	if c.token == token { // unless another session was adopted meanwhile
		c.token = ""
	}
	c.mu.Unlock()
	return nil
}

// Bounds of identifiers the client sends or keeps.
const (
	// maxKeyIDLength fits the longest credential ID (1023 bytes,
	// WebAuthn L3 §4 Credential ID) in base64url.
	maxKeyIDLength = 1364
	// maxCeremonyIDLength is generous for the server's 22-character IDs.
	maxCeremonyIDLength = 256
)

// badArgument is an argument refused before anything is sent.
func badArgument(op, why string) *Error {
	return &Error{Op: op, Err: errors.New(why), kind: ErrBadArgument}
}

// checkKeyID accepts a key ID as the API spells it (base64url without
// padding), which also keeps it to one path segment.
func checkKeyID(op, id string) error {
	if id == "" || len(id) > maxKeyIDLength || !isBase64URL(id) {
		return badArgument(op, "a key ID is base64url, as the key list gives it")
	}
	return nil
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// checkFinish checks a finish's arguments. The credential must be a JSON
// object; its content is the server's to judge, and never repeated here.
func checkFinish(op, ceremonyID string, credential []byte) error {
	if ceremonyID == "" || len(ceremonyID) > maxCeremonyIDLength {
		return badArgument(op, "no ceremony ID, or an over-long one: finish the ceremony a begin returned")
	}
	if !isObject(credential) {
		return badArgument(op, "the credential is not a JSON object (PublicKeyCredential.toJSON())")
	}
	return nil
}

// isObject reports whether b is one valid JSON object.
func isObject(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// The members the OpenAPI document marks required, checked in answers so
// that a half-broken server fails here with a clear error rather than as
// an empty name in a dialog or an empty token in the next request.

func missing(member string) error { return fmt.Errorf("the answer lacks %q", member) }

func checkBegin(b *api.CeremonyBegin) error {
	switch {
	case b.CeremonyID == "" || len(b.CeremonyID) > maxCeremonyIDLength:
		return missing("ceremonyId")
	case !isObject(b.PublicKey):
		return errors.New(`the answer's "publicKey" is not a JSON object`)
	case b.ExpiresAt.IsZero():
		return missing("expiresAt")
	}
	return nil
}

func checkSession(s *api.Session) error {
	switch {
	case s.Token == "":
		return missing("token")
	case checkToken(s.Token) != nil:
		return errors.New(`the answer's "token" cannot be a bearer token`)
	case s.Scope == "":
		return missing("scope")
	case s.ExpiresAt.IsZero():
		return missing("expiresAt")
	case s.User.Name == "":
		return missing("user.name")
	}
	return nil
}

func checkMe(m *api.Me) error {
	switch {
	case m.Scope == "":
		return missing("scope")
	case m.User.Name == "":
		return missing("user.name")
	}
	return nil
}

func checkKey(k *api.Key) error {
	if k.ID == "" {
		return missing("id")
	}
	return nil
}

func checkKeys(ks *api.Keys) error {
	if ks.Keys == nil {
		return missing("keys")
	}
	for i := range ks.Keys {
		if ks.Keys[i].ID == "" {
			return fmt.Errorf("key %d of the answer lacks \"id\"", i)
		}
	}
	return nil
}
