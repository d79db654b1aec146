package webauthn

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/softkey"
)

// decodedCredential is the part of a PublicKeyCredential's JSON the tests
// look at, decoded independently of go-webauthn.
type decodedCredential struct {
	ID                      string          `json:"id"`
	RawID                   string          `json:"rawId"`
	Type                    string          `json:"type"`
	AuthenticatorAttachment string          `json:"authenticatorAttachment"`
	ClientExtensionResults  json.RawMessage `json:"clientExtensionResults"`
	Response                struct {
		ClientDataJSON     string   `json:"clientDataJSON"`
		AuthenticatorData  string   `json:"authenticatorData"`
		Transports         []string `json:"transports"`
		PublicKey          string   `json:"publicKey"`
		PublicKeyAlgorithm int      `json:"publicKeyAlgorithm"`
		AttestationObject  string   `json:"attestationObject"`
		Signature          string   `json:"signature"`
		UserHandle         string   `json:"userHandle"`
	} `json:"response"`
}

func decodeCredential(t testing.TB, b []byte) *decodedCredential {
	t.Helper()
	var c decodedCredential
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("credential JSON: %v\n%s", err, b)
	}
	return &c
}

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

// register runs a registration of user on rp with key and returns the
// response and the credential go-webauthn made of it.
func register(t *testing.T, c *Client, rp *webauthn.WebAuthn, key *softKey, user *testUser, co CeremonyOptions, opts ...webauthn.RegistrationOption) ([]byte, *protocol.ParsedCredentialCreationData, *webauthn.Credential) {
	t.Helper()
	creation, session, err := rp.BeginRegistration(user, opts...)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	resp, err := c.Create(context.Background(), key, mustOrigin(t, testOrigin), mustJSON(t, creation), co)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(bytes.NewReader(resp))
	if err != nil {
		t.Fatalf("go-webauthn cannot parse the registration: %v\n%s", err, resp)
	}
	cred, err := rp.CreateCredential(user, *session, parsed)
	if err != nil {
		t.Fatalf("go-webauthn refuses the registration: %v\n%s", err, resp)
	}
	user.creds = append(user.creds, *cred)
	return resp, parsed, cred
}

// verifyWithSPKI checks an assertion's signature with the publicKey (SPKI)
// of the registration response: the SPKI must be the credential's key.
func verifyWithSPKI(t *testing.T, spki []byte, alg int, got *decodedCredential) {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatalf("publicKey is not SPKI: %v", err)
	}
	cdh := sha256.Sum256(unb64(t, got.Response.ClientDataJSON))
	msg := slices.Concat(unb64(t, got.Response.AuthenticatorData), cdh[:])
	sig := unb64(t, got.Response.Signature)
	switch alg {
	case platform.COSEAlgES256:
		h := sha256.Sum256(msg)
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || !ecdsa.VerifyASN1(k, h[:], sig) {
			t.Errorf("the ES256 signature does not verify with publicKey (%T)", pub)
		}
	case platform.COSEAlgEdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(k, msg, sig) {
			t.Errorf("the EdDSA signature does not verify with publicKey (%T)", pub)
		}
	default:
		t.Fatalf("no check for algorithm %d", alg)
	}
}

func TestRegisterAndSignIn(t *testing.T) {
	softkeyAAGUID := softkey.AAGUID[:]
	direct := webauthn.WithConveyancePreference(protocol.PreferDirectAttestation)
	eddsaOnly := webauthn.WithCredentialParameters([]protocol.CredentialParameter{{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA}})
	tests := []struct {
		name       string
		client     Client
		keyCfg     softkey.Config
		opts       []webauthn.RegistrationOption
		wantFmt    string
		wantAlg    int
		wantAAGUID []byte
	}{
		{name: "ShouldReplacePackedWithNoneKeepingAAGUID", wantFmt: "none", wantAlg: platform.COSEAlgES256, wantAAGUID: softkeyAAGUID},
		{name: "ShouldKeepPackedWhenDirect", opts: []webauthn.RegistrationOption{direct}, wantFmt: "packed", wantAlg: platform.COSEAlgES256, wantAAGUID: softkeyAAGUID},
		{name: "ShouldKeepPackedWhenIndirect", opts: []webauthn.RegistrationOption{webauthn.WithConveyancePreference(protocol.PreferIndirectAttestation)}, wantFmt: "packed", wantAlg: platform.COSEAlgES256, wantAAGUID: softkeyAAGUID},
		{name: "ShouldRegisterEdDSAWithPacked", opts: []webauthn.RegistrationOption{eddsaOnly, direct}, wantFmt: "packed", wantAlg: platform.COSEAlgEdDSA, wantAAGUID: softkeyAAGUID},
		{name: "ShouldRegisterEdDSAWithNone", opts: []webauthn.RegistrationOption{eddsaOnly}, wantFmt: "none", wantAlg: platform.COSEAlgEdDSA, wantAAGUID: softkeyAAGUID},
		{name: "ShouldZeroAAGUIDWhenBlinding", client: Client{BlindAAGUID: true}, wantFmt: "none", wantAlg: platform.COSEAlgES256, wantAAGUID: make([]byte, 16)},
		{name: "ShouldNotBlindKeptAttestation", client: Client{BlindAAGUID: true}, opts: []webauthn.RegistrationOption{direct}, wantFmt: "packed", wantAlg: platform.COSEAlgES256, wantAAGUID: softkeyAAGUID},
		{name: "ShouldPassKeyNoneAttestationThrough", keyCfg: softkey.Config{NoneAttestation: true}, opts: []webauthn.RegistrationOption{direct}, wantFmt: "none", wantAlg: platform.COSEAlgES256, wantAAGUID: softkeyAAGUID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := newRP(t)
			key := newSoftKey(t, tt.keyCfg)
			co := CeremonyOptions{Capabilities: key.capabilities(t)}
			user := newUser("alice")
			resp, parsed, cred := register(t, &tt.client, rp, key, user, co, tt.opts...)

			if got := parsed.Response.AttestationObject.Format; got != tt.wantFmt {
				t.Errorf("go-webauthn sees fmt %q, want %q", got, tt.wantFmt)
			}
			if !bytes.Equal(cred.Authenticator.AAGUID, tt.wantAAGUID) {
				t.Errorf("AAGUID = %x, want %x", cred.Authenticator.AAGUID, tt.wantAAGUID)
			}
			reg := decodeCredential(t, resp)
			if reg.Type != "public-key" || reg.AuthenticatorAttachment != "cross-platform" || reg.ID != reg.RawID ||
				!bytes.Equal(unb64(t, reg.ID), cred.ID) || string(reg.ClientExtensionResults) != "{}" {
				t.Errorf("credential members: %s", resp)
			}
			if !slices.Equal(reg.Response.Transports, []string{"usb"}) || reg.Response.PublicKeyAlgorithm != tt.wantAlg {
				t.Errorf("transports %q, publicKeyAlgorithm %d", reg.Response.Transports, reg.Response.PublicKeyAlgorithm)
			}
			// authenticatorData is the attestation object's authData.
			if !bytes.Equal(unb64(t, reg.Response.AuthenticatorData), parsed.Response.AttestationObject.RawAuthData) {
				t.Error("authenticatorData differs from the attestation object's authData")
			}

			assertion, session, err := rp.BeginLogin(user)
			if err != nil {
				t.Fatalf("BeginLogin: %v", err)
			}
			got, err := tt.client.Get(context.Background(), key, mustOrigin(t, testOrigin), mustJSON(t, assertion), co)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			parsedA, err := protocol.ParseCredentialRequestResponseBody(bytes.NewReader(got))
			if err != nil {
				t.Fatalf("go-webauthn cannot parse the assertion: %v\n%s", err, got)
			}
			if _, err := rp.ValidateLogin(user, *session, parsedA); err != nil {
				t.Fatalf("go-webauthn refuses the assertion: %v\n%s", err, got)
			}
			verifyWithSPKI(t, unb64(t, reg.Response.PublicKey), tt.wantAlg, decodeCredential(t, got))
		})
	}
}

func TestAttestationObjectKeepsTheKeysStatement(t *testing.T) {
	key := newSoftKey(t, softkey.Config{})
	o := mustOrigin(t, testOrigin)
	opts := &CreationOptions{
		RP: platform.RPEntity{ID: testRPID, Name: "Example"}, User: platform.User{ID: []byte("u"), Name: "u", DisplayName: "U"},
		Challenge: challenge16, PubKeyCredParams: []int{platform.COSEAlgES256}, Attestation: protocol.PreferDirectAttestation,
	}
	reg, err := CreationRequest(o, opts, key.capabilities(t))
	if err != nil {
		t.Fatal(err)
	}
	att, err := key.MakeCredential(context.Background(), reg.Request)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := reg.Response(att)
	if err != nil {
		t.Fatal(err)
	}
	obj := unb64(t, decodeCredential(t, resp).Response.AttestationObject)
	// CTAP2 canonical order: a map of 3, "fmt" (3 bytes), "attStmt" (7),
	// "authData" (8); the statement embedded byte for byte.
	want := slices.Concat(
		[]byte{0xa3, 0x63}, []byte("fmt"), []byte{0x66}, []byte("packed"),
		[]byte{0x67}, []byte("attStmt"), att.AttStmt,
		[]byte{0x68}, []byte("authData"),
	)
	if !bytes.HasPrefix(obj, want) {
		t.Fatalf("attestation object starts\n%x\nwant\n%x", obj[:min(len(obj), len(want))], want)
	}
	var authData []byte
	if err := cbor.Unmarshal(obj[len(want):], &authData); err != nil || !bytes.Equal(authData, att.AuthData) {
		t.Errorf("authData is not the key's (%v)", err)
	}
}

func TestDiscoverableSignInWithAccountChooser(t *testing.T) {
	rp := newRP(t)
	key := newSoftKey(t, softkey.Config{})
	co := CeremonyOptions{Capabilities: key.capabilities(t)}
	var c Client
	users := map[string]*testUser{}
	for _, name := range []string{"alice", "bob"} {
		u := newUser(name)
		users[string(u.id)] = u
		resp, _, _ := register(t, &c, rp, key, u, co,
			webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
			webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
		if got := string(decodeCredential(t, resp).ClientExtensionResults); got != `{"credProps":{"rk":true}}` {
			t.Errorf("clientExtensionResults = %s, want credProps rk true", got)
		}
	}
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		if u, ok := users[string(userHandle)]; ok {
			return u, nil
		}
		return nil, errors.New("no such user")
	}
	choose := func(pick string, seen *[]string) AccountChooser {
		return func(as []platform.Assertion) (int, error) {
			for _, a := range as {
				*seen = append(*seen, string(a.User.ID))
			}
			return slices.Index(*seen, pick), nil
		}
	}
	tests := []struct {
		name     string
		chooser  func(seen *[]string) AccountChooser
		wantUser string
		wantSeen []string
		wantErr  error
	}{
		{name: "ShouldReturnTheChosenAccount", chooser: func(seen *[]string) AccountChooser { return choose("id-of-alice", seen) }, wantUser: "id-of-alice", wantSeen: []string{"id-of-bob", "id-of-alice"}},
		{name: "ShouldOfferAccountsNewestFirst", chooser: func(seen *[]string) AccountChooser { return choose("id-of-bob", seen) }, wantUser: "id-of-bob", wantSeen: []string{"id-of-bob", "id-of-alice"}},
		{name: "ShouldTakeNewestWithoutChooser", chooser: func(*[]string) AccountChooser { return nil }, wantUser: "id-of-bob"},
		{name: "ShouldPassTheChoosersError", chooser: func(*[]string) AccountChooser {
			return func([]platform.Assertion) (int, error) { return 0, platform.ErrCancelled }
		}, wantErr: platform.ErrCancelled},
		{name: "ShouldRefuseAChoiceOutOfRange", chooser: func(*[]string) AccountChooser {
			return func(as []platform.Assertion) (int, error) { return len(as), nil }
		}, wantErr: errors.New("choice")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertion, session, err := rp.BeginDiscoverableLogin()
			if err != nil {
				t.Fatal(err)
			}
			var seen []string
			co := co
			co.ChooseAccount = tt.chooser(&seen)
			got, err := c.Get(context.Background(), key, mustOrigin(t, testOrigin), mustJSON(t, assertion), co)
			if tt.wantErr != nil {
				if err == nil || (!errors.Is(err, tt.wantErr) && !strings.Contains(err.Error(), tt.wantErr.Error())) {
					t.Fatalf("Get = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !slices.Equal(seen, tt.wantSeen) {
				t.Errorf("chooser saw %q, want %q", seen, tt.wantSeen)
			}
			if uh := string(unb64(t, decodeCredential(t, got).Response.UserHandle)); uh != tt.wantUser {
				t.Errorf("userHandle = %q, want %q", uh, tt.wantUser)
			}
			parsed, err := protocol.ParseCredentialRequestResponseBody(bytes.NewReader(got))
			if err != nil {
				t.Fatalf("go-webauthn cannot parse: %v", err)
			}
			cred, err := rp.ValidateDiscoverableLogin(handler, *session, parsed)
			if err != nil {
				t.Fatalf("go-webauthn refuses the discoverable sign-in: %v", err)
			}
			if !bytes.Equal(cred.ID, users[tt.wantUser].creds[0].ID) {
				t.Errorf("signed in with another credential than %s's", tt.wantUser)
			}
		})
	}
}

// pinPrompt is a PINPrompt that answers from a list and records the
// attempts left it was shown.
type pinPrompt struct {
	mu      sync.Mutex
	answers []string
	shown   []int
}

func (p *pinPrompt) prompt(_ context.Context, retriesLeft int) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shown = append(p.shown, retriesLeft)
	if len(p.answers) == 0 {
		return "", platform.ErrCancelled
	}
	a := p.answers[0]
	if len(p.answers) > 1 {
		p.answers = p.answers[1:]
	}
	return a, nil
}

func TestPIN(t *testing.T) {
	const pin, wrong = "246810", "135790"
	uvRequired := webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired})
	rkOnly := webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
		ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationDiscouraged,
	})
	tests := []struct {
		name      string
		answers   []string
		noPrompt  bool
		opts      []webauthn.RegistrationOption
		wantShown []int
		wantCalls int
		wantErr   error
	}{
		{name: "ShouldAskFirstWhenUVRequired", answers: []string{pin}, opts: []webauthn.RegistrationOption{uvRequired}, wantShown: []int{-1}, wantCalls: 1},
		{name: "ShouldAskFirstWhenUVPreferred", answers: []string{pin}, wantShown: []int{-1}, wantCalls: 1},
		{name: "ShouldAskAgainShowingRetries", answers: []string{wrong, pin}, opts: []webauthn.RegistrationOption{uvRequired}, wantShown: []int{-1, 7}, wantCalls: 2},
		{name: "ShouldAskWhenTheKeyWantsThePIN", answers: []string{pin}, opts: []webauthn.RegistrationOption{rkOnly}, wantShown: []int{-1}, wantCalls: 2},
		{name: "ShouldStopAfterThreeWrongPINs", answers: []string{wrong}, opts: []webauthn.RegistrationOption{uvRequired}, wantShown: []int{-1, 7, 6}, wantCalls: 3, wantErr: platform.ErrPINAuthBlocked},
		{name: "ShouldFailWithoutPromptBeforeTheKey", noPrompt: true, opts: []webauthn.RegistrationOption{uvRequired}, wantCalls: 0, wantErr: platform.ErrPINRequired},
		{name: "ShouldTreatEmptyPINAsCancel", answers: []string{""}, opts: []webauthn.RegistrationOption{uvRequired}, wantShown: []int{-1}, wantCalls: 0, wantErr: platform.ErrCancelled},
		{name: "ShouldPassThePromptsError", opts: []webauthn.RegistrationOption{uvRequired}, wantShown: []int{-1}, wantCalls: 0, wantErr: platform.ErrCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := newRP(t)
			key := newSoftKey(t, softkey.Config{NoBiometrics: true})
			key.setPIN(t, pin)
			p := &pinPrompt{answers: tt.answers}
			co := CeremonyOptions{Capabilities: key.capabilities(t), PIN: p.prompt}
			if tt.noPrompt {
				co.PIN = nil
			}
			user := newUser("alice")
			creation, session, err := rp.BeginRegistration(user, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			var c Client
			resp, err := c.Create(context.Background(), key, mustOrigin(t, testOrigin), mustJSON(t, creation), co)
			if !slices.Equal(p.shown, tt.wantShown) {
				t.Errorf("prompt shown retries %v, want %v", p.shown, tt.wantShown)
			}
			if got := key.callCount(); got != tt.wantCalls {
				t.Errorf("%d calls to the key, want %d", got, tt.wantCalls)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Create = %v, want %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), pin) || strings.Contains(err.Error(), wrong) {
					t.Errorf("error %q shows a PIN", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			parsed, err := protocol.ParseCredentialCreationResponseBody(bytes.NewReader(resp))
			if err != nil {
				t.Fatal(err)
			}
			cred, err := rp.CreateCredential(user, *session, parsed)
			if err != nil {
				t.Fatalf("go-webauthn refuses: %v", err)
			}
			if !cred.Flags.UserVerified {
				t.Error("the credential was made without user verification")
			}
		})
	}
}

func TestBlockedPIN(t *testing.T) {
	const pin, wrong = "246810", "135790"
	rp := newRP(t)
	key := newSoftKey(t, softkey.Config{NoBiometrics: true})
	key.setPIN(t, pin)
	p := &pinPrompt{answers: []string{wrong}}
	co := CeremonyOptions{Capabilities: key.capabilities(t), PIN: p.prompt}
	var c Client
	var err error
	// Eight wrong PINs block it; the key wants a re-plug after three in
	// a row.
	for round := 0; round < 4; round++ {
		creation, _, berr := rp.BeginRegistration(newUser("alice"))
		if berr != nil {
			t.Fatal(berr)
		}
		_, err = c.Create(context.Background(), key, mustOrigin(t, testOrigin), mustJSON(t, creation), co)
		if !errors.Is(err, platform.ErrPINAuthBlocked) {
			break
		}
		key.engine.PowerCycle()
	}
	if !errors.Is(err, platform.ErrPINBlocked) {
		t.Fatalf("Create = %v, want ErrPINBlocked", err)
	}
	if !strings.Contains(err.Error(), "blocked") || strings.Contains(err.Error(), wrong) {
		t.Errorf("message %q should say the PIN is blocked, and nothing more", err)
	}
	if want := []int{-1, 7, 6, -1, 4, 3, -1, 1}; !slices.Equal(p.shown, want) {
		t.Errorf("prompt shown retries %v, want %v", p.shown, want)
	}
}

func TestChecksHappenBeforeTheKey(t *testing.T) {
	tests := []struct {
		name   string
		origin string
		edit   func(m map[string]any)
		caps   func(c *Capabilities)
		kind   error
	}{
		{name: "ShouldRefuseOtherSitesRPID", origin: testOrigin, edit: func(m map[string]any) { sub(m, "rp")["id"] = "evil.com" }, kind: ErrRPIDMismatch},
		{name: "ShouldRefusePublicSuffixRPID", origin: testOrigin, edit: func(m map[string]any) { sub(m, "rp")["id"] = "com" }, kind: ErrRPIDMismatch},
		{name: "ShouldRefuseBadOptions", origin: testOrigin, edit: func(m map[string]any) { m["challenge"] = "" }, kind: ErrBadOptions},
		{name: "ShouldRefuseUVOnKeyWithoutPIN", origin: testOrigin, edit: func(m map[string]any) {
			m["authenticatorSelection"] = map[string]any{"userVerification": "required"}
		}, kind: ErrKeyNotCapable},
		{name: "ShouldRefuseResidentKeyOnKeyWithoutRoom", origin: testOrigin, edit: func(m map[string]any) {
			m["authenticatorSelection"] = map[string]any{"residentKey": "required"}
		}, caps: func(c *Capabilities) { c.ResidentKey = false }, kind: ErrKeyNotCapable},
		{name: "ShouldRefusePlatformAttachment", origin: testOrigin, edit: func(m map[string]any) {
			m["authenticatorSelection"] = map[string]any{"authenticatorAttachment": "platform"}
		}, kind: ErrKeyNotCapable},
		{name: "ShouldRefuseEnforcedCredProtectOnKeyWithout", origin: testOrigin, edit: func(m map[string]any) {
			m["extensions"] = map[string]any{"credentialProtectionPolicy": "userVerificationRequired", "enforceCredentialProtectionPolicy": true}
		}, caps: func(c *Capabilities) { c.CredProtect = false }, kind: ErrKeyNotCapable},
		{name: "ShouldRefuseAlgorithmsTheKeyLacks", origin: testOrigin, edit: func(m map[string]any) {
			m["pubKeyCredParams"] = []any{map[string]any{"type": "public-key", "alg": -257}}
		}, kind: ErrUnsupportedAlgorithm},
		{name: "ShouldRefuseDefaultRPIDOfInsecureOrigin", origin: "", edit: func(m map[string]any) { delete(sub(m, "rp"), "id") }, kind: ErrBadOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := newSoftKey(t, softkey.Config{NoBiometrics: true})
			caps := key.capabilities(t)
			if tt.caps != nil {
				tt.caps(&caps)
			}
			prompted := false
			co := CeremonyOptions{Capabilities: caps, PIN: func(context.Context, int) (string, error) { prompted = true; return "1234", nil }}
			m := creationBase()
			tt.edit(m)
			var o Origin
			if tt.origin != "" {
				o = mustOrigin(t, tt.origin)
			}
			var c Client
			_, err := c.Create(context.Background(), key, o, mustJSON(t, m), co)
			wantKind(t, err, tt.kind)
			if key.callCount() != 0 || prompted {
				t.Errorf("the key was asked (%d calls) or the PIN prompted (%v) before the check", key.callCount(), prompted)
			}
		})
	}
	t.Run("ShouldRefuseSignInForOtherSiteBeforeTheKey", func(t *testing.T) {
		key := newSoftKey(t, softkey.Config{})
		m := requestBase()
		m["rpId"] = "example.org"
		var c Client
		_, err := c.Get(context.Background(), key, mustOrigin(t, testOrigin), mustJSON(t, m), CeremonyOptions{Capabilities: key.capabilities(t)})
		wantKind(t, err, ErrRPIDMismatch)
		if key.callCount() != 0 {
			t.Errorf("the key was asked %d times", key.callCount())
		}
	})
}

func TestCredProtectReachesTheKey(t *testing.T) {
	const pin = "246810"
	rp := newRP(t)
	key := newSoftKey(t, softkey.Config{NoBiometrics: true})
	key.setPIN(t, pin)
	co := CeremonyOptions{Capabilities: key.capabilities(t), PIN: (&pinPrompt{answers: []string{pin}}).prompt}
	_, parsed, _ := register(t, &Client{}, rp, key, newUser("alice"), co,
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithExtensions(webauthn.WithExtensionCredentialProtectionPolicy(protocol.CredentialProtectionPolicyUserVerificationRequired, true)))
	var ext map[string]any
	if err := cbor.Unmarshal(parsed.Response.AttestationObject.AuthData.ExtData, &ext); err != nil {
		t.Fatalf("extension outputs: %v", err)
	}
	if got, _ := ext["credProtect"].(uint64); got != 3 {
		t.Errorf("the key's credProtect output is %v, want 3", ext["credProtect"])
	}
}

func TestFailedFingerprintFallsBackToPIN(t *testing.T) {
	const pin = "246810"
	var mu sync.Mutex
	denyNext := false
	presence := softkey.PresenceFunc(func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if denyNext {
			denyNext = false
			return softkey.ErrOperationDenied // a finger the key does not recognise
		}
		return nil
	})
	rp := newRP(t)
	key := newSoftKey(t, softkey.Config{Presence: presence})
	key.setPIN(t, pin)
	if _, err := inprocess.New(key.engine).EnrollFingerprint(context.Background(), pin, "thumb"); err != nil {
		t.Fatalf("EnrollFingerprint: %v", err)
	}
	caps := key.capabilities(t)
	if !caps.BuiltInUV || !caps.PINSet {
		t.Fatalf("capabilities %+v: want built-in UV and a PIN", caps)
	}
	mu.Lock()
	denyNext = true
	mu.Unlock()
	p := &pinPrompt{answers: []string{pin}}
	_, parsed, _ := register(t, &Client{}, rp, key, newUser("alice"), CeremonyOptions{Capabilities: caps, PIN: p.prompt},
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired}))
	if !slices.Equal(p.shown, []int{-1}) || key.callCount() != 2 {
		t.Errorf("prompt shown %v after %d key calls; want the PIN asked once, after the fingerprint failed", p.shown, key.callCount())
	}
	if !parsed.Response.AttestationObject.AuthData.Flags.HasUserVerified() {
		t.Error("the credential was made without user verification")
	}
}

func TestExcludedKeyIsRefused(t *testing.T) {
	rp := newRP(t)
	key := newSoftKey(t, softkey.Config{})
	co := CeremonyOptions{Capabilities: key.capabilities(t)}
	user := newUser("alice")
	register(t, &Client{}, rp, key, user, co)
	// go-webauthn lists the user's credentials in excludeCredentials.
	creation, _, err := rp.BeginRegistration(user, webauthn.WithExclusions(webauthn.Credentials(user.creds).CredentialDescriptors()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&Client{}).Create(context.Background(), key, mustOrigin(t, testOrigin), mustJSON(t, creation), co)
	if !errors.Is(err, platform.ErrCredentialExcluded) {
		t.Fatalf("Create = %v, want ErrCredentialExcluded", err)
	}
}

// TestWithInProcessKey runs a registration and a sign-in with PIN through
// platform/inprocess, the key the GUI uses when no hardware is plugged in,
// rather than this package's own test adapter.
func TestWithInProcessKey(t *testing.T) {
	const pin = "246810"
	rp := newRP(t)
	engine, err := softkey.New(softkey.Config{NoBiometrics: true})
	if err != nil {
		t.Fatal(err)
	}
	key := inprocess.New(engine)
	if err := key.SetPIN(context.Background(), pin); err != nil {
		t.Fatal(err)
	}
	info, err := key.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := &pinPrompt{answers: []string{"135790", pin}}
	co := CeremonyOptions{Capabilities: CapabilitiesOf(info, key.Device()), PIN: p.prompt}
	user := newUser("alice")
	creation, session, err := rp.BeginRegistration(user, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
	if err != nil {
		t.Fatal(err)
	}
	var c Client
	resp, err := c.Create(context.Background(), key, mustOrigin(t, testOrigin), mustJSON(t, creation), co)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(bytes.NewReader(resp))
	if err != nil {
		t.Fatal(err)
	}
	cred, err := rp.CreateCredential(user, *session, parsed)
	if err != nil {
		t.Fatalf("go-webauthn refuses the registration: %v", err)
	}
	user.creds = append(user.creds, *cred)
	if !slices.Equal(p.shown, []int{-1, 7}) {
		t.Errorf("prompt shown %v, want [-1 7]", p.shown)
	}
	if got := decodeCredential(t, resp).Response.Transports; len(got) != 0 {
		t.Errorf("transports %q for the virtual key, want none", got)
	}

	assertion, session, err := rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		t.Fatal(err)
	}
	p.answers = []string{pin}
	got, err := c.Get(context.Background(), key, mustOrigin(t, testOrigin), mustJSON(t, assertion), co)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	parsedA, err := protocol.ParseCredentialRequestResponseBody(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		if bytes.Equal(userHandle, user.id) {
			return user, nil
		}
		return nil, errors.New("no such user")
	}
	if _, err := rp.ValidateDiscoverableLogin(handler, *session, parsedA); err != nil {
		t.Fatalf("go-webauthn refuses the sign-in: %v", err)
	}
}
