package rpclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
)

// The helpdesk's routes (rp/api/openapi.yaml): finding a user, their keys
// and audit trail, enrollment codes, revoking a lost key, and
// helpdesk-assisted recovery. They need a full session of a helpdesk
// member or an admin; any other is ErrForbidden ("forbidden"), and so is
// a helpdesk member acting on a helpdesk or admin account ("admin_only"),
// which only an admin may.
//
// A user name travels as one path segment, escaped: the reference server
// allows only [a-z0-9._@-], but an identity service implementing the API
// may have names with spaces or slashes, and a name must never reach
// another route ("jane/keys" is not jane's keys).

// maxUserNameBytes bounds a user name the client sends: four times the
// reference server's 64 bytes, for services whose names are longer.
const maxUserNameBytes = 256

// userPath is the path of a route about user name, route being "" (the
// user) or what follows the name ("keys"). It refuses, unsent, a name
// that cannot be one path segment.
func userPath(op, name, route string) (string, error) {
	if name == "" || len(name) > maxUserNameBytes || !utf8.ValidString(name) {
		return "", badArgument(op, fmt.Sprintf("a user name is 1 to %d bytes of UTF-8", maxUserNameBytes))
	}
	if name == "." || name == ".." {
		// A dot segment is removed from a path (RFC 3986 §5.2.4), by
		// the server's router or a proxy, not sent as a name.
		return "", badArgument(op, `a user name cannot be "." or ".."`)
	}
	p := api.Version + "/users/" + url.PathEscape(name)
	if route != "" {
		p += "/" + route
	}
	return p, nil
}

// withLimit adds ?limit=n to path when n is above 0 (0 takes the
// server's default); a negative n is refused unsent.
func withLimit(op, path string, q url.Values, n int) (string, error) {
	if n < 0 {
		return "", badArgument(op, "a limit is 0 (the server's default) or more")
	}
	if n > 0 {
		q.Set("limit", strconv.Itoa(n))
	}
	if len(q) == 0 {
		return path, nil
	}
	return path + "?" + q.Encode(), nil
}

// SearchUsers finds the users whose name or display name contains query,
// ignoring case ("" for all), by name, at most limit of them (0 for the
// server's default of 20; the reference server allows up to 100, and a
// query of up to 64 bytes: beyond, ErrBadRequest).
func (c *Client) SearchUsers(ctx context.Context, query string, limit int) ([]api.User, error) {
	const op = "search users"
	q := url.Values{}
	if query != "" {
		q.Set("q", query)
	}
	path, err := withLimit(op, api.Version+"/users", q, limit)
	if err != nil {
		return nil, err
	}
	var us api.Users
	err = c.do(ctx, call{op: op, method: http.MethodGet, path: path, auth: true,
		retry: retrySafe, want: http.StatusOK, out: &us, check: func() error { return checkUsers(&us) }})
	if err != nil {
		return nil, err
	}
	return us.Users, nil
}

// User reads the account name, as the helpdesk sees it: roles, whether
// it is disabled. No such user is ErrNotFound ("user_not_found").
func (c *Client) User(ctx context.Context, name string) (*api.User, error) {
	const op = "read user"
	path, err := userPath(op, name, "")
	if err != nil {
		return nil, err
	}
	return c.user(ctx, call{op: op, method: http.MethodGet, path: path, auth: true, retry: retrySafe, want: http.StatusOK})
}

// UserKeys lists user name's keys, revoked ones included (with
// RevokedAt and RevokeReason set), for RevokeUserKey.
func (c *Client) UserKeys(ctx context.Context, name string) ([]api.Key, error) {
	const op = "list user's keys"
	path, err := userPath(op, name, "keys")
	if err != nil {
		return nil, err
	}
	var ks api.Keys
	err = c.do(ctx, call{op: op, method: http.MethodGet, path: path, auth: true,
		retry: retrySafe, want: http.StatusOK, out: &ks, check: func() error { return checkKeys(&ks) }})
	if err != nil {
		return nil, err
	}
	return ks.Keys, nil
}

// auditEntries is the body of a user's audit trail.
type auditEntries struct {
	Entries []audit.Entry `json:"entries"`
}

// UserAudit returns the newest audit entries about user name (sign-ins,
// keys registered and revoked, codes issued and redeemed...), newest
// first, at most limit (0 for the server's default of 50; the reference
// server allows up to 500). Each entry is read as rp/audit reads an
// export line, strictly: the entry's Hash covers every member, so one
// the client does not know would be one it cannot check.
func (c *Client) UserAudit(ctx context.Context, name string, limit int) ([]audit.Entry, error) {
	const op = "read user's audit trail"
	path, err := userPath(op, name, "audit")
	if err != nil {
		return nil, err
	}
	if path, err = withLimit(op, path, url.Values{}, limit); err != nil {
		return nil, err
	}
	var es auditEntries
	err = c.do(ctx, call{op: op, method: http.MethodGet, path: path, auth: true,
		retry: retrySafe, want: http.StatusOK, out: &es, check: func() error {
			if es.Entries == nil {
				return missing("entries")
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	return es.Entries, nil
}

// IssueGrant issues a one-time enrollment code for user name, for a
// user who has no key yet or lost them all: req's zero values take the
// server's defaults (kind "enrollment", valid an hour, one use). The
// answer's Code is the only copy anywhere (the server keeps a keyed
// hash): it goes to the screen, to be read to the user, and never to a
// log. The user redeems it with RedeemGrant. A disabled account is
// ErrConflict ("user_disabled").
//
// It is sent again only when it certainly never reached the server: a
// repeat would issue a second valid code, and the code of a first one
// whose answer was lost stays valid, unseen, until it expires.
func (c *Client) IssueGrant(ctx context.Context, name string, req api.IssueGrantRequest) (*api.Grant, error) {
	const op = "issue enrollment code"
	path, err := userPath(op, name, "grants")
	if err != nil {
		return nil, err
	}
	body, err := marshal(op, req)
	if err != nil {
		return nil, err
	}
	var g api.Grant
	err = c.do(ctx, call{op: op, method: http.MethodPost, path: path, body: body, auth: true,
		retry: retryUnsent, want: http.StatusCreated, out: &g, check: func() error { return checkGrant(&g) }})
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// RevokeUserKey revokes key id (as UserKeys lists it) of user name for
// reason ("lost", "stolen"...), which the audit log keeps. Unlike
// RevokeKey it needs no fresh sign-in and may revoke the user's last
// key: the user then enrolls anew with a code (IssueGrant). Revoking a
// revoked key changes nothing and answers as the first revocation did,
// its reason included, which is what makes a retry harmless.
func (c *Client) RevokeUserKey(ctx context.Context, name, id, reason string) (*api.Key, error) {
	const op = "revoke user's key"
	if err := checkKeyID(op, id); err != nil {
		return nil, err
	}
	path, err := userPath(op, name, "keys/"+url.PathEscape(id)+"/revoke")
	if err != nil {
		return nil, err
	}
	body, err := marshal(op, api.RevokeKeyRequest{Reason: reason})
	if err != nil {
		return nil, err
	}
	return c.key(ctx, call{op: op, method: http.MethodPost, path: path, body: body, auth: true})
}

// RecoveryChecklist reads what a helpdesk member must check before
// issuing a recovery grant (Items, all required by IssueRecoveryGrant)
// and whether grants wait for a second member's approval (FourEyes).
func (c *Client) RecoveryChecklist(ctx context.Context) (*api.RecoveryChecklist, error) {
	var cl api.RecoveryChecklist
	err := c.do(ctx, call{op: "read recovery checklist", method: http.MethodGet, path: api.Version + "/recovery/checklist", auth: true,
		retry: retrySafe, want: http.StatusOK, out: &cl, check: func() error {
			if len(cl.Items) == 0 {
				return missing("items")
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	return &cl, nil
}

// IssueRecoveryGrant vouches for user name, locked out: req.Verification
// lists the checklist items the helpdesk member checked, which must be
// every one of RecoveryChecklist's (else ErrVerificationIncomplete, with
// ErrBadRequest), and req.Note says how, for the audit log. The answer's
// Code, shown once, redeems with RedeemGrant to a recovery session (enroll
// a replacement key, revoke the lost ones); it goes to the user, never to
// a log. Under the four-eyes policy the grant is Pending until another
// helpdesk member approves it (ApproveRecoveryGrant); its redemption is
// ErrGrantPending until then.
//
// It is sent again only when it certainly never reached the server: a
// repeat would issue a second grant (and tell the user twice).
func (c *Client) IssueRecoveryGrant(ctx context.Context, name string, req api.IssueRecoveryGrantRequest) (*api.RecoveryGrant, error) {
	const op = "issue recovery grant"
	path, err := userPath(op, name, "recovery-grants")
	if err != nil {
		return nil, err
	}
	if req.Verification == nil {
		req.Verification = []string{} // the API wants a list, even empty
	}
	body, err := marshal(op, req)
	if err != nil {
		return nil, err
	}
	var g api.RecoveryGrant
	err = c.do(ctx, call{op: op, method: http.MethodPost, path: path, body: body, auth: true,
		retry: retryUnsent, want: http.StatusCreated, out: &g, check: func() error { return checkRecoveryGrant(&g, true) }})
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// ApproveRecoveryGrant is the second pair of eyes: a helpdesk member
// other than the issuer approves the pending recovery grant id, which
// can then be redeemed. The result never holds the code: should a server
// send it, it is dropped, since whoever approves must not be able to
// redeem what they approve. Refusals:
// ErrSelfApproval (the issuer), ErrAlreadyApproved, ErrConflict
// ("not_pending": the grant needs no approval), ErrNotFound, and a 410
// ("grant_expired"; it matches ErrCeremonyExpired, as every 410 does).
//
// It is sent again only when it certainly never reached the server: a
// repeat of an approval that went through is ErrAlreadyApproved, which a
// caller that lost the first answer can take as done.
func (c *Client) ApproveRecoveryGrant(ctx context.Context, id string) (*api.RecoveryGrant, error) {
	const op = "approve recovery grant"
	if id == "" || len(id) > maxGrantIDLength || !isBase64URL(id) {
		return nil, badArgument(op, "a grant ID is base64url, as IssueRecoveryGrant gives it")
	}
	var g api.RecoveryGrant
	err := c.do(ctx, call{op: op, method: http.MethodPost, path: api.Version + "/recovery-grants/" + url.PathEscape(id) + "/approve", auth: true,
		retry: retryUnsent, want: http.StatusOK, out: &g, check: func() error { return checkRecoveryGrant(&g, false) }})
	if err != nil {
		return nil, err
	}
	g.Code = ""
	return &g, nil
}

// maxGrantIDLength is generous for the server's 22-character IDs.
const maxGrantIDLength = 64

// user runs k, which answers a user.
func (c *Client) user(ctx context.Context, k call) (*api.User, error) {
	var u api.User
	k.out = &u
	k.check = func() error { return checkUser(&u) }
	if err := c.do(ctx, k); err != nil {
		return nil, err
	}
	return &u, nil
}

func checkUser(u *api.User) error {
	switch {
	case u.ID == "":
		return missing("id")
	case u.Name == "":
		return missing("name")
	case u.Roles == nil:
		return missing("roles")
	}
	return nil
}

func checkUsers(us *api.Users) error {
	if us.Users == nil {
		return missing("users")
	}
	for i := range us.Users {
		if err := checkUser(&us.Users[i]); err != nil {
			return fmt.Errorf("user %d: %w", i, err)
		}
	}
	return nil
}

// checkGrant checks an issued grant. Its errors never hold the code.
func checkGrant(g *api.Grant) error {
	switch {
	case g.ID == "":
		return missing("id")
	case g.Code == "":
		return missing("code")
	case g.ExpiresAt.IsZero():
		return missing("expiresAt")
	}
	return nil
}

// checkRecoveryGrant checks a recovery grant, with its code when issued.
// Its errors never hold the code.
func checkRecoveryGrant(g *api.RecoveryGrant, issued bool) error {
	switch {
	case g.ID == "":
		return missing("id")
	case issued && g.Code == "":
		return missing("code")
	case g.Username == "":
		return missing("username")
	case g.ExpiresAt.IsZero():
		return missing("expiresAt")
	case g.Verification == nil:
		return missing("verification")
	}
	return nil
}
