package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keydesk/keydesk/rp/storage"
)

// recoveryRetention is how long a recovery session's row outlives its
// expiry before DeleteExpired removes it.
const recoveryRetention = time.Hour

const recoveryColumns = `id, user_id, username, secret_hash, code_hash, desktop_token_hash, number, candidates,
	desktop_name, desktop_key, desktop_ip, created_at, expires_at, status, status_at, ceremony_id, credential_id, nonce, refusal_reason`

func scanRecovery(sc scanner) (*storage.RecoverySession, error) {
	var (
		rs                         storage.RecoverySession
		candidates, status, reason string
		created, expires, statusAt int64
		ceremony                   sql.NullString
	)
	if err := sc.Scan(&rs.ID, &rs.UserID, &rs.Username, &rs.SecretHash, &rs.CodeHash, &rs.DesktopTokenHash, &rs.Number, &candidates,
		&rs.DesktopName, &rs.DesktopKey, &rs.DesktopIP, &created, &expires, &status, &statusAt, &ceremony, &rs.CredentialID, &rs.Nonce, &reason); err != nil {
		return nil, notFound(err)
	}
	for _, c := range parseList(candidates) {
		n, err := strconv.Atoi(c)
		if err != nil {
			return nil, fmt.Errorf("recovery session %s: candidates: %w", rs.ID, err)
		}
		rs.Candidates = append(rs.Candidates, n)
	}
	rs.UserID, rs.CredentialID, rs.Nonce = orNil(rs.UserID), orNil(rs.CredentialID), orNil(rs.Nonce)
	rs.CreatedAt, rs.ExpiresAt, rs.StatusAt = fromMicros(created), fromMicros(expires), fromMicros(statusAt)
	rs.Status, rs.CeremonyID, rs.RefusalReason = storage.RecoveryStatus(status), ceremony.String, storage.RefusalReason(reason)
	return &rs, nil
}

// RecoverySession reads a recovery session as stored.
func (s *Store) RecoverySession(ctx context.Context, id string) (*storage.RecoverySession, error) {
	rs, err := scanRecovery(s.pdb.QueryRowContext(ctx, s.q.get(`SELECT `+recoveryColumns+` FROM recovery_sessions WHERE id = $1`), id))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: recovery session: %w", err)
	}
	return rs, nil
}

// CreateRecoverySession stores a new pending recovery session.
func (t *tx) CreateRecoverySession(rs storage.RecoverySession) error {
	const op = "create recovery session"
	switch {
	case rs.ID == "":
		return invalid(op, "empty ID")
	case len(rs.SecretHash) == 0 || len(rs.CodeHash) == 0 || len(rs.DesktopTokenHash) == 0:
		return invalid(op, "a secret's hash is missing")
	case len(rs.DesktopKey) == 0:
		return invalid(op, "no desktop key")
	case rs.Status != storage.RecoveryPending || rs.RefusalReason != "":
		return invalid(op, "a new session is pending, not %.32q (%.32q)", rs.Status, rs.RefusalReason)
	case !rs.ExpiresAt.After(rs.CreatedAt):
		return invalid(op, "expires before it is created")
	}
	candidates := make([]string, len(rs.Candidates))
	for i, c := range rs.Candidates {
		candidates[i] = strconv.Itoa(c)
	}
	var ceremony any
	if rs.CeremonyID != "" {
		ceremony = rs.CeremonyID
	}
	// One statement whether or not the session has a user, its user's
	// existence checked inside: a decoy must cost what a real session
	// does, or the time taken would tell who has an account. The casts
	// give PostgreSQL the types a VALUES list would take from the columns.
	n, err := t.exec(op, `INSERT INTO recovery_sessions (`+recoveryColumns+`)
		SELECT CAST($1 AS TEXT), CAST($2 AS {{blob}}), CAST($3 AS TEXT), CAST($4 AS {{blob}}), CAST($5 AS {{blob}}),
			CAST($6 AS {{blob}}), CAST($7 AS INTEGER), CAST($8 AS TEXT), CAST($9 AS TEXT), CAST($10 AS {{blob}}), CAST($11 AS TEXT),
			CAST($12 AS BIGINT), CAST($13 AS BIGINT), CAST($14 AS TEXT), CAST($15 AS BIGINT), CAST($16 AS TEXT),
			CAST($17 AS {{blob}}), CAST($18 AS {{blob}}), CAST($19 AS TEXT)
		WHERE CAST($2 AS {{blob}}) IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = $2)
		ON CONFLICT DO NOTHING`,
		rs.ID, orNil(rs.UserID), foldName(rs.Username), rs.SecretHash, rs.CodeHash, rs.DesktopTokenHash, rs.Number,
		strings.Join(candidates, ","), rs.DesktopName, rs.DesktopKey, rs.DesktopIP, rs.CreatedAt.UnixMicro(), rs.ExpiresAt.UnixMicro(),
		string(rs.Status), rs.CreatedAt.UnixMicro(), ceremony, orNil(rs.CredentialID), orNil(rs.Nonce), "")
	if err != nil || n > 0 {
		return err
	}
	if len(rs.UserID) > 0 {
		if err := t.userMustExist(op, rs.UserID); err != nil {
			return err
		}
	}
	return fmt.Errorf("sqlstore: %s: ID taken: %w", op, storage.ErrConflict)
}

// recoveryRefusal says why a conditional update of recovery session id,
// which needed one of the statuses want and an unexpired session, changed
// nothing: storage.ErrNotFound, storage.ErrConsumed (ended, or not in a
// status wanted and past pending), storage.ErrExpired, or
// storage.ErrConflict (something else the update required).
func (t *tx) recoveryRefusal(op, id string, now time.Time, want ...storage.RecoveryStatus) error {
	var (
		status  string
		expires int64
	)
	err := t.p.QueryRowContext(t.ctx, t.s.q.get(`SELECT status, expires_at FROM recovery_sessions WHERE id = $1`), id).Scan(&status, &expires)
	switch st := storage.RecoveryStatus(status); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	case err != nil:
		return t.wrap(op, err)
	case st.Terminal():
		return fmt.Errorf("sqlstore: %s: session is %s: %w", op, st, storage.ErrConsumed)
	case expires <= now.UnixMicro():
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrExpired)
	case !slices.Contains(want, st) && st != storage.RecoveryPending:
		return fmt.Errorf("sqlstore: %s: session is %s: %w", op, st, storage.ErrConsumed)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConflict)
}

// BeginRecoveryApproval records the ceremony that will approve a
// pending session.
func (t *tx) BeginRecoveryApproval(id, ceremonyID string, now time.Time) error {
	const op = "begin recovery approval"
	if ceremonyID == "" {
		return invalid(op, "empty ceremony ID")
	}
	n, err := t.exec(op, `UPDATE recovery_sessions SET ceremony_id = $2
		WHERE id = $1 AND status = 'pending' AND expires_at > $3`, id, ceremonyID, now.UnixMicro())
	if err != nil || n > 0 {
		return err
	}
	return t.recoveryRefusal(op, id, now, storage.RecoveryPending)
}

// ApproveRecovery approves a pending session in one conditional
// statement: of racing approvals exactly one wins.
func (t *tx) ApproveRecovery(id, ceremonyID string, credentialID, nonce []byte, now, redeemBy time.Time) error {
	const op = "approve recovery"
	switch {
	case ceremonyID == "":
		return invalid(op, "empty ceremony ID")
	case len(credentialID) == 0 || len(nonce) == 0:
		return invalid(op, "no credential or nonce")
	case !redeemBy.After(now):
		return invalid(op, "redeem window ends before it begins")
	}
	at := now.UnixMicro()
	n, err := t.exec(op, `UPDATE recovery_sessions SET status = 'approved', status_at = $3, credential_id = $4, nonce = $5, expires_at = $6
		WHERE id = $1 AND status = 'pending' AND ceremony_id = $2 AND expires_at > $3`,
		id, ceremonyID, at, credentialID, nonce, redeemBy.UnixMicro())
	if err != nil || n > 0 {
		return err
	}
	return t.recoveryRefusal(op, id, now, storage.RecoveryPending)
}

// RefuseRecovery ends a pending or approved session as refused.
func (t *tx) RefuseRecovery(id string, now time.Time, reason storage.RefusalReason) error {
	const op = "refuse recovery"
	if !reason.Valid() {
		return invalid(op, "unknown refusal reason %.32q", reason)
	}
	at := now.UnixMicro()
	n, err := t.exec(op, `UPDATE recovery_sessions SET status = 'refused', status_at = $2, refusal_reason = $3
		WHERE id = $1 AND status IN ('pending', 'approved') AND expires_at > $2`, id, at, string(reason))
	if err != nil || n > 0 {
		return err
	}
	return t.recoveryRefusal(op, id, now, storage.RecoveryPending, storage.RecoveryApproved)
}

// RedeemRecovery moves an approved session to redeemed, once.
func (t *tx) RedeemRecovery(id string, now time.Time) (*storage.RecoverySession, error) {
	const op = "redeem recovery"
	at := now.UnixMicro()
	rs, err := scanRecovery(t.p.QueryRowContext(t.ctx, t.s.q.get(`UPDATE recovery_sessions SET status = 'redeemed', status_at = $2
		WHERE id = $1 AND status = 'approved' AND expires_at > $2
		RETURNING `+recoveryColumns), id, at))
	if err == nil {
		return rs, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, t.wrap(op, err)
	}
	return nil, t.recoveryRefusal(op, id, now, storage.RecoveryApproved)
}

// ExpireRecovery records a pending or approved session's expiry, once.
func (t *tx) ExpireRecovery(id string, now time.Time) error {
	const op = "expire recovery"
	at := now.UnixMicro()
	n, err := t.exec(op, `UPDATE recovery_sessions SET status = 'expired', status_at = $2
		WHERE id = $1 AND status IN ('pending', 'approved') AND expires_at <= $2`, id, at)
	if err != nil || n > 0 {
		return err
	}
	var status string
	err = t.p.QueryRowContext(t.ctx, t.s.q.get(`SELECT status FROM recovery_sessions WHERE id = $1`), id).Scan(&status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	case err != nil:
		return t.wrap(op, err)
	case storage.RecoveryStatus(status).Terminal():
		return fmt.Errorf("sqlstore: %s: session is %s: %w", op, status, storage.ErrConsumed)
	}
	return fmt.Errorf("sqlstore: %s: not expired yet: %w", op, storage.ErrConflict)
}

const recoveryCodeColumns = `id, user_id, lookup, hash, created_at, used_at`

func scanRecoveryCode(sc scanner) (storage.RecoveryCode, error) {
	var (
		c       storage.RecoveryCode
		created int64
		used    sql.NullInt64
	)
	if err := sc.Scan(&c.ID, &c.UserID, &c.Lookup, &c.Hash, &created, &used); err != nil {
		return storage.RecoveryCode{}, notFound(err)
	}
	c.CreatedAt, c.UsedAt = fromMicros(created), fromNullMicros(used)
	return c, nil
}

// RecoveryCodes lists a user's recovery codes, oldest first.
func (s *Store) RecoveryCodes(ctx context.Context, userID []byte) ([]storage.RecoveryCode, error) {
	rows, err := s.pdb.QueryContext(ctx, s.q.get(`SELECT `+recoveryCodeColumns+` FROM recovery_codes
		WHERE user_id = $1 ORDER BY created_at, id`), userID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: recovery codes: %w", err)
	}
	cs, err := collect(rows, scanRecoveryCode)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: recovery codes: %w", err)
	}
	return cs, nil
}

// maxRecoveryCodes bounds a set of recovery codes.
const maxRecoveryCodes = 100

// ReplaceRecoveryCodes swaps a user's set of codes for a new one.
func (t *tx) ReplaceRecoveryCodes(userID []byte, codes []storage.RecoveryCode) error {
	const op = "replace recovery codes"
	if len(codes) > maxRecoveryCodes {
		return invalid(op, "%d codes, want at most %d", len(codes), maxRecoveryCodes)
	}
	for _, c := range codes {
		switch {
		case c.ID == "" || len(c.Lookup) == 0 || c.Hash == "":
			return invalid(op, "a code without an ID, lookup or hash")
		case string(c.UserID) != string(userID):
			return invalid(op, "a code of another user")
		}
	}
	if err := t.userMustExist(op, userID); err != nil {
		return err
	}
	if _, err := t.exec(op, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
		return err
	}
	for _, c := range codes {
		n, err := t.exec(op, `INSERT INTO recovery_codes (`+recoveryCodeColumns+`) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			c.ID, userID, c.Lookup, c.Hash, c.CreatedAt.UnixMicro(), nullMicros(c.UsedAt))
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("sqlstore: %s: ID %q repeated: %w", op, c.ID, storage.ErrConflict)
		}
	}
	return nil
}

// UseRecoveryCode marks a code used in one conditional statement: of
// racing uses one wins.
func (t *tx) UseRecoveryCode(userID []byte, id string, now time.Time) error {
	const op = "use recovery code"
	if now.IsZero() {
		return invalid(op, "zero time of use")
	}
	n, err := t.exec(op, `UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND id = $2 AND used_at IS NULL`,
		userID, id, now.UnixMicro())
	if err != nil || n > 0 {
		return err
	}
	ok, err := t.exists(op, `SELECT 1 FROM recovery_codes WHERE user_id = $1 AND id = $2`, userID, id)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConsumed)
}
