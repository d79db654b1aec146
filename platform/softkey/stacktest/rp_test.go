package stacktest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	libfido2 "github.com/keys-pub/go-libfido2"
)

// The relying party the tests register with; go-webauthn verifies every
// attestation and assertion the key produces through libfido2.
const (
	testRPID   = "example.com"
	testOrigin = "https://example.com"
)

type testUser struct {
	id    []byte
	name  string
	creds []webauthn.Credential
}

func (u *testUser) WebAuthnID() []byte                         { return u.id }
func (u *testUser) WebAuthnName() string                       { return u.name }
func (u *testUser) WebAuthnDisplayName() string                { return "User " + u.name }
func (u *testUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func newRP(t *testing.T) *webauthn.WebAuthn {
	t.Helper()
	wa, err := webauthn.New(&webauthn.Config{RPID: testRPID, RPDisplayName: "Example", RPOrigins: []string{testOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	return wa
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// clientData builds clientDataJSON as a browser would.
func clientData(t *testing.T, typ string, challenge protocol.URLEncodedBase64) ([]byte, []byte) {
	t.Helper()
	js, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge.String(), "origin": testOrigin, "crossOrigin": false})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(js)
	return js, h[:]
}

// unwrapAuthData removes the CBOR byte-string wrapper go-libfido2 leaves
// around authenticator data.
func unwrapAuthData(t *testing.T, b []byte) []byte {
	t.Helper()
	var raw []byte
	if err := cbor.Unmarshal(b, &raw); err != nil {
		t.Fatalf("authenticator data is not a CBOR byte string: %v", err)
	}
	return raw
}

// register runs a registration ceremony with go-webauthn on one side and
// the key, through libfido2, on the other.
func register(t *testing.T, wa *webauthn.WebAuthn, dev *libfido2.Device, user *testUser, pin string, rk bool) *webauthn.Credential {
	t.Helper()
	creation, session, err := wa.BeginRegistration(user, webauthn.WithConveyancePreference(protocol.PreferDirectAttestation))
	if err != nil {
		t.Fatal(err)
	}
	cdj, cdh := clientData(t, "webauthn.create", creation.Response.Challenge)
	opts := &libfido2.MakeCredentialOpts{}
	if rk {
		opts.RK = libfido2.True
	}
	att, err := dev.MakeCredential(cdh, libfido2.RelyingParty{ID: testRPID, Name: "Example"},
		libfido2.User{ID: user.id, Name: user.name, DisplayName: user.WebAuthnDisplayName()}, libfido2.ES256, pin, opts)
	if err != nil {
		t.Fatalf("MakeCredential: %v", err)
	}
	if att.Format != "packed" || len(att.Cert) == 0 {
		t.Fatalf("format %q, %d-byte certificate", att.Format, len(att.Cert))
	}
	attObj, err := cbor.Marshal(map[string]any{
		"fmt":      att.Format,
		"attStmt":  map[string]any{"alg": -7, "sig": att.Sig, "x5c": [][]byte{att.Cert}},
		"authData": unwrapAuthData(t, att.AuthData),
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"id": b64(att.CredentialID), "rawId": b64(att.CredentialID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64(cdj), "attestationObject": b64(attObj)},
	})
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		t.Fatalf("go-webauthn cannot parse the registration: %v", err)
	}
	cred, err := wa.CreateCredential(user, *session, parsed)
	if err != nil {
		t.Fatalf("go-webauthn rejects the registration: %v", protocolDetail(err))
	}
	user.creds = append(user.creds, *cred)
	return cred
}

// login runs an authentication ceremony; allow lists credential IDs (none
// for a discoverable login).
func login(t *testing.T, wa *webauthn.WebAuthn, dev *libfido2.Device, user *testUser, pin string, allow [][]byte) *webauthn.Credential {
	t.Helper()
	assertion, session, err := wa.BeginLogin(user)
	if err != nil {
		t.Fatal(err)
	}
	cdj, cdh := clientData(t, "webauthn.get", assertion.Response.Challenge)
	a, err := dev.Assertion(testRPID, cdh, allow, pin, &libfido2.AssertionOpts{UP: libfido2.True})
	if err != nil {
		t.Fatalf("Assertion: %v", err)
	}
	resp := map[string]any{
		"clientDataJSON":    b64(cdj),
		"authenticatorData": b64(unwrapAuthData(t, a.AuthDataCBOR)),
		"signature":         b64(a.Sig),
	}
	if len(a.User.ID) > 0 {
		resp["userHandle"] = b64(a.User.ID)
	}
	body, _ := json.Marshal(map[string]any{"id": b64(a.CredentialID), "rawId": b64(a.CredentialID), "type": "public-key", "response": resp})
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		t.Fatalf("go-webauthn cannot parse the assertion: %v", err)
	}
	cred, err := wa.ValidateLogin(user, *session, parsed)
	if err != nil {
		t.Fatalf("go-webauthn rejects the assertion: %v", protocolDetail(err))
	}
	return cred
}

// protocolDetail adds go-webauthn's developer information to an error.
func protocolDetail(err error) string {
	if pe, ok := err.(*protocol.Error); ok {
		return pe.Error() + ": " + pe.Details + " " + pe.DevInfo
	}
	return err.Error()
}
