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
		if err := s.limitAccount(name); err != nil {
			return err
		}
		u, err := s.cfg.Store.UserByName(r.Context(), name)
		switch {
		case err == nil && !u.Disabled:
			if wu, err = s.loadUser(r.Context(), u); err != nil {
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

// loginFinish verifies an assertion and opens a session.
func (s *Server) loginFinish(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var req api.LoginFinishRequest
	body, err := s.readJSON(w, r, &req)
	if err != nil {
		return err
	}
	defer s.timeCeremony(metrics.CeremonyLoginFinish)()
	// A retry of a finished ceremony is answered once consuming the
	// ceremony fails (replay), which costs nothing on the usual path.
	reqHash := requestHash(body)
	parsed, err := protocol.ParseCredentialRequestResponseBytes(req.Credential)
	if err != nil {
		s.cfg.Metrics.AuthFailed(metrics.AuthReasonMalformed)
		return problem(http.StatusBadRequest, "bad_credential", "The credential is not an authentication response: %s.", protocolReason(err))
	}
	pol, err := s.policy(r.Context())
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	var (
		result  []byte
		owner   *waUser // the credential's owner, once known
		failure string  // the audited reason of a refusal
		refused error
	)
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		owner, failure, refused, result = nil, "", nil, nil
		cer, sd, err := consume(tx, req.CeremonyID, storage.CeremonyLogin, now)
		if err != nil {
			return err
		}
		fail := func(reason string, answer error) error {
			failure, refused = reason, answer
			return nil // the ceremony stays consumed; the failure is audited below
		}
		stored, err := tx.Credential(parsed.RawID)
		if errors.Is(err, storage.ErrNotFound) {
			return fail("unknown_credential", errLoginFailed)
		} else if err != nil {
			return err
		}
		u, err := tx.UserByID(stored.UserID)
		if err != nil {
			return err
		}
		if owner, err = withCredential(u, stored, sd.AllowedCredentialIDs); err != nil {
			return err
		}
		if cer.UserID != nil && !bytes.Equal(cer.UserID, owner.u.ID) {
			return fail("other_users_credential", errLoginFailed)
		}
		if stored.Revoked() {
			return fail("revoked_credential", problem(http.StatusForbidden, "key_revoked", "This key was revoked and cannot sign in."))
		}
		if owner.u.Disabled {
			return fail("user_disabled", problem(http.StatusForbidden, "user_disabled", "This account is disabled: ask your helpdesk."))
		}
		var cred *webauthn.Credential
		if cer.UserID != nil {
			cred, err = s.wa.ValidateLogin(owner, *sd, parsed)
		} else {
			cred, err = s.wa.ValidateDiscoverableLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
				if !bytes.Equal(userHandle, owner.u.ID) {
					return nil, errors.New("user handle does not match the credential's owner")
				}
				return owner, nil
			}, *sd, parsed)
		}
		if err != nil {
			return fail("verification: "+protocolReason(err), errLoginFailed)
		}
		// The credential's row is locked (tx.Credential) before the
		// audit head (record): every transaction takes them in that order.
		clone := cred.Authenticator.CloneWarning
		regressed := func() error {
			return s.record(tx, r, owner.u.Name, audit.RoleUser, audit.ActionCounterRegressed, owner.u.Name, stored.ID,
				map[string]string{"refused": boolString(pol.RefuseCounterRegression)})
		}
		if clone && pol.RefuseCounterRegression {
			if err := regressed(); err != nil {
				return err
			}
			return fail("counter_regressed", problem(http.StatusForbidden, "possible_clone",
				"This key's signature counter went backwards, a sign of a copied key: it cannot sign in. Ask your helpdesk."))
		}
		newCount := cred.Authenticator.SignCount
		if clone {
			newCount = stored.SignCount
		}
		if err := tx.UpdateSignCount(stored.ID, stored.SignCount, newCount, now); errors.Is(err, storage.ErrConflict) {
			return problem(http.StatusConflict, "concurrent_login", "Another sign-in with this key happened at the same moment: try again.")
		} else if err != nil {
			return err
		}
		if clone {
			if err := regressed(); err != nil {
				return err
			}
		}
		sess := storage.Session{
			TokenHash: hashToken(s.sessionToken(cer.ID)), UserID: owner.u.ID, Scope: storage.ScopeFull,
			CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL), AuthTime: now,
		}
		if err := tx.CreateSession(sess); err != nil {
			return err
		}
		if result, err = json.Marshal(api.Session{ExpiresAt: sess.ExpiresAt, Scope: string(sess.Scope), User: userOf(owner.u)}); err != nil {
			return err
		}
		if err := tx.SaveCeremonyResult(storage.CeremonyResult{CeremonyID: cer.ID, RequestHash: reqHash, Result: result, CreatedAt: now}); err != nil {
			return err
		}
		return s.record(tx, r, owner.u.Name, audit.RoleUser, audit.ActionLoginSucceeded, owner.u.Name, stored.ID, nil)
	})
	if errors.Is(err, errCeremonyUsed) {
		if res, ok, rerr := s.replay(r.Context(), req.CeremonyID, reqHash); ok || rerr != nil {
			return s.writeSession(w, req.CeremonyID, res, rerr)
		}
	}
	if err != nil {
		return err
	}
	if refused != nil {
		s.cfg.Metrics.AuthFailed(authReason(failure))
		s.auditLoginFailure(r, owner, parsed.RawID, failure)
		return refused
	}
	s.cfg.Metrics.AuthSucceeded()
	return s.writeSession(w, req.CeremonyID, result, nil)
}

// auditLoginFailure records a refused sign-in in its own transaction (the
// sign-in's rolled back or committed without it).
func (s *Server) auditLoginFailure(r *http.Request, owner *waUser, credID []byte, reason string) {
	actor, subject := "anonymous", ""
	if owner != nil {
		actor, subject = owner.u.Name, owner.u.Name
	}
	if len(reason) > 200 {
		reason = reason[:200]
	}
	err := s.cfg.Store.Tx(context.WithoutCancel(r.Context()), func(tx storage.Tx) error {
		return s.record(tx, r, actor, audit.RoleAnonymous, audit.ActionLoginFailed, subject, credID, map[string]string{"reason": reason})
	})
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "audit login failure", "err", err)
	}
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
