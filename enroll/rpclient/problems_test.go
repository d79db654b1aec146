package rpclient_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/server"
)

// TestServerProblems checks that the reference server's refusals arrive
// as typed errors carrying its code and message, and never the session
// token, the enrollment code or the credential that was sent.
func TestServerProblems(t *testing.T) {
	ctx := context.Background()
	e := newRP(t, envOptions{})
	k := newKey(t)
	c := enrolledAdmin(t, e, k)
	keys, err := c.MyKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const wrongToken = "not-a-session-token-0123456789"
	const wrongCode = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"

	// signature flips the last byte of an assertion's signature, which
	// then no longer verifies.
	tamper := func(t *testing.T, cred []byte) []byte {
		var m map[string]any
		if err := json.Unmarshal(cred, &m); err != nil {
			t.Fatal(err)
		}
		resp := m["response"].(map[string]any)
		sig, err := base64.RawURLEncoding.DecodeString(resp["signature"].(string))
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)-1] ^= 1
		resp["signature"] = base64.RawURLEncoding.EncodeToString(sig)
		out, _ := json.Marshal(m)
		return out
	}

	var secrets []string // what no error may contain
	tests := []struct {
		name   string
		run    func(t *testing.T) error
		want   []error
		status int
		code   string
	}{
		{name: "ShouldRefuseAWrongTokenAsUnauthorized", status: 401, code: "session_expired", want: []error{rpclient.ErrUnauthorized},
			run: func(t *testing.T) error {
				_, err := newClient(t, e.url, func(cfg *rpclient.Config) { cfg.Token = wrongToken }).Me(ctx)
				return err
			}},
		{name: "ShouldRefuseNoTokenAsUnauthorized", status: 401, code: "unauthenticated", want: []error{rpclient.ErrUnauthorized},
			run: func(t *testing.T) error { _, err := newClient(t, e.url, nil).MyKeys(ctx); return err }},
		{name: "ShouldRefuseAWrongCodeAsUnauthorized", status: 401, code: "bad_code", want: []error{rpclient.ErrUnauthorized},
			run: func(t *testing.T) error {
				_, _, err := newClient(t, e.url, nil).RedeemGrant(ctx, admin, wrongCode)
				return err
			}},
		{name: "ShouldRefuseASignatureThatDoesNotVerify", status: 401, code: "login_failed", want: []error{rpclient.ErrUnauthorized},
			run: func(t *testing.T) error {
				other := newClient(t, e.url, nil)
				id, options, _, err := other.LoginBegin(ctx, admin)
				if err != nil {
					t.Fatal(err)
				}
				cred := tamper(t, k.get(t, options))
				secrets = append(secrets, string(cred))
				_, _, err = other.LoginFinish(ctx, id, cred)
				return err
			}},
		{name: "ShouldRefuseAKeyListToARegistrationSession", status: 403, code: "forbidden", want: []error{rpclient.ErrForbidden},
			run: func(t *testing.T) error {
				// The admin's session issues a second code.
				g, err := c.IssueGrant(ctx, admin, api.IssueGrantRequest{})
				if err != nil {
					t.Fatal(err)
				}
				reg := newClient(t, e.url, nil)
				if _, _, err := reg.RedeemGrant(ctx, admin, g.Code); err != nil {
					t.Fatal(err)
				}
				secrets = append(secrets, g.Code, reg.Token())
				_, err = reg.MyKeys(ctx)
				return err
			}},
		{name: "ShouldReportAnUnknownKeyAsNotFound", status: 404, code: "key_not_found", want: []error{rpclient.ErrNotFound},
			run: func(t *testing.T) error { _, err := c.RenameKey(ctx, "AAAAAAAAAAAAAAAAAAAAAA", "x"); return err }},
		{name: "ShouldReportALongNicknameAsABadRequest", status: 400, code: "bad_nickname", want: []error{rpclient.ErrBadRequest},
			run: func(t *testing.T) error { _, err := c.RenameKey(ctx, keys[0].ID, strings.Repeat("n", 65)); return err }},
		{name: "ShouldReportAMissingReasonAsABadRequest", status: 400, code: "bad_reason", want: []error{rpclient.ErrBadRequest},
			run: func(t *testing.T) error { _, err := c.RevokeKey(ctx, keys[0].ID, " "); return err }},
		{name: "ShouldReportAFinishOfAUsedCeremonyAsAConflict", status: 409, code: "ceremony_used", want: []error{rpclient.ErrConflict},
			run: func(t *testing.T) error {
				other := newClient(t, e.url, nil)
				id, options, _, err := other.LoginBegin(ctx, admin)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := other.LoginFinish(ctx, id, k.get(t, options)); err != nil {
					t.Fatal(err)
				}
				// Another assertion for the same ceremony is another
				// body: not a retry, a second use.
				cred := k.get(t, options)
				secrets = append(secrets, string(cred))
				_, _, err = other.LoginFinish(ctx, id, cred)
				return err
			}},
		// Last: it moves the server's clock.
		{name: "ShouldReportAnExpiredCeremony", status: 410, code: "ceremony_expired", want: []error{rpclient.ErrCeremonyExpired},
			run: func(t *testing.T) error {
				other := newClient(t, e.url, nil)
				id, options, _, err := other.LoginBegin(ctx, admin)
				if err != nil {
					t.Fatal(err)
				}
				cred := k.get(t, options)
				e.clock.Advance(6 * time.Minute)
				_, _, err = other.LoginFinish(ctx, id, cred)
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run(t)
			wantIs(t, err, tt.want...)
			re := asError(t, err)
			if re.Status != tt.status || re.Code != tt.code || re.Message == "" || re.Attempts != 1 {
				t.Fatalf("got %+v; want status %d, code %q, a message, one attempt", re, tt.status, tt.code)
			}
			text := err.Error()
			for _, s := range append(secrets, wrongToken, wrongCode, e.code, c.Token()) {
				if s != "" && strings.Contains(text, s) {
					t.Fatalf("error %q holds a secret", text)
				}
			}
			if !strings.Contains(text, tt.code) || !strings.Contains(text, re.Message) {
				t.Fatalf("error %q names neither the code nor the message", text)
			}
		})
	}
}

// TestArgumentsCheckedBeforeSending checks what is refused without
// asking the server.
func TestArgumentsCheckedBeforeSending(t *testing.T) {
	ctx := context.Background()
	tp := newTap(nil, nil)
	c := newClient(t, "http://127.0.0.1:1", func(cfg *rpclient.Config) {
		cfg.HTTPClient = &http.Client{Transport: tp}
		cfg.Token = "t"
	})
	const secretCred = `{"id":"secret-credential"`
	tests := []struct {
		name string
		run  func() error
	}{
		{"ShouldRefuseAnEmptyKeyID", func() error { _, err := c.RenameKey(ctx, "", "x"); return err }},
		{"ShouldRefuseAKeyIDThatIsNotBase64URL", func() error { _, err := c.RevokeKey(ctx, "../../users", "lost"); return err }},
		{"ShouldRefuseAPaddedKeyID", func() error { _, err := c.RevokeKey(ctx, "AAAA==", "lost"); return err }},
		{"ShouldRefuseACredentialThatIsNotJSON", func() error { _, _, err := c.LoginFinish(ctx, "cer", []byte(secretCred)); return err }},
		{"ShouldRefuseACredentialThatIsNotAnObject", func() error { _, err := c.RegistrationFinish(ctx, "cer", []byte(`[1]`), ""); return err }},
		{"ShouldRefuseAFinishWithoutCeremony", func() error { _, _, err := c.LoginFinish(ctx, "", []byte(`{}`)); return err }},
		{"ShouldRefuseATokenWithANewline", func() error { return c.SetToken("abc\r\nX-Evil: 1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			wantIs(t, err, rpclient.ErrBadArgument)
			if strings.Contains(err.Error(), "secret-credential") || strings.Contains(err.Error(), "X-Evil") {
				t.Fatalf("error %q repeats the argument", err)
			}
		})
	}
	if len(tp.exchanges) != 0 {
		t.Fatalf("%d requests were sent", len(tp.exchanges))
	}
	if c.Token() != "t" {
		t.Fatal("a refused token replaced the session")
	}
}

// TestRateLimited checks that a 429 is reported with its Retry-After and
// is not retried.
func TestRateLimited(t *testing.T) {
	ctx := context.Background()
	t.Run("ShouldReportThePerAddressLimit", func(t *testing.T) {
		e := newRP(t, envOptions{config: func(cfg *server.Config) { cfg.IPRate, cfg.IPBurst = 1, 2 }})
		c := newClient(t, e.url, nil)
		for i := range 2 {
			if _, _, _, err := c.LoginBegin(ctx, admin); err != nil {
				t.Fatalf("begin %d: %v", i, err)
			}
		}
		_, _, _, err := c.LoginBegin(ctx, admin)
		wantIs(t, err, rpclient.ErrRateLimited)
		if re := asError(t, err); re.Status != 429 || re.Code != "rate_limited" || re.RetryAfter != time.Second || re.Attempts != 1 {
			t.Fatalf("%+v; want 429 rate_limited, Retry-After 1 s, one attempt", re)
		}
	})
	t.Run("ShouldReportThePerAccountLimitOnCodes", func(t *testing.T) {
		e := newRP(t, envOptions{config: func(cfg *server.Config) { cfg.AccountRate, cfg.AccountBurst = 1.0/6, 1 }})
		c := newClient(t, e.url, nil)
		_, _, err := c.RedeemGrant(ctx, admin, "0000-0000-0000-0000")
		wantIs(t, err, rpclient.ErrUnauthorized)
		_, _, err = c.RedeemGrant(ctx, admin, e.code)
		wantIs(t, err, rpclient.ErrRateLimited)
		if re := asError(t, err); re.RetryAfter < time.Second || re.RetryAfter > 6*time.Second || re.Message == "" {
			t.Fatalf("%+v; want Retry-After of 1 to 6 s and the server's message", re)
		}
		e.clock.Advance(6 * time.Second)
		if _, _, err := c.RedeemGrant(ctx, admin, e.code); err != nil {
			t.Fatalf("after waiting: %v", err)
		}
	})
}
