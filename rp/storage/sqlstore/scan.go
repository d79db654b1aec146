package sqlstore

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/storage"
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// notFound turns sql.ErrNoRows into storage.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

// Times are stored as microseconds since the Unix epoch, in UTC.

// fromMicros is the time of a stored BIGINT.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros is the stored form of a time that may be zero: NULL for the
// zero time.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromNullMicros is the time of a stored nullable BIGINT: zero for NULL.
func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

// orNil returns nil for an empty byte slice, so that reads give back nil
// for nothing whether the database kept NULL or an empty string.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Roles are stored comma-separated, in the order given.

func formatRoles(roles []storage.Role) (string, error) {
	s := make([]string, len(roles))
	for i, r := range roles {
		if !r.Known() {
			return "", fmt.Errorf("unknown role %.32q", r)
		}
		s[i] = string(r)
	}
	return strings.Join(s, ","), nil
}

func parseRoles(s string) []storage.Role {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	roles := make([]storage.Role, len(parts))
	for i, p := range parts {
		roles[i] = storage.Role(p)
	}
	return roles
}

const userColumns = `id, name, display_name, roles, disabled, created_at`

// userRow is a user being scanned: dest lists where userColumns go,
// user builds the result.
type userRow struct {
	u       storage.User
	roles   string
	created int64
}

func (r *userRow) dest() []any {
	return []any{&r.u.ID, &r.u.Name, &r.u.DisplayName, &r.roles, &r.u.Disabled, &r.created}
}

func (r *userRow) user() *storage.User {
	r.u.Roles = parseRoles(r.roles)
	r.u.CreatedAt = fromMicros(r.created)
	return &r.u
}

func scanUser(sc scanner) (*storage.User, error) {
	var r userRow
	if err := sc.Scan(r.dest()...); err != nil {
		return nil, notFound(err)
	}
	return r.user(), nil
}

const credentialColumns = `id, user_id, nickname, webauthn, attestation, aaguid, sign_count, attestation_type,
	created_at, last_used_at, revoked_at, revoke_reason, provisioned_by, batch`

// credentialRow is a credential being scanned, as userRow.
type credentialRow struct {
	c                 storage.Credential
	signCount         int64
	created           int64
	lastUsed, revoked sql.NullInt64
}

func (r *credentialRow) dest() []any {
	c := &r.c
	return []any{&c.ID, &c.UserID, &c.Nickname, &c.WebAuthn, &c.Attestation, &c.AAGUID, &r.signCount, &c.AttestationType,
		&r.created, &r.lastUsed, &r.revoked, &c.RevokeReason, &c.ProvisionedBy, &c.Batch}
}

func (r *credentialRow) credential() *storage.Credential {
	c := &r.c
	c.WebAuthn, c.Attestation, c.AAGUID = orNil(c.WebAuthn), orNil(c.Attestation), orNil(c.AAGUID)
	c.SignCount = uint32(r.signCount)
	c.CreatedAt, c.LastUsedAt, c.RevokedAt = fromMicros(r.created), fromNullMicros(r.lastUsed), fromNullMicros(r.revoked)
	return c
}

func scanCredential(sc scanner) (*storage.Credential, error) {
	var r credentialRow
	if err := sc.Scan(r.dest()...); err != nil {
		return nil, notFound(err)
	}
	return r.credential(), nil
}

const grantColumns = `id, user_id, kind, code_hash, issued_by, created_at, expires_at, max_uses, uses, revoked_at,
	verification, note, needs_approval, approved_by, approved_at`

func scanGrant(sc scanner) (*storage.Grant, error) {
	var (
		g                 storage.Grant
		kind, verified    string
		created, expires  int64
		revoked, approved sql.NullInt64
	)
	if err := sc.Scan(&g.ID, &g.UserID, &kind, &g.CodeHash, &g.IssuedBy, &created, &expires, &g.MaxUses, &g.Uses, &revoked,
		&verified, &g.Note, &g.NeedsApproval, &g.ApprovedBy, &approved); err != nil {
		return nil, notFound(err)
	}
	g.Kind = storage.GrantKind(kind)
	g.CreatedAt, g.ExpiresAt, g.RevokedAt = fromMicros(created), fromMicros(expires), fromNullMicros(revoked)
	g.Verification, g.ApprovedAt = parseList(verified), fromNullMicros(approved)
	return &g, nil
}

// Short lists of identifiers (checklist items) are stored comma-separated:
// nil and empty are both stored as ''.

func formatList(items []string) (string, error) {
	for _, it := range items {
		if it == "" || strings.Contains(it, ",") {
			return "", fmt.Errorf("item %.32q is empty or holds a comma", it)
		}
	}
	return strings.Join(items, ","), nil
}

func parseList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

const auditColumns = `seq, version, happened_at, actor, actor_role, action, subject, credential_id, remote_addr,
	details, prev_hash, hash`

func scanAudit(sc scanner) (audit.Entry, error) {
	var (
		e              audit.Entry
		seq, at        int64
		role, action   string
		details        sql.NullString
		prevHash, hash []byte
	)
	if err := sc.Scan(&seq, &e.Version, &at, &e.Actor, &role, &action, &e.Subject, &e.CredentialID, &e.RemoteAddr,
		&details, &prevHash, &hash); err != nil {
		return audit.Entry{}, notFound(err)
	}
	if len(prevHash) != len(e.PrevHash) || len(hash) != len(e.Hash) {
		return audit.Entry{}, fmt.Errorf("audit entry %d: stored hashes are %d and %d bytes, want %d", seq, len(prevHash), len(hash), len(e.Hash))
	}
	e.Seq = uint64(seq)
	e.Time = fromMicros(at)
	e.ActorRole, e.Action = audit.Role(role), audit.Action(action)
	copy(e.PrevHash[:], prevHash)
	copy(e.Hash[:], hash)
	if details.Valid {
		if err := json.Unmarshal([]byte(details.String), &e.Details); err != nil {
			return audit.Entry{}, fmt.Errorf("audit entry %d: details: %w", seq, err)
		}
	}
	return e, nil
}

// formatDetails is the stored form of an entry's Details: a JSON object,
// or NULL when there are none.
func formatDetails(d map[string]string) (any, error) {
	if len(d) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}
