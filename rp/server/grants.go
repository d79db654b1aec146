package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/metrics"
	"github.com/keydesk/keydesk/rp/storage"
)

// codeAlphabet is Crockford's base32: no I, L, O or U, so a code read
// aloud or copied by hand survives (I and L read as 1, O as 0).
const codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// codeLength is 16 symbols: 80 bits of entropy, typed as four groups.
const codeLength = 16

// newCode returns a fresh enrollment code, e.g. "7K3M-Q9XD-2HFR-WB8T".
func newCode() string {
	b := make([]byte, codeLength)
	rand.Read(b)
	var sb strings.Builder
	for i, v := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(codeAlphabet[v&31])
	}
	return sb.String()
}

// normalizeCode undoes what people do to a typed code: case, spaces,
// dashes, and the letters Crockford reads as digits.
func normalizeCode(code string) string {
	var sb strings.Builder
	for _, r := range strings.ToUpper(code) {
		switch {
		case r == '-' || r == ' ':
		case r == 'I' || r == 'L':
			sb.WriteByte('1')
		case r == 'O':
			sb.WriteByte('0')
		case r < 128:
			sb.WriteRune(r)
		default:
			return ""
		}
	}
	return sb.String()
}

// codeHash is what the store keeps of a code: keyed with the server's
// secret, so that a stolen database does not allow an offline search, and
// bound to the user, so that a code only ever matches its own user.
func codeHash(secret, userID []byte, code string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("keydesk grant code\x00"))
	m.Write(userID)
	m.Write([]byte{0})
	m.Write([]byte(normalizeCode(code)))
	return m.Sum(nil)
}

func (s *Server) issueGrant(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req api.IssueGrantRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	if req.Kind == "" {
		req.Kind = string(storage.GrantEnrollment)
	}
	if req.Kind != string(storage.GrantEnrollment) {
		return problem(http.StatusBadRequest, "bad_kind", "The grant kinds are: enrollment.")
	}
	if req.TTLSeconds == 0 {
		req.TTLSeconds = 3600
	}
	if req.TTLSeconds < 60 || req.TTLSeconds > 86400 {
		return problem(http.StatusBadRequest, "bad_ttl", "ttlSeconds is from 60 (one minute) to 86400 (a day).")
	}
	if req.MaxUses == 0 {
		req.MaxUses = 1
	}
	if req.MaxUses < 1 || req.MaxUses > 10 {
		return problem(http.StatusBadRequest, "bad_max_uses", "maxUses is from 1 to 10.")
	}
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	if err := mayManage(c, u); err != nil {
		return err
	}
	if u.Disabled {
		return errUserDisabled
	}
	g, code, err := s.grant(r.Context(), u, storage.GrantKind(req.Kind), time.Duration(req.TTLSeconds)*time.Second, req.MaxUses, c.user.Name, nil,
		func(tx storage.Tx, g storage.Grant) error {
			return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionGrantIssued, u.Name, nil,
				map[string]string{"id": g.ID, "kind": string(g.Kind), "expires": g.ExpiresAt.Format(time.RFC3339), "uses": strconv.Itoa(g.MaxUses)})
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.Grant{ID: g.ID, Code: code, Kind: string(g.Kind), Username: u.Name, ExpiresAt: g.ExpiresAt, MaxUses: g.MaxUses})
	return nil
}

// grant stores a new grant for u, first changed by shape when set, and
// runs also in the same transaction.
func (s *Server) grant(ctx context.Context, u *storage.User, kind storage.GrantKind, ttl time.Duration, uses int, by string,
	shape func(*storage.Grant), also func(storage.Tx, storage.Grant) error) (storage.Grant, string, error) {
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	code := newCode()
	g := storage.Grant{
		ID: newID(), UserID: u.ID, Kind: kind, CodeHash: codeHash(s.cfg.Secret, u.ID, code),
		IssuedBy: by, CreatedAt: now, ExpiresAt: now.Add(ttl), MaxUses: uses,
	}
	if shape != nil {
		shape(&g)
	}
	err := s.cfg.Store.Tx(ctx, func(tx storage.Tx) error {
		if err := tx.CreateGrant(g); err != nil {
			return err
		}
		return also(tx, g)
	})
	return g, code, err
}

// errBadCode is every failed redemption: which part was wrong (the user,
// the code, its expiry) is not told to a guesser, only audited.
var errBadCode = problem(http.StatusUnauthorized, "bad_code", "That user name and code do not match a valid enrollment code. Check them, or ask for a new code.")

// errGrantPending is the redemption of a recovery grant that waits for
// its four-eyes approval: told, since it needs the right code.
var errGrantPending = problem(http.StatusForbidden, "grant_pending",
	"This recovery code waits for a second helpdesk member's approval: ask them to approve it, then try again.")

// redeemGrant trades a user name and code for a registration session, or
// for a recovery session when the grant is a helpdesk recovery grant.
func (s *Server) redeemGrant(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var req api.GrantRedeemRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	name := normalizeName(req.Username)
	if err := s.limitAccount(r.Context(), name); err != nil {
		return err
	}
	u, err := s.cfg.Store.UserByName(r.Context(), name)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Disabled) || len(req.Code) > 64 {
		s.auditRedeemFailure(r, name, "unknown_user_or_disabled")
		return errBadCode
	}
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	token := newID() + newID()
	var (
		sess    storage.Session
		failure string
	)
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		failure = ""
		g, err := tx.UseGrant(codeHash(s.cfg.Secret, u.ID, req.Code), now)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			failure = "wrong_code"
		case errors.Is(err, storage.ErrExpired):
			failure = "expired"
		case errors.Is(err, storage.ErrPending):
			failure = "pending_approval"
		case errors.Is(err, storage.ErrConsumed):
			failure = "used_up"
		case err != nil:
			return err
		}
		if failure != "" {
			return nil
		}
		if g.Kind == storage.GrantRecovery {
			// At most while the grant lasts, and a recovery session's
			// time at most.
			sess = storage.Session{TokenHash: hashToken(token), UserID: u.ID, Scope: storage.ScopeRecovery, CreatedAt: now,
				ExpiresAt: minTime(now.Add(s.cfg.RecoverySessionTTL), g.ExpiresAt), GrantID: g.ID}
			if err := tx.CreateSession(sess); err != nil {
				return err
			}
			details := map[string]string{"id": g.ID, "method": "helpdesk", "issuer": g.IssuedBy}
			if g.ApprovedBy != "" {
				details["approver"] = g.ApprovedBy
			}
			return s.record(tx, r, u.Name, audit.RoleUser, audit.ActionRecoveryRedeemed, u.Name, nil, details)
		}
		sess = storage.Session{TokenHash: hashToken(token), UserID: u.ID, Scope: storage.ScopeRegister, CreatedAt: now,
			ExpiresAt: minTime(now.Add(s.cfg.GrantSessionTTL), g.ExpiresAt), GrantID: g.ID}
		if err := tx.CreateSession(sess); err != nil {
			return err
		}
		return s.record(tx, r, u.Name, audit.RoleUser, audit.ActionGrantRedeemed, u.Name, nil,
			map[string]string{"id": g.ID, "use": fmt.Sprintf("%d/%d", g.Uses, g.MaxUses)})
	})
	if err != nil {
		return err
	}
	if failure != "" {
		s.auditRedeemFailure(r, name, failure)
		if failure == "pending_approval" {
			return errGrantPending
		}
		return errBadCode
	}
	if sess.Scope == storage.ScopeRecovery {
		s.cfg.Metrics.Recovery(metrics.RecoveryGranted)
		s.notify(r, u.Name, NotifyRecoveryRedeemed, "")
	}
	writeJSON(w, http.StatusOK, api.Session{Token: token, ExpiresAt: sess.ExpiresAt, Scope: string(sess.Scope), User: userOf(u)})
	return nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// auditRedeemFailure records a failed redemption as a failed login: the
// code is never written, only why it failed.
func (s *Server) auditRedeemFailure(r *http.Request, name, reason string) {
	if checkName(name) != nil {
		name = "anonymous"
	}
	err := s.cfg.Store.Tx(context.WithoutCancel(r.Context()), func(tx storage.Tx) error {
		return s.record(tx, r, name, audit.RoleAnonymous, audit.ActionLoginFailed, name, nil,
			map[string]string{"method": "enrollment_grant", "reason": reason})
	})
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "audit redeem failure", "err", err)
	}
}

// BootstrapAdmin creates the first admin (or finds them) and issues them
// a one-time enrollment code valid for a day: how a new deployment gets
// its first key enrolled. It refuses once any admin has a key.
func BootstrapAdmin(ctx context.Context, cfg Config, name string) (code string, expires time.Time, err error) {
	s, err := New(cfg)
	if err != nil {
		return "", time.Time{}, err
	}
	name = normalizeName(name)
	if err := checkName(name); err != nil {
		return "", time.Time{}, fmt.Errorf("bootstrap: %s", err.(*httpError).message)
	}
	u, err := s.cfg.Store.UserByName(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		nu := NewUser(name, name, []storage.Role{storage.RoleUser, storage.RoleAdmin}, s.cfg.Now())
		err = s.cfg.Store.Tx(ctx, func(tx storage.Tx) error {
			if err := tx.CreateUser(nu); err != nil {
				return err
			}
			_, err := tx.AppendAudit(audit.Entry{Actor: "keydesk-rp", ActorRole: audit.RoleSystem, Action: audit.ActionUserCreated,
				Subject: name, Details: map[string]string{"roles": "user,admin", "via": "bootstrap-admin"}})
			return err
		})
		u = &nu
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("bootstrap: %w", err)
	}
	if !u.HasRole(storage.RoleAdmin) {
		return "", time.Time{}, fmt.Errorf("bootstrap: %s exists and is not an admin", name)
	}
	if creds, err := s.cfg.Store.Credentials(ctx, u.ID); err != nil {
		return "", time.Time{}, err
	} else if len(creds) > 0 {
		return "", time.Time{}, fmt.Errorf("bootstrap: %s already has a key: sign in with it and issue grants from the helpdesk screens", name)
	}
	g, code, err := s.grant(ctx, u, storage.GrantEnrollment, 24*time.Hour, 1, "keydesk-rp", nil, func(tx storage.Tx, g storage.Grant) error {
		_, err := tx.AppendAudit(audit.Entry{Actor: "keydesk-rp", ActorRole: audit.RoleSystem, Action: audit.ActionGrantIssued,
			Subject: name, Details: map[string]string{"id": g.ID, "kind": string(g.Kind), "via": "bootstrap-admin"}})
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("bootstrap: %w", err)
	}
	return code, g.ExpiresAt, nil
}
