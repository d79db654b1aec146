package rpclient

import (
	"context"
	"net/http"
	"time"

	"github.com/keydesk/keydesk/rp/api"
)

// The admins' routes (rp/api/openapi.yaml): accounts, roles, the
// registration and sign-in policy, and the audit export. They need a
// full session of an admin; any other is ErrForbidden. Admins may also
// call every helpdesk route (helpdesk.go), on every account.

// DefaultMaxAuditExportBytes bounds an audit export when ExportAudit is
// given no bound: 64 MiB, some 200 000 entries.
const DefaultMaxAuditExportBytes = 64 << 20

// auditExportType is the audit export's media type (JSON Lines).
const auditExportType = "application/x-ndjson"

// CreateUser creates an account, without a key: issue it an enrollment
// code (IssueGrant) next. req.Roles may add "helpdesk" and "admin" to
// "user", which every account has. A taken name is ErrUserExists (with
// ErrConflict); a name the server does not accept is ErrBadRequest
// ("bad_name"; the reference server takes 1 to 64 lower-case letters,
// digits and . _ @ -, and lowers the case of what it is sent).
//
// It is sent again only when it certainly never reached the server:
// after a lost answer a repeat would be ErrUserExists, whether this call
// or someone else created the user. Read the user (User) to tell.
func (c *Client) CreateUser(ctx context.Context, req api.CreateUserRequest) (*api.User, error) {
	const op = "create user"
	body, err := marshal(op, req)
	if err != nil {
		return nil, err
	}
	return c.user(ctx, call{op: op, method: http.MethodPost, path: api.Version + "/users", body: body, auth: true,
		retry: retryUnsent, want: http.StatusCreated})
}

// SetRoles replaces user name's roles with roles ("helpdesk", "admin";
// "user" is always kept, so nil leaves a plain user) and returns the
// account. An admin cannot drop their own admin role (ErrConflict,
// "own_admin_role"). Setting the same roles again changes nothing but
// the audit log, which is what makes a retry harmless.
func (c *Client) SetRoles(ctx context.Context, name string, roles []string) (*api.User, error) {
	const op = "set roles"
	path, err := userPath(op, name, "roles")
	if err != nil {
		return nil, err
	}
	if roles == nil {
		roles = []string{} // the API wants a list, even empty
	}
	body, err := marshal(op, api.SetRolesRequest{Roles: roles})
	if err != nil {
		return nil, err
	}
	return c.user(ctx, call{op: op, method: http.MethodPut, path: path, body: body, auth: true,
		retry: retrySafe, want: http.StatusOK})
}

// SetDisabled disables user name's account, or enables it again, and
// returns the account. A disabled account cannot sign in, and its
// sessions stop working at once (ErrForbidden, "user_disabled"); its keys
// stay registered. An admin cannot disable their own account
// (ErrConflict, "disable_self"). Like SetRoles, a repeat changes nothing
// but the audit log, and is retried.
func (c *Client) SetDisabled(ctx context.Context, name string, disabled bool) (*api.User, error) {
	const op = "set account disabled"
	path, err := userPath(op, name, "disabled")
	if err != nil {
		return nil, err
	}
	body, err := marshal(op, api.SetDisabledRequest{Disabled: disabled})
	if err != nil {
		return nil, err
	}
	return c.user(ctx, call{op: op, method: http.MethodPut, path: path, body: body, auth: true,
		retry: retrySafe, want: http.StatusOK})
}

// Policy reads the registration and sign-in policy, with the server's
// defaults filled in.
func (c *Client) Policy(ctx context.Context) (*api.Policy, error) {
	return c.policy(ctx, call{op: "read policy", method: http.MethodGet, path: api.Version + "/policy", auth: true})
}

// SetPolicy replaces the whole policy with p and returns it as the server
// stored it (AAGUIDs in lower case, defaults filled in). Members left at
// their zero value take the server's defaults rather than keeping their
// current value: change a policy read with Policy. Two admins changing it
// at once each replace the whole of it; the last one wins. A value the
// server refuses is ErrBadRequest ("bad_policy", or "mds_not_configured"
// for attestation "verified" on a server without FIDO metadata). A
// repeat stores the same policy again, and is retried.
func (c *Client) SetPolicy(ctx context.Context, p api.Policy) (*api.Policy, error) {
	const op = "set policy"
	if p.AllowedAAGUIDs == nil {
		p.AllowedAAGUIDs = []string{} // lists, even empty, as the server sends them
	}
	if p.DeniedAAGUIDs == nil {
		p.DeniedAAGUIDs = []string{}
	}
	body, err := marshal(op, p)
	if err != nil {
		return nil, err
	}
	return c.policy(ctx, call{op: op, method: http.MethodPut, path: api.Version + "/policy", body: body, auth: true})
}

// policy runs k, which answers the policy and may be retried.
func (c *Client) policy(ctx context.Context, k call) (*api.Policy, error) {
	var p api.Policy
	k.retry, k.want, k.out = retrySafe, http.StatusOK, &p
	if err := c.do(ctx, k); err != nil {
		return nil, err
	}
	return &p, nil
}

// ExportAudit returns the whole audit log as the server exports it, JSON
// Lines of hash-chained entries, oldest first, for rp/audit.Verify (or
// `keydesk-rp audit verify`) and for keeping. maxBytes bounds it (0 or
// less for DefaultMaxAuditExportBytes): a longer export is ErrBadResponse
// rather than memory filled. The bytes are returned as they came: the
// client checks only their media type, since what an export proves is
// for Verify to say. A server whose store fails mid-export ends it short,
// which Verify sees only against a head recorded earlier
// (audit.VerifyOptions.WantHead).
func (c *Client) ExportAudit(ctx context.Context, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxAuditExportBytes
	}
	var raw []byte
	err := c.do(ctx, call{op: "export audit log", method: http.MethodGet, path: api.Version + "/audit", auth: true,
		retry: retrySafe, want: http.StatusOK, raw: &raw, rawType: auditExportType, maxBody: maxBytes})
	if err != nil {
		return nil, err
	}
	return raw, nil
}

// ProvisionBegin begins registering a key on behalf of user name
// (enterprise provisioning; the session must be an admin's) and returns
// the creation options verbatim, as RegistrationBegin does. The ceremony
// is bound to this session and this user.
func (c *Client) ProvisionBegin(ctx context.Context, name, nickname string) (ceremonyID string, optionsJSON []byte, expires time.Time, err error) {
	const op = "begin provisioning"
	path, err := userPath(op, name, "provisioning/begin")
	if err != nil {
		return "", nil, time.Time{}, err
	}
	body, err := marshal(op, api.ProvisionBeginRequest{Nickname: nickname})
	if err != nil {
		return "", nil, time.Time{}, err
	}
	return c.begin(ctx, op, path, body, true)
}

// ProvisionFinish sends the RegistrationResponseJSON made from
// ProvisionBegin's options and returns the key, stored for user name and
// marked as provisioned by this session's admin in batch. The policy
// applies as to a self-enrollment (ErrForbidden: "model_denied",
// "attestation_required"...). A lost answer is retried byte for byte and
// gets the same key: the key is never stored twice.
func (c *Client) ProvisionFinish(ctx context.Context, name, ceremonyID string, credentialJSON []byte, nickname, batch string) (*api.Key, error) {
	const op = "finish provisioning"
	path, err := userPath(op, name, "provisioning/finish")
	if err != nil {
		return nil, err
	}
	if err := checkFinish(op, ceremonyID, credentialJSON); err != nil {
		return nil, err
	}
	body, err := marshal(op, api.ProvisionFinishRequest{CeremonyID: ceremonyID, Nickname: nickname, Batch: batch, Credential: credentialJSON})
	if err != nil {
		return nil, err
	}
	return c.key(ctx, call{op: op, method: http.MethodPost, path: path, body: body, auth: true})
}
