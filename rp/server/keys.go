package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/metrics"
	"github.com/keydesk/keydesk/rp/storage"
)

// formatAAGUID writes a stored AAGUID as a dashed UUID, "" for one that
// is not 16 bytes.
func formatAAGUID(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	return assets.FormatAAGUID([16]byte(b))
}

// keyOf is the API's view of a stored credential.
func keyOf(c storage.Credential) api.Key {
	k := api.Key{
		ID: b64(c.ID), Nickname: c.Nickname, AAGUID: formatAAGUID(c.AAGUID),
		CreatedAt: c.CreatedAt, AttestationType: c.AttestationType,
		RevokeReason: c.RevokeReason, ProvisionedBy: c.ProvisionedBy, Batch: c.Batch,
	}
	if len(c.AAGUID) == 16 {
		k.Model, _ = assets.AAGUIDName([16]byte(c.AAGUID))
	}
	if !c.LastUsedAt.IsZero() {
		t := c.LastUsedAt
		k.LastUsedAt = &t
	}
	if c.Revoked() {
		t := c.RevokedAt
		k.RevokedAt = &t
	}
	var wc webauthn.Credential
	if json.Unmarshal(c.WebAuthn, &wc) == nil {
		k.BackupEligible, k.BackupState = wc.Flags.BackupEligible, wc.Flags.BackupState
		k.AttestationFormat = wc.AttestationFormat
		for _, t := range wc.Transport {
			k.Transports = append(k.Transports, string(t))
		}
	}
	return k
}

// userOf is the API's view of a user.
func userOf(u *storage.User) api.User {
	out := api.User{ID: b64(u.ID), Name: u.Name, DisplayName: u.DisplayName, Disabled: u.Disabled, CreatedAt: u.CreatedAt, Roles: []string{}}
	for _, r := range u.Roles {
		out.Roles = append(out.Roles, string(r))
	}
	return out
}

func (s *Server) writeKeys(w http.ResponseWriter, r *http.Request, userID []byte) error {
	creds, err := s.cfg.Store.Credentials(r.Context(), userID)
	if err != nil {
		return err
	}
	out := api.Keys{Keys: []api.Key{}}
	for _, c := range creds {
		out.Keys = append(out.Keys, keyOf(c))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) myKeys(w http.ResponseWriter, r *http.Request, c *caller) error {
	return s.writeKeys(w, r, c.user.ID)
}

func (s *Server) userKeys(w http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	return s.writeKeys(w, r, u.ID)
}

// pathUser loads the user the path names.
func (s *Server) pathUser(r *http.Request) (*storage.User, error) {
	u, err := s.cfg.Store.UserByName(r.Context(), normalizeName(r.PathValue("name")))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errUserNotFound
	}
	return u, err
}

// ownKey reads the key the path names, which must belong to userID.
func ownKey(tx storage.Tx, r *http.Request, userID []byte) (*storage.Credential, error) {
	id, ok := unb64(r.PathValue("id"))
	if !ok {
		return nil, problem(http.StatusBadRequest, "bad_key_id", "A key ID is base64url, as the key list gives it.")
	}
	cr, err := tx.Credential(id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && string(cr.UserID) != string(userID)) {
		return nil, errKeyNotFound
	}
	return cr, err
}

func (s *Server) renameMyKey(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req api.RenameKeyRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	if err := checkNickname(req.Nickname); err != nil {
		return err
	}
	var out api.Key
	err := s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		cr, err := ownKey(tx, r, c.user.ID)
		if err != nil {
			return err
		}
		if cr.Nickname != req.Nickname {
			if err := tx.RenameCredential(cr.ID, req.Nickname); err != nil {
				return err
			}
			if err := s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionCredentialRenamed, c.user.Name, cr.ID,
				map[string]string{"nickname": req.Nickname}); err != nil {
				return err
			}
			cr.Nickname = req.Nickname
		}
		out = keyOf(*cr)
		return nil
	})
	if err != nil {
		return err
	}
	s.cfg.Metrics.KeyEvent(metrics.KeyRenamed)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revoke revokes the key the path names, owned by owner, in one
// transaction with its audit entry. Revoking a revoked key changes
// nothing and answers as the first time did, so a retry is harmless.
// guard, when set, refuses to revoke the owner's last usable key;
// protect, when set, is a key that may not be revoked.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request, c *caller, owner *storage.User, guard bool, protect []byte) error {
	var req api.RevokeKeyRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Reason == "" || len(req.Reason) > 200 {
		return problem(http.StatusBadRequest, "bad_reason", "Say why the key is revoked (\"lost\", \"stolen\"...), in at most 200 bytes.")
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	var (
		out     api.Key
		revoked bool
	)
	err := s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		revoked = false
		cr, err := ownKey(tx, r, owner.ID)
		if err != nil {
			return err
		}
		if protect != nil && bytes.Equal(cr.ID, protect) {
			return problem(http.StatusConflict, "replacement_key",
				"This key was enrolled during this recovery: a recovery session cannot revoke it. Sign in with it to manage your keys.")
		}
		if cr.Revoked() {
			out = keyOf(*cr)
			return nil
		}
		if guard {
			all, err := tx.Credentials(owner.ID)
			if err != nil {
				return err
			}
			usable := 0
			for _, o := range all {
				if !o.Revoked() {
					usable++
				}
			}
			if usable <= 1 {
				return problem(http.StatusConflict, "last_key",
					"This is your last key: revoking it would lock you out. Enroll another key first, or use account recovery.")
			}
		}
		if err := tx.RevokeCredential(cr.ID, now, req.Reason); err != nil {
			return err
		}
		cr.RevokedAt, cr.RevokeReason = now, req.Reason
		out = keyOf(*cr)
		revoked = true
		details := map[string]string{"reason": req.Reason}
		if c.session.Scope != storage.ScopeFull {
			details["scope"] = string(c.session.Scope)
		}
		return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionCredentialRevoked, owner.Name, cr.ID, details)
	})
	if err != nil {
		return err
	}
	if revoked {
		s.cfg.Metrics.KeyEvent(metrics.KeyRevoked)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeMyKey revokes one of the caller's keys: it needs a sign-in
// within StepUpWindow, and the last usable key is kept. A recovery
// session is itself the step-up (the user proved who they are on their
// phone, with a code or to the helpdesk, minutes ago) and is there to
// revoke lost keys: it may revoke the last one, the replacement being
// enrolled in the same session, before or after; but never a key
// registered by the session, the replacement, which is what the user
// signs in with next. It can do so only while it lasts
// (RecoverySessionTTL).
func (s *Server) revokeMyKey(w http.ResponseWriter, r *http.Request, c *caller) error {
	if c.session.Scope == storage.ScopeRecovery {
		// A session that registered nothing yet protects nothing: a
		// nil key matches none.
		return s.revoke(w, r, c, c.user, false, c.session.RegisteredKey)
	}
	if age := s.cfg.Now().Sub(c.session.AuthTime); age > s.cfg.StepUpWindow {
		return problem(http.StatusForbidden, "step_up_required",
			"Revoking a key needs a fresh sign-in: sign in with another key, then try again within %d minutes.", int(s.cfg.StepUpWindow/time.Minute))
	}
	return s.revoke(w, r, c, c.user, true, nil)
}

// revokeUserKey is the helpdesk revoking a user's key (lost or stolen),
// which may be the last one: the user then enrolls anew with a grant.
func (s *Server) revokeUserKey(w http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	if err := mayManage(c, u); err != nil {
		return err
	}
	return s.revoke(w, r, c, u, false, nil)
}
