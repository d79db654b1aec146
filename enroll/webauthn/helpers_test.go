package webauthn

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/webauthn"
)

// The service of the tests: go-webauthn configured for RP ID example.com,
// reached at testOrigin.
const (
	testRPID   = "example.com"
	testOrigin = "https://login.example.com"
)

// newRP returns the go-webauthn relying party the tests register with and
// sign in to.
func newRP(t testing.TB) *webauthn.WebAuthn {
	t.Helper()
	rp, err := webauthn.New(&webauthn.Config{RPID: testRPID, RPDisplayName: "Example", RPOrigins: []string{testOrigin}})
	if err != nil {
		t.Fatalf("webauthn.New: %v", err)
	}
	return rp
}

// testUser is an account of the service.
type testUser struct {
	id    []byte
	name  string
	creds []webauthn.Credential
}

func newUser(name string) *testUser { return &testUser{id: []byte("id-of-" + name), name: name} }

func (u *testUser) WebAuthnID() []byte                         { return u.id }
func (u *testUser) WebAuthnName() string                       { return u.name }
func (u *testUser) WebAuthnDisplayName() string                { return strings.ToUpper(u.name[:1]) + u.name[1:] }
func (u *testUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// mustJSON marshals v or fails the test.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return b
}

// wantKind fails the test unless err is an *Error (or wraps one) of kind.
func wantKind(t testing.TB, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want %v", err, kind)
	}
}
