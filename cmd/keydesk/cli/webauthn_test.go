package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

const (
	testOrigin = "https://login.example.com"
	testRPID   = "example.com"
)

// waUser is a go-webauthn user.
type waUser struct {
	id, name string
	creds    []gowebauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                           { return []byte(u.id) }
func (u *waUser) WebAuthnName() string                         { return u.name }
func (u *waUser) WebAuthnDisplayName() string                  { return strings.ToUpper(u.name) }
func (u *waUser) WebAuthnCredentials() []gowebauthn.Credential { return u.creds }

func newRP(t *testing.T) *gowebauthn.WebAuthn {
	t.Helper()
	wa, err := gowebauthn.New(&gowebauthn.Config{RPID: testRPID, RPDisplayName: "Example", RPOrigins: []string{testOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	return wa
}

// writeOptions writes what a server would send (go-webauthn's
// {"publicKey": ...}) to a file.
func writeOptions(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "options.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWebAuthnInterop runs keydesk webauthn create and get on a software
// key behind the real libfido2, with options go-webauthn generated, and
// has go-webauthn verify what keydesk printed: ES256 and EdDSA, packed and
// none attestation, discoverable and not, with and without a PIN.
func TestWebAuthnInterop(t *testing.T) {
	tests := []struct {
		name         string
		alg          webauthncose.COSEAlgorithmIdentifier
		conveyance   protocol.ConveyancePreference
		noneKey      bool // the key itself only does "none"
		discoverable bool
		pin          bool
		wantFormat   string
	}{
		{name: "ES256PackedServerSide", alg: webauthncose.AlgES256, conveyance: protocol.PreferDirectAttestation, wantFormat: "packed"},
		{name: "EdDSAPackedDiscoverable", alg: webauthncose.AlgEdDSA, conveyance: protocol.PreferDirectAttestation, discoverable: true, wantFormat: "packed"},
		{name: "ES256NoneConveyance", alg: webauthncose.AlgES256, conveyance: protocol.PreferNoAttestation, wantFormat: "none"},
		{name: "ES256NoneKeyDiscoverableWithPIN", alg: webauthncose.AlgES256, conveyance: protocol.PreferDirectAttestation, noneKey: true, discoverable: true, pin: true, wantFormat: "none"},
		{name: "EdDSAWithPIN", alg: webauthncose.AlgEdDSA, conveyance: protocol.PreferDirectAttestation, pin: true, wantFormat: "packed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := softkeytest.Serve(t, softkey.Config{NoneAttestation: tt.noneKey})
			t.Setenv(platform.ExtraDevicesEnv, k.Path)
			stdin := ""
			if tt.pin {
				mustRun(t, "1234\n1234\n", "pin", "set", "--pin-stdin")
				stdin = "1234\n"
			}
			wa := newRP(t)
			user := &waUser{id: "user-handle-" + tt.name, name: "alice"}
			rk := protocol.ResidentKeyRequirementDiscouraged
			if tt.discoverable {
				rk = protocol.ResidentKeyRequirementRequired
			}
			creation, session, err := wa.BeginRegistration(user,
				gowebauthn.WithConveyancePreference(tt.conveyance),
				gowebauthn.WithResidentKeyRequirement(rk),
				gowebauthn.WithCredentialParameters([]protocol.CredentialParameter{{Type: protocol.PublicKeyCredentialType, Algorithm: tt.alg}}))
			if err != nil {
				t.Fatal(err)
			}
			out := mustRun(t, stdin, "webauthn", "create", "--origin", testOrigin, "--options", writeOptions(t, creation), "--pin-stdin")
			parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(out))
			if err != nil {
				t.Fatalf("go-webauthn cannot parse the registration: %v\n%s", err, out)
			}
			cred, err := wa.CreateCredential(user, *session, parsed)
			if err != nil {
				t.Fatalf("go-webauthn refused the registration: %v", err)
			}
			if cred.AttestationFormat != tt.wantFormat {
				t.Errorf("attestation format %q, want %q", cred.AttestationFormat, tt.wantFormat)
			}
			if alg := parsed.Response.AttestationObject.AuthData.AttData.CredentialPublicKey; len(alg) == 0 {
				t.Fatal("no credential public key")
			}
			user.creds = append(user.creds, *cred)

			// Sign in: by allow list, or discoverable (no user named).
			var request *protocol.CredentialAssertion
			if tt.discoverable {
				request, session, err = wa.BeginDiscoverableLogin()
			} else {
				request, session, err = wa.BeginLogin(user)
			}
			if err != nil {
				t.Fatal(err)
			}
			out = mustRun(t, stdin, "webauthn", "get", "--origin", testOrigin, "--options", writeOptions(t, request), "--pin-stdin")
			assertion, err := protocol.ParseCredentialRequestResponseBytes([]byte(out))
			if err != nil {
				t.Fatalf("go-webauthn cannot parse the assertion: %v\n%s", err, out)
			}
			if tt.discoverable {
				_, err = wa.ValidateDiscoverableLogin(func(_, handle []byte) (gowebauthn.User, error) {
					if string(handle) != user.id {
						t.Errorf("user handle %q, want %q", handle, user.id)
					}
					return user, nil
				}, *session, assertion)
			} else {
				_, err = wa.ValidateLogin(user, *session, assertion)
			}
			if err != nil {
				t.Fatalf("go-webauthn refused the sign-in: %v", err)
			}
		})
	}
}

// TestWebAuthnRefusesBeforeTheKey: a bad origin, an RP ID the origin may
// not claim, and hostile options are usage errors (exit 2) that never
// reach the key (it would ask for a touch: presence is denied here, so
// reaching it would fail differently).
func TestWebAuthnRefusesBeforeTheKey(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{Presence: softkey.DenyAlways})
	t.Setenv(platform.ExtraDevicesEnv, k.Path)
	wa := newRP(t)
	user := &waUser{id: "u1", name: "alice"}
	creation, _, err := wa.BeginRegistration(user)
	if err != nil {
		t.Fatal(err)
	}
	good := writeOptions(t, creation)
	hostile := filepath.Join(t.TempDir(), "hostile.json")
	os.WriteFile(hostile, []byte(`{"publicKey":{"rp":{"id":"example.com","name":"x"},"user":{"id":"dQ","name":"a","displayName":"a"},"challenge":"","pubKeyCredParams":[{"type":"public-key","alg":-7}]}}`), 0o600)
	tests := []struct {
		name, origin, options string
		wantErr               string
	}{
		{"HTTPOffLoopback", "http://login.example.com", good, "http"},
		{"OriginOfAnotherSite", "https://login.example.org", good, "example.com"},
		{"PublicSuffixOrigin", "https://example.co.uk", good, "example.com"},
		{"EmptyChallenge", testOrigin, hostile, "challenge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, "", "webauthn", "create", "--origin", tt.origin, "--options", tt.options)
			if r.code != ExitUsage || !strings.Contains(r.err.Error(), tt.wantErr) {
				t.Fatalf("exit %d, %v; want exit %d mentioning %q", r.code, r.err, ExitUsage, tt.wantErr)
			}
			if strings.Contains(r.stderr, "Touch") {
				t.Errorf("the key was asked for a touch:\n%s", r.stderr)
			}
		})
	}
	// The same options from a good origin reach the key, which refuses.
	if r := run(t, "", "webauthn", "create", "--origin", testOrigin, "--options", good); r.code != ExitCancelled {
		t.Fatalf("with a good origin: exit %d, %v; want %d (refused on the key)", r.code, r.err, ExitCancelled)
	}
}
