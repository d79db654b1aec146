package server_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/rptest"
)

// provisionPath is the provisioning route for user and step.
func provisionPath(user, step string) string {
	return "/v1/users/" + url.PathEscape(user) + "/provisioning/" + step
}

// TestProvisioning registers keys on users' behalf as an admin: the key
// belongs to the user, who signs in with it; it is marked with the admin
// and the batch, audited with the admin as actor, and the policy applies
// as to a self-enrollment.
func TestProvisioning(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "pat"}, nil)

		t.Run("ShouldBindTheKeyToTheUserAndMarkIt", func(t *testing.T) {
			k := e.newKey()
			got, err := e.admin.Provision(k, "pat", "Pat's key", "2026-11 laptops")
			if err != nil {
				t.Fatal(err)
			}
			if got.ProvisionedBy != "root" || got.Batch != "2026-11 laptops" || got.Nickname != "Pat's key" {
				t.Fatalf("provisioned key %+v", got)
			}
			pat := e.client()
			sess, err := pat.Login(k, "pat")
			if err != nil {
				t.Fatalf("the user cannot sign in with the provisioned key: %v", err)
			}
			if sess.User.Name != "pat" {
				t.Fatalf("signed in as %q", sess.User.Name)
			}
			var mine api.Keys
			if _, err := pat.Do("GET", "/v1/me/keys", nil, &mine); err != nil {
				t.Fatal(err)
			}
			if len(mine.Keys) != 1 || mine.Keys[0].ID != got.ID || mine.Keys[0].ProvisionedBy != "root" || mine.Keys[0].Batch != "2026-11 laptops" {
				t.Fatalf("the user's keys: %+v", mine.Keys)
			}
			// The admin's own keys are unchanged.
			var admins api.Keys
			e.admin.Do("GET", "/v1/me/keys", nil, &admins)
			for _, ak := range admins.Keys {
				if ak.ID == got.ID {
					t.Fatal("the provisioned key went to the admin")
				}
			}
			_, entries := rptest.AuditExport(t, e.admin)
			found := false
			for _, en := range entries {
				if en.Action == audit.ActionCredentialProvisioned {
					found = true
					if en.Actor != "root" || en.ActorRole != audit.RoleAdmin || en.Subject != "pat" ||
						en.CredentialID != got.ID || en.Details["batch"] != "2026-11 laptops" {
						t.Fatalf("audit entry %+v", en)
					}
				}
			}
			if !found {
				t.Fatal("no credential.provisioned audit entry")
			}
		})

		t.Run("ShouldAnswerARetriedFinishAsTheFirstTime", func(t *testing.T) {
			var b api.CeremonyBegin
			if _, err := e.admin.Do("POST", provisionPath("pat", "begin"), api.ProvisionBeginRequest{}, &b); err != nil {
				t.Fatal(err)
			}
			cred, err := e.newKey().Create(b.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			req := api.ProvisionFinishRequest{CeremonyID: b.CeremonyID, Nickname: "retried", Batch: "b1", Credential: cred}
			var first, again api.Key
			if _, err := e.admin.Do("POST", provisionPath("pat", "finish"), req, &first); err != nil {
				t.Fatal(err)
			}
			if _, err := e.admin.Do("POST", provisionPath("pat", "finish"), req, &again); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if first.ID != again.ID || !first.CreatedAt.Equal(again.CreatedAt) {
				t.Fatalf("first %+v, retry %+v", first, again)
			}
			var keys api.Keys
			e.admin.Do("GET", "/v1/users/pat/keys", nil, &keys)
			n := 0
			for _, k := range keys.Keys {
				if k.Nickname == "retried" {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d keys stored for one provisioning", n)
			}
		})

		t.Run("ShouldApplyThePolicy", func(t *testing.T) {
			if r, _ := e.admin.Do("PUT", "/v1/policy", api.Policy{DeniedAAGUIDs: []string{"ef185f03-0d9a-4909-8ff0-93c535aa9ecd"}}, nil); r.Status != 200 {
				t.Fatalf("set policy: %d", r.Status)
			}
			defer e.admin.Do("PUT", "/v1/policy", api.Policy{}, nil)
			e.clock.Advance(e.cfg.PolicyTTL * 2)
			if _, err := e.admin.Provision(e.newKey(), "pat", "", "b2"); err == nil || !strings.Contains(err.Error(), "model_denied") {
				t.Fatalf("a denied model was provisioned: %v", err)
			}
		})
	})
}

// TestProvisioningRefusals: the ceremony is bound to the admin's session
// and to the user, finishes nowhere else, and bad input changes nothing.
func TestProvisioningRefusals(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "pat"}, nil)
	e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "quinn"}, nil)
	begin := func(t *testing.T, c *rptest.Client, user string) (api.CeremonyBegin, []byte) {
		t.Helper()
		var b api.CeremonyBegin
		if _, err := c.Do("POST", provisionPath(user, "begin"), api.ProvisionBeginRequest{}, &b); err != nil {
			t.Fatal(err)
		}
		cred, err := e.newKey().Create(b.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return b, cred
	}
	// A second admin, with a session of their own.
	e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "ada", Roles: []string{"admin"}}, nil)
	otherAdmin, _ := e.enroll("ada", e.grant("ada"))

	tests := []struct {
		name       string
		do         func(t *testing.T) *rptest.Response
		wantStatus int
		wantError  string
	}{
		{"ShouldRefuseAnotherUsersCeremony", func(t *testing.T) *rptest.Response {
			b, cred := begin(t, e.admin, "pat")
			r, _ := e.admin.Do("POST", provisionPath("quinn", "finish"), api.ProvisionFinishRequest{CeremonyID: b.CeremonyID, Credential: cred}, nil)
			return r
		}, 403, "wrong_session"},
		{"ShouldRefuseAnotherAdminsCeremony", func(t *testing.T) *rptest.Response {
			b, cred := begin(t, e.admin, "pat")
			r, _ := otherAdmin.Do("POST", provisionPath("pat", "finish"), api.ProvisionFinishRequest{CeremonyID: b.CeremonyID, Credential: cred}, nil)
			return r
		}, 403, "wrong_session"},
		{"ShouldNotFinishAtTheUsersOwnRegistration", func(t *testing.T) *rptest.Response {
			b, cred := begin(t, e.admin, "root")
			r, _ := e.admin.Do("POST", "/v1/registration/finish", api.RegistrationFinishRequest{CeremonyID: b.CeremonyID, Credential: cred}, nil)
			return r
		}, 400, "wrong_ceremony"},
		{"ShouldNotFinishASelfRegistration", func(t *testing.T) *rptest.Response {
			var b api.CeremonyBegin
			e.admin.Do("POST", "/v1/registration/begin", api.RegistrationBeginRequest{}, &b)
			cred, _ := e.newKey().Create(b.PublicKey)
			r, _ := e.admin.Do("POST", provisionPath("root", "finish"), api.ProvisionFinishRequest{CeremonyID: b.CeremonyID, Credential: cred}, nil)
			return r
		}, 400, "wrong_ceremony"},
		{"ShouldRefuseAnUnknownUser", func(t *testing.T) *rptest.Response {
			r, _ := e.admin.Do("POST", provisionPath("nobody", "begin"), api.ProvisionBeginRequest{}, nil)
			return r
		}, 404, "user_not_found"},
		{"ShouldRefuseABadBatchName", func(t *testing.T) *rptest.Response {
			b, cred := begin(t, e.admin, "pat")
			r, _ := e.admin.Do("POST", provisionPath("pat", "finish"), api.ProvisionFinishRequest{CeremonyID: b.CeremonyID, Batch: "a\nb", Credential: cred}, nil)
			return r
		}, 400, "bad_batch"},
		{"ShouldRefuseADisabledUser", func(t *testing.T) *rptest.Response {
			e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "dora"}, nil)
			b, cred := begin(t, e.admin, "dora")
			if r, err := e.admin.Do("PUT", "/v1/users/dora/disabled", map[string]bool{"disabled": true}, nil); err != nil {
				t.Fatalf("disable: %v %+v", err, r)
			}
			if r, _ := e.admin.Do("POST", provisionPath("dora", "begin"), api.ProvisionBeginRequest{}, nil); r.Status != 409 {
				t.Fatalf("begin for a disabled user: %d", r.Status)
			}
			r, _ := e.admin.Do("POST", provisionPath("dora", "finish"), api.ProvisionFinishRequest{CeremonyID: b.CeremonyID, Credential: cred}, nil)
			return r
		}, 409, "user_disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := countAllKeys(t, e)
			r := tt.do(t)
			if r.Status != tt.wantStatus || r.Problem.Error != tt.wantError {
				t.Fatalf("status %d %+v, want %d %s", r.Status, r.Problem, tt.wantStatus, tt.wantError)
			}
			if after := countAllKeys(t, e); after != before {
				t.Fatalf("a refused provisioning stored a key: %d keys, then %d", before, after)
			}
		})
	}
}

// countAllKeys counts the keys of the users the refusal tests use.
func countAllKeys(t *testing.T, e *env) int {
	t.Helper()
	n := 0
	for _, u := range []string{"pat", "quinn", "root", "dora"} {
		var keys api.Keys
		r, _ := e.admin.Do("GET", "/v1/users/"+u+"/keys", nil, &keys)
		if r.Status == 200 {
			n += len(keys.Keys)
		}
	}
	return n
}
