package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/metrics"
	"github.com/keydesk/keydesk/rp/storage"
)

// loginBegin answers request options: for the named user's keys, or for
// a discoverable credential. An unknown or disabled user gets options as
// a known one would, so that sign-in does not tell who has an account.
func (s *Server) loginBegin(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var req api.LoginBeginRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	pol, err := s.policy(r.Context())
	if err != nil {
		return err
	}
	uv := webauthn.WithUserVerification(protocol.UserVerificationRequirement(orDefault(pol.UserVerification, "preferred")))
	var (
		assertion *protocol.CredentialAssertion
		sd        *webauthn.SessionData
		cer       = storage.Ceremony{Kind: storage.CeremonyLogin}
	)
	defer s.timeCeremony(metrics.CeremonyLoginBegin)()
	var wu *waUser
	if name := normalizeName(req.Username); name != "" {
		u, creds, err := s.cfg.Store.UserWithCredentials(r.Context(), name)
		switch {
		case err == nil && !u.Disabled:
			if wu, err = newWAUser(u, creds); err != nil {
				return err
			}
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return err
		}
	}
	if wu != nil && len(wu.creds) > 0 {
		assertion, sd, err = s.wa.BeginLogin(wu, uv)
		cer.UserID = wu.u.ID
	} else {
		assertion, sd, err = s.wa.BeginDiscoverableLogin(uv)
	}
	if err != nil {
		return err
	}
	return s.beginCeremony(w, r, cer, sd, assertion.Response)
}

// errLoginFailed is every sign-in failure the client can do nothing
// specific about; the audit log keeps the reason.
var errLoginFailed = problem(http.StatusUnauthorized, "login_failed", "The key's sign-in did not verify. Try again, or with another key.")

// loginFinish verifies an assertion and opens a session. Everything that
// needs no lock (reading the ceremony and the credential, the signature
// check) happens before the transaction, which only consumes the
// ceremony, moves the counter, opens the session and audits: on SQLite
// every write transaction waits for the one before.
func (s *Server) loginFinish(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var req api.LoginFinishRequest
	body, err := s.readJSON(w, r, &req)
	if err != nil {
		return err
	}
	defer s.timeCeremony(metrics.CeremonyLoginFinish)()
	// The answer holds a session token, so a retry must also come from
	// the same address: whoever else repeats the signed body gets 409.
	reqHash := requestHash(append(body, "\x00"+clientAddr(r, s.cfg.TrustedProxies)...))
	parsed, err := protocol.ParseCredentialRequestResponseBytes(req.Credential)
	if err != nil {
		s.cfg.Metrics.AuthFailed(metrics.AuthReasonMalformed)
		return problem(http.StatusBadRequest, "bad_credential", "The credential is not an authentication response: %s.", protocolReason(err))
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	// The credential is read while the ceremony is: two reads that
	// depend on nothing of each other reach the store together.
	cred := s.readCredential(r.Context(), parsed.RawID)
	cer, sd, err := s.peekCeremony(r.Context(), req.CeremonyID, storage.CeremonyLogin, now)
	if errors.Is(err, errCeremonyUsed) {
		// A retry of a finished sign-in gets its first answer.
		res, ok, rerr := s.replay(r.Context(), req.CeremonyID, reqHash)
		if ok || rerr != nil {
			return s.writeSession(w, req.CeremonyID, res, rerr)
		}
	}
	if err != nil {
		return err
	}
	pol, err := s.policy(r.Context())
	if err != nil {
		return err
	}
	v, err := s.verifyLoginWith(cer, sd, parsed, pol, cred)
	if err != nil {
		return err
	}
	if v.failure != "" {
		s.cfg.Metrics.AuthFailed(authReason(v.failure))
		if err := s.failLogin(r, cer.ID, v, now, pol); err != nil {
			return err
		}
		return v.refused
	}

	sess := storage.Session{
		TokenHash: hashToken(s.sessionToken(cer.ID)), UserID: v.owner.u.ID, Scope: storage.ScopeFull,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL), AuthTime: now,
	}
	result, err := json.Marshal(api.Session{ExpiresAt: sess.ExpiresAt, Scope: string(sess.Scope), User: userOf(v.owner.u)})
	if err != nil {
		return err
	}
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		// Consumed first, with the answer a retry gets: of two racing
		// finishes, the second stops here.
		if err := tx.FinishCeremony(storage.CeremonyResult{CeremonyID: cer.ID, RequestHash: reqHash, Result: result, CreatedAt: now}); err != nil {
			return consumeError(err)
		}
		newCount := v.cred.Authenticator.SignCount
		if v.clone {
			newCount = v.stored.SignCount
		}
		// The counter moves only from what was read, and only on an
		// unrevoked key: the key may have been revoked, or used, since.
		if err := tx.UpdateSignCount(v.stored.ID, v.stored.SignCount, newCount, now); errors.Is(err, storage.ErrConflict) {
			if cur, err := tx.Credential(v.stored.ID); err == nil && cur.Revoked() {
				return errKeyRevoked
			}
			return problem(http.StatusConflict, "concurrent_login", "Another sign-in with this key happened at the same moment: try again.")
		} else if err != nil {
			return err
		}
		if v.clone {
			if err := s.record(tx, r, v.owner.u.Name, audit.RoleUser, audit.ActionCounterRegressed, v.owner.u.Name, v.stored.ID,
				map[string]string{"refused": "false"}); err != nil {
				return err
			}
		}
		if err := tx.CreateSession(sess); err != nil {
			return err
		}
		return s.record(tx, r, v.owner.u.Name, audit.RoleUser, audit.ActionLoginSucceeded, v.owner.u.Name, v.stored.ID, nil)
	})
	if errors.Is(err, errCeremonyUsed) {
		if res, ok, rerr := s.replay(r.Context(), req.CeremonyID, reqHash); ok || rerr != nil {
			return s.writeSession(w, req.CeremonyID, res, rerr)
		}
	}
	if err != nil {
		return err
	}
	s.cfg.Metrics.AuthSucceeded()
	return s.writeSession(w, req.CeremonyID, result, nil)
}

// errKeyRevoked is a sign-in with a revoked key.
var errKeyRevoked = problem(http.StatusForbidden, "key_revoked", "This key was revoked and cannot sign in.")

// loginCheck is what verifying a sign-in found.
type loginCheck struct {
	owner  *waUser // nil when the credential is unknown
	stored *storage.Credential
	cred   *webauthn.Credential // as go-webauthn verified it
	clone  bool                 // the counter went backwards
	// failure is the audited reason of a refusal, refused its answer.
	failure string
	refused error
}

// verifyLogin checks an assertion against the ceremony and the stored
// credential, outside any transaction. A refusal is returned in the
// loginCheck, to be audited; err is for failures of the server.
func (s *Server) verifyLogin(ctx context.Context, cer *storage.Ceremony, sd *webauthn.SessionData,
	parsed *protocol.ParsedCredentialAssertionData, pol storage.Policy) (*loginCheck, error) {
	return s.verifyLoginWith(cer, sd, parsed, pol, s.readCredential(ctx, parsed.RawID))
}

// credentialRead is a credential being read with its user; call it once,
// or not at all (a finish answered from its first result).
type credentialRead func() (*storage.Credential, *storage.User, error)

// readCredential starts reading the credential id with its user; the
// result waits for it.
func (s *Server) readCredential(ctx context.Context, id []byte) credentialRead {
	type result struct {
		c   *storage.Credential
		u   *storage.User
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, u, err := s.cfg.Store.CredentialWithUser(ctx, id)
		ch <- result{c, u, err}
	}()
	return func() (*storage.Credential, *storage.User, error) {
		r := <-ch
		return r.c, r.u, r.err
	}
}

// verifyLoginWith is verifyLogin with the credential read already under
// way.
func (s *Server) verifyLoginWith(cer *storage.Ceremony, sd *webauthn.SessionData,
	parsed *protocol.ParsedCredentialAssertionData, pol storage.Policy, read credentialRead) (*loginCheck, error) {
	v := &loginCheck{}
	fail := func(reason string, answer error) (*loginCheck, error) {
		v.failure, v.refused = reason, answer
		return v, nil
	}
	stored, u, err := read()
	if errors.Is(err, storage.ErrNotFound) {
		return fail("unknown_credential", errLoginFailed)
	} else if err != nil {
		return nil, err
	}
	v.stored = stored
	if v.owner, err = withCredential(u, stored, sd.AllowedCredentialIDs); err != nil {
		return nil, err
	}
	switch {
	case cer.UserID != nil && !bytes.Equal(cer.UserID, u.ID):
		return fail("other_users_credential", errLoginFailed)
	case stored.Revoked():
		return fail("revoked_credential", errKeyRevoked)
	case u.Disabled:
		return fail("user_disabled", problem(http.StatusForbidden, "user_disabled", "This account is disabled: ask your helpdesk."))
	}
	if cer.UserID != nil {
		v.cred, err = s.wa.ValidateLogin(v.owner, *sd, parsed)
	} else {
		v.cred, err = s.wa.ValidateDiscoverableLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			if !bytes.Equal(userHandle, u.ID) {
				return nil, errors.New("user handle does not match the credential's owner")
			}
			return v.owner, nil
		}, *sd, parsed)
	}
	if err != nil {
		return fail("verification: "+protocolReason(err), errLoginFailed)
	}
	v.clone = v.cred.Authenticator.CloneWarning
	if v.clone && pol.RefuseCounterRegression {
		return fail("counter_regressed", problem(http.StatusForbidden, "possible_clone",
			"This key's signature counter went backwards, a sign of a copied key: it cannot sign in. Ask your helpdesk."))
	}
	return v, nil
}

// failLogin records a refused sign-in: the ceremony is used up, and the
// audit log says why (and, for a copied key, that its counter went back).
func (s *Server) failLogin(r *http.Request, ceremonyID string, v *loginCheck, now time.Time, pol storage.Policy) error {
	actor, subject := "anonymous", ""
	var credID []byte
	if v.owner != nil {
		actor, subject, credID = v.owner.u.Name, v.owner.u.Name, v.stored.ID
	}
	reason := v.failure
	if len(reason) > 200 {
		reason = reason[:200]
	}
	err := s.cfg.Store.Tx(context.WithoutCancel(r.Context()), func(tx storage.Tx) error {
		if _, err := tx.ConsumeCeremony(ceremonyID, now); err != nil {
			return consumeError(err)
		}
		if v.failure == "counter_regressed" {
			if err := s.record(tx, r, actor, audit.RoleUser, audit.ActionCounterRegressed, subject, credID,
				map[string]string{"refused": boolString(pol.RefuseCounterRegression)}); err != nil {
				return err
			}
		}
		return s.record(tx, r, actor, audit.RoleAnonymous, audit.ActionLoginFailed, subject, credID, map[string]string{"reason": reason})
	})
	return err
}

// writeSession answers a login's stored result with its token, derived
// again.
func (s *Server) writeSession(w http.ResponseWriter, ceremonyID string, result []byte, err error) error {
	if err != nil {
		return err
	}
	var sess api.Session
	if err := json.Unmarshal(result, &sess); err != nil {
		return err
	}
	sess.Token = s.sessionToken(ceremonyID)
	writeJSON(w, http.StatusOK, sess)
	return nil
}

// authReason is the metrics label of an audited failure reason.
func authReason(failure string) metrics.AuthReason {
	switch failure {
	case "unknown_credential", "other_users_credential":
		return metrics.AuthReasonUnknownCredential
	case "revoked_credential":
		return metrics.AuthReasonRevokedCredential
	case "user_disabled":
		return metrics.AuthReasonDisabledUser
	case "counter_regressed":
		return metrics.AuthReasonSignCount
	}
	f := strings.ToLower(failure)
	switch {
	case strings.Contains(f, "origin"):
		return metrics.AuthReasonOrigin
	case strings.Contains(f, "challenge"):
		return metrics.AuthReasonChallenge
	case strings.Contains(f, "signature"):
		return metrics.AuthReasonSignature
	case strings.Contains(f, "verif") && strings.Contains(f, "user"):
		return metrics.AuthReasonUserVerification
	}
	return metrics.AuthReasonOther
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// normalizeName is how user names are compared: trimmed, lower case.
func normalizeName(n string) string { return strings.ToLower(strings.TrimSpace(n)) }
