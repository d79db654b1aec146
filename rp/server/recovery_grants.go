package server

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/storage"
)

// Helpdesk-assisted recovery: a helpdesk member who checked the user's
// identity (every item of Config.RecoveryChecklist) issues a one-time
// code that redeems, at /v1/grants/redeem, to a recovery session. Under
// the recoveryFourEyes policy the grant waits for a second, different
// helpdesk member's approval: one member alone, or one whose account was
// taken over, cannot hand out an account.

// recoveryGrantOf is the API's view of a recovery grant; code is set
// only when it is issued.
func recoveryGrantOf(g storage.Grant, username, code string) api.RecoveryGrant {
	return api.RecoveryGrant{ID: g.ID, Code: code, Username: username, ExpiresAt: g.ExpiresAt, IssuedBy: g.IssuedBy,
		Verification: append([]string{}, g.Verification...), Note: g.Note, Pending: g.Pending(), ApprovedBy: g.ApprovedBy}
}

// recoveryChecklist tells the helpdesk screens what to check.
func (s *Server) recoveryChecklist(w http.ResponseWriter, r *http.Request, c *caller) error {
	pol, err := s.policy(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.RecoveryChecklist{Items: append([]string{}, s.cfg.RecoveryChecklist...), FourEyes: pol.RecoveryFourEyes})
	return nil
}

// checkVerification requires every checklist item, and only those.
func (s *Server) checkVerification(items []string) ([]string, error) {
	var out []string
	for _, it := range items {
		if !slices.Contains(s.cfg.RecoveryChecklist, it) {
			return nil, problem(http.StatusBadRequest, "bad_verification", "%.64q is not a checklist item; they are: %s.",
				it, strings.Join(s.cfg.RecoveryChecklist, ", "))
		}
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	var missing []string
	for _, it := range s.cfg.RecoveryChecklist {
		if !slices.Contains(out, it) {
			missing = append(missing, it)
		}
	}
	if len(missing) > 0 {
		return nil, problem(http.StatusBadRequest, "incomplete_verification",
			"Check every item of the recovery checklist before issuing a recovery code; missing: %s.", strings.Join(missing, ", "))
	}
	return out, nil
}

// checkNote accepts a note of at most 500 bytes, without control
// characters but line breaks.
func checkNote(n string) (string, error) {
	n = strings.TrimSpace(n)
	if len(n) > 500 || strings.ContainsFunc(n, func(r rune) bool { return (r < 0x20 && r != '\n') || r == 0x7f }) {
		return "", problem(http.StatusBadRequest, "bad_note", "A note is at most 500 bytes, without control characters.")
	}
	return n, nil
}

// issueRecoveryGrant is a helpdesk member vouching for a locked-out
// user: a one-time code for a recovery session, pending a second
// member's approval under the four-eyes policy.
func (s *Server) issueRecoveryGrant(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req api.IssueRecoveryGrantRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	verification, err := s.checkVerification(req.Verification)
	if err != nil {
		return err
	}
	note, err := checkNote(req.Note)
	if err != nil {
		return err
	}
	if req.TTLSeconds == 0 {
		req.TTLSeconds = 3600
	}
	if req.TTLSeconds < 60 || req.TTLSeconds > 86400 {
		return problem(http.StatusBadRequest, "bad_ttl", "ttlSeconds is from 60 (one minute) to 86400 (a day).")
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
	pol, err := s.policy(r.Context())
	if err != nil {
		return err
	}
	shape := func(g *storage.Grant) {
		g.Verification, g.Note, g.NeedsApproval = verification, note, pol.RecoveryFourEyes
	}
	g, code, err := s.grant(r.Context(), u, storage.GrantRecovery, time.Duration(req.TTLSeconds)*time.Second, 1, c.user.Name, shape,
		func(tx storage.Tx, g storage.Grant) error {
			return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionGrantIssued, u.Name, nil, map[string]string{
				"id": g.ID, "kind": string(g.Kind), "expires": g.ExpiresAt.Format(time.RFC3339), "uses": strconv.Itoa(g.MaxUses),
				"verification": strings.Join(g.Verification, ","), "note": g.Note, "fourEyes": boolString(g.NeedsApproval),
			})
		})
	if err != nil {
		return err
	}
	s.notify(r, u.Name, NotifyRecoveryGrantIssued, "")
	writeJSON(w, http.StatusCreated, recoveryGrantOf(g, u.Name, code))
	return nil
}

// approveRecoveryGrant is the second pair of eyes: another helpdesk
// member than the issuer, allowed to manage the account, approves a
// pending grant, which can then be redeemed.
func (s *Server) approveRecoveryGrant(w http.ResponseWriter, r *http.Request, c *caller) error {
	id := r.PathValue("id")
	errNotFound := problem(http.StatusNotFound, "grant_not_found", "No such recovery grant.")
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	var out api.RecoveryGrant
	var subject string
	err := s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		g, err := tx.Grant(id)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && g.Kind != storage.GrantRecovery) {
			return errNotFound
		} else if err != nil {
			return err
		}
		u, err := tx.UserByID(g.UserID)
		if err != nil {
			return err
		}
		if err := mayManage(c, u); err != nil {
			return err
		}
		switch {
		case g.IssuedBy == c.user.Name:
			return problem(http.StatusForbidden, "self_approval", "You issued this grant: another helpdesk member must approve it.")
		case !g.NeedsApproval:
			return problem(http.StatusConflict, "not_pending", "This grant needs no approval.")
		}
		approved, err := tx.ApproveGrant(id, c.user.Name, now)
		switch {
		case errors.Is(err, storage.ErrConsumed):
			return problem(http.StatusConflict, "already_approved", "This grant was already approved (or revoked).")
		case errors.Is(err, storage.ErrExpired):
			return problem(http.StatusGone, "grant_expired", "This grant has expired: issue a new one.")
		case errors.Is(err, storage.ErrConflict):
			return problem(http.StatusForbidden, "self_approval", "You issued this grant: another helpdesk member must approve it.")
		case err != nil:
			return err
		}
		out, subject = recoveryGrantOf(*approved, u.Name, ""), u.Name
		return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionRecoveryApproved, u.Name, nil,
			map[string]string{"id": approved.ID, "method": "helpdesk", "issuer": approved.IssuedBy})
	})
	if err != nil {
		return err
	}
	s.notify(r, subject, NotifyRecoveryGrantApproved, "")
	writeJSON(w, http.StatusOK, out)
	return nil
}
