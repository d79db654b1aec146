package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/storage"
)

// maxUserIDBytes is WebAuthn's limit on a user handle.
const maxUserIDBytes = 64

// tx is a storage.Tx on one database transaction.
type tx struct {
	ctx context.Context
	s   *Store
	// p runs the transaction's queries through prepared statements.
	p txQuerier
}

var _ storage.Tx = (*tx)(nil)

// invalid is the error for input the store refuses before any query.
func invalid(op, format string, args ...any) error {
	return fmt.Errorf("sqlstore: %s: %s", op, fmt.Sprintf(format, args...))
}

// exec runs a statement and returns how many rows it changed.
func (t *tx) exec(op, query string, args ...any) (int64, error) {
	res, err := t.p.ExecContext(t.ctx, t.s.q.get(query), args...)
	if err != nil {
		return 0, t.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return n, nil
}

// wrap adds op to a database error, mapping the constraint violations
// that checks before the statement should have prevented to the storage
// sentinels.
func (t *tx) wrap(op string, err error) error {
	switch {
	case t.s.d.UniqueViolation(err):
		return fmt.Errorf("sqlstore: %s: %w (%w)", op, storage.ErrConflict, err)
	case t.s.d.ForeignKeyViolation(err):
		return fmt.Errorf("sqlstore: %s: %w (%w)", op, storage.ErrNotFound, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// exists reports whether query finds a row.
func (t *tx) exists(op, query string, args ...any) (bool, error) {
	var one int
	err := t.p.QueryRowContext(t.ctx, t.s.q.get(query), args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, t.wrap(op, err)
	}
	return true, nil
}

// userMustExist returns storage.ErrNotFound for an unknown user, before
// an insert that refers to it: a foreign key violation would abort a
// PostgreSQL transaction, and the caller may want to go on.
func (t *tx) userMustExist(op string, id []byte) error {
	ok, err := t.exists(op, `SELECT 1 FROM users WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("sqlstore: %s: user: %w", op, storage.ErrNotFound)
	}
	return nil
}

// CreateUser stores a new user with its name case-folded:
// storage.ErrConflict if the name or ID is taken.
func (t *tx) CreateUser(u storage.User) error {
	const op = "create user"
	name := foldName(u.Name)
	switch {
	case len(u.ID) == 0 || len(u.ID) > maxUserIDBytes:
		return invalid(op, "user ID is %d bytes, want 1 to %d", len(u.ID), maxUserIDBytes)
	case name == "":
		return invalid(op, "empty user name")
	}
	roles, err := formatRoles(u.Roles)
	if err != nil {
		return invalid(op, "%v", err)
	}
	n, err := t.exec(op, `INSERT INTO users (id, name, display_name, search_name, roles, disabled, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		u.ID, name, u.DisplayName, foldName(u.DisplayName), roles, u.Disabled, u.CreatedAt.UnixMicro())
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: name or ID taken: %w", op, storage.ErrConflict)
	}
	return nil
}

// UserByName finds a user by name, ignoring case, and locks the row
// until the transaction ends.
func (t *tx) UserByName(name string) (*storage.User, error) {
	return userByName(t.ctx, t.p, t.s.q, name, true)
}

// UserByID finds a user by ID, without locking the row.
func (t *tx) UserByID(id []byte) (*storage.User, error) {
	return userByID(t.ctx, t.p, t.s.q, id)
}

// SetUserRoles replaces a user's roles.
func (t *tx) SetUserRoles(userID []byte, roles []storage.Role) error {
	const op = "set user roles"
	r, err := formatRoles(roles)
	if err != nil {
		return invalid(op, "%v", err)
	}
	return t.execOne(op, `UPDATE users SET roles = $2 WHERE id = $1`, userID, r)
}

// SetUserDisabled disables or enables a user.
func (t *tx) SetUserDisabled(userID []byte, disabled bool) error {
	return t.execOne("set user disabled", `UPDATE users SET disabled = $2 WHERE id = $1`, userID, disabled)
}

// execOne runs a statement that must change a row: storage.ErrNotFound
// when it changed none.
func (t *tx) execOne(op, query string, args ...any) error {
	n, err := t.exec(op, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	}
	return nil
}

// CreateCredential stores a new key: storage.ErrConflict if its ID
// exists, storage.ErrNotFound if its user does not.
func (t *tx) CreateCredential(c storage.Credential) error {
	const op = "create credential"
	switch {
	case len(c.ID) == 0:
		return invalid(op, "empty credential ID")
	case len(c.UserID) == 0:
		return invalid(op, "empty user ID")
	}
	if err := t.userMustExist(op, c.UserID); err != nil {
		return err
	}
	n, err := t.exec(op, `INSERT INTO credentials (id, user_id, nickname, webauthn, attestation, aaguid, sign_count, attestation_type,
			created_at, last_used_at, revoked_at, revoke_reason, provisioned_by, batch)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING`,
		c.ID, c.UserID, c.Nickname, orNil(c.WebAuthn), orNil(c.Attestation), orNil(c.AAGUID), int64(c.SignCount), c.AttestationType,
		c.CreatedAt.UnixMicro(), nullMicros(c.LastUsedAt), nullMicros(c.RevokedAt), c.RevokeReason, c.ProvisionedBy, c.Batch)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: ID taken: %w", op, storage.ErrConflict)
	}
	return nil
}

// Credential finds a credential and locks its row until the transaction
// ends.
func (t *tx) Credential(id []byte) (*storage.Credential, error) {
	return credential(t.ctx, t.p, t.s.q, id, true)
}

// Credentials lists a user's credentials as Store.Credentials does and
// locks their rows until the transaction ends, so that a decision made on
// them (such as "not the last usable key") holds until commit: a racing
// revocation waits, and then sees this transaction's changes.
func (t *tx) Credentials(userID []byte) ([]storage.Credential, error) {
	return credentials(t.ctx, t.p, t.s.q, userID, true)
}

// RenameCredential sets a credential's nickname.
func (t *tx) RenameCredential(id []byte, nickname string) error {
	return t.execOne("rename credential", `UPDATE credentials SET nickname = $2 WHERE id = $1`, id, nickname)
}

// RevokeCredential revokes a credential at the given time with a reason.
// Revoking a revoked credential does nothing and succeeds: the first
// revocation's time and reason stay.
func (t *tx) RevokeCredential(id []byte, at time.Time, reason string) error {
	const op = "revoke credential"
	if at.IsZero() {
		return invalid(op, "zero revocation time")
	}
	n, err := t.exec(op, `UPDATE credentials SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL`,
		id, at.UnixMicro(), reason)
	if err != nil || n > 0 {
		return err
	}
	return t.credentialMustExist(op, id)
}

// credentialMustExist tells why a conditional update of a credential
// changed nothing: storage.ErrNotFound when there is no such credential.
func (t *tx) credentialMustExist(op string, id []byte) error {
	ok, err := t.exists(op, `SELECT 1 FROM credentials WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	}
	return nil
}

// UpdateSignCount records a sign-in with an unrevoked credential whose
// counter is still old: storage.ErrConflict if it is not (another sign-in
// came first) or if the credential was revoked meanwhile.
func (t *tx) UpdateSignCount(id []byte, old, new uint32, usedAt time.Time) error {
	const op = "update sign count"
	if usedAt.IsZero() {
		return invalid(op, "zero time of use")
	}
	n, err := t.exec(op, `UPDATE credentials SET sign_count = $3, last_used_at = $4
		WHERE id = $1 AND sign_count = $2 AND revoked_at IS NULL`,
		id, int64(old), int64(new), usedAt.UnixMicro())
	if err != nil || n > 0 {
		return err
	}
	if err := t.credentialMustExist(op, id); err != nil {
		return err
	}
	return fmt.Errorf("sqlstore: %s: counter changed or credential revoked: %w", op, storage.ErrConflict)
}

// CreateCeremony stores a begun ceremony: storage.ErrConflict if its ID
// exists, storage.ErrNotFound if it names an unknown user.
func (t *tx) CreateCeremony(c storage.Ceremony) error {
	const op = "create ceremony"
	if err := checkCeremony(op, c); err != nil {
		return err
	}
	if len(c.UserID) > 0 {
		if err := t.userMustExist(op, c.UserID); err != nil {
			return err
		}
	}
	n, err := t.exec(op, insertCeremony, ceremonyArgs(c)...)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: ID taken: %w", op, storage.ErrConflict)
	}
	return nil
}

const insertCeremony = `INSERT INTO ceremonies (id, kind, user_id, session_hash, session, nickname, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`

func ceremonyArgs(c storage.Ceremony) []any {
	return []any{c.ID, string(c.Kind), orNil(c.UserID), orNil(c.SessionHash), orNil(c.Session), c.Nickname, c.ExpiresAt.UnixMicro()}
}

func checkCeremony(op string, c storage.Ceremony) error {
	switch {
	case c.ID == "":
		return invalid(op, "empty ceremony ID")
	case c.Kind != storage.CeremonyRegistration && c.Kind != storage.CeremonyLogin && c.Kind != storage.CeremonyRecovery &&
		c.Kind != storage.CeremonyProvisioning:
		return invalid(op, "unknown kind %.32q", c.Kind)
	}
	return nil
}

// ConsumeCeremony takes an unexpired ceremony, once. The row stays,
// marked consumed, until it expires, so that a second attempt is told
// storage.ErrConsumed rather than storage.ErrNotFound and the result
// saved for it (SaveCeremonyResult) has something to belong to.
func (t *tx) ConsumeCeremony(id string, now time.Time) (*storage.Ceremony, error) {
	const op = "consume ceremony"
	c := storage.Ceremony{ID: id}
	var (
		kind    string
		expires int64
	)
	// One statement that re-checks its condition on the row it waits
	// for: of racing consumers, one updates and the rest find nothing.
	err := t.p.QueryRowContext(t.ctx, t.s.q.get(`UPDATE ceremonies SET consumed_at = $2
		WHERE id = $1 AND consumed_at IS NULL AND expires_at > $2
		RETURNING kind, user_id, session_hash, session, nickname, expires_at`), id, now.UnixMicro()).
		Scan(&kind, &c.UserID, &c.SessionHash, &c.Session, &c.Nickname, &expires)
	if err == nil {
		c.Kind = storage.CeremonyKind(kind)
		c.UserID, c.SessionHash, c.Session = orNil(c.UserID), orNil(c.SessionHash), orNil(c.Session)
		c.ExpiresAt = fromMicros(expires)
		return &c, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, t.wrap(op, err)
	}
	return nil, t.whyNotConsumed(op, id)
}

// FinishCeremony consumes an unexpired ceremony and keeps its answer in
// one statement: the one change every finish makes to the ceremony's
// row, in the transaction every other writer waits for. It fails as
// ConsumeCeremony does.
func (t *tx) FinishCeremony(r storage.CeremonyResult) error {
	const op = "finish ceremony"
	now := r.CreatedAt.UnixMicro()
	n, err := t.exec(op, `UPDATE ceremonies SET consumed_at = $2, request_hash = $3, result = $4, result_at = $2
		WHERE id = $1 AND consumed_at IS NULL AND expires_at > $2`,
		r.CeremonyID, now, nonNil(r.RequestHash), nonNil(r.Result))
	if err != nil || n > 0 {
		return err
	}
	return t.whyNotConsumed(op, r.CeremonyID)
}

// whyNotConsumed tells why ceremony id could not be consumed:
// storage.ErrNotFound, ErrConsumed or ErrExpired.
func (t *tx) whyNotConsumed(op, id string) error {
	var consumed sql.NullInt64
	err := t.p.QueryRowContext(t.ctx, t.s.q.get(`SELECT consumed_at FROM ceremonies WHERE id = $1`), id).Scan(&consumed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	case err != nil:
		return t.wrap(op, err)
	case consumed.Valid:
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConsumed)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrExpired)
}

// SaveCeremonyResult keeps a finished ceremony's answer:
// storage.ErrConflict if one is kept already, storage.ErrNotFound if the
// ceremony is unknown.
func (t *tx) SaveCeremonyResult(r storage.CeremonyResult) error {
	const op = "save ceremony result"
	// NOT NULL in spirit: nil is stored as empty and read back as nil.
	n, err := t.exec(op, `UPDATE ceremonies SET request_hash = $2, result = $3, result_at = $4
		WHERE id = $1 AND result_at IS NULL`,
		r.CeremonyID, nonNil(r.RequestHash), nonNil(r.Result), r.CreatedAt.UnixMicro())
	if err != nil || n > 0 {
		return err
	}
	ok, err := t.exists(op, `SELECT 1 FROM ceremonies WHERE id = $1`, r.CeremonyID)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("sqlstore: %s: ceremony: %w", op, storage.ErrNotFound)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConflict)
}

// nonNil returns an empty slice for nil, for NOT NULL byte columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// DeleteExpired removes ceremonies (with their results), sessions and
// grants whose expiry now has reached, and returns how many ceremonies,
// sessions and grants it removed.
func (t *tx) DeleteExpired(now time.Time) (int, error) {
	const op = "delete expired"
	at := now.UnixMicro()
	total := 0
	for _, q := range []string{
		`DELETE FROM ceremonies WHERE expires_at <= $1`,
		`DELETE FROM sessions WHERE expires_at <= $1`,
		`DELETE FROM grants WHERE expires_at <= $1`,
		`DELETE FROM rate_limits WHERE tat <= $1`,
	} {
		n, err := t.exec(op, q, at)
		if err != nil {
			return 0, err
		}
		total += int(n)
	}
	// Recovery sessions stay a while past expiry, so that a desktop
	// asking late hears "expired" rather than "unknown".
	n, err := t.exec(op, `DELETE FROM recovery_sessions WHERE expires_at <= $1`, now.Add(-recoveryRetention).UnixMicro())
	if err != nil {
		return 0, err
	}
	return total + int(n), nil
}

// maxRateLimitKey bounds a rate limit key, which holds a user name.
const maxRateLimitKey = 512

// RateLimit reads key's theoretical arrival time, locking its row: the
// row is created first when missing, since a lock on a row that does not
// exist yet holds nothing (the zero time stands for "never").
func (t *tx) RateLimit(key string) (time.Time, error) {
	const op = "rate limit"
	if key == "" || len(key) > maxRateLimitKey {
		return time.Time{}, invalid(op, "key of %d bytes", len(key))
	}
	if _, err := t.exec(op, `INSERT INTO rate_limits (key, tat) VALUES ($1, 0) ON CONFLICT DO NOTHING`, key); err != nil {
		return time.Time{}, err
	}
	var tat int64
	if err := t.p.QueryRowContext(t.ctx, t.s.q.get(`SELECT tat FROM rate_limits WHERE key = $1{{forUpdate}}`), key).Scan(&tat); err != nil {
		return time.Time{}, t.wrap(op, err)
	}
	if tat == 0 {
		return time.Time{}, nil
	}
	return fromMicros(tat), nil
}

// SetRateLimit stores key's theoretical arrival time, to the microsecond
// (rounded up: a bucket never refills early).
func (t *tx) SetRateLimit(key string, tat time.Time) error {
	const op = "set rate limit"
	if key == "" || len(key) > maxRateLimitKey {
		return invalid(op, "key of %d bytes", len(key))
	}
	us := tat.UnixMicro()
	if tat.Sub(fromMicros(us)) > 0 {
		us++
	}
	_, err := t.exec(op, `INSERT INTO rate_limits (key, tat) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET tat = $2`, key, us)
	return err
}

// CreateSession stores a new session: storage.ErrConflict if its token
// hash exists, storage.ErrNotFound if its user does not.
func (t *tx) CreateSession(s storage.Session) error {
	const op = "create session"
	switch {
	case len(s.TokenHash) == 0:
		return invalid(op, "empty token hash")
	case len(s.UserID) == 0:
		return invalid(op, "empty user ID")
	case s.Scope != storage.ScopeFull && s.Scope != storage.ScopeRegister && s.Scope != storage.ScopeRecovery:
		return invalid(op, "unknown scope %.32q", s.Scope)
	}
	// The user's existence is checked in the same statement (a foreign
	// key violation would abort a PostgreSQL transaction): a sign-in's
	// transaction is one round trip shorter. The casts give PostgreSQL
	// the types a VALUES list would take from the columns.
	n, err := t.exec(op, `INSERT INTO sessions (token_hash, user_id, scope, created_at, expires_at, auth_time, grant_id,
			key_registered_at, registered_key)
		SELECT CAST($1 AS {{blob}}), CAST($2 AS {{blob}}), CAST($3 AS TEXT), CAST($4 AS BIGINT), CAST($5 AS BIGINT),
			CAST($6 AS BIGINT), CAST($7 AS TEXT), CAST($8 AS BIGINT), CAST($9 AS {{blob}})
		WHERE EXISTS (SELECT 1 FROM users WHERE id = $2)
		ON CONFLICT DO NOTHING`,
		s.TokenHash, s.UserID, string(s.Scope), s.CreatedAt.UnixMicro(), s.ExpiresAt.UnixMicro(), nullMicros(s.AuthTime), s.GrantID,
		nullMicros(s.KeyRegisteredAt), orNil(s.RegisteredKey))
	if err != nil || n > 0 {
		return err
	}
	if err := t.userMustExist(op, s.UserID); err != nil {
		return err
	}
	return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConflict)
}

// DeleteSession ends a session: storage.ErrNotFound if there is none.
func (t *tx) DeleteSession(tokenHash []byte) error {
	return t.execOne("delete session", `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
}

// CreateGrant stores a new grant: storage.ErrConflict if its ID or code
// hash exists, storage.ErrNotFound if its user does not.
func (t *tx) CreateGrant(g storage.Grant) error {
	const op = "create grant"
	switch {
	case g.ID == "":
		return invalid(op, "empty grant ID")
	case len(g.UserID) == 0:
		return invalid(op, "empty user ID")
	case len(g.CodeHash) == 0:
		return invalid(op, "empty code hash")
	case g.Kind != storage.GrantEnrollment && g.Kind != storage.GrantRecovery:
		return invalid(op, "unknown kind %.32q", g.Kind)
	case g.MaxUses < 1:
		return invalid(op, "MaxUses is %d, want at least 1", g.MaxUses)
	case g.Uses < 0 || g.Uses > g.MaxUses:
		return invalid(op, "Uses is %d, want 0 to MaxUses (%d)", g.Uses, g.MaxUses)
	}
	verification, err := formatList(g.Verification)
	if err != nil {
		return invalid(op, "verification: %v", err)
	}
	if err := t.userMustExist(op, g.UserID); err != nil {
		return err
	}
	n, err := t.exec(op, `INSERT INTO grants (id, user_id, kind, code_hash, issued_by, created_at, expires_at, max_uses, uses, revoked_at,
			verification, note, needs_approval, approved_by, approved_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING`,
		g.ID, g.UserID, string(g.Kind), g.CodeHash, g.IssuedBy, g.CreatedAt.UnixMicro(), g.ExpiresAt.UnixMicro(),
		g.MaxUses, g.Uses, nullMicros(g.RevokedAt), verification, g.Note, g.NeedsApproval, g.ApprovedBy, nullMicros(g.ApprovedAt))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: ID or code taken: %w", op, storage.ErrConflict)
	}
	return nil
}

// UseGrant counts one use of the grant with this code hash and returns
// it as it is after the use: storage.ErrNotFound for no such grant,
// storage.ErrExpired once now has reached its expiry, storage.ErrPending
// while it waits for its four-eyes approval, storage.ErrConsumed when it
// has no use left or was revoked.
func (t *tx) UseGrant(codeHash []byte, now time.Time) (*storage.Grant, error) {
	const op = "use grant"
	at := now.UnixMicro()
	// One statement that re-checks its condition on the row it waits
	// for, so that racing uses never exceed max_uses.
	g, err := scanGrant(t.p.QueryRowContext(t.ctx, t.s.q.get(`UPDATE grants SET uses = uses + 1
		WHERE code_hash = $1 AND uses < max_uses AND expires_at > $2 AND revoked_at IS NULL
			AND (NOT needs_approval OR approved_at IS NOT NULL)
		RETURNING `+grantColumns), codeHash, at))
	if err == nil {
		return g, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, t.wrap(op, err)
	}
	g, err = scanGrant(t.p.QueryRowContext(t.ctx, t.s.q.get(`SELECT `+grantColumns+` FROM grants WHERE code_hash = $1`), codeHash))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	case err != nil:
		return nil, t.wrap(op, err)
	case !g.ExpiresAt.After(now):
		return nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrExpired)
	case g.RevokedAt.IsZero() && g.Uses < g.MaxUses && g.Pending():
		return nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrPending)
	}
	return nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConsumed)
}

// Grant reads a grant by ID and locks its row until the transaction
// ends.
func (t *tx) Grant(id string) (*storage.Grant, error) {
	g, err := scanGrant(t.p.QueryRowContext(t.ctx, t.s.q.get(`SELECT `+grantColumns+` FROM grants WHERE id = $1{{forUpdate}}`), id))
	if err != nil {
		return nil, t.wrap("grant", err)
	}
	return g, nil
}

// ApproveGrant records a four-eyes approval in one conditional
// statement: of racing approvals one wins, and the issuer never does.
func (t *tx) ApproveGrant(id, by string, now time.Time) (*storage.Grant, error) {
	const op = "approve grant"
	if by == "" {
		return nil, invalid(op, "no approver")
	}
	at := now.UnixMicro()
	g, err := scanGrant(t.p.QueryRowContext(t.ctx, t.s.q.get(`UPDATE grants SET approved_by = $2, approved_at = $3
		WHERE id = $1 AND needs_approval AND approved_at IS NULL AND issued_by <> $2
			AND expires_at > $3 AND revoked_at IS NULL
		RETURNING `+grantColumns), id, by, at))
	if err == nil {
		return g, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, t.wrap(op, err)
	}
	g, err = scanGrant(t.p.QueryRowContext(t.ctx, t.s.q.get(`SELECT `+grantColumns+` FROM grants WHERE id = $1`), id))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	case err != nil:
		return nil, t.wrap(op, err)
	case !g.RevokedAt.IsZero() || !g.ApprovedAt.IsZero():
		return nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConsumed)
	case !g.ExpiresAt.After(now):
		return nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrExpired)
	}
	// Needs no approval, or the issuer approving their own grant.
	return nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConflict)
}

// UseSessionRegistration spends a recovery session's one registration
// in one conditional statement.
func (t *tx) UseSessionRegistration(tokenHash, credentialID []byte, now time.Time) error {
	const op = "use session registration"
	if len(credentialID) == 0 {
		return invalid(op, "empty credential ID")
	}
	at := now.UnixMicro()
	n, err := t.exec(op, `UPDATE sessions SET key_registered_at = $2, registered_key = $3
		WHERE token_hash = $1 AND key_registered_at IS NULL AND expires_at > $2`, tokenHash, at, credentialID)
	if err != nil || n > 0 {
		return err
	}
	var (
		expires    int64
		registered sql.NullInt64
	)
	err = t.p.QueryRowContext(t.ctx, t.s.q.get(`SELECT expires_at, key_registered_at FROM sessions WHERE token_hash = $1`), tokenHash).
		Scan(&expires, &registered)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	case err != nil:
		return t.wrap(op, err)
	case registered.Valid:
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConsumed)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrExpired)
}

// SetPolicy replaces the policy.
func (t *tx) SetPolicy(p storage.Policy) error {
	const op = "set policy"
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	_, err = t.exec(op, `INSERT INTO policy (id, document) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET document = excluded.document`, string(doc))
	return err
}

// AppendAudit chains e after the newest entry and stores it. It locks the
// chain's head (a row lock on PostgreSQL; SQLite's write lock is held
// already) until the transaction ends, so concurrent appenders queue and
// the chain never forks. A refused entry (audit.Chain.Next's
// *audit.FieldError) leaves nothing changed.
func (t *tx) AppendAudit(e audit.Entry) (audit.Entry, error) {
	const op = "append audit"
	var (
		seq  int64
		hash []byte
	)
	// Where a writer holds the whole database (SQLite), the newest entry
	// is the head: reading it costs what reading audit_head does, and the
	// append then writes one row, not two (audit_head stays as it was
	// when this began). Elsewhere audit_head's row lock is what makes
	// concurrent appenders queue.
	head := `SELECT seq, hash FROM audit_head WHERE id = 1{{forUpdate}}`
	if t.s.d.DatabaseWriteLock {
		head = `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`
	}
	err := t.p.QueryRowContext(t.ctx, t.s.q.get(head)).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) && t.s.d.DatabaseWriteLock {
		err = nil // an empty log
	}
	if err != nil {
		return audit.Entry{}, t.wrap(op, fmt.Errorf("read chain head: %w", err))
	}
	var prev *audit.Entry
	if seq > 0 {
		prev = &audit.Entry{Seq: uint64(seq)}
		if len(hash) != len(prev.Hash) {
			return audit.Entry{}, fmt.Errorf("sqlstore: %s: chain head hash is %d bytes, want %d", op, len(hash), len(prev.Hash))
		}
		copy(prev.Hash[:], hash)
	}
	next, err := audit.Chain{}.Next(prev, e)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	details, err := formatDetails(next.Details)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("sqlstore: %s: details: %w", op, err)
	}
	args := []any{int64(next.Seq), next.Version, next.Time.UnixMicro(), next.Actor, string(next.ActorRole), string(next.Action),
		next.Subject, next.CredentialID, next.RemoteAddr, details, next.PrevHash[:], next.Hash[:]}
	const insert = `INSERT INTO audit (seq, version, happened_at, actor, actor_role, action, subject, credential_id,
			remote_addr, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING`
	conflict := fmt.Errorf("sqlstore: %s: seq %d exists but the chain head is %d: %w", op, next.Seq, seq, storage.ErrConflict)
	if t.s.d.ModifyingCTE {
		// One statement: the head moves only if the entry went in.
		n, err := t.exec(op, `WITH entry AS (`+insert+` RETURNING seq)
			UPDATE audit_head SET seq = $1, hash = $12 WHERE id = 1 AND EXISTS (SELECT 1 FROM entry)`, args...)
		if err != nil {
			return audit.Entry{}, err
		}
		if n == 0 {
			return audit.Entry{}, conflict
		}
		return next, nil
	}
	n, err := t.exec(op, insert, args...)
	if err != nil {
		return audit.Entry{}, err
	}
	if n == 0 {
		return audit.Entry{}, conflict
	}
	if t.s.d.DatabaseWriteLock {
		return next, nil
	}
	if _, err := t.exec(op, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, int64(next.Seq), next.Hash[:]); err != nil {
		return audit.Entry{}, err
	}
	return next, nil
}
