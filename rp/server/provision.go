package server

import (
	"context"
	"net/http"
	"strings"

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
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	return s.finishRegistration(w, r, registrationFinish{
		reg:        registrant{kind: storage.CeremonyProvisioning, user: u, sessionHash: c.session.TokenHash},
		ceremonyID: req.CeremonyID, nickname: req.Nickname, credential: req.Credential, reqHash: requestHash(body),
		keyEvent: metrics.KeyProvisioned,
		// After the retry's answer: a batch that disabled the account
		// after provisioning its key still gets its first answer.
		check: func() error {
			if u.Disabled {
				return errUserDisabled
			}
			return nil
		},
		answer: func(_ context.Context, _ *waUser, stored *storage.Credential) (api.Key, error) {
			stored.ProvisionedBy, stored.Batch = c.user.Name, req.Batch
			return keyOf(*stored), nil
		},
		audit: func(tx storage.Tx, stored storage.Credential) error {
			return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionCredentialProvisioned, u.Name, stored.ID,
				map[string]string{"aaguid": formatAAGUID(stored.AAGUID), "attestation": stored.AttestationType, "batch": req.Batch})
		},
	})
}

// checkBatch applies a nickname's rules to a batch name, which the audit
// log and the results of a provisioning run show.
func checkBatch(b string) error {
	if len(b) > 64 || strings.ContainsFunc(b, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return problem(http.StatusBadRequest, "bad_batch", "A batch name is at most 64 bytes, without control characters.")
	}
	return nil
}
