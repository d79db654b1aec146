package rpclient_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/enroll/rpclient"
)

// TestNewChecksTheBaseURL checks the base URL rule: https, or plain http
// only to this computer, as for a WebAuthn origin.
func TestNewChecksTheBaseURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want error  // nil: accepted
		base string // the normalized base, when accepted
	}{
		{"ShouldAcceptHTTPS", "https://login.example.com", nil, "https://login.example.com"},
		{"ShouldDropATrailingSlash", "https://login.example.com/", nil, "https://login.example.com"},
		{"ShouldKeepAPortAndPathPrefix", "https://login.example.com:8443/rp/", nil, "https://login.example.com:8443/rp"},
		{"ShouldAcceptHTTPOnLoopbackIPv4", "http://127.0.0.1:8787", nil, "http://127.0.0.1:8787"},
		{"ShouldAcceptHTTPOnAnyLoopbackIPv4", "http://127.5.6.7", nil, "http://127.5.6.7"},
		{"ShouldAcceptHTTPOnLocalhost", "http://localhost:8787", nil, "http://localhost:8787"},
		{"ShouldAcceptHTTPOnASubdomainOfLocalhost", "http://keydesk.localhost", nil, "http://keydesk.localhost"},
		{"ShouldAcceptHTTPOnLoopbackIPv6", "http://[::1]:8787", nil, "http://[::1]:8787"},
		{"ShouldRefuseHTTPToAnotherHost", "http://login.example.com", rpclient.ErrInsecureConfig, ""},
		{"ShouldRefuseHTTPToAPrivateAddress", "http://10.0.0.1:8787", rpclient.ErrInsecureConfig, ""},
		{"ShouldRefuseHTTPToANameThatOnlyStartsWithLocalhost", "http://localhost.example.com", rpclient.ErrInsecureConfig, ""},
		{"ShouldRefuseHTTPToAnotherIPv6Host", "http://[2001:db8::1]", rpclient.ErrInsecureConfig, ""},
		{"ShouldRefuseNoURL", "", rpclient.ErrBadURL, ""},
		{"ShouldRefuseAURLWithoutScheme", "login.example.com", rpclient.ErrBadURL, ""},
		{"ShouldRefuseAnotherScheme", "ftp://login.example.com", rpclient.ErrBadURL, ""},
		{"ShouldRefuseAQuery", "https://login.example.com/?tenant=1", rpclient.ErrBadURL, ""},
		{"ShouldRefuseAFragment", "https://login.example.com/#x", rpclient.ErrBadURL, ""},
		{"ShouldRefuseAnInvalidHost", "https://bad_host.example", rpclient.ErrBadURL, ""},
		{"ShouldRefuseUserInfoWithoutRepeatingIt", "https://alice:hunter2@login.example.com", rpclient.ErrBadURL, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := rpclient.New(rpclient.Config{BaseURL: tt.url})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("New(%q): %v", tt.url, err)
				}
				if c.BaseURL() != tt.base {
					t.Fatalf("BaseURL() = %q, want %q", c.BaseURL(), tt.base)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("New(%q) = %v, want %v", tt.url, err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error repeats the password: %v", err)
			}
		})
	}
	t.Run("ShouldRefuseATokenThatCannotBeABearerTokenWithoutRepeatingIt", func(t *testing.T) {
		_, err := rpclient.New(rpclient.Config{BaseURL: "https://login.example.com", Token: "secret token"})
		if !errors.Is(err, rpclient.ErrBadArgument) || strings.Contains(err.Error(), "secret") {
			t.Fatalf("New = %v", err)
		}
	})
}

// TestTLS checks that certificates are verified: an unknown authority and
// a name the certificate does not cover are refused without retrying, a
// client that skips verification is refused, and RootCAs is how a test
// or enterprise authority is trusted.
func TestTLS(t *testing.T) {
	ctx := context.Background()
	e := newRP(t, envOptions{tls: true})
	pool := x509.NewCertPool()
	pool.AddCert(e.ts.Certificate())
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	t.Run("ShouldRefuseAnUnknownAuthority", func(t *testing.T) {
		c := newClient(t, e.url, nil)
		for name, call := range map[string]func() error{
			"RedeemGrant": func() error { _, _, err := c.RedeemGrant(ctx, admin, e.code); return err },
			"Me":          func() error { _, err := c.Me(ctx); return err },
		} {
			err := call()
			wantIs(t, err, rpclient.ErrCertificate)
			if errors.Is(err, rpclient.ErrNetwork) || asError(t, err).Attempts != 1 {
				t.Fatalf("%s: %v; want a certificate refusal on the first attempt, not a network failure", name, err)
			}
		}
	})
	t.Run("ShouldRefuseACertificateForAnotherName", func(t *testing.T) {
		// httptest's certificate names 127.0.0.1 and example.com, not
		// localhost.
		url := strings.Replace(e.url, "127.0.0.1", "localhost", 1)
		_, err := newClient(t, url, func(cfg *rpclient.Config) { cfg.HTTPClient = trusting }).Me(ctx)
		wantIs(t, err, rpclient.ErrCertificate)
	})
	t.Run("ShouldRefuseAClientThatSkipsVerification", func(t *testing.T) {
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		_, err := rpclient.New(rpclient.Config{BaseURL: e.url, HTTPClient: insecure})
		wantIs(t, err, rpclient.ErrInsecureConfig)
	})
	t.Run("ShouldEnrollAndSignInWithTheAuthorityInRootCAs", func(t *testing.T) {
		c := newClient(t, e.url, func(cfg *rpclient.Config) { cfg.HTTPClient = trusting })
		if _, _, err := c.RedeemGrant(ctx, admin, e.code); err != nil {
			t.Fatalf("RedeemGrant: %v", err)
		}
		k := newKey(t)
		enroll(t, c, k, "tls key", "")
		if s, _ := signIn(t, c, k, admin); s.Scope != "full" {
			t.Fatalf("scope %q", s.Scope)
		}
	})
	t.Run("ShouldNotFollowARedirectWithTheCallersClient", func(t *testing.T) {
		// New copies the caller's client to refuse redirects: the
		// caller's own client is left as it was.
		if trusting.CheckRedirect != nil {
			t.Fatal("New changed the caller's http.Client")
		}
	})
}
