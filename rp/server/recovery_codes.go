package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/metrics"
	"github.com/keydesk/keydesk/rp/storage"
)

// Recovery codes: ten one-time codes a user prints or stores while they
// still have a key, each worth one recovery session.
const (
	recoveryCodeCount = 10
	// Four groups of five Crockford base32 symbols: 100 bits, so that no
	// hash parameters are needed against guessing; argon2id is against
	// a stolen database together with the server's secret.
	recoveryCodeGroups   = 4
	recoveryCodeGroupLen = 5
	// recoveryLookupLen is the bytes of a code's keyed hash kept to find
	// its row: 64 bits tell the few codes of one user apart, and leave
	// at least 36 of a code's bits to argon2id even for someone holding
	// the server's secret.
	recoveryLookupLen = 8
)

// argon2id's parameters (RFC 9106 §4): 8 MiB, two passes, one lane, a
// 16-byte salt of each code's own, 32-byte tag. One verification costs
// about 8 ms of one core (measured on a 2-core Xeon VM, Go 1.26), which
// makes a redeem's cost small next to the rate limits and a search of a
// stolen database ruinous. They are stored with each hash (PHC string
// format), so that they can be raised later without invalidating codes.
const (
	argonMemoryKiB = 8 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonTagLen    = 32
	argonSaltLen   = 16
)

// newRecoveryCode returns a fresh code, e.g. "7K3MQ-9XD2H-FRWB8-TA1C5".
func newRecoveryCode() string {
	b := make([]byte, recoveryCodeGroups*recoveryCodeGroupLen)
	rand.Read(b)
	var sb strings.Builder
	for i, v := range b {
		if i > 0 && i%recoveryCodeGroupLen == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(codeAlphabet[v&31])
	}
	return sb.String()
}

// hashRecoveryCode is argon2id of the normalized code with a fresh salt,
// in PHC string format: $argon2id$v=19$m=8192,t=2,p=1$SALT$TAG.
func hashRecoveryCode(code string) string {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	tag := argon2.IDKey([]byte(normalizeCode(code)), salt, argonTime, argonMemoryKiB, argonThreads, argonTagLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(tag))
}

// verifyRecoveryCode checks code against a hash hashRecoveryCode made,
// with the parameters stored in it (bounded, so that a corrupted row
// cannot make a verification cost a gigabyte).
func verifyRecoveryCode(phc, code string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil ||
		m < 8 || m > 256*1024 || t < 1 || t > 10 || p < 1 || p > 4 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	tag, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(tag) < 16 || len(tag) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(normalizeCode(code)), salt, t, m, p, uint32(len(tag)))
	return subtle.ConstantTimeCompare(got, tag) == 1
}

// dummyHash is verified against when there is no code to verify, so that
// a redeem for an unknown account, or with a code matching no row, costs
// what a real one does.
var dummyHash = sync.OnceValue(func() string { return hashRecoveryCode(newRecoveryCode()) })

// recoveryCodeLookup finds a code's row: a truncated keyed hash, bound to
// the user.
func (s *Server) recoveryCodeLookup(userID []byte, code string) []byte {
	m := hmac.New(sha256.New, s.cfg.Secret)
	m.Write([]byte("keydesk recovery code lookup\x00"))
	m.Write(userID)
	m.Write([]byte{0})
	m.Write([]byte(normalizeCode(code)))
	return m.Sum(nil)[:recoveryLookupLen]
}

// stepUp refuses a session whose last sign-in is older than
// StepUpWindow: what a stolen session must not be able to do.
func (s *Server) stepUp(c *caller, what string) error {
	if age := s.cfg.Now().Sub(c.session.AuthTime); age > s.cfg.StepUpWindow {
		return problem(http.StatusForbidden, "step_up_required",
			"%s needs a fresh sign-in: sign in with your key, then try again within %d minutes.", what, int(s.cfg.StepUpWindow/time.Minute))
	}
	return nil
}

// generateRecoveryCodes makes a new set of codes, shown once, which
// replaces the old set. It needs a fresh sign-in: a stolen session that
// could mint codes could come back after the theft is noticed.
func (s *Server) generateRecoveryCodes(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := s.stepUp(c, "Generating recovery codes"); err != nil {
		return err
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	plain := make([]string, recoveryCodeCount)
	codes := make([]storage.RecoveryCode, recoveryCodeCount)
	// The hashing happens before the transaction, which only stores.
	for i := range plain {
		plain[i] = newRecoveryCode()
		codes[i] = storage.RecoveryCode{ID: newID(), UserID: c.user.ID, Lookup: s.recoveryCodeLookup(c.user.ID, plain[i]),
			Hash: hashRecoveryCode(plain[i]), CreatedAt: now}
	}
	err := s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		if err := tx.ReplaceRecoveryCodes(c.user.ID, codes); err != nil {
			return err
		}
		return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionRecoveryCodesGenerated, c.user.Name, nil,
			map[string]string{"count": strconv.Itoa(len(codes))})
	})
	if err != nil {
		return err
	}
	s.notify(r, c.user.Name, NotifyRecoveryCodesGenerated, "")
	writeJSON(w, http.StatusCreated, api.RecoveryCodes{Codes: plain, GeneratedAt: now})
	return nil
}

// recoveryCodesStatus says how many of the caller's codes are left.
func (s *Server) recoveryCodesStatus(w http.ResponseWriter, r *http.Request, c *caller) error {
	codes, err := s.cfg.Store.RecoveryCodes(r.Context(), c.user.ID)
	if err != nil {
		return err
	}
	out := api.RecoveryCodesStatus{Total: len(codes)}
	for _, code := range codes {
		if code.UsedAt.IsZero() {
			out.Remaining++
		}
		if out.GeneratedAt == nil || code.CreatedAt.After(*out.GeneratedAt) {
			t := code.CreatedAt
			out.GeneratedAt = &t
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// The answers of a failed recovery code redemption: which part was wrong
// (the user, the code) is not told, only audited; a used code is told,
// which needs the code.
var (
	errBadRecoveryCode = problem(http.StatusUnauthorized, "bad_recovery_code",
		"That user name and recovery code do not match. Check them (case, spaces and dashes do not matter), or ask your helpdesk.")
	errRecoveryCodeUsed = problem(http.StatusUnauthorized, "recovery_code_used",
		"That recovery code was already used: each works once. Use another of your codes, or ask your helpdesk.")
)

// redeemRecoveryCode trades a user name and one of their recovery codes
// for a recovery session. Guessing is throttled per account and per
// address (database buckets of AccountRate), every attempt costs one
// argon2id verification whatever the account, and a used code is refused.
func (s *Server) redeemRecoveryCode(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var req api.RecoveryCodeRedeemRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	name := normalizeName(req.Username)
	ip := clientAddr(r, s.cfg.TrustedProxies)
	ipKey := ""
	if ip != "" {
		ipKey = limitKey("recovery-code-ip", ip)
	}
	if err := s.limit(r.Context(), s.perAccount, "Too many recovery code attempts for this account or from this address: wait and try again.",
		limitKey("recovery-code-user", name), ipKey); err != nil {
		return err
	}
	u, err := s.cfg.Store.UserByName(r.Context(), name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err != nil || u.Disabled || len(req.Code) > 64 {
		verifyRecoveryCode(dummyHash(), req.Code)
		s.auditCodeFailure(r, name, nil, "unknown_user_or_disabled")
		return errBadRecoveryCode
	}
	codes, err := s.cfg.Store.RecoveryCodes(r.Context(), u.ID)
	if err != nil {
		return err
	}
	lookup := s.recoveryCodeLookup(u.ID, req.Code)
	var match *storage.RecoveryCode
	tried := false
	for i := range codes {
		if !hmac.Equal(codes[i].Lookup, lookup) {
			continue
		}
		tried = true
		if verifyRecoveryCode(codes[i].Hash, req.Code) {
			match = &codes[i]
			break
		}
	}
	if !tried {
		verifyRecoveryCode(dummyHash(), req.Code)
	}
	switch {
	case match == nil:
		s.auditCodeFailure(r, name, u, "wrong_code")
		return errBadRecoveryCode
	case !match.UsedAt.IsZero():
		s.auditCodeFailure(r, name, u, "used")
		return errRecoveryCodeUsed
	}
	remaining := -1 // this one
	for _, c := range codes {
		if c.UsedAt.IsZero() {
			remaining++
		}
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	token := newID() + newID()
	sess := storage.Session{TokenHash: hashToken(token), UserID: u.ID, Scope: storage.ScopeRecovery, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.RecoverySessionTTL), GrantID: "recovery-code:" + match.ID}
	used := false
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		used = false
		if err := tx.UseRecoveryCode(u.ID, match.ID, now); errors.Is(err, storage.ErrConsumed) || errors.Is(err, storage.ErrNotFound) {
			// A racing redeem of the same code won, or a new set
			// replaced it meanwhile.
			used = true
			return nil
		} else if err != nil {
			return err
		}
		if err := tx.CreateSession(sess); err != nil {
			return err
		}
		return s.record(tx, r, u.Name, audit.RoleUser, audit.ActionRecoveryRedeemed, u.Name, nil,
			map[string]string{"method": "recovery_code", "remaining": strconv.Itoa(remaining)})
	})
	if err != nil {
		return err
	}
	if used {
		s.auditCodeFailure(r, name, u, "used")
		return errRecoveryCodeUsed
	}
	s.cfg.Metrics.Recovery(metrics.RecoveryGranted)
	s.notify(r, u.Name, NotifyRecoveryCodeUsed, "")
	writeJSON(w, http.StatusOK, api.Session{Token: token, ExpiresAt: sess.ExpiresAt, Scope: string(sess.Scope), User: userOf(u)})
	return nil
}

// auditCodeFailure records a refused recovery code, never the code.
func (s *Server) auditCodeFailure(r *http.Request, name string, u *storage.User, reason string) {
	s.cfg.Metrics.Recovery(metrics.RecoveryInvalid)
	actor, subject := name, ""
	if checkName(name) != nil {
		actor = "anonymous"
	}
	if u != nil {
		subject = u.Name
	}
	err := s.cfg.Store.Tx(context.WithoutCancel(r.Context()), func(tx storage.Tx) error {
		return s.record(tx, r, actor, audit.RoleAnonymous, audit.ActionRecoveryFailed, subject, nil,
			map[string]string{"method": "recovery_code", "reason": reason})
	})
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "audit recovery code failure", "err", err)
	}
}
