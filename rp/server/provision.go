package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/metrics"
	"github.com/keydesk/keydesk/rp/storage"
)

// Enterprise provisioning: an admin registers a key on behalf of the user
// the path names (as Microsoft Entra's "provision FIDO2 security keys on
// behalf of users"). The ceremony is of its own kind, bound to the
// admin's session and to the user, so that neither can finish it
// elsewhere; the policy applies exactly as to a self-enrollment; the key
// is stored marked provisioned-by (the admin, its creation time, the
// batch) and the audit log records the admin as actor.

// provisionBegin answers creation options for the user the path names.
func (s *Server) provisionBegin(w http.ResponseWriter, r *http.Request, c *caller) error {
	defer s.timeCeremony(metrics.CeremonyRegistrationBegin)()
	var req api.ProvisionBeginRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	if err := checkNickname(req.Nickname); err != nil {
		return err
	}
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	if u.Disabled {
		return errUserDisabled
	}
	pol, err := s.policy(r.Context())
	if err != nil {
		return err
	}
	wu, err := s.loadUser(r.Context(), u)
	if err != nil {
		return err
	}
	creation, sd, err := s.creationOptions(wu, pol)
	if err != nil {
		return err
	}
	return s.beginCeremony(w, r, storage.Ceremony{
		Kind: storage.CeremonyProvisioning, UserID: u.ID,
		SessionHash: c.session.TokenHash, Nickname: req.Nickname,
	}, sd, creation.Response)
}

// provisionFinish verifies the key registered on the user's behalf and
// stores it, marked as provisioned by the caller in the request's batch.
// A retried finish gets its first answer, as a registration's does.
func (s *Server) provisionFinish(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req api.ProvisionFinishRequest
	body, err := s.readJSON(w, r, &req)
	if err != nil {
		return err
	}
	if err := checkNickname(req.Nickname); err != nil {
		return err
	}
	if err := checkBatch(req.Batch); err != nil {
		return err
	}
	defer s.timeCeremony(metrics.CeremonyRegistrationFinish)()
	reqHash := requestHash(body)
	parsed, err := protocol.ParseCredentialCreationResponseBytes(req.Credential)
	if err != nil {
		s.cfg.Metrics.Registration(metrics.ResultFailure)
		s.cfg.Metrics.AttestationFailed(metrics.AttestationReasonMalformed)
		return problem(http.StatusBadRequest, "bad_credential", "The credential is not a registration response: %s.", protocolReason(err))
	}
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	wu, err := s.loadUser(r.Context(), u)
	if err != nil {
		return err
	}
	pol, err := s.policy(r.Context())
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	stored, err := s.verifyRegistration(r.Context(),
		registrant{kind: storage.CeremonyProvisioning, user: u, sessionHash: c.session.TokenHash},
		wu, parsed, pol, req.CeremonyID, req.Nickname, now)
	if errors.Is(err, errCeremonyUsed) {
		if res, ok, rerr := s.replay(r.Context(), req.CeremonyID, reqHash); ok || rerr != nil {
			return writeRaw(w, res, rerr)
		}
	}
	if err != nil {
		s.cfg.Metrics.Registration(metrics.ResultFailure)
		return err
	}
	// Checked after the retry's answer: a batch that disabled the
	// account after provisioning its key still gets its first answer.
	if u.Disabled {
		return errUserDisabled
	}
	stored.ProvisionedBy, stored.Batch = c.user.Name, req.Batch
	result, err := json.Marshal(keyOf(stored))
	if err != nil {
		return err
	}
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		if err := tx.FinishCeremony(storage.CeremonyResult{CeremonyID: req.CeremonyID, RequestHash: reqHash, Result: result, CreatedAt: now}); err != nil {
			return consumeError(err)
		}
		if err := tx.CreateCredential(stored); errors.Is(err, storage.ErrConflict) {
			return problem(http.StatusConflict, "already_registered", "This key is already registered.")
		} else if err != nil {
			return err
		}
		return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionCredentialProvisioned, u.Name, stored.ID,
			map[string]string{"aaguid": formatAAGUID(stored.AAGUID), "attestation": stored.AttestationType, "batch": req.Batch})
	})
	if errors.Is(err, errCeremonyUsed) {
		if res, ok, rerr := s.replay(r.Context(), req.CeremonyID, reqHash); ok || rerr != nil {
			return writeRaw(w, res, rerr)
		}
	}
	if err != nil {
		s.cfg.Metrics.Registration(metrics.ResultFailure)
		return err
	}
	s.cfg.Metrics.Registration(metrics.ResultSuccess)
	s.cfg.Metrics.KeyEvent(metrics.KeyProvisioned)
	return writeRaw(w, result, nil)
}

// checkBatch applies a nickname's rules to a batch name, which the audit
// log and the results of a provisioning run show.
func checkBatch(b string) error {
	if len(b) > 64 || strings.ContainsFunc(b, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return problem(http.StatusBadRequest, "bad_batch", "A batch name is at most 64 bytes, without control characters.")
	}
	return nil
}
