package server

import (
	"crypto/rand"
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

func (s *Server) me(w http.ResponseWriter, r *http.Request, c *caller) error {
	writeJSON(w, http.StatusOK, api.Me{User: userOf(c.user), Scope: string(c.session.Scope), ExpiresAt: c.session.ExpiresAt, AuthTime: c.session.AuthTime})
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, c *caller) error {
	err := s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error { return tx.DeleteSession(c.session.TokenHash) })
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// queryInt reads an optional integer query parameter within [1, max].
func queryInt(r *http.Request, name string, def, max int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, problem(http.StatusBadRequest, "bad_query", "%s must be a number from 1 to %d.", name, max)
	}
	return n, nil
}

func (s *Server) searchUsers(w http.ResponseWriter, r *http.Request, c *caller) error {
	limit, err := queryInt(r, "limit", 20, 100)
	if err != nil {
		return err
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > 64 {
		return problem(http.StatusBadRequest, "bad_query", "q is at most 64 bytes.")
	}
	users, err := s.cfg.Store.SearchUsers(r.Context(), q, limit)
	if err != nil {
		return err
	}
	out := api.Users{Users: []api.User{}}
	for i := range users {
		out.Users = append(out.Users, userOf(&users[i]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// mayManage refuses a helpdesk member acting on an account that holds a
// role (helpdesk or admin): an enrollment code for an admin account would
// let its issuer enroll their own key there and become admin. Admins may
// act on every account.
// errUserDisabled is a code issued for, or a key provisioned for, a
// disabled account.
var errUserDisabled = problem(http.StatusConflict, "user_disabled", "This account is disabled: enable it first.")

func mayManage(c *caller, target *storage.User) error {
	if c.user.HasRole(storage.RoleAdmin) || len(target.Roles) == 0 ||
		(!target.HasRole(storage.RoleHelpdesk) && !target.HasRole(storage.RoleAdmin)) {
		return nil
	}
	return problem(http.StatusForbidden, "admin_only",
		"Only an admin may issue codes for, or revoke keys of, a helpdesk or admin account.")
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, userOf(u))
	return nil
}

// auditEntries is the body of an audit listing.
type auditEntries struct {
	Entries []audit.Entry `json:"entries"`
}

func (s *Server) userAudit(w http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := s.pathUser(r)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 50, 500)
	if err != nil {
		return err
	}
	entries, err := s.cfg.Store.AuditForUser(r.Context(), u.Name, limit)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []audit.Entry{}
	}
	writeJSON(w, http.StatusOK, auditEntries{Entries: entries})
	return nil
}

// checkName accepts user names of 1 to 64 bytes of lower-case letters,
// digits and . _ @ -, so that names read the same everywhere.
func checkName(n string) error {
	ok := n != "" && len(n) <= 64
	for _, r := range n {
		ok = ok && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r))
	}
	if !ok {
		return problem(http.StatusBadRequest, "bad_name", "A user name is 1 to 64 lower-case letters, digits and . _ @ -.")
	}
	return nil
}

// parseRoles checks roles and adds "user", which everyone has.
func parseRoles(in []string) ([]storage.Role, error) {
	roles := []storage.Role{storage.RoleUser}
	for _, r := range in {
		role := storage.Role(r)
		if !role.Known() {
			return nil, problem(http.StatusBadRequest, "bad_role", "Unknown role %q: the roles are user, helpdesk and admin.", r)
		}
		if !slices.Contains(roles, role) {
			roles = append(roles, role)
		}
	}
	return roles, nil
}

func rolesString(roles []storage.Role) string {
	var s []string
	for _, r := range roles {
		s = append(s, string(r))
	}
	return strings.Join(s, ",")
}

// NewUser returns a user with a fresh random WebAuthn user handle.
func NewUser(name, displayName string, roles []storage.Role, now time.Time) storage.User {
	id := make([]byte, 32)
	rand.Read(id)
	return storage.User{ID: id, Name: name, DisplayName: displayName, Roles: roles, CreatedAt: now.UTC().Truncate(time.Microsecond)}
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req api.CreateUserRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	req.Name = normalizeName(req.Name)
	if err := checkName(req.Name); err != nil {
		return err
	}
	if len(req.DisplayName) > 128 {
		return problem(http.StatusBadRequest, "bad_display_name", "A display name is at most 128 bytes.")
	}
	roles, err := parseRoles(req.Roles)
	if err != nil {
		return err
	}
	u := NewUser(req.Name, req.DisplayName, roles, s.cfg.Now())
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		if err := tx.CreateUser(u); errors.Is(err, storage.ErrConflict) {
			return problem(http.StatusConflict, "user_exists", "A user named %q exists.", u.Name)
		} else if err != nil {
			return err
		}
		return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionUserCreated, u.Name, nil, map[string]string{"roles": rolesString(roles)})
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, userOf(&u))
	return nil
}

func (s *Server) setRoles(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req api.SetRolesRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	roles, err := parseRoles(req.Roles)
	if err != nil {
		return err
	}
	var out api.User
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		u, err := tx.UserByName(normalizeName(r.PathValue("name")))
		if errors.Is(err, storage.ErrNotFound) {
			return errUserNotFound
		} else if err != nil {
			return err
		}
		if u.Name == c.user.Name && !slices.Contains(roles, storage.RoleAdmin) {
			return problem(http.StatusConflict, "own_admin_role", "You cannot remove your own admin role: ask another admin.")
		}
		if err := tx.SetUserRoles(u.ID, roles); err != nil {
			return err
		}
		u.Roles = roles
		out = userOf(u)
		return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionRoleChanged, u.Name, nil, map[string]string{"roles": rolesString(roles)})
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) setDisabled(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req api.SetDisabledRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	var out api.User
	err := s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		u, err := tx.UserByName(normalizeName(r.PathValue("name")))
		if errors.Is(err, storage.ErrNotFound) {
			return errUserNotFound
		} else if err != nil {
			return err
		}
		if u.Name == c.user.Name && req.Disabled {
			return problem(http.StatusConflict, "disable_self", "You cannot disable your own account.")
		}
		if err := tx.SetUserDisabled(u.ID, req.Disabled); err != nil {
			return err
		}
		u.Disabled = req.Disabled
		out = userOf(u)
		return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionUserDisabled, u.Name, nil, map[string]string{"disabled": boolString(req.Disabled)})
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// exportAudit streams the whole audit log as JSONL (audit.WriteJSONL),
// for `keydesk-rp audit verify`.
func (s *Server) exportAudit(w http.ResponseWriter, r *http.Request, c *caller) error {
	var failed error
	entries := storage.AllAudit(r.Context(), s.cfg.Store, &failed)
	w.Header().Set("Content-Type", "application/x-ndjson")
	if err := audit.WriteJSONL(w, entries); err != nil {
		return err
	}
	if failed != nil {
		// The status line is gone: the export ends short, which verify
		// reports against the head.
		s.cfg.Logger.ErrorContext(r.Context(), "audit export", "err", failed)
	}
	return nil
}
