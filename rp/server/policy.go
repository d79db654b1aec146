package server

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/storage"
)

func policyOf(p storage.Policy) api.Policy {
	return api.Policy{
		AllowedAAGUIDs: append([]string{}, p.AllowedAAGUIDs...), DeniedAAGUIDs: append([]string{}, p.DeniedAAGUIDs...),
		Attestation: orDefault(p.Attestation, "none"), UserVerification: orDefault(p.UserVerification, "preferred"),
		ResidentKey: orDefault(p.ResidentKey, "preferred"), RefuseCounterRegression: p.RefuseCounterRegression,
		RecoveryFourEyes: p.RecoveryFourEyes,
	}
}

// policyCache is the policy as last read.
type policyCache struct {
	mu     sync.Mutex
	p      storage.Policy
	readAt time.Time // zero: not read, or changed here
}

// policy is the store's policy, read at most once a Config.PolicyTTL.
func (s *Server) policy(ctx context.Context) (storage.Policy, error) {
	c := &s.pol
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readAt.IsZero() && time.Since(c.readAt) < s.cfg.PolicyTTL {
		return c.p, nil
	}
	p, err := s.cfg.Store.Policy(ctx)
	if err != nil {
		return storage.Policy{}, err
	}
	c.p, c.readAt = p, time.Now()
	return p, nil
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request, c *caller) error {
	p, err := s.cfg.Store.Policy(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, policyOf(p))
	return nil
}

// checkAAGUIDs normalizes a list of dashed AAGUIDs to lower case.
func checkAAGUIDs(field string, in []string) ([]string, error) {
	if len(in) > 1000 {
		return nil, problem(http.StatusBadRequest, "bad_policy", "%s lists at most 1000 AAGUIDs.", field)
	}
	out := []string{}
	for _, a := range in {
		id, err := assets.ParseAAGUID(a)
		if err != nil {
			return nil, problem(http.StatusBadRequest, "bad_policy", "%s: %q is not an AAGUID (a dashed UUID).", field, a)
		}
		out = append(out, formatAAGUID(id[:]))
	}
	return out, nil
}

func oneOf(field, v string, allowed ...string) error {
	if !slices.Contains(allowed, v) {
		return problem(http.StatusBadRequest, "bad_policy", "%s is one of: %s.", field, strings.Join(allowed, ", "))
	}
	return nil
}

func (s *Server) setPolicy(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req api.Policy
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	var p storage.Policy
	var err error
	if p.AllowedAAGUIDs, err = checkAAGUIDs("allowedAaguids", req.AllowedAAGUIDs); err != nil {
		return err
	}
	if p.DeniedAAGUIDs, err = checkAAGUIDs("deniedAaguids", req.DeniedAAGUIDs); err != nil {
		return err
	}
	p.Attestation = orDefault(req.Attestation, "none")
	p.UserVerification = orDefault(req.UserVerification, "preferred")
	p.ResidentKey = orDefault(req.ResidentKey, "preferred")
	p.RefuseCounterRegression = req.RefuseCounterRegression
	p.RecoveryFourEyes = req.RecoveryFourEyes
	if err := oneOf("attestation", p.Attestation, "none", "any", "verified"); err != nil {
		return err
	}
	if p.Attestation == "verified" && s.mds.Load() == nil {
		return problem(http.StatusBadRequest, "mds_not_configured",
			"attestation \"verified\" needs a FIDO Metadata Service BLOB, which this server was not started with (keydesk-rp serve --mds FILE): use \"any\".")
	}
	if err := oneOf("userVerification", p.UserVerification, "required", "preferred", "discouraged"); err != nil {
		return err
	}
	if err := oneOf("residentKey", p.ResidentKey, "required", "preferred", "discouraged"); err != nil {
		return err
	}
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		if err := tx.SetPolicy(p); err != nil {
			return err
		}
		return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionPolicyChanged, "", nil, map[string]string{
			"attestation": p.Attestation, "userVerification": p.UserVerification, "residentKey": p.ResidentKey,
			"allowed": strings.Join(p.AllowedAAGUIDs, ","), "denied": strings.Join(p.DeniedAAGUIDs, ","),
			"refuseCounterRegression": boolString(p.RefuseCounterRegression),
			"recoveryFourEyes":        boolString(p.RecoveryFourEyes),
		})
	})
	if err != nil {
		return err
	}
	s.pol.mu.Lock()
	s.pol.readAt = time.Time{}
	s.pol.mu.Unlock()
	writeJSON(w, http.StatusOK, policyOf(p))
	return nil
}
