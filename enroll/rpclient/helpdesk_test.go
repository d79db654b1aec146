package rpclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
)

// org is a reference RP staffed as the helpdesk tests need, set up
// through the client's own calls: root (admin) created hd1 and hd2, made
// them helpdesk members and issued their enrollment codes, which they
// redeemed to enroll a key and sign in with it; root also created alice,
// a plain user without a key.
type org struct {
	e              *rpEnv
	root, hd1, hd2 *rpclient.Client
	// rootKey is root's key, as root's key list gives it.
	rootKey api.Key
}

// user is the plain user of an org, as the helpdesk calls her.
const user = "alice"

func newOrg(t *testing.T) *org {
	t.Helper()
	ctx := context.Background()
	e := newRP(t, envOptions{})
	root := enrolledAdmin(t, e, newKey(t))
	keys, err := root.MyKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("root's keys: %+v, %v", keys, err)
	}
	staff := func(name string) *rpclient.Client {
		u, err := root.CreateUser(ctx, api.CreateUserRequest{Name: name, DisplayName: "Helpdesk " + name})
		if err != nil || u.Name != name || !slices.Equal(u.Roles, []string{"user"}) || u.ID == "" {
			t.Fatalf("CreateUser(%s) = %+v, %v", name, u, err)
		}
		u, err = root.SetRoles(ctx, name, []string{"helpdesk"})
		if err != nil || !slices.Equal(u.Roles, []string{"user", "helpdesk"}) {
			t.Fatalf("SetRoles(%s) = %+v, %v", name, u, err)
		}
		g, err := root.IssueGrant(ctx, name, api.IssueGrantRequest{})
		if err != nil {
			t.Fatalf("IssueGrant(%s): %v", name, err)
		}
		c, _, _ := redeemAndSignIn(t, e, name, g.Code)
		return c
	}
	o := &org{e: e, root: root, hd1: staff("hd1"), hd2: staff("hd2"), rootKey: keys[0]}
	if _, err := root.CreateUser(ctx, api.CreateUserRequest{Name: user, DisplayName: "Alice Liddell"}); err != nil {
		t.Fatalf("CreateUser(%s): %v", user, err)
	}
	return o
}

// redeemAndSignIn is a user at their desk with a code from the helpdesk:
// a new client redeems it, enrolls a new key and signs in with it.
func redeemAndSignIn(t *testing.T, e *rpEnv, name, code string) (*rpclient.Client, *testKey, *api.Key) {
	t.Helper()
	c := newClient(t, e.url, nil)
	s, _, err := c.RedeemGrant(context.Background(), name, code)
	if err != nil || s.Scope != "register" || s.User.Name != name {
		t.Fatalf("RedeemGrant(%s) = %+v, %v", name, s, err)
	}
	k := newKey(t)
	reg := enroll(t, c, k, name+"'s key", "")
	signIn(t, c, k, name)
	return c, k, reg
}

// wantCode fails the test unless err is an *rpclient.Error with the API
// code code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if re := asError(t, err); re.Code != code {
		t.Fatalf("error %q has code %q, want %q", err, re.Code, code)
	}
}

// TestHelpdeskEnrollsAUser: hd1 finds alice, reads her account, keys and
// audit trail, and issues her an enrollment code, which she redeems to
// enroll her key.
func TestHelpdeskEnrollsAUser(t *testing.T) {
	ctx := context.Background()
	o := newOrg(t)

	found, err := o.hd1.SearchUsers(ctx, "LIDDELL", 0)
	if err != nil || len(found) != 1 || found[0].Name != user {
		t.Fatalf("SearchUsers(LIDDELL) = %+v, %v; want alice, by her display name", found, err)
	}
	if all, err := o.hd1.SearchUsers(ctx, "", 2); err != nil || len(all) != 2 {
		t.Fatalf("SearchUsers limited to 2 = %d users, %v (4 exist)", len(all), err)
	}
	u, err := o.hd1.User(ctx, user)
	if err != nil || u.Name != user || u.DisplayName != "Alice Liddell" || !slices.Equal(u.Roles, []string{"user"}) || u.Disabled {
		t.Fatalf("User = %+v, %v", u, err)
	}
	if keys, err := o.hd1.UserKeys(ctx, user); err != nil || len(keys) != 0 {
		t.Fatalf("UserKeys before enrolling = %+v, %v", keys, err)
	}

	g, err := o.hd1.IssueGrant(ctx, user, api.IssueGrantRequest{TTLSeconds: 600})
	if err != nil {
		t.Fatalf("IssueGrant: %v", err)
	}
	if g.Username != user || g.Kind != "enrollment" || g.MaxUses != 1 || g.ID == "" || g.ExpiresAt.Sub(o.e.clock.Now()) != 10*time.Minute {
		t.Fatalf("grant %+v (now %v)", g, o.e.clock.Now())
	}
	_, _, reg := redeemAndSignIn(t, o.e, user, g.Code)

	keys, err := o.hd1.UserKeys(ctx, user)
	if err != nil || len(keys) != 1 || keys[0].ID != reg.ID || keys[0].Nickname != "alice's key" {
		t.Fatalf("UserKeys = %+v, %v; want the key alice enrolled, %s", keys, err, reg.ID)
	}

	entries, err := o.hd1.UserAudit(ctx, user, 0)
	if err != nil {
		t.Fatalf("UserAudit: %v", err)
	}
	var actions []audit.Action
	for i, en := range entries {
		actions = append(actions, en.Action)
		if h, err := en.ComputeHash(); err != nil || h != en.Hash {
			t.Errorf("entry %d (seq %d) does not hash to its Hash: %v", i, en.Seq, err)
		}
		if i > 0 && en.Seq >= entries[i-1].Seq {
			t.Errorf("entries not newest first: seq %d after %d", en.Seq, entries[i-1].Seq)
		}
		if en.Action == audit.ActionGrantIssued && (en.Actor != "hd1" || en.ActorRole != audit.RoleHelpdesk || en.Details["id"] != g.ID) {
			t.Errorf("the code's issue: %+v", en)
		}
	}
	for _, want := range []audit.Action{audit.ActionUserCreated, audit.ActionGrantIssued, audit.ActionGrantRedeemed,
		audit.ActionCredentialRegistered, audit.ActionLoginSucceeded} {
		if !slices.Contains(actions, want) {
			t.Errorf("alice's audit trail %v lacks %s", actions, want)
		}
	}
	if b, _ := json.Marshal(entries); strings.Contains(string(b), g.Code) {
		t.Error("the audit trail holds the enrollment code")
	}
	newest, err := o.hd1.UserAudit(ctx, user, 1)
	if err != nil || len(newest) != 1 || newest[0].Seq != entries[0].Seq {
		t.Fatalf("UserAudit limited to 1 = %+v, %v", newest, err)
	}
}

// TestHelpdeskRecoveryGrantWithFourEyes: under the four-eyes policy, a
// recovery grant needs the whole checklist, waits for a second member's
// approval (its redemption refused until then; its issuer's approval
// refused), and then redeems once to a recovery session.
func TestHelpdeskRecoveryGrantWithFourEyes(t *testing.T) {
	ctx := context.Background()
	o := newOrg(t)

	cl, err := o.hd1.RecoveryChecklist(ctx)
	if err != nil || len(cl.Items) != 3 || cl.FourEyes {
		t.Fatalf("RecoveryChecklist = %+v, %v; want the three default items, no four eyes", cl, err)
	}
	pol, err := o.root.Policy(ctx)
	if err != nil || pol.RecoveryFourEyes || pol.Attestation != "none" {
		t.Fatalf("Policy = %+v, %v", pol, err)
	}
	pol.RecoveryFourEyes = true
	if set, err := o.root.SetPolicy(ctx, *pol); err != nil || !set.RecoveryFourEyes || set.Attestation != "none" || set.UserVerification != pol.UserVerification {
		t.Fatalf("SetPolicy = %+v, %v", set, err)
	}
	if cl, err = o.hd1.RecoveryChecklist(ctx); err != nil || !cl.FourEyes {
		t.Fatalf("RecoveryChecklist after the policy change = %+v, %v", cl, err)
	}

	for _, tt := range []struct {
		name, code string
		items      []string
	}{
		{"ShouldRefuseAMissingItem", "incomplete_verification", cl.Items[1:]},
		{"ShouldRefuseAnItemNotOnTheList", "bad_verification", append(slices.Clone(cl.Items), "horoscope")},
		{"ShouldRefuseNoItems", "incomplete_verification", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := o.hd1.IssueRecoveryGrant(ctx, user, api.IssueRecoveryGrantRequest{Verification: tt.items})
			wantIs(t, err, rpclient.ErrVerificationIncomplete, rpclient.ErrBadRequest)
			wantCode(t, err, tt.code)
		})
	}

	const note = "Called back on the number on file; manager confirmed."
	g, err := o.hd1.IssueRecoveryGrant(ctx, user, api.IssueRecoveryGrantRequest{Verification: cl.Items, Note: note})
	if err != nil {
		t.Fatalf("IssueRecoveryGrant: %v", err)
	}
	if !g.Pending || g.IssuedBy != "hd1" || g.Username != user || g.Code == "" || g.Note != note ||
		!slices.Equal(g.Verification, cl.Items) || g.ApprovedBy != "" {
		t.Fatalf("grant %+v", g)
	}

	_, _, err = newClient(t, o.e.url, nil).RedeemGrant(ctx, user, g.Code)
	wantIs(t, err, rpclient.ErrGrantPending, rpclient.ErrForbidden)
	if strings.Contains(err.Error(), g.Code) {
		t.Fatalf("error %q holds the code", err)
	}
	_, err = o.hd1.ApproveRecoveryGrant(ctx, g.ID)
	wantIs(t, err, rpclient.ErrSelfApproval, rpclient.ErrForbidden)
	_, err = o.hd2.ApproveRecoveryGrant(ctx, "AAAAAAAAAAAAAAAAAAAAAA")
	wantIs(t, err, rpclient.ErrNotFound)

	approved, err := o.hd2.ApproveRecoveryGrant(ctx, g.ID)
	if err != nil || approved.Pending || approved.ApprovedBy != "hd2" || approved.IssuedBy != "hd1" || approved.ID != g.ID || approved.Code != "" {
		t.Fatalf("ApproveRecoveryGrant = %+v, %v", approved, err)
	}
	_, err = o.hd2.ApproveRecoveryGrant(ctx, g.ID)
	wantIs(t, err, rpclient.ErrAlreadyApproved, rpclient.ErrConflict)

	c := newClient(t, o.e.url, nil)
	sess, token, err := c.RedeemGrant(ctx, user, g.Code)
	if err != nil || sess.Scope != "recovery" || sess.User.Name != user || token == "" || c.Token() != token {
		t.Fatalf("RedeemGrant of the approved grant = %+v, %v", sess, err)
	}
	if me, err := c.Me(ctx); err != nil || me.Scope != "recovery" {
		t.Fatalf("Me = %+v, %v", me, err)
	}
	enroll(t, c, newKey(t), "replacement", "") // what a recovery session is for
	_, _, err = newClient(t, o.e.url, nil).RedeemGrant(ctx, user, g.Code)
	wantIs(t, err, rpclient.ErrUnauthorized)
}

// TestHelpdeskRevokesAUsersKey: hd1 revokes alice's only key with a
// reason (no step-up, no last-key guard for the helpdesk); a repeat
// answers as the first did; the key can no longer sign in.
func TestHelpdeskRevokesAUsersKey(t *testing.T) {
	ctx := context.Background()
	o := newOrg(t)
	g, err := o.hd1.IssueGrant(ctx, user, api.IssueGrantRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, k, reg := redeemAndSignIn(t, o.e, user, g.Code)
	o.e.clock.Advance(30 * time.Minute) // past the step-up window, which binds only owners

	revoked, err := o.hd1.RevokeUserKey(ctx, user, reg.ID, "stolen")
	if err != nil || revoked.ID != reg.ID || revoked.RevokedAt == nil || revoked.RevokeReason != "stolen" {
		t.Fatalf("RevokeUserKey = %+v, %v", revoked, err)
	}
	again, err := o.hd1.RevokeUserKey(ctx, user, reg.ID, "lost")
	if err != nil || again.RevokeReason != "stolen" || !again.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Fatalf("a second revocation = %+v, %v; want the first one's answer", again, err)
	}
	if keys, err := o.hd1.UserKeys(ctx, user); err != nil || len(keys) != 1 || keys[0].RevokedAt == nil {
		t.Fatalf("UserKeys = %+v, %v", keys, err)
	}
	if es, err := o.hd1.UserAudit(ctx, user, 1); err != nil || len(es) != 1 || es[0].Action != audit.ActionCredentialRevoked ||
		es[0].Actor != "hd1" || es[0].Details["reason"] != "stolen" {
		t.Fatalf("newest audit entry = %+v, %v", es, err)
	}

	c := newClient(t, o.e.url, nil)
	id, options, _, err := c.LoginBegin(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.LoginFinish(ctx, id, k.get(t, options))
	wantIs(t, err, rpclient.ErrKeyRevoked)

	_, err = o.hd1.RevokeUserKey(ctx, user, "AAAAAAAAAAAAAAAAAAAAAA", "lost")
	wantIs(t, err, rpclient.ErrNotFound)
	wantCode(t, err, "key_not_found")
	_, err = o.hd1.RevokeUserKey(ctx, user, reg.ID, "")
	wantIs(t, err, rpclient.ErrBadRequest)
}

// TestHelpdeskRefusals: what each kind of caller may not do arrives as
// ErrForbidden (or the typed conflict), and leaves the state unchanged.
func TestHelpdeskRefusals(t *testing.T) {
	ctx := context.Background()
	o := newOrg(t)
	g, err := o.root.IssueGrant(ctx, user, api.IssueGrantRequest{})
	if err != nil {
		t.Fatal(err)
	}
	alice, _, aliceKey := redeemAndSignIn(t, o.e, user, g.Code)
	cl, err := o.hd1.RecoveryChecklist(ctx)
	if err != nil {
		t.Fatal(err)
	}
	verified := api.IssueRecoveryGrantRequest{Verification: cl.Items}
	nobody := newClient(t, o.e.url, nil)

	tests := []struct {
		name string
		run  func() error
		want []error
		code string
	}{
		// A helpdesk member acting on a helpdesk or admin account.
		{"ShouldRefuseACodeForAnAdminToTheHelpdesk", func() error {
			_, err := o.hd1.IssueGrant(ctx, admin, api.IssueGrantRequest{})
			return err
		}, []error{rpclient.ErrForbidden}, "admin_only"},
		{"ShouldRefuseRevokingAnAdminsKeyToTheHelpdesk", func() error {
			_, err := o.hd1.RevokeUserKey(ctx, admin, o.rootKey.ID, "lost")
			return err
		}, []error{rpclient.ErrForbidden}, "admin_only"},
		{"ShouldRefuseRecoveringAHelpdeskAccountToTheHelpdesk", func() error {
			_, err := o.hd1.IssueRecoveryGrant(ctx, "hd2", verified)
			return err
		}, []error{rpclient.ErrForbidden}, "admin_only"},

		// A plain user on the helpdesk's routes.
		{"ShouldRefuseSearchToAUser", func() error { _, err := alice.SearchUsers(ctx, "", 0); return err },
			[]error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseReadingAnAccountToAUser", func() error { _, err := alice.User(ctx, "hd1"); return err },
			[]error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseAnotherUsersKeysToAUser", func() error { _, err := alice.UserKeys(ctx, admin); return err },
			[]error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseAnAuditTrailToAUser", func() error { _, err := alice.UserAudit(ctx, user, 0); return err },
			[]error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseIssuingOneselfACodeToAUser", func() error {
			_, err := alice.IssueGrant(ctx, user, api.IssueGrantRequest{})
			return err
		}, []error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseTheHelpdesksRevocationToAUser", func() error {
			_, err := alice.RevokeUserKey(ctx, admin, o.rootKey.ID, "lost")
			return err
		}, []error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseTheChecklistToAUser", func() error { _, err := alice.RecoveryChecklist(ctx); return err },
			[]error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseARecoveryGrantToAUser", func() error {
			_, err := alice.IssueRecoveryGrant(ctx, user, verified)
			return err
		}, []error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseTheHelpdeskWithoutASession", func() error { _, err := nobody.SearchUsers(ctx, "", 0); return err },
			[]error{rpclient.ErrUnauthorized}, "unauthenticated"},

		// A helpdesk member on the admins' routes.
		{"ShouldRefuseCreatingAUserToTheHelpdesk", func() error {
			_, err := o.hd1.CreateUser(ctx, api.CreateUserRequest{Name: "mallory", Roles: []string{"admin"}})
			return err
		}, []error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseRolesToTheHelpdesk", func() error {
			_, err := o.hd1.SetRoles(ctx, "hd1", []string{"helpdesk", "admin"})
			return err
		}, []error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseDisablingToTheHelpdesk", func() error { _, err := o.hd1.SetDisabled(ctx, user, true); return err },
			[]error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseThePolicyToTheHelpdesk", func() error { _, err := o.hd1.Policy(ctx); return err },
			[]error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseChangingThePolicyToTheHelpdesk", func() error {
			_, err := o.hd1.SetPolicy(ctx, api.Policy{})
			return err
		}, []error{rpclient.ErrForbidden}, "forbidden"},
		{"ShouldRefuseTheAuditExportToTheHelpdesk", func() error { _, err := o.hd1.ExportAudit(ctx, 0); return err },
			[]error{rpclient.ErrForbidden}, "forbidden"},

		// What even an admin may not do.
		{"ShouldRefuseATakenName", func() error {
			_, err := o.root.CreateUser(ctx, api.CreateUserRequest{Name: "HD1"})
			return err
		}, []error{rpclient.ErrUserExists, rpclient.ErrConflict}, "user_exists"},
		{"ShouldRefuseANameTheServerDoesNotTake", func() error {
			_, err := o.root.CreateUser(ctx, api.CreateUserRequest{Name: "jane doe"})
			return err
		}, []error{rpclient.ErrBadRequest}, "bad_name"},
		{"ShouldRefuseAnUnknownRole", func() error { _, err := o.root.SetRoles(ctx, user, []string{"root"}); return err },
			[]error{rpclient.ErrBadRequest}, "bad_role"},
		{"ShouldRefuseDroppingOnesOwnAdminRole", func() error { _, err := o.root.SetRoles(ctx, admin, nil); return err },
			[]error{rpclient.ErrConflict}, "own_admin_role"},
		{"ShouldRefuseDisablingOneself", func() error { _, err := o.root.SetDisabled(ctx, admin, true); return err },
			[]error{rpclient.ErrConflict}, "disable_self"},
		{"ShouldRefuseVerifiedAttestationWithoutMetadata", func() error {
			_, err := o.root.SetPolicy(ctx, api.Policy{Attestation: "verified"})
			return err
		}, []error{rpclient.ErrBadRequest}, "mds_not_configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			wantIs(t, err, tt.want...)
			wantCode(t, err, tt.code)
		})
	}

	// Nothing the refusals touched changed.
	if keys, err := o.root.MyKeys(ctx); err != nil || len(keys) != 1 || keys[0].RevokedAt != nil {
		t.Fatalf("root's keys after the refusals: %+v, %v", keys, err)
	}
	if keys, err := o.root.UserKeys(ctx, user); err != nil || len(keys) != 1 || keys[0].ID != aliceKey.ID || keys[0].RevokedAt != nil {
		t.Fatalf("alice's keys after the refusals: %+v, %v", keys, err)
	}
	for name, roles := range map[string][]string{"hd1": {"user", "helpdesk"}, admin: {"user", "admin"}, user: {"user"}} {
		if u, err := o.root.User(ctx, name); err != nil || !slices.Equal(u.Roles, roles) || u.Disabled {
			t.Fatalf("%s after the refusals: %+v, %v", name, u, err)
		}
	}
	if found, err := o.root.SearchUsers(ctx, "mallory", 0); err != nil || len(found) != 0 {
		t.Fatalf("mallory: %+v, %v", found, err)
	}
	if pol, err := o.root.Policy(ctx); err != nil || pol.Attestation != "none" {
		t.Fatalf("policy after the refusals: %+v, %v", pol, err)
	}
}

// TestUserNamesAreOnePathSegment: a user name with a space or a slash
// reaches the server as one escaped path segment, on every route that
// takes one, and names that cannot be one are refused unsent.
func TestUserNamesAreOnePathSegment(t *testing.T) {
	ctx := context.Background()

	t.Run("ShouldNeverReachAnotherRouteOrUser", func(t *testing.T) {
		// Unescaped, "alice /keys" would be the route of alice's keys:
		// the server trims the space off "alice ".
		const odd = "alice /keys"
		const esc = api.Version + "/users/alice%20%2Fkeys"
		var (
			mu   sync.Mutex
			last string
		)
		e := newRP(t, envOptions{wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				last = r.RequestURI
				mu.Unlock()
				h.ServeHTTP(w, r)
			})
		}})
		root := enrolledAdmin(t, e, newKey(t))
		if _, err := root.CreateUser(ctx, api.CreateUserRequest{Name: user}); err != nil {
			t.Fatal(err)
		}
		cl, err := root.RecoveryChecklist(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			call func() error
			uri  string
		}{
			{"User", func() error { _, err := root.User(ctx, odd); return err }, esc},
			{"UserKeys", func() error { _, err := root.UserKeys(ctx, odd); return err }, esc + "/keys"},
			{"UserAudit", func() error { _, err := root.UserAudit(ctx, odd, 5); return err }, esc + "/audit?limit=5"},
			{"IssueGrant", func() error { _, err := root.IssueGrant(ctx, odd, api.IssueGrantRequest{}); return err }, esc + "/grants"},
			{"RevokeUserKey", func() error { _, err := root.RevokeUserKey(ctx, odd, "AAAA", "lost"); return err }, esc + "/keys/AAAA/revoke"},
			{"IssueRecoveryGrant", func() error {
				_, err := root.IssueRecoveryGrant(ctx, odd, api.IssueRecoveryGrantRequest{Verification: cl.Items})
				return err
			}, esc + "/recovery-grants"},
			{"SetRoles", func() error { _, err := root.SetRoles(ctx, odd, nil); return err }, esc + "/roles"},
			{"SetDisabled", func() error { _, err := root.SetDisabled(ctx, odd, true); return err }, esc + "/disabled"},
		}
		for _, tt := range tests {
			t.Run("ShouldEscapeTheNameIn"+tt.name, func(t *testing.T) {
				err := tt.call()
				wantIs(t, err, rpclient.ErrNotFound)
				wantCode(t, err, "user_not_found")
				mu.Lock()
				defer mu.Unlock()
				if last != tt.uri {
					t.Fatalf("the server was asked for %q, want %q", last, tt.uri)
				}
			})
		}
		if u, err := root.User(ctx, user); err != nil || u.Disabled || !slices.Equal(u.Roles, []string{"user"}) {
			t.Fatalf("alice after calls about %q: %+v, %v", odd, u, err)
		}
	})

	t.Run("ShouldDeliverTheNameAsItIs", func(t *testing.T) {
		// A stand-in for an identity service whose names the reference
		// server would refuse: it answers with the name it received.
		echo := func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(api.User{ID: "AAAA", Name: r.PathValue("name"), Roles: []string{"user"}, CreatedAt: time.Now()})
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /v1/users/{name}", echo)
		mux.HandleFunc("PUT /v1/users/{name}/roles", echo)
		mux.HandleFunc("PUT /v1/users/{name}/disabled", echo)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		c := newClient(t, srv.URL, func(cfg *rpclient.Config) { cfg.Token = "t" })
		for _, name := range []string{"jane doe", "sales/jane", "../admin", "50%", "Zoë Ünïcode", "what?#frag", "a+b&c=d;e", " padded "} {
			for call, run := range map[string]func() (*api.User, error){
				"User":        func() (*api.User, error) { return c.User(ctx, name) },
				"SetRoles":    func() (*api.User, error) { return c.SetRoles(ctx, name, nil) },
				"SetDisabled": func() (*api.User, error) { return c.SetDisabled(ctx, name, true) },
			} {
				if u, err := run(); err != nil || u.Name != name {
					t.Errorf("%s(%q) reached the user %+v, %v", call, name, u, err)
				}
			}
		}
	})

	t.Run("ShouldRefuseWhatCannotBeOneSegmentUnsent", func(t *testing.T) {
		tp := newTap(nil, nil)
		c := newClient(t, "http://127.0.0.1:1", func(cfg *rpclient.Config) {
			cfg.HTTPClient = &http.Client{Transport: tp}
			cfg.Token = "t"
		})
		for name, run := range map[string]func() error{
			"no name":  func() error { _, err := c.User(ctx, ""); return err },
			"a dot":    func() error { _, err := c.User(ctx, "."); return err },
			"two dots": func() error { _, err := c.UserKeys(ctx, ".."); return err },
			"an over-long name": func() error {
				_, err := c.IssueGrant(ctx, strings.Repeat("n", 257), api.IssueGrantRequest{})
				return err
			},
			"invalid UTF-8":    func() error { _, err := c.SetDisabled(ctx, "\xff", true); return err },
			"a negative limit": func() error { _, err := c.SearchUsers(ctx, "", -1); return err },
			"a negative audit": func() error { _, err := c.UserAudit(ctx, user, -1); return err },
			"no grant ID":      func() error { _, err := c.ApproveRecoveryGrant(ctx, ""); return err },
			"a grant ID path":  func() error { _, err := c.ApproveRecoveryGrant(ctx, "../x"); return err },
			"a key ID path":    func() error { _, err := c.RevokeUserKey(ctx, user, "../../x", "lost"); return err },
		} {
			if err := run(); !errors.Is(err, rpclient.ErrBadArgument) {
				t.Errorf("%s: %v, want ErrBadArgument", name, err)
			}
		}
		if len(tp.exchanges) != 0 {
			t.Fatalf("%d requests were sent", len(tp.exchanges))
		}
	})
}
