package rpclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
)

// TestAdminDisablesAUser: a disabled account's session stops working,
// its key cannot sign in, and the helpdesk cannot issue it a code, until
// an admin enables it again.
func TestAdminDisablesAUser(t *testing.T) {
	ctx := context.Background()
	o := newOrg(t)
	g, err := o.hd1.IssueGrant(ctx, user, api.IssueGrantRequest{})
	if err != nil {
		t.Fatal(err)
	}
	alice, k, _ := redeemAndSignIn(t, o.e, user, g.Code)

	for range 2 { // the second time changes nothing, and succeeds
		if u, err := o.root.SetDisabled(ctx, user, true); err != nil || !u.Disabled || u.Name != user {
			t.Fatalf("SetDisabled(true) = %+v, %v", u, err)
		}
	}
	_, err = alice.Me(ctx)
	wantIs(t, err, rpclient.ErrForbidden)
	wantCode(t, err, "user_disabled")

	c := newClient(t, o.e.url, nil)
	id, options, _, err := c.LoginBegin(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.LoginFinish(ctx, id, k.get(t, options))
	wantIs(t, err, rpclient.ErrForbidden)
	wantCode(t, err, "user_disabled")
	if c.Token() != "" {
		t.Fatal("a refused sign-in left a session")
	}
	_, err = o.hd1.IssueGrant(ctx, user, api.IssueGrantRequest{})
	wantIs(t, err, rpclient.ErrConflict)
	wantCode(t, err, "user_disabled")

	if u, err := o.root.SetDisabled(ctx, user, false); err != nil || u.Disabled {
		t.Fatalf("SetDisabled(false) = %+v, %v", u, err)
	}
	if s, _ := signIn(t, c, k, user); s.Scope != "full" {
		t.Fatalf("sign-in after enabling: %+v", s)
	}
}

// TestAuditExportVerifies: the admin's export is the whole log, which
// rp/audit verifies up to the newest entry the helpdesk's view shows,
// and it is bounded as asked.
func TestAuditExportVerifies(t *testing.T) {
	ctx := context.Background()
	o := newOrg(t)
	if _, err := o.root.SetDisabled(ctx, user, true); err != nil {
		t.Fatal(err)
	}
	newest, err := o.hd1.UserAudit(ctx, user, 1)
	if err != nil || len(newest) != 1 || newest[0].Action != audit.ActionUserDisabled {
		t.Fatalf("newest entry about alice: %+v, %v", newest, err)
	}

	raw, err := o.root.ExportAudit(ctx, 0)
	if err != nil {
		t.Fatalf("ExportAudit: %v", err)
	}
	res, err := audit.VerifyOptions{WantHead: newest[0].Hash.String()}.Verify(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the export does not verify: %v", err)
	}
	if lines := bytes.Count(raw, []byte("\n")); res.Entries != lines || res.LastSeq != newest[0].Seq {
		t.Fatalf("verified %d entries up to seq %d; the export has %d lines, the newest entry seq %d", res.Entries, res.LastSeq, lines, newest[0].Seq)
	}
	// It holds the org's making: root bootstrapped, hd1, hd2 and alice
	// created, two roles given.
	counts := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n")) {
		var en audit.Entry
		if err := en.UnmarshalJSON(line); err != nil {
			t.Fatal(err)
		}
		counts[string(en.Action)]++
	}
	if counts[string(audit.ActionUserCreated)] != 4 || counts[string(audit.ActionRoleChanged)] != 2 {
		t.Fatalf("actions in the export: %v", counts)
	}

	if exact, err := o.root.ExportAudit(ctx, int64(len(raw))); err != nil || !bytes.Equal(exact, raw) {
		t.Fatalf("an export bounded at its own size: %d bytes, %v", len(exact), err)
	}
	_, err = o.root.ExportAudit(ctx, int64(len(raw)-1))
	wantIs(t, err, rpclient.ErrBadResponse)
	if !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("%q should say the export is too large", err)
	}
}

// TestHelpdeskAndAdminRetries cuts the connection after the server acted
// and answered: calls the server does not make idempotent (issuing a
// code or a recovery grant, approving one, creating a user) are sent
// once, and their errors hold no code; the idempotent ones (revoking,
// setting roles, disabling, the policy) and reads are sent again and
// succeed.
func TestHelpdeskAndAdminRetries(t *testing.T) {
	ctx := context.Background()
	o := newOrg(t)
	g, err := o.hd1.IssueGrant(ctx, user, api.IssueGrantRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, key := redeemAndSignIn(t, o.e, user, g.Code)
	pol, err := o.root.Policy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pol.RecoveryFourEyes = true
	if _, err := o.root.SetPolicy(ctx, *pol); err != nil {
		t.Fatal(err)
	}
	cl, err := o.hd1.RecoveryChecklist(ctx)
	if err != nil {
		t.Fatal(err)
	}
	verified := api.IssueRecoveryGrantRequest{Verification: cl.Items}
	pending, err := o.hd1.IssueRecoveryGrant(ctx, user, verified)
	if err != nil {
		t.Fatal(err)
	}

	v := api.Version
	tests := []struct {
		name string
		as   *rpclient.Client
		path string
		call func(c *rpclient.Client) error
		// sent is how many times the call must reach the server: 1 for
		// once, 2 for a retry after the lost answer.
		sent int
		then func(t *testing.T)
	}{
		{"ShouldNotRepeatAnEnrollmentCode", o.hd1, v + "/users/alice/grants", func(c *rpclient.Client) error {
			_, err := c.IssueGrant(ctx, user, api.IssueGrantRequest{})
			return err
		}, 1, nil},
		{"ShouldNotRepeatARecoveryGrant", o.hd1, v + "/users/alice/recovery-grants", func(c *rpclient.Client) error {
			_, err := c.IssueRecoveryGrant(ctx, user, verified)
			return err
		}, 1, nil},
		{"ShouldNotRepeatAnApproval", o.hd2, v + "/recovery-grants/" + pending.ID + "/approve", func(c *rpclient.Client) error {
			_, err := c.ApproveRecoveryGrant(ctx, pending.ID)
			return err
		}, 1, func(t *testing.T) {
			_, err := o.hd2.ApproveRecoveryGrant(ctx, pending.ID)
			wantIs(t, err, rpclient.ErrAlreadyApproved)
		}},
		{"ShouldNotRepeatAUserCreation", o.root, v + "/users", func(c *rpclient.Client) error {
			_, err := c.CreateUser(ctx, api.CreateUserRequest{Name: "bob"})
			return err
		}, 1, func(t *testing.T) {
			_, err := o.root.CreateUser(ctx, api.CreateUserRequest{Name: "bob"})
			wantIs(t, err, rpclient.ErrUserExists)
			if u, err := o.root.User(ctx, "bob"); err != nil || u.Name != "bob" {
				t.Fatalf("bob: %+v, %v", u, err)
			}
		}},
		{"ShouldRetryARevocation", o.hd1, v + "/users/alice/keys/" + key.ID + "/revoke", func(c *rpclient.Client) error {
			k, err := c.RevokeUserKey(ctx, user, key.ID, "lost")
			if err == nil && (k.RevokedAt == nil || k.RevokeReason != "lost") {
				t.Errorf("revoked: %+v", k)
			}
			return err
		}, 2, nil},
		{"ShouldRetrySettingRoles", o.root, v + "/users/hd2/roles", func(c *rpclient.Client) error {
			_, err := c.SetRoles(ctx, "hd2", []string{"helpdesk"})
			return err
		}, 2, nil},
		{"ShouldRetryDisabling", o.root, v + "/users/alice/disabled", func(c *rpclient.Client) error {
			u, err := c.SetDisabled(ctx, user, true)
			if err == nil && !u.Disabled {
				t.Errorf("disabled: %+v", u)
			}
			return err
		}, 2, nil},
		{"ShouldRetrySettingThePolicy", o.root, v + "/policy", func(c *rpclient.Client) error {
			p, err := c.SetPolicy(ctx, *pol)
			if err == nil && !p.RecoveryFourEyes {
				t.Errorf("policy: %+v", p)
			}
			return err
		}, 2, nil},
		{"ShouldRetryAReadOfAUser", o.hd1, v + "/users/alice", func(c *rpclient.Client) error {
			_, err := c.User(ctx, user)
			return err
		}, 2, nil},
		{"ShouldRetryTheAuditExport", o.root, v + "/audit", func(c *rpclient.Client) error {
			raw, err := c.ExportAudit(ctx, 0)
			if err == nil {
				if _, verr := audit.Verify(bytes.NewReader(raw)); verr != nil {
					t.Errorf("the retried export: %v", verr)
				}
			}
			return err
		}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := newTap(nil, map[string]int{tt.path: 1})
			c := newClient(t, o.e.url, func(cfg *rpclient.Config) {
				cfg.HTTPClient = &http.Client{Transport: tp}
				cfg.Token = tt.as.Token()
			})
			err := tt.call(c)
			xs := tp.seen(tt.path)
			if len(xs) != tt.sent || xs[0].status/100 != 2 || !xs[0].dropped {
				t.Fatalf("sent %d times, want %d, the first answered 2xx and lost: %+v", len(xs), tt.sent, xs)
			}
			if tt.sent == 1 {
				wantIs(t, err, rpclient.ErrNetwork)
				if re := asError(t, err); re.Attempts != 1 {
					t.Fatalf("%d attempts", re.Attempts)
				}
				var lost struct{ Code string }
				if json.Unmarshal(xs[0].response, &lost) == nil && lost.Code != "" && strings.Contains(err.Error(), lost.Code) {
					t.Fatalf("error %q holds the lost answer's code", err)
				}
			} else {
				if err != nil {
					t.Fatalf("after a retry: %v", err)
				}
				if !bytes.Equal(xs[0].request, xs[1].request) {
					t.Fatal("the retry sent other bytes")
				}
			}
			if tt.then != nil {
				tt.then(t)
			}
		})
	}
}

// TestHelpdeskAndAdminBadAnswers: answers that lack what the API
// promises, or are of another type, are ErrBadResponse, never a result,
// and an error never repeats a code the answer held.
func TestHelpdeskAndAdminBadAnswers(t *testing.T) {
	ctx := context.Background()
	const secret = "SECRET-CODE-1234"
	reply := func(status int, contentType, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	const js = "application/json"
	tests := []struct {
		name    string
		handler http.HandlerFunc
		call    func(c *rpclient.Client) error
	}{
		{"ShouldRefuseAGrantWithoutCode", reply(201, js, `{"id":"g","kind":"enrollment","username":"alice","expiresAt":"2030-01-01T00:00:00Z","maxUses":1}`),
			func(c *rpclient.Client) error { _, err := c.IssueGrant(ctx, user, api.IssueGrantRequest{}); return err }},
		{"ShouldRefuseAGrantWithoutExpiry", reply(201, js, `{"id":"g","code":"`+secret+`"}`),
			func(c *rpclient.Client) error { _, err := c.IssueGrant(ctx, user, api.IssueGrantRequest{}); return err }},
		{"ShouldRefuseARecoveryGrantOfTheWrongShape", reply(201, js, `{"id":"g","code":"`+secret+`","pending":"yes"}`),
			func(c *rpclient.Client) error {
				_, err := c.IssueRecoveryGrant(ctx, user, api.IssueRecoveryGrantRequest{})
				return err
			}},
		{"ShouldRefuseAUserWithoutID", reply(200, js, `{"name":"alice","roles":["user"]}`),
			func(c *rpclient.Client) error { _, err := c.User(ctx, user); return err }},
		{"ShouldRefuseAUserListWithoutUsers", reply(200, js, `{}`),
			func(c *rpclient.Client) error { _, err := c.SearchUsers(ctx, "", 0); return err }},
		{"ShouldRefuseAnEmptyChecklist", reply(200, js, `{"items":[],"fourEyes":false}`),
			func(c *rpclient.Client) error { _, err := c.RecoveryChecklist(ctx); return err }},
		{"ShouldRefuseAnAuditEntryWithAnUnknownMember", reply(200, js, `{"entries":[{"v":1,"seq":1,"time":"2030-01-01T00:00:00.000000Z","actor":"a","actorRole":"user","action":"login.succeeded","prevHash":"`+strings.Repeat("0", 64)+`","hash":"`+strings.Repeat("0", 64)+`","extra":1}]}`),
			func(c *rpclient.Client) error { _, err := c.UserAudit(ctx, user, 0); return err }},
		{"ShouldRefuseAnExportThatIsNotJSONLines", reply(200, js, `{"entries":[]}`),
			func(c *rpclient.Client) error { _, err := c.ExportAudit(ctx, 0); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			err := tt.call(newClient(t, srv.URL, func(cfg *rpclient.Config) { cfg.Token = "t" }))
			wantIs(t, err, rpclient.ErrBadResponse)
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q holds the code", err)
			}
		})
	}

	t.Run("ShouldDropACodeFromAnApproval", func(t *testing.T) {
		srv := httptest.NewServer(reply(200, js, `{"id":"g","code":"`+secret+`","username":"alice","expiresAt":"2030-01-01T00:00:00Z","issuedBy":"hd1","verification":["photo-id"],"pending":false,"approvedBy":"hd2"}`))
		t.Cleanup(srv.Close)
		g, err := newClient(t, srv.URL, func(cfg *rpclient.Config) { cfg.Token = "t" }).ApproveRecoveryGrant(ctx, "g")
		if err != nil || g.Code != "" || g.ApprovedBy != "hd2" {
			t.Fatalf("ApproveRecoveryGrant = %+v, %v", g, err)
		}
	})
}
