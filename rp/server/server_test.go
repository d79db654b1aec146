package server_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/metadata"

	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/mds"
	"github.com/keydesk/keydesk/rp/mds/mdstest"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
)

const softkeyModel = "Keydesk Software Key (virtual)"

func TestEnrollAndSignIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		c, key := e.user("alice")

		var keys api.Keys
		if _, err := c.Do("GET", "/v1/me/keys", nil, &keys); err != nil {
			t.Fatal(err)
		}
		if len(keys.Keys) != 1 || keys.Keys[0].Model != softkeyModel || keys.Keys[0].Nickname != "alice's key" ||
			keys.Keys[0].AttestationType != "basic" && keys.Keys[0].AttestationType != "basic_full" {
			t.Fatalf("keys %+v", keys.Keys)
		}
		if k := keys.Keys[0]; k.LastUsedAt == nil || k.AAGUID != "ef185f03-0d9a-4909-8ff0-93c535aa9ecd" || len(k.Transports) == 0 {
			t.Fatalf("key %+v", k)
		}

		t.Run("ShouldSignInWithoutAUserName", func(t *testing.T) {
			d := e.client()
			sess, err := d.Login(key, "")
			if err != nil || sess.User.Name != "alice" || sess.Scope != "full" {
				t.Fatalf("discoverable login: %+v, %v", sess, err)
			}
		})
		t.Run("ShouldSignInAfterTheSessionEnded", func(t *testing.T) {
			e.clock.Advance(2 * time.Hour)
			if r, _ := c.Do("GET", "/v1/me", nil, nil); r.Status != http.StatusUnauthorized || r.Problem.Error != "session_expired" {
				t.Fatalf("old session: %d %+v", r.Status, r.Problem)
			}
			if _, err := c.Login(key, "alice"); err != nil {
				t.Fatal(err)
			}
			var me api.Me
			if _, err := c.Do("GET", "/v1/me", nil, &me); err != nil || me.User.Name != "alice" {
				t.Fatalf("me %+v %v", me, err)
			}
		})
		t.Run("ShouldRefuseTheSameKeyTwice", func(t *testing.T) {
			if _, err := c.Register(key, "again"); err == nil {
				t.Fatal("the same key registered twice")
			}
		})
		t.Run("ShouldEndTheSessionOnLogout", func(t *testing.T) {
			d := e.client()
			d.Login(key, "alice")
			if _, err := d.Do("POST", "/v1/logout", nil, nil); err != nil {
				t.Fatal(err)
			}
			if r, _ := d.Do("GET", "/v1/me", nil, nil); r.Status != http.StatusUnauthorized {
				t.Fatalf("after logout: %d", r.Status)
			}
		})
	})
}

// TestAuthorization calls every route as every kind of caller: each route
// must be refused (401 or 403) exactly to those its access level excludes.
func TestAuthorization(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	s, err := server.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	user, _ := e.user("ursula")
	helpdesk, _ := e.user("harry", "helpdesk")
	e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "greg"}, nil)
	registering := e.client()
	if _, err := registering.Redeem("greg", e.grant("greg")); err != nil {
		t.Fatal(err)
	}
	// A recovery session, from a helpdesk recovery grant.
	e.user("rita")
	var rg api.RecoveryGrant
	if _, err := e.admin.Do("POST", "/v1/users/rita/recovery-grants",
		api.IssueRecoveryGrantRequest{Verification: []string{"photo-id", "callback-known-number", "manager-confirmation"}}, &rg); err != nil {
		t.Fatal(err)
	}
	recovering := e.client()
	if _, err := recovering.Redeem("rita", rg.Code); err != nil {
		t.Fatal(err)
	}
	callers := []struct {
		name   string
		client *rptest.Client
		// allowed lists the access levels this caller passes.
		allowed []string
	}{
		{"anonymous", e.client(), []string{"public"}},
		{"registration-scope", registering, []string{"public", "anySession", "registration"}},
		{"recovery-scope", recovering, []string{"public", "anySession", "registration", "ownKeys"}},
		{"user", user, []string{"public", "anySession", "registration", "ownKeys", "user"}},
		{"helpdesk", helpdesk, []string{"public", "anySession", "registration", "ownKeys", "user", "helpdesk"}},
		{"admin", e.admin, []string{"public", "anySession", "registration", "ownKeys", "user", "helpdesk", "admin"}},
	}
	routes := s.RouteAccess()
	if len(routes) < 38 {
		t.Fatalf("only %d routes", len(routes))
	}
	// The recovery routes' access, stated again: a change to one of
	// these is a change to who may recover an account.
	for pattern, want := range map[string]string{
		"POST /v1/recovery/sessions": "public", "POST /v1/recovery/sessions/{id}/redeem": "public",
		"GET /v1/me/keys": "ownKeys", "POST /v1/me/keys/{id}/revoke": "ownKeys", "PATCH /v1/me/keys/{id}": "user",
		"POST /v1/me/recovery-codes": "user", "POST /v1/users/{name}/recovery-grants": "helpdesk",
		"POST /v1/recovery-grants/{id}/approve": "helpdesk", "POST /v1/registration/finish": "registration",
	} {
		if routes[pattern] != want {
			t.Errorf("%s: access %q, want %q", pattern, routes[pattern], want)
		}
	}
	// Logging out ends the callers' sessions: it goes last.
	patterns := slices.Sorted(maps.Keys(routes))
	patterns = append(slices.DeleteFunc(patterns, func(p string) bool { return p == "POST /v1/logout" }), "POST /v1/logout")
	for _, pattern := range patterns {
		level := routes[pattern]
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.NewReplacer("{name}", "ursula", "{id}", "AAAA").Replace(path)
		for _, c := range callers {
			t.Run(c.name+" "+pattern, func(t *testing.T) {
				// A valid but empty body: the access check comes first.
				var body []byte
				if method != "GET" {
					body = []byte("{}")
				}
				r, err := c.client.Raw(method, path, body)
				if err != nil {
					t.Fatal(err)
				}
				refused := r.Status == http.StatusUnauthorized && r.Problem.Error == "unauthenticated" ||
					r.Status == http.StatusForbidden && r.Problem.Error == "forbidden"
				if want := !slices.Contains(c.allowed, level); refused != want {
					t.Fatalf("%s access: status %d %+v, refused=%v, want refused=%v", level, r.Status, r.Problem, refused, want)
				}
			})
		}
	}
}

func TestBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		c, key := e.user("bob")
		begin := func(t *testing.T) api.CeremonyBegin {
			var b api.CeremonyBegin
			if _, err := e.client().Do("POST", "/v1/login/begin", api.LoginBeginRequest{Username: "bob"}, &b); err != nil {
				t.Fatal(err)
			}
			return b
		}
		finish := func(t *testing.T, b api.CeremonyBegin, cred []byte) *rptest.Response {
			r, _ := e.client().Do("POST", "/v1/login/finish", api.LoginFinishRequest{CeremonyID: b.CeremonyID, Credential: cred}, nil)
			return r
		}
		tamper := func(f func(resp map[string]any)) *rptest.Key {
			k := *key
			k.Tamper = f
			return &k
		}
		tests := []struct {
			name       string
			do         func(t *testing.T) *rptest.Response
			wantStatus int
			wantError  string
		}{
			{"ShouldRefuseMalformedJSON", func(t *testing.T) *rptest.Response {
				r, _ := e.client().Raw("POST", "/v1/login/begin", []byte(`{"username":`))
				return r
			}, 400, "bad_json"},
			{"ShouldRefuseUnknownFields", func(t *testing.T) *rptest.Response {
				r, _ := e.client().Raw("POST", "/v1/login/begin", []byte(`{"user":"bob"}`))
				return r
			}, 400, "bad_json"},
			{"ShouldRefuseWrongTypes", func(t *testing.T) *rptest.Response {
				r, _ := e.client().Raw("POST", "/v1/login/begin", []byte(`{"username":42}`))
				return r
			}, 400, "bad_json"},
			{"ShouldRefuseTrailingData", func(t *testing.T) *rptest.Response {
				r, _ := e.client().Raw("POST", "/v1/login/begin", []byte(`{} {}`))
				return r
			}, 400, "bad_json"},
			{"ShouldRefuseOversizedBodies", func(t *testing.T) *rptest.Response {
				r, _ := e.client().Raw("POST", "/v1/login/begin", []byte(`{"username":"`+strings.Repeat("a", 70<<10)+`"}`))
				return r
			}, 413, "body_too_large"},
			{"ShouldRefuseAMalformedCredential", func(t *testing.T) *rptest.Response {
				return finish(t, begin(t), []byte(`{"id":"AAAA","type":"public-key"}`))
			}, 400, "bad_credential"},
			{"ShouldRefuseAnExpiredChallenge", func(t *testing.T) *rptest.Response {
				b := begin(t)
				cred, _ := key.Get(b.PublicKey)
				e.clock.Advance(6 * time.Minute)
				return finish(t, b, cred)
			}, 410, "ceremony_expired"},
			{"ShouldRefuseAReplayedChallenge", func(t *testing.T) *rptest.Response {
				b := begin(t)
				cred, _ := key.Get(b.PublicKey)
				if r := finish(t, b, cred); r.Status != 200 {
					t.Fatalf("first finish: %d %+v", r.Status, r.Problem)
				}
				cred2, _ := key.Get(b.PublicKey) // a new signature over the same challenge
				return finish(t, b, cred2)
			}, 409, "ceremony_used"},
			{"ShouldRefuseAWrongOrigin", func(t *testing.T) *rptest.Response {
				b := begin(t)
				k := *key
				k.Origin = "https://evil.example"
				cred, _ := k.Get(b.PublicKey)
				return finish(t, b, cred)
			}, 401, "login_failed"},
			{"ShouldRefuseAWrongRPIDHash", func(t *testing.T) *rptest.Response {
				b := begin(t)
				cred, _ := tamper(func(resp map[string]any) {
					r := resp["response"].(map[string]any)
					ad := append([]byte(nil), r["authenticatorData"].(rptest.B64)...)
					ad[0] ^= 1 // rpIdHash: signed for another RP ID
					r["authenticatorData"] = rptest.B64(ad)
				}).Get(b.PublicKey)
				return finish(t, b, cred)
			}, 401, "login_failed"},
			{"ShouldRefuseABadSignature", func(t *testing.T) *rptest.Response {
				b := begin(t)
				cred, _ := tamper(func(resp map[string]any) {
					r := resp["response"].(map[string]any)
					sig := append([]byte(nil), r["signature"].(rptest.B64)...)
					sig[len(sig)-5] ^= 1
					r["signature"] = rptest.B64(sig)
				}).Get(b.PublicKey)
				return finish(t, b, cred)
			}, 401, "login_failed"},
			{"ShouldRefuseARevokedKey", func(t *testing.T) *rptest.Response {
				other := e.newKey()
				if _, err := c.Register(other, "spare"); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Login(other, "bob"); err != nil {
					t.Fatal(err)
				}
				var keys api.Keys
				c.Do("GET", "/v1/me/keys", nil, &keys)
				if _, err := c.Do("POST", "/v1/me/keys/"+keys.Keys[0].ID+"/revoke", api.RevokeKeyRequest{Reason: "lost"}, nil); err != nil {
					t.Fatal(err)
				}
				b := api.CeremonyBegin{}
				e.client().Do("POST", "/v1/login/begin", api.LoginBeginRequest{}, &b)
				cred, _ := key.Get(b.PublicKey)
				return finish(t, b, cred)
			}, 403, "key_revoked"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := auditCount(t, e)
				r := tt.do(t)
				if r.Status != tt.wantStatus || r.Problem.Error != tt.wantError {
					t.Fatalf("got %d %+v, want %d %s", r.Status, r.Problem, tt.wantStatus, tt.wantError)
				}
				if tt.wantStatus == 400 || tt.wantStatus == 413 {
					if after := auditCount(t, e); after != before {
						t.Fatalf("bad input changed the audit log: %d entries, were %d", after, before)
					}
				}
			})
		}
	})
}

// auditCount exports the audit log and counts its entries.
func auditCount(t *testing.T, e *env) int {
	t.Helper()
	r, err := e.admin.Raw("GET", "/v1/audit", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("audit export: %v %+v", err, r)
	}
	return bytes.Count(r.Body, []byte("\n"))
}

func TestIdempotentFinish(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		c, _ := e.user("carol")
		// A second instance on the same database, as behind a load balancer.
		second := &rptest.Client{BaseURL: e.startInstance(openStore(t, dsnOf(t, e))), Token: c.Token}

		t.Run("ShouldAnswerARetriedRegistrationAsTheFirstTime", func(t *testing.T) {
			k := e.newKey()
			var b api.CeremonyBegin
			c.Do("POST", "/v1/registration/begin", api.RegistrationBeginRequest{}, &b)
			cred, _ := k.Create(b.PublicKey)
			req := api.RegistrationFinishRequest{CeremonyID: b.CeremonyID, Nickname: "retry", Credential: cred}
			var first, again api.Key
			if _, err := c.Do("POST", "/v1/registration/finish", req, &first); err != nil {
				t.Fatal(err)
			}
			if _, err := second.Do("POST", "/v1/registration/finish", req, &again); err != nil {
				t.Fatalf("retry on the other instance: %v", err)
			}
			if first.ID != again.ID || first.CreatedAt != again.CreatedAt {
				t.Fatalf("first %+v, retry %+v", first, again)
			}
			if n := countKeys(t, c, "retry"); n != 1 {
				t.Fatalf("%d keys stored", n)
			}
		})
		t.Run("ShouldLetExactlyOneOfRacingFinishesWin", func(t *testing.T) {
			k := e.newKey()
			var b api.CeremonyBegin
			c.Do("POST", "/v1/registration/begin", api.RegistrationBeginRequest{}, &b)
			// Two different responses to one challenge (two signatures),
			// sent to both instances at once.
			const n = 8
			var wg sync.WaitGroup
			results := make([]*rptest.Response, n)
			for i := range n {
				cred, _ := k.Create(b.PublicKey)
				cl := c
				if i%2 == 1 {
					cl = second
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], _ = cl.Do("POST", "/v1/registration/finish", api.RegistrationFinishRequest{CeremonyID: b.CeremonyID, Nickname: "race", Credential: cred}, nil)
				}()
			}
			wg.Wait()
			won := 0
			for _, r := range results {
				switch {
				case r.Status == 200:
					won++
				case r.Status == 409 && (r.Problem.Error == "ceremony_used" || r.Problem.Error == "already_registered"):
				default:
					t.Errorf("racing finish: %d %+v", r.Status, r.Problem)
				}
			}
			if won != 1 || countKeys(t, c, "race") != 1 {
				t.Fatalf("%d finishes won, %d keys stored", won, countKeys(t, c, "race"))
			}
		})
		t.Run("ShouldAnswerARetriedLoginWithTheSameSession", func(t *testing.T) {
			k := e.newKey()
			c.Register(k, "login retry")
			var b api.CeremonyBegin
			e.client().Do("POST", "/v1/login/begin", api.LoginBeginRequest{}, &b)
			cred, _ := k.Get(b.PublicKey)
			req := api.LoginFinishRequest{CeremonyID: b.CeremonyID, Credential: cred}
			var first, again api.Session
			if _, err := e.client().Do("POST", "/v1/login/finish", req, &first); err != nil {
				t.Fatal(err)
			}
			if _, err := (&rptest.Client{BaseURL: second.BaseURL}).Do("POST", "/v1/login/finish", req, &again); err != nil {
				t.Fatal(err)
			}
			if first.Token == "" || first.Token != again.Token {
				t.Fatal("a retried login gave another session")
			}
		})
	})
}

// dsnOf is the database of e, for a second instance.
func dsnOf(t *testing.T, e *env) string { return e.dsn }

func countKeys(t *testing.T, c *rptest.Client, nickname string) int {
	t.Helper()
	var keys api.Keys
	if _, err := c.Do("GET", "/v1/me/keys", nil, &keys); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range keys.Keys {
		if k.Nickname == nickname {
			n++
		}
	}
	return n
}

func TestRevoke(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		c, key := e.user("dave")
		helpdesk, _ := e.user("hana", "helpdesk")
		spare := e.newKey()
		if _, err := c.Register(spare, "spare"); err != nil {
			t.Fatal(err)
		}
		var keys api.Keys
		c.Do("GET", "/v1/me/keys", nil, &keys)
		var first, second string // the enrolled key, then the spare
		for _, k := range keys.Keys {
			if k.Nickname == "spare" {
				second = k.ID
			} else {
				first = k.ID
			}
		}
		revoke := func(cl *rptest.Client, path string) *rptest.Response {
			r, _ := cl.Do("POST", path, api.RevokeKeyRequest{Reason: "lost"}, nil)
			return r
		}

		e.clock.Advance(6 * time.Minute)
		if r := revoke(c, "/v1/me/keys/"+first+"/revoke"); r.Status != 403 || r.Problem.Error != "step_up_required" {
			t.Fatalf("stale session: %d %+v", r.Status, r.Problem)
		}
		if _, err := c.Login(spare, "dave"); err != nil {
			t.Fatal(err)
		}
		if r := revoke(c, "/v1/me/keys/"+first+"/revoke"); r.Status != 200 {
			t.Fatalf("revoke: %d %+v", r.Status, r.Problem)
		}
		if r := revoke(c, "/v1/me/keys/"+first+"/revoke"); r.Status != 200 {
			t.Fatalf("revoking again is not harmless: %d %+v", r.Status, r.Problem)
		}
		if r := revoke(c, "/v1/me/keys/"+second+"/revoke"); r.Status != 409 || r.Problem.Error != "last_key" {
			t.Fatalf("last key: %d %+v", r.Status, r.Problem)
		}
		if _, err := c.Login(key, "dave"); err == nil {
			t.Fatal("a revoked key signed in")
		}
		if r := revoke(helpdesk, "/v1/users/dave/keys/"+second+"/revoke"); r.Status != 200 {
			t.Fatalf("helpdesk revoke: %d %+v", r.Status, r.Problem)
		}
		c.Do("GET", "/v1/me/keys", nil, &keys)
		for _, k := range keys.Keys {
			if k.RevokedAt == nil || k.RevokeReason != "lost" {
				t.Fatalf("key %+v not revoked", k)
			}
		}
		var entries struct{ Entries []audit.Entry }
		if _, err := helpdesk.Do("GET", "/v1/users/dave/audit", nil, &entries); err != nil {
			t.Fatal(err)
		}
		revocations := 0
		for _, en := range entries.Entries {
			if en.Action == audit.ActionCredentialRevoked {
				revocations++
			}
		}
		if revocations != 2 {
			t.Fatalf("%d revocations audited, want 2", revocations)
		}
	})
}

func TestGrants(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "erin"}, nil)
		issue := func(req api.IssueGrantRequest) (*rptest.Response, api.Grant) {
			var g api.Grant
			r, _ := e.admin.Do("POST", "/v1/users/erin/grants", req, &g)
			return r, g
		}
		for _, bad := range []api.IssueGrantRequest{{TTLSeconds: 59}, {TTLSeconds: 86401}, {MaxUses: 11}, {Kind: "admin"}} {
			if r, _ := issue(bad); r.Status != 400 {
				t.Errorf("%+v: %d", bad, r.Status)
			}
		}
		r, g := issue(api.IssueGrantRequest{TTLSeconds: 120, MaxUses: 2})
		if r.Status != 201 || len(strings.ReplaceAll(g.Code, "-", "")) != 16 {
			t.Fatalf("issue: %d %+v", r.Status, g)
		}
		redeem := func(name, code string) *rptest.Response {
			r, _ := e.client().Do("POST", "/v1/grants/redeem", api.GrantRedeemRequest{Username: name, Code: code}, nil)
			return r
		}
		typed := strings.ToLower(strings.ReplaceAll(g.Code, "-", " "))
		if r := redeem("Erin", typed); r.Status != 200 {
			t.Fatalf("redeem as typed: %d %+v", r.Status, r.Problem)
		}
		if r := redeem("root", g.Code); r.Status != 401 || r.Problem.Error != "bad_code" {
			t.Fatalf("another user's code: %d %+v", r.Status, r.Problem)
		}
		if r := redeem("erin", g.Code); r.Status != 200 {
			t.Fatalf("second use: %d %+v", r.Status, r.Problem)
		}
		if r := redeem("erin", g.Code); r.Status != 401 {
			t.Fatalf("third use of a two-use code: %d", r.Status)
		}
		_, g2 := issue(api.IssueGrantRequest{TTLSeconds: 60})
		e.clock.Advance(61 * time.Second)
		if r := redeem("erin", g2.Code); r.Status != 401 {
			t.Fatalf("expired code: %d", r.Status)
		}
		export, _ := e.admin.Raw("GET", "/v1/audit", nil)
		for _, code := range []string{g.Code, g2.Code, strings.ReplaceAll(g.Code, "-", "")} {
			if bytes.Contains(export.Body, []byte(code)) {
				t.Fatal("a grant code is in the audit log")
			}
		}
		if bytes.Contains(export.Body, []byte(e.admin.Token)) {
			t.Fatal("a session token is in the audit log")
		}
	})
}

func TestAuditExportVerifies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		e.user("fay")
		e.user("gus", "helpdesk")
		r, err := e.admin.Raw("GET", "/v1/audit", nil)
		if err != nil || r.Status != 200 {
			t.Fatal(err, r)
		}
		res, err := audit.Verify(bytes.NewReader(r.Body))
		if err != nil {
			t.Fatal(err)
		}
		if res.Entries < 10 {
			t.Fatalf("%d entries", res.Entries)
		}
	})
}

func TestPolicy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		set := func(p api.Policy) *rptest.Response {
			r, _ := e.admin.Do("PUT", "/v1/policy", p, nil)
			return r
		}
		if r := set(api.Policy{Attestation: "sometimes"}); r.Status != 400 {
			t.Fatalf("bad attestation value: %d", r.Status)
		}
		if r := set(api.Policy{DeniedAAGUIDs: []string{"not-a-uuid"}}); r.Status != 400 {
			t.Fatalf("bad AAGUID: %d", r.Status)
		}
		if r := set(api.Policy{DeniedAAGUIDs: []string{"EF185F03-0D9A-4909-8FF0-93C535AA9ECD"}}); r.Status != 200 {
			t.Fatalf("deny the software key: %d %+v", r.Status, r.Problem)
		}
		e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "hal"}, nil)
		c := e.client()
		c.Redeem("hal", e.grant("hal"))
		if _, err := c.Register(e.newKey(), ""); err == nil || !strings.Contains(err.Error(), "model_denied") {
			t.Fatalf("denied model registered: %v", err)
		}
		set(api.Policy{AllowedAAGUIDs: []string{"ef185f03-0d9a-4909-8ff0-93c535aa9ecd"}})
		if _, err := c.Register(e.newKey(), ""); err != nil {
			t.Fatalf("allowed model refused: %v", err)
		}
		var got api.Policy
		e.admin.Do("GET", "/v1/policy", nil, &got)
		if len(got.AllowedAAGUIDs) != 1 || got.Attestation != "none" {
			t.Fatalf("policy %+v", got)
		}
	})
}

func TestRateLimits(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	cfg := e.cfg
	cfg.IPRate, cfg.IPBurst, cfg.AccountRate, cfg.AccountBurst = 1, 5, 1.0/6, 3
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c := &rptest.Client{BaseURL: ts.URL}

	t.Run("ShouldLimitGuessingCodesPerAccount", func(t *testing.T) {
		// The setup redeemed root's bootstrap code: a minute refills that.
		e.clock.Advance(time.Minute)
		for i := range 3 {
			if r, _ := c.Do("POST", "/v1/grants/redeem", api.GrantRedeemRequest{Username: "root", Code: "0000-0000-0000-0000"}, nil); r.Status != 401 {
				t.Fatalf("guess %d: %d", i, r.Status)
			}
		}
		r, _ := c.Do("POST", "/v1/grants/redeem", api.GrantRedeemRequest{Username: "ROOT", Code: "0000-0000-0000-0000"}, nil)
		if r.Status != 429 || r.Problem.Error != "rate_limited" {
			t.Fatalf("fourth guess: %d %+v", r.Status, r.Problem)
		}
		e.clock.Advance(6 * time.Second)
		if r, _ := c.Do("POST", "/v1/grants/redeem", api.GrantRedeemRequest{Username: "root", Code: "0000-0000-0000-0000"}, nil); r.Status != 401 {
			t.Fatalf("after waiting: %d", r.Status)
		}
	})
	t.Run("ShouldLimitRequestsPerAddressWithRetryAfter", func(t *testing.T) {
		e.clock.Advance(time.Minute)
		var last *http.Response
		for range 6 {
			resp, err := http.Get(ts.URL + "/openapi.yaml")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			last = resp
		}
		if last.StatusCode != 429 || last.Header.Get("Retry-After") != "1" {
			t.Fatalf("sixth request: %d, Retry-After %q", last.StatusCode, last.Header.Get("Retry-After"))
		}
	})
}

// TestHelpdeskAndAdminEndpoints walks every helpdesk and admin route's
// success path, and the refusals an operator can run into.
func TestHelpdeskAndAdminEndpoints(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		user, key := e.user("ivy")
		helpdesk, _ := e.user("hugo", "helpdesk")

		var found api.Users
		if _, err := helpdesk.Do("GET", "/v1/users?q=IV&limit=5", nil, &found); err != nil || len(found.Users) != 1 || found.Users[0].Name != "ivy" {
			t.Fatalf("search: %+v %v", found, err)
		}
		if r, _ := helpdesk.Do("GET", "/v1/users?limit=0", nil, nil); r.Status != 400 {
			t.Fatalf("limit 0: %d", r.Status)
		}
		var u api.User
		if _, err := helpdesk.Do("GET", "/v1/users/ivy", nil, &u); err != nil || u.Name != "ivy" || !slices.Equal(u.Roles, []string{"user"}) {
			t.Fatalf("user: %+v %v", u, err)
		}
		if r, _ := helpdesk.Do("GET", "/v1/users/nobody", nil, nil); r.Status != 404 || r.Problem.Error != "user_not_found" {
			t.Fatalf("unknown user: %d %+v", r.Status, r.Problem)
		}
		var keys api.Keys
		if _, err := helpdesk.Do("GET", "/v1/users/ivy/keys", nil, &keys); err != nil || len(keys.Keys) != 1 {
			t.Fatalf("keys: %+v %v", keys, err)
		}
		var renamed api.Key
		if _, err := user.Do("PATCH", "/v1/me/keys/"+keys.Keys[0].ID, api.RenameKeyRequest{Nickname: "green key"}, &renamed); err != nil || renamed.Nickname != "green key" {
			t.Fatalf("rename: %+v %v", renamed, err)
		}
		if r, _ := user.Do("PATCH", "/v1/me/keys/"+keys.Keys[0].ID, api.RenameKeyRequest{Nickname: "bad\x07"}, nil); r.Status != 400 {
			t.Fatalf("control character in a nickname: %d", r.Status)
		}
		var hugoKeys api.Keys
		helpdesk.Do("GET", "/v1/me/keys", nil, &hugoKeys)
		if r, _ := user.Do("PATCH", "/v1/me/keys/"+hugoKeys.Keys[0].ID, api.RenameKeyRequest{Nickname: "mine now"}, nil); r.Status != 404 {
			t.Fatalf("renaming another user's key: %d", r.Status)
		}
		var entries struct{ Entries []audit.Entry }
		if _, err := helpdesk.Do("GET", "/v1/users/ivy/audit?limit=3", nil, &entries); err != nil || len(entries.Entries) != 3 ||
			entries.Entries[0].Action != audit.ActionCredentialRenamed {
			t.Fatalf("audit: %+v %v", entries, err)
		}

		if _, err := e.admin.Do("PUT", "/v1/users/ivy/roles", api.SetRolesRequest{Roles: []string{"helpdesk"}}, &u); err != nil || !slices.Equal(u.Roles, []string{"user", "helpdesk"}) {
			t.Fatalf("roles: %+v %v", u, err)
		}
		if r, _ := e.admin.Do("PUT", "/v1/users/ivy/roles", api.SetRolesRequest{Roles: []string{"root"}}, nil); r.Status != 400 {
			t.Fatalf("unknown role: %d", r.Status)
		}
		if r, _ := e.admin.Do("PUT", "/v1/users/root/roles", api.SetRolesRequest{}, nil); r.Status != 409 {
			t.Fatalf("an admin dropping their own admin role: %d", r.Status)
		}
		if _, err := e.admin.Do("PUT", "/v1/users/ivy/disabled", api.SetDisabledRequest{Disabled: true}, &u); err != nil || !u.Disabled {
			t.Fatalf("disable: %+v %v", u, err)
		}
		if r, _ := user.Do("GET", "/v1/me", nil, nil); r.Status != 403 || r.Problem.Error != "user_disabled" {
			t.Fatalf("a disabled user's session: %d %+v", r.Status, r.Problem)
		}
		if _, err := e.client().Login(key, "ivy"); err == nil {
			t.Fatal("a disabled user signed in")
		}
		if r, _ := e.admin.Do("PUT", "/v1/users/root/disabled", api.SetDisabledRequest{Disabled: true}, nil); r.Status != 409 {
			t.Fatalf("an admin disabling themselves: %d", r.Status)
		}
		e.admin.Do("PUT", "/v1/users/ivy/disabled", api.SetDisabledRequest{Disabled: false}, nil)
		if _, err := e.client().Login(key, "ivy"); err != nil {
			t.Fatalf("re-enabled user: %v", err)
		}
		if r, _ := e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "ivy"}, nil); r.Status != 409 {
			t.Fatalf("duplicate user: %d", r.Status)
		}
		if r, _ := e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "Bad Name"}, nil); r.Status != 400 {
			t.Fatalf("bad name: %d", r.Status)
		}
		if strings.Contains(e.logs.String(), e.admin.Token) || strings.Contains(e.logs.String(), user.Token) {
			t.Fatal("a session token is in the server's log")
		}
	})
}

func TestCORS(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", e.url+"/v1/login/begin", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := preflight(testOrigin); r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != testOrigin ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("configured origin: %d %v", r.StatusCode, r.Header)
	}
	if r := preflight("https://evil.example"); r.StatusCode != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin: %d %v", r.StatusCode, r.Header)
	}
	req, _ := http.NewRequest("GET", e.url+"/healthz", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS header for an unknown origin")
	}
}

func TestSweepRemovesExpiredState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		var b api.CeremonyBegin
		e.client().Do("POST", "/v1/login/begin", api.LoginBeginRequest{}, &b)
		s, err := server.New(e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.Sweep(t.Context()); err != nil || n != 0 {
			t.Fatalf("sweep of fresh state: %d %v", n, err)
		}
		e.clock.Advance(25 * time.Hour)
		n, err := s.Sweep(t.Context())
		if err != nil || n < 3 { // ceremonies, the admin's sessions, the bootstrap grant
			t.Fatalf("sweep after a day: %d %v", n, err)
		}
	})
}

// TestClonedKey signs in with a copy of a key whose counter is behind
// the original's: the sign-in is audited as a regression, and refused
// when the policy says so.
func TestClonedKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		dir := t.TempDir()
		stateKey := make([]byte, 32)
		cfg := softkey.Config{Presence: softkey.ApproveAlways, StatePath: filepath.Join(dir, "key.state"), StateKey: stateKey}
		a, err := softkey.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		original := &rptest.Key{Authenticator: a, Origin: testOrigin}
		e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "jay"}, nil)
		c := e.client()
		c.Redeem("jay", e.grant("jay"))
		if _, err := c.Register(original, "original"); err != nil {
			t.Fatal(err)
		}
		// The copy: the state as it is now, counter included.
		copyPath := filepath.Join(dir, "copy.state")
		b, err := os.ReadFile(cfg.StatePath)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(copyPath, b, 0o600)
		for range 3 {
			if _, err := c.Login(original, "jay"); err != nil {
				t.Fatal(err)
			}
		}
		cfg.StatePath = copyPath
		ca, err := softkey.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		clone := &rptest.Key{Authenticator: ca, Origin: testOrigin}
		if _, err := e.client().Login(clone, "jay"); err != nil {
			t.Fatalf("by default a regressed counter is only flagged: %v", err)
		}
		e.admin.Do("PUT", "/v1/policy", api.Policy{RefuseCounterRegression: true}, nil)
		if _, err := e.client().Login(clone, "jay"); err == nil || !strings.Contains(err.Error(), "possible_clone") {
			t.Fatalf("refusing policy: %v", err)
		}
		var entries struct{ Entries []audit.Entry }
		e.admin.Do("GET", "/v1/users/jay/audit", nil, &entries)
		flagged := 0
		for _, en := range entries.Entries {
			if en.Action == audit.ActionCounterRegressed {
				flagged++
			}
		}
		if flagged != 2 {
			t.Fatalf("%d regressions audited, want 2", flagged)
		}
	})
}

// TestVerifiedAttestation registers under the "verified" policy against a
// metadata BLOB made for the test: a key whose model and attestation CA
// the BLOB lists registers; one the BLOB marks revoked, or another key
// (its CA unknown to the BLOB), does not.
func TestVerifiedAttestation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		if r, _ := e.admin.Do("PUT", "/v1/policy", api.Policy{Attestation: "verified"}, nil); r.Status != 400 || r.Problem.Error != "mds_not_configured" {
			t.Fatalf("verified without metadata: %d %+v", r.Status, r.Problem)
		}
		genuine, revoked := e.newKey(), e.newKey()
		blob, roots := mdstest.SoftkeyBlob(t, genuine.Authenticator)
		provider, _, err := mds.Parse(blob, mds.Options{Roots: roots})
		if err != nil {
			t.Fatal(err)
		}
		rblob, rroots := mdstest.SoftkeyBlob(t, revoked.Authenticator, metadata.Revoked)
		rprovider, _, err := mds.Parse(rblob, mds.Options{Roots: rroots})
		if err != nil {
			t.Fatal(err)
		}
		// An instance with each BLOB, on the same database.
		withMDS := func(p metadata.Provider) string {
			cfg := e.cfg
			cfg.MDS = p
			s, err := server.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s.Handler())
			t.Cleanup(ts.Close)
			return ts.URL
		}
		good, bad := withMDS(provider), withMDS(rprovider)
		admin := &rptest.Client{BaseURL: good, Token: e.admin.Token}
		if r, _ := admin.Do("PUT", "/v1/policy", api.Policy{Attestation: "verified"}, nil); r.Status != 200 {
			t.Fatalf("verified with metadata: %d %+v", r.Status, r.Problem)
		}
		e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "kim"}, nil)
		register := func(base string, k *rptest.Key) error {
			c := &rptest.Client{BaseURL: base}
			if _, err := c.Redeem("kim", e.grant("kim")); err != nil {
				t.Fatal(err)
			}
			_, err := c.Register(k, "")
			return err
		}
		if err := register(good, genuine); err != nil {
			t.Fatalf("listed key refused: %v", err)
		}
		if err := register(good, e.newKey()); err == nil || !strings.Contains(err.Error(), "attestation_not_verified") {
			t.Fatalf("a key the BLOB does not vouch for: %v", err)
		}
		if err := register(bad, revoked); err == nil || !strings.Contains(err.Error(), "attestation_not_verified") {
			t.Fatalf("a revoked model: %v", err)
		}
		time.Sleep(e.cfg.PolicyTTL) // the policy reaches the other instance
		if err := register(e.url, e.newKey()); err == nil || !strings.Contains(err.Error(), "mds_not_configured") {
			t.Fatalf("an instance without metadata under the verified policy: %v", err)
		}
	})
}

// TestHelpdeskCannotTakeOverPrivilegedAccounts: a helpdesk member who
// could issue an enrollment code for an admin could enroll their own key
// there and become admin.
func TestHelpdeskCannotTakeOverPrivilegedAccounts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		helpdesk, _ := e.user("hank", "helpdesk")
		e.user("hope", "helpdesk")
		e.user("lou")
		var rootKeys api.Keys
		e.admin.Do("GET", "/v1/me/keys", nil, &rootKeys)
		for _, tt := range []struct {
			name, method, path string
			body               any
			want               int
		}{
			{"ShouldRefuseACodeForAnAdmin", "POST", "/v1/users/root/grants", api.IssueGrantRequest{}, 403},
			{"ShouldRefuseACodeForAnotherHelpdeskMember", "POST", "/v1/users/hope/grants", api.IssueGrantRequest{}, 403},
			{"ShouldRefuseRevokingAnAdminsKey", "POST", "/v1/users/root/keys/" + rootKeys.Keys[0].ID + "/revoke", api.RevokeKeyRequest{Reason: "x"}, 403},
			{"ShouldAllowACodeForAUser", "POST", "/v1/users/lou/grants", api.IssueGrantRequest{}, 201},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r, _ := helpdesk.Do(tt.method, tt.path, tt.body, nil)
				if r.Status != tt.want {
					t.Fatalf("%d %+v, want %d", r.Status, r.Problem, tt.want)
				}
			})
		}
		if r, _ := e.admin.Do("POST", "/v1/users/hope/grants", api.IssueGrantRequest{}, nil); r.Status != 201 {
			t.Fatalf("an admin issuing a code for a helpdesk member: %d", r.Status)
		}
	})
}

// TestRetriedLoginFromElsewhere: the answer to a finished sign-in holds a
// session token, so only a retry from the same address gets it again.
func TestRetriedLoginFromElsewhere(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	cfg := e.cfg
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	_, key := e.user("olga")
	var b api.CeremonyBegin
	e.client().Do("POST", "/v1/login/begin", api.LoginBeginRequest{}, &b)
	cred, _ := key.Get(b.PublicKey)
	body, _ := json.Marshal(api.LoginFinishRequest{CeremonyID: b.CeremonyID, Credential: cred})
	finish := func(from string) *http.Response {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/login/finish", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := finish("198.51.100.7"); r.StatusCode != 200 {
		t.Fatalf("first finish: %d", r.StatusCode)
	}
	if r := finish("198.51.100.7"); r.StatusCode != 200 {
		t.Fatalf("retry from the same address: %d", r.StatusCode)
	}
	if r := finish("203.0.113.9"); r.StatusCode != 409 {
		t.Fatalf("repeat from another address: %d", r.StatusCode)
	}
}

func TestReadyzReportsTheMetadataBLOB(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	cfg := e.cfg
	blob, roots := mdstest.SoftkeyBlob(t, e.newKey().Authenticator)
	provider, _, err := mds.Parse(blob, mds.Options{Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	cfg.MDS, cfg.MDSNextUpdate = provider, e.clock.Now().Add(time.Hour)
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	ready := func() map[string]any {
		var got map[string]any
		if _, err := (&rptest.Client{BaseURL: ts.URL}).Do("GET", "/readyz", nil, &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := ready(); got["status"] != "ready" || got["mdsExpired"] != false || got["mdsNextUpdate"] == nil {
		t.Fatalf("readyz %v", got)
	}
	e.clock.Advance(2 * time.Hour)
	if got := ready(); got["mdsExpired"] != true {
		t.Fatalf("readyz past nextUpdate %v", got)
	}
	if err := s.SetMDS(provider, e.clock.Now().Add(30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := ready(); got["mdsExpired"] != false {
		t.Fatalf("readyz after a newer BLOB %v", got)
	}
}

// TestSetMDSSwapsTheBLOB: a BLOB that marks a model revoked refuses its
// keys; after SetMDS with one that lists it as certified, the same
// server registers them.
func TestSetMDSSwapsTheBLOB(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	k := e.newKey()
	provider := func(statuses ...metadata.AuthenticatorStatus) metadata.Provider {
		blob, roots := mdstest.SoftkeyBlob(t, k.Authenticator, statuses...)
		p, _, err := mds.Parse(blob, mds.Options{Roots: roots})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := e.cfg
	cfg.MDS = provider(metadata.Revoked)
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	admin := &rptest.Client{BaseURL: ts.URL, Token: e.admin.Token}
	if r, _ := admin.Do("PUT", "/v1/policy", api.Policy{Attestation: "verified"}, nil); r.Status != 200 {
		t.Fatalf("verified policy: %d %+v", r.Status, r.Problem)
	}
	e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "kim"}, nil)
	register := func() error {
		c := &rptest.Client{BaseURL: ts.URL}
		if _, err := c.Redeem("kim", e.grant("kim")); err != nil {
			t.Fatal(err)
		}
		_, err := c.Register(k, "")
		return err
	}
	if err := register(); err == nil || !strings.Contains(err.Error(), "attestation_not_verified") {
		t.Fatalf("a model the BLOB revoked: %v", err)
	}
	if err := s.SetMDS(provider(), time.Now().AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := register(); err != nil {
		t.Fatalf("after a BLOB that certifies the model: %v", err)
	}
	if err := s.SetMDS(nil, time.Time{}); err == nil {
		t.Error("SetMDS(nil) succeeded")
	}
}

// Two instances on one database share each account's guess budget:
// guesses spread over both are limited as if one instance took them all.
func TestAccountLimitIsSharedByInstances(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		e.clock.Advance(time.Minute) // refills the bootstrap redemption
		var clients [2]*rptest.Client
		for i := range clients {
			cfg := e.cfg
			cfg.Store = openStore(t, e.dsn)
			cfg.AccountRate, cfg.AccountBurst = 1.0/6, 3
			s, err := server.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s.Handler())
			t.Cleanup(ts.Close)
			clients[i] = &rptest.Client{BaseURL: ts.URL}
		}
		guess := func(i int) int {
			r, _ := clients[i%2].Do("POST", "/v1/grants/redeem", api.GrantRedeemRequest{Username: "root", Code: "0000-0000-0000-0000"}, nil)
			return r.Status
		}
		for i := range 3 {
			if st := guess(i); st != 401 {
				t.Fatalf("guess %d: %d, want 401", i, st)
			}
		}
		for i := 3; i < 5; i++ {
			if st := guess(i); st != 429 {
				t.Fatalf("guess %d, on instance %d: %d, want 429", i, i%2, st)
			}
		}
		e.clock.Advance(6 * time.Second)
		if st := guess(5); st != 401 {
			t.Fatalf("after waiting: %d, want 401", st)
		}
	})
}
