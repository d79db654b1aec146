package local

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/server"
	"github.com/keydesk/keydesk/rp/storage"
)

// demoRoles are the demo account's roles: all of them, so that every
// screen of the app (own keys, helpdesk, admin) has something to show.
var demoRoles = []storage.Role{storage.RoleUser, storage.RoleHelpdesk, storage.RoleAdmin}

// demoRolesString is demoRoles as the audit log lists roles.
const demoRolesString = "user,helpdesk,admin"

// DemoAccount makes sure a local account named name exists with the
// roles user, helpdesk and admin, and, while it has no usable (unrevoked)
// key, issues it a fresh single-use enrollment code, valid for a day, and
// returns it; it returns "" once the account has a usable key. The code
// is issued by server.BootstrapAdmin, the keydesk-rp bootstrap-admin
// command's own, and audited as that command's are; a role added here is
// audited as a role change by keydesk-rp (via demo-account).
//
// Codes issued by earlier calls are left as they are: each is single use
// and expires within a day, and only this computer's user ever saw them.
// The store has no way to list a user's grants, and revoking them is the
// helpdesk's business.
//
// An account whose keys are all revoked gets no code (BootstrapAdmin
// refuses any account that has had a key), nor does a disabled one:
// both are an admin's doing, which the demo does not undo.
func (s *Server) DemoAccount(ctx context.Context, name string) (code string, err error) {
	// Fold the name as the server does, to find the account it would.
	name = strings.ToLower(strings.TrimSpace(name))
	u, creds, err := s.store.UserWithCredentials(ctx, name)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// BootstrapAdmin creates it, and checks the name.
	case err != nil:
		return "", fmt.Errorf("local: demo account %s: %w", name, err)
	case u.Disabled:
		return "", fmt.Errorf("local: demo account %s is disabled: an admin must enable it", name)
	default:
		// Before BootstrapAdmin, which refuses an account without the
		// admin role.
		if err := s.ensureDemoRoles(ctx, name); err != nil {
			return "", err
		}
		if slices.ContainsFunc(creds, func(c storage.Credential) bool { return !c.Revoked() }) {
			return "", nil
		}
	}
	code, _, err = server.BootstrapAdmin(ctx, s.cfg, name)
	if err != nil {
		return "", fmt.Errorf("local: demo account: %w", err)
	}
	// A new account has BootstrapAdmin's roles, user and admin.
	if err := s.ensureDemoRoles(ctx, name); err != nil {
		return "", err
	}
	return code, nil
}

// ensureDemoRoles gives the account name every role in demoRoles, with
// its audit entry, unless it has them.
func (s *Server) ensureDemoRoles(ctx context.Context, name string) error {
	err := s.store.Tx(ctx, func(tx storage.Tx) error {
		u, err := tx.UserByName(name)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(demoRoles, func(r storage.Role) bool { return !u.HasRole(r) }) {
			return nil
		}
		if err := tx.SetUserRoles(u.ID, demoRoles); err != nil {
			return err
		}
		_, err = tx.AppendAudit(audit.Entry{Actor: "keydesk-rp", ActorRole: audit.RoleSystem, Action: audit.ActionRoleChanged,
			Subject: u.Name, Details: map[string]string{"roles": demoRolesString, "via": "demo-account"}})
		return err
	})
	if err != nil {
		return fmt.Errorf("local: demo account %s: roles: %w", name, err)
	}
	return nil
}
