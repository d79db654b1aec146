package platformtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// The WebAuthn cases put MakeCredential and GetAssertion behind a small
// WebAuthn client and check what the key returns with go-webauthn, the
// library the reference RP verifies with: options come from go-webauthn,
// and the attestation object and assertions the client assembles from the
// key's answers must pass its registration and login checks.

// The relying parties of the cases.
const (
	rpID      = "login.example"
	otherRPID = "other.example"
)

// touchWait bounds how long a case waits for the key to ask for a touch,
// or for an operation to end after one.
const touchWait = 10 * time.Second

// account is a user of a relyingParty, with the credentials registered so
// far.
type account struct {
	id    []byte
	name  string
	creds []webauthn.Credential
}

// WebAuthnID is the user handle, which a discoverable sign-in finds the
// account by.
func (a *account) WebAuthnID() []byte { return a.id }

// WebAuthnName is the name the key stores with a discoverable credential.
func (a *account) WebAuthnName() string { return a.name }

// WebAuthnDisplayName is derived from the name, so that a case can check
// what the key returns without keeping it.
func (a *account) WebAuthnDisplayName() string { return "User " + a.name }

// WebAuthnCredentials are the account's registered credentials: the
// allow list of a sign-in, and what it is verified against.
func (a *account) WebAuthnCredentials() []webauthn.Credential { return a.creds }

// relyingParty is go-webauthn set up for one RP ID, and its accounts by
// user handle.
type relyingParty struct {
	wa       *webauthn.WebAuthn
	accounts map[string]*account
}

func newRP(t *testing.T, id string) *relyingParty {
	t.Helper()
	wa, err := webauthn.New(&webauthn.Config{RPID: id, RPDisplayName: "RP " + id, RPOrigins: []string{"https://" + id}})
	if err != nil {
		t.Fatal(err)
	}
	return &relyingParty{wa: wa, accounts: map[string]*account{}}
}

// account creates the account name.
func (r *relyingParty) account(name string) *account {
	a := &account{id: []byte("uid-" + name), name: name}
	r.accounts[string(a.id)] = a
	return a
}

// registration is what a registration asks for beyond go-webauthn's
// defaults.
type registration struct {
	algs        []int // pubKeyCredParams in order; ES256 when empty
	residentKey bool
	uv          bool
	exclude     bool // exclude the account's credentials
	credProtect protocol.CredentialProtectionPolicy
	pin         string
}

// clientData is clientDataJSON (WebAuthn L3 §5.8.1) for the RP's origin,
// and its hash.
func (r *relyingParty) clientData(typ string, challenge protocol.URLEncodedBase64) ([]byte, []byte) {
	cd, _ := json.Marshal(map[string]any{
		"type": typ, "challenge": challenge.String(), "origin": r.wa.Config.RPOrigins[0], "crossOrigin": false,
	})
	h := sha256.Sum256(cd)
	return cd, h[:]
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

var ctap2 = func() cbor.EncMode {
	m, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// register runs a registration ceremony with k: go-webauthn's creation
// options become a MakeCredentialRequest, and the Attestation becomes
// the attestation object of a RegistrationResponseJSON that go-webauthn
// must accept. The key's error is returned as it is; a response that does
// not verify fails the test. The new credential is added to acc.
func (r *relyingParty) register(t *testing.T, ctx context.Context, k platform.Authenticator, acc *account, reg registration) (*platform.Attestation, *webauthn.Credential, error) {
	t.Helper()
	algs := reg.algs
	if len(algs) == 0 {
		algs = []int{platform.COSEAlgES256}
	}
	var params []protocol.CredentialParameter
	for _, a := range algs {
		params = append(params, protocol.CredentialParameter{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.COSEAlgorithmIdentifier(a)})
	}
	sel := protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementDiscouraged, UserVerification: protocol.VerificationDiscouraged}
	if reg.residentKey {
		sel.ResidentKey = protocol.ResidentKeyRequirementRequired
	}
	if reg.uv {
		sel.UserVerification = protocol.VerificationRequired
	}
	opts := []webauthn.RegistrationOption{
		webauthn.WithCredentialParameters(params),
		webauthn.WithConveyancePreference(protocol.PreferDirectAttestation),
		webauthn.WithAuthenticatorSelection(sel),
	}
	if reg.exclude {
		var ex []protocol.CredentialDescriptor
		for _, c := range acc.creds {
			ex = append(ex, protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: c.ID})
		}
		opts = append(opts, webauthn.WithExclusions(ex))
	}
	if reg.credProtect != "" {
		opts = append(opts, webauthn.WithExtensions(webauthn.WithExtensionCredentialProtectionPolicy(reg.credProtect, true)))
	}
	creation, session, err := r.wa.BeginRegistration(acc, opts...)
	if err != nil {
		t.Fatal(err)
	}

	// The client: options to CTAP, as a browser does.
	o := creation.Response
	cdj, cdh := r.clientData("webauthn.create", o.Challenge)
	req := platform.MakeCredentialRequest{
		ClientDataHash:   cdh,
		RP:               platform.RPEntity{ID: o.RelyingParty.ID, Name: o.RelyingParty.Name},
		User:             platform.User{ID: userHandle(t, o.User.ID), Name: o.User.Name, DisplayName: o.User.DisplayName},
		ResidentKey:      o.AuthenticatorSelection.ResidentKey == protocol.ResidentKeyRequirementRequired,
		UserVerification: o.AuthenticatorSelection.UserVerification == protocol.VerificationRequired,
		PIN:              reg.pin,
	}
	for _, p := range o.Parameters {
		req.Algorithms = append(req.Algorithms, int(p.Algorithm))
	}
	for _, d := range o.CredentialExcludeList {
		req.ExcludeList = append(req.ExcludeList, d.CredentialID)
	}
	if v, ok := o.Extensions.CredentialProtectionPolicy.Value(); ok {
		req.CredProtect = int(v)
	}
	att, err := k.MakeCredential(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	attObj, err := ctap2.Marshal(map[string]any{"fmt": att.Format, "attStmt": cbor.RawMessage(att.AttStmt), "authData": att.AuthData})
	if err != nil {
		t.Fatalf("attestation object: %v", err)
	}
	body, _ := json.Marshal(map[string]any{
		"id": b64(att.CredentialID), "rawId": b64(att.CredentialID), "type": "public-key",
		"authenticatorAttachment": "cross-platform",
		"response": map[string]any{
			"clientDataJSON": b64(cdj), "attestationObject": b64(attObj), "transports": []string{"usb"},
		},
		"clientExtensionResults": map[string]any{},
	})

	// The RP.
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		t.Fatalf("go-webauthn cannot parse the registration: %v", describe(err))
	}
	cred, err := r.wa.CreateCredential(acc, *session, parsed)
	if err != nil {
		t.Fatalf("go-webauthn refuses the registration: %v", describe(err))
	}
	if !bytes.Equal(cred.ID, att.CredentialID) {
		t.Fatalf("credential ID %x, authenticator data says %x", att.CredentialID, cred.ID)
	}
	acc.creds = append(acc.creds, *cred)
	return att, cred, nil
}

// signIn runs an authentication ceremony with k: for acc with
// go-webauthn's allow list of its credentials, or, when acc is nil, for
// the key's discoverable credentials. Every assertion the key returns must
// pass go-webauthn's login checks, for its credential's owner.
func (r *relyingParty) signIn(t *testing.T, ctx context.Context, k platform.Authenticator, acc *account, uv bool, pin string) ([]platform.Assertion, error) {
	t.Helper()
	req := protocol.VerificationDiscouraged
	if uv {
		req = protocol.VerificationRequired
	}
	var (
		assertion *protocol.CredentialAssertion
		session   *webauthn.SessionData
		err       error
	)
	if acc != nil {
		assertion, session, err = r.wa.BeginLogin(acc, webauthn.WithUserVerification(req))
	} else {
		assertion, session, err = r.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(req))
	}
	if err != nil {
		t.Fatal(err)
	}
	o := assertion.Response
	cdj, cdh := r.clientData("webauthn.get", o.Challenge)
	greq := platform.GetAssertionRequest{RPID: o.RelyingPartyID, ClientDataHash: cdh, UserVerification: o.UserVerification == protocol.VerificationRequired, PIN: pin}
	for _, d := range o.AllowedCredentials {
		greq.AllowList = append(greq.AllowList, d.CredentialID)
	}
	as, err := k.GetAssertion(ctx, greq)
	if err != nil {
		return nil, err
	}
	for i, a := range as {
		resp := map[string]any{"clientDataJSON": b64(cdj), "authenticatorData": b64(a.AuthData), "signature": b64(a.Signature)}
		if a.User != nil {
			resp["userHandle"] = b64(a.User.ID)
		}
		body, _ := json.Marshal(map[string]any{
			"id": b64(a.CredentialID), "rawId": b64(a.CredentialID), "type": "public-key",
			"authenticatorAttachment": "cross-platform", "response": resp, "clientExtensionResults": map[string]any{},
		})
		parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
		if err != nil {
			t.Fatalf("go-webauthn cannot parse assertion %d: %v", i, describe(err))
		}
		owner := acc
		var cred *webauthn.Credential
		if acc != nil {
			cred, err = r.wa.ValidateLogin(acc, *session, parsed)
		} else {
			cred, err = r.wa.ValidateDiscoverableLogin(func(_, userHandle []byte) (webauthn.User, error) {
				owner = r.accounts[string(userHandle)]
				if owner == nil {
					return nil, fmt.Errorf("no account with user handle %q", userHandle)
				}
				return owner, nil
			}, *session, parsed)
		}
		if err != nil {
			t.Fatalf("go-webauthn refuses assertion %d: %v", i, describe(err))
		}
		// Keep the signature counter, as an RP does.
		for j := range owner.creds {
			if bytes.Equal(owner.creds[j].ID, cred.ID) {
				owner.creds[j].Authenticator.SignCount = cred.Authenticator.SignCount
			}
		}
	}
	return as, nil
}

// describe adds go-webauthn's details to its error.
func describe(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return fmt.Sprintf("%v (%s %s)", err, pe.Details, pe.DevInfo)
	}
	return err.Error()
}

// userHandle is the user ID of go-webauthn's creation options, which
// carry it as base64url bytes.
func userHandle(t *testing.T, id any) []byte {
	t.Helper()
	switch v := id.(type) {
	case protocol.URLEncodedBase64:
		return v
	case []byte:
		return v
	case string:
		return []byte(v)
	}
	t.Fatalf("user ID of type %T", id)
	return nil
}

// coseAlg reads the algorithm (label 3) of a COSE_Key.
func coseAlg(t *testing.T, key []byte) int {
	t.Helper()
	var k map[int]any
	if err := cbor.Unmarshal(key, &k); err != nil {
		t.Fatalf("credential public key: %v", err)
	}
	alg, ok := k[3].(int64)
	if !ok {
		t.Fatalf("credential public key without alg: %v", k)
	}
	return int(alg)
}

// flagUV is the UV flag of authenticator data (WebAuthn L3 §6.1).
const flagUV = 0x04

// userVerified reports whether authData carries the UV flag.
func userVerified(authData []byte) bool { return len(authData) > 32 && authData[32]&flagUV != 0 }

// wantRetries fails unless err says retries PIN attempts are left.
func wantRetries(t *testing.T, err error, retries int) {
	t.Helper()
	var e *platform.Error
	if !errors.As(err, &e) || e.RetriesLeft != retries {
		t.Fatalf("got %v, want %d attempts left", err, retries)
	}
}

// progress records the stages an operation reports, from any goroutine.
type progress struct {
	mu     sync.Mutex
	stages []platform.Stage
}

func (p *progress) report(ev platform.ProgressEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stages = append(p.stages, ev.Stage)
}

func (p *progress) has(s platform.Stage) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.stages {
		if v == s {
			return true
		}
	}
	return false
}

// simpleRequest is a MakeCredentialRequest for rpID without verification,
// for cases about the key's waiting rather than the result.
func simpleRequest(user string) platform.MakeCredentialRequest {
	cdh := sha256.Sum256([]byte("client data of " + user))
	return platform.MakeCredentialRequest{
		ClientDataHash: cdh[:], RP: platform.RPEntity{ID: rpID},
		User: platform.User{ID: []byte("uid-" + user), Name: user}, Algorithms: []int{platform.COSEAlgES256},
	}
}

// whileWaiting runs op in a goroutine and, once the key waits for a touch
// (sig), calls then; it returns op's error.
func whileWaiting(t *testing.T, sig *softkey.Signal, op func() error, then func()) error {
	t.Helper()
	waiting := sig.Waiting()
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("ended without waiting for a touch: %v", err)
	case <-time.After(touchWait):
		t.Fatal("the key never waited for a touch")
	}
	then()
	select {
	case err := <-done:
		return err
	case <-time.After(touchWait):
		t.Fatal("the operation did not end")
	}
	return nil
}

// webAuthnCases are the cases of MakeCredential and GetAssertion.
func webAuthnCases() []testCase {
	ctx := context.Background()
	progressSig, cancelSig := softkey.NewSignal(touchWait), softkey.NewSignal(touchWait)
	return []testCase{
		{name: "ShouldRegisterWithES256AndTheWholeCertificateChainThenSignIn", run: func(t *testing.T, k platform.Authenticator, a *softkey.Authenticator) {
			rp := newRP(t, rpID)
			alice := rp.account("alice")
			att, cred, err := rp.register(t, ctx, k, alice, registration{algs: []int{platform.COSEAlgES256}})
			wantKind(t, err, nil)
			if att.Format != "packed" || cred.AttestationType != "basic_full" || coseAlg(t, cred.PublicKey) != platform.COSEAlgES256 {
				t.Fatalf("format %q, type %q, alg %d", att.Format, cred.AttestationType, coseAlg(t, cred.PublicKey))
			}
			var stmt struct {
				Alg int      `cbor:"alg"`
				Sig []byte   `cbor:"sig"`
				X5c [][]byte `cbor:"x5c"`
			}
			if err := cbor.Unmarshal(att.AttStmt, &stmt); err != nil {
				t.Fatal(err)
			}
			// The key sends its leaf and the CA that issued it: both must
			// arrive, unchanged.
			if len(stmt.X5c) != 2 || !bytes.Equal(stmt.X5c[1], a.AttestationCA()) {
				t.Fatalf("x5c has %d certificates; the second is the key's CA: %v", len(stmt.X5c), len(stmt.X5c) == 2 && bytes.Equal(stmt.X5c[1], a.AttestationCA()))
			}
			leaf, err := x509.ParseCertificate(stmt.X5c[0])
			if err != nil {
				t.Fatal(err)
			}
			ca, err := x509.ParseCertificate(stmt.X5c[1])
			if err != nil {
				t.Fatal(err)
			}
			if err := leaf.CheckSignatureFrom(ca); err != nil {
				t.Fatalf("leaf not issued by the CA in x5c: %v", err)
			}
			as, err := rp.signIn(t, ctx, k, alice, false, "")
			wantKind(t, err, nil)
			if len(as) != 1 || !bytes.Equal(as[0].CredentialID, cred.ID) || as[0].User != nil {
				t.Fatalf("assertions %+v", as)
			}
		}},
		{name: "ShouldRegisterWithEdDSAThenSignIn", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			rp := newRP(t, rpID)
			alice := rp.account("alice")
			_, cred, err := rp.register(t, ctx, k, alice, registration{algs: []int{platform.COSEAlgEdDSA}})
			wantKind(t, err, nil)
			if alg := coseAlg(t, cred.PublicKey); alg != platform.COSEAlgEdDSA {
				t.Fatalf("credential algorithm %d", alg)
			}
			_, err = rp.signIn(t, ctx, k, alice, false, "")
			wantKind(t, err, nil)
		}},
		{name: "ShouldUseTheFirstRequestedAlgorithmTheKeySupports", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			rp := newRP(t, rpID)
			for _, tc := range []struct {
				algs []int
				want int
			}{
				{[]int{platform.COSEAlgRS256, platform.COSEAlgEdDSA, platform.COSEAlgES256}, platform.COSEAlgEdDSA},
				{[]int{platform.COSEAlgES256, platform.COSEAlgEdDSA}, platform.COSEAlgES256},
			} {
				_, cred, err := rp.register(t, ctx, k, rp.account(fmt.Sprint(tc.algs)), registration{algs: tc.algs})
				wantKind(t, err, nil)
				if alg := coseAlg(t, cred.PublicKey); alg != tc.want {
					t.Fatalf("asked for %v, got %d, want %d", tc.algs, alg, tc.want)
				}
			}
		}},
		{name: "ShouldRefuseWhenNoRequestedAlgorithmIsSupported", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			rp := newRP(t, rpID)
			_, _, err := rp.register(t, ctx, k, rp.account("alice"), registration{algs: []int{platform.COSEAlgRS256}})
			wantKind(t, err, platform.ErrUnsupported)
			req := simpleRequest("bob")
			req.Algorithms = nil
			_, err = k.MakeCredential(ctx, req)
			wantKind(t, err, platform.ErrUnsupported)
		}},
		{name: "ShouldPassOnNoneAttestation", cfg: softkey.Config{NoneAttestation: true}, run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			rp := newRP(t, rpID)
			att, cred, err := rp.register(t, ctx, k, rp.account("alice"), registration{})
			wantKind(t, err, nil)
			if att.Format != "none" || !bytes.Equal(att.AttStmt, []byte{0xa0}) || cred.AttestationType != "none" {
				t.Fatalf("format %q, attStmt % x, type %q", att.Format, att.AttStmt, cred.AttestationType)
			}
		}},
		{name: "ShouldRefuseAKeyAlreadyRegisteredForTheUser", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			rp := newRP(t, rpID)
			alice := rp.account("alice")
			_, _, err := rp.register(t, ctx, k, alice, registration{})
			wantKind(t, err, nil)
			_, _, err = rp.register(t, ctx, k, alice, registration{exclude: true})
			wantKind(t, err, platform.ErrCredentialExcluded)
			if len(alice.creds) != 1 {
				t.Fatalf("%d credentials", len(alice.creds))
			}
		}},
		{name: "ShouldSignInWithTheAllowedCredential", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			rp := newRP(t, rpID)
			alice, bob := rp.account("alice"), rp.account("bob")
			_, _, err := rp.register(t, ctx, k, alice, registration{})
			wantKind(t, err, nil)
			_, bobs, err := rp.register(t, ctx, k, bob, registration{})
			wantKind(t, err, nil)
			as, err := rp.signIn(t, ctx, k, bob, false, "")
			wantKind(t, err, nil)
			if len(as) != 1 || !bytes.Equal(as[0].CredentialID, bobs.ID) {
				t.Fatalf("assertions %+v, want bob's credential only", as)
			}
			// A credential the key never made, or made for another RP.
			stranger := rp.account("stranger")
			stranger.creds = []webauthn.Credential{{ID: bytes.Repeat([]byte{7}, 64)}}
			_, err = rp.signIn(t, ctx, k, stranger, false, "")
			wantKind(t, err, platform.ErrNoCredentials)
			other := newRP(t, otherRPID)
			moved := other.account("bob")
			moved.creds = bob.creds
			_, err = other.signIn(t, ctx, k, moved, false, "")
			wantKind(t, err, platform.ErrNoCredentials)
		}},
		{name: "ShouldReturnEveryDiscoverableCredentialOfTheRPWithItsUser", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, pin), nil)
			rp, other := newRP(t, rpID), newRP(t, otherRPID)
			ids := map[string][]byte{}
			for _, name := range []string{"alice", "bob", "carol"} {
				_, cred, err := rp.register(t, ctx, k, rp.account(name), registration{residentKey: true, uv: true, pin: pin})
				wantKind(t, err, nil)
				ids[name] = cred.ID
			}
			_, _, err := other.register(t, ctx, k, other.account("dave"), registration{residentKey: true, uv: true, pin: pin})
			wantKind(t, err, nil)

			as, err := rp.signIn(t, ctx, k, nil, true, pin)
			wantKind(t, err, nil)
			var got []string
			for _, a := range as {
				if a.User == nil || !userVerified(a.AuthData) {
					t.Fatalf("assertion %+v without user or UV", a)
				}
				if !bytes.Equal(ids[a.User.Name], a.CredentialID) || string(a.User.ID) != "uid-"+a.User.Name || a.User.DisplayName != "User "+a.User.Name {
					t.Fatalf("user %+v with credential %x", a.User, a.CredentialID)
				}
				got = append(got, a.User.Name)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != "alice,bob,carol" {
				t.Fatalf("users %v", got)
			}
			// Without UV the key names no one: user handles only.
			as, err = rp.signIn(t, ctx, k, nil, false, "")
			wantKind(t, err, nil)
			if len(as) != 3 {
				t.Fatalf("%d assertions without UV", len(as))
			}
			for _, a := range as {
				if a.User == nil || len(a.User.ID) == 0 || a.User.Name != "" || userVerified(a.AuthData) {
					t.Fatalf("unverified assertion with user %+v", a.User)
				}
			}
		}},
		{name: "ShouldAskForThePINAndCountWrongOnes", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, pin), nil)
			rp := newRP(t, rpID)
			alice := rp.account("alice")
			_, _, err := rp.register(t, ctx, k, alice, registration{residentKey: true})
			wantKind(t, err, platform.ErrPINRequired)
			_, _, err = rp.register(t, ctx, k, alice, registration{uv: true})
			wantKind(t, err, platform.ErrPINRequired)
			_, _, err = rp.register(t, ctx, k, alice, registration{residentKey: true, uv: true, pin: "0000"})
			wantKind(t, err, platform.ErrPINInvalid)
			wantRetries(t, err, 7)
			att, _, err := rp.register(t, ctx, k, alice, registration{residentKey: true, uv: true, pin: pin})
			wantKind(t, err, nil)
			if !userVerified(att.AuthData) {
				t.Fatal("registration with the PIN without UV")
			}
			_, err = rp.signIn(t, ctx, k, alice, true, "")
			wantKind(t, err, platform.ErrPINRequired)
			_, err = rp.signIn(t, ctx, k, alice, true, "9999")
			wantKind(t, err, platform.ErrPINInvalid)
			wantRetries(t, err, 7) // the right PIN before reset the count
			as, err := rp.signIn(t, ctx, k, alice, true, pin)
			wantKind(t, err, nil)
			if len(as) != 1 || !userVerified(as[0].AuthData) {
				t.Fatalf("assertions %+v", as)
			}
		}},
		{name: "ShouldSayThePINIsNotSetWhenUVIsRequired", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			rp := newRP(t, rpID)
			_, _, err := rp.register(t, ctx, k, rp.account("alice"), registration{uv: true})
			wantKind(t, err, platform.ErrPINNotSet)
			_, _, err = rp.register(t, ctx, k, rp.account("bob"), registration{uv: true, pin: pin})
			wantKind(t, err, platform.ErrPINNotSet)
		}},
		{name: "ShouldVerifyTheUserWithTheKeysFingerprintWithoutAPIN", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, pin), nil)
			must(k.EnrollFingerprint(ctx, pin, "thumb"))(t)
			rp := newRP(t, rpID)
			alice := rp.account("alice")
			att, _, err := rp.register(t, ctx, k, alice, registration{residentKey: true, uv: true})
			wantKind(t, err, nil)
			if !userVerified(att.AuthData) {
				t.Fatal("registration without UV")
			}
			as, err := rp.signIn(t, ctx, k, nil, true, "")
			wantKind(t, err, nil)
			if len(as) != 1 || !userVerified(as[0].AuthData) || as[0].User == nil || as[0].User.Name != "alice" {
				t.Fatalf("assertions %+v", as)
			}
		}},
		{name: "ShouldKeepUVRequiredCredentialsForVerifiedUsers", run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			wantKind(t, k.SetPIN(ctx, pin), nil)
			rp := newRP(t, rpID)
			_, _, err := rp.register(t, ctx, k, rp.account("alice"), registration{
				residentKey: true, uv: true, pin: pin, credProtect: protocol.CredentialProtectionPolicyUserVerificationRequired,
			})
			wantKind(t, err, nil)
			_, err = rp.signIn(t, ctx, k, nil, false, "")
			wantKind(t, err, platform.ErrNoCredentials)
			as, err := rp.signIn(t, ctx, k, nil, true, pin)
			wantKind(t, err, nil)
			if len(as) != 1 {
				t.Fatalf("%d assertions", len(as))
			}
			if rps := must(k.Credentials(ctx, pin))(t); len(rps) != 1 || rps[0].Credentials[0].Protection != 3 {
				t.Fatalf("credentials %+v", rps)
			}
		}},
		{name: "ShouldReportTheTouchBeforeTheKeyWaits", cfg: softkey.Config{Presence: progressSig}, run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			var p progress
			pctx := platform.WithProgress(ctx, p.report)
			var att *platform.Attestation
			err := whileWaiting(t, progressSig, func() error {
				var err error
				att, err = k.MakeCredential(pctx, simpleRequest("alice"))
				return err
			}, func() {
				if !p.has(platform.StageTouch) {
					t.Error("the key waits for a touch, but MakeCredential did not say so")
				}
				progressSig.Touch()
			})
			wantKind(t, err, nil)
			p = progress{}
			cdh := sha256.Sum256([]byte("sign in"))
			err = whileWaiting(t, progressSig, func() error {
				_, err := k.GetAssertion(pctx, platform.GetAssertionRequest{RPID: rpID, ClientDataHash: cdh[:], AllowList: [][]byte{att.CredentialID}})
				return err
			}, func() {
				if !p.has(platform.StageTouch) {
					t.Error("the key waits for a touch, but GetAssertion did not say so")
				}
				progressSig.Touch()
			})
			wantKind(t, err, nil)
		}},
		{name: "ShouldCancelAWaitForATouch", cfg: softkey.Config{Presence: cancelSig}, run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			err := whileWaiting(t, cancelSig, func() error {
				_, err := k.MakeCredential(cctx, simpleRequest("alice"))
				return err
			}, cancel)
			wantKind(t, err, platform.ErrCancelled)
			// The key is usable again, and the next wait can be cancelled too.
			var att *platform.Attestation
			err = whileWaiting(t, cancelSig, func() error {
				var err error
				att, err = k.MakeCredential(ctx, simpleRequest("bob"))
				return err
			}, func() { cancelSig.Touch() })
			wantKind(t, err, nil)
			cctx, cancel = context.WithCancel(ctx)
			defer cancel()
			cdh := sha256.Sum256([]byte("sign in"))
			err = whileWaiting(t, cancelSig, func() error {
				_, err := k.GetAssertion(cctx, platform.GetAssertionRequest{RPID: rpID, ClientDataHash: cdh[:], AllowList: [][]byte{att.CredentialID}})
				return err
			}, cancel)
			wantKind(t, err, platform.ErrCancelled)
		}},
		{name: "ShouldSayTheKeyWasNotTouchedInTime", cfg: softkey.Config{Presence: softkey.NewSignal(50 * time.Millisecond)}, run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			_, err := k.MakeCredential(ctx, simpleRequest("alice"))
			wantKind(t, err, platform.ErrTimeout)
		}},
		{name: "ShouldSayTheRegistrationWasDenied", cfg: softkey.Config{Presence: softkey.DenyAlways}, run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
			_, err := k.MakeCredential(ctx, simpleRequest("alice"))
			wantKind(t, err, platform.ErrOperationDenied)
		}},
		{name: "ShouldTellSilentlyWhichCredentialTheKeyHolds", cfg: softkey.Config{Presence: countingPresence(&silentTouches)},
			run: func(t *testing.T, k platform.Authenticator, _ *softkey.Authenticator) {
				att, err := k.MakeCredential(ctx, simpleRequest("alice"))
				wantKind(t, err, nil)
				before := silentTouches.Load()
				var touched atomic.Bool
				tctx := platform.WithProgress(ctx, func(ev platform.ProgressEvent) { touched.Store(ev.Stage == platform.StageTouch) })
				cdh := sha256.Sum256([]byte("which key is this"))
				silent := func(ids ...[]byte) ([]platform.Assertion, error) {
					return k.GetAssertion(tctx, platform.GetAssertionRequest{RPID: rpID, ClientDataHash: cdh[:], AllowList: ids, Silent: true})
				}
				unknown := bytes.Repeat([]byte{9}, 48)
				as, err := silent(unknown, att.CredentialID)
				wantKind(t, err, nil)
				if len(as) != 1 || !bytes.Equal(as[0].CredentialID, att.CredentialID) {
					t.Fatalf("silent assertions %+v, want the key's credential", as)
				}
				if flags := as[0].AuthData[32]; flags&0x01 != 0 {
					t.Errorf("authenticator data flags %#x: UP set on a silent request", flags)
				}
				_, err = silent(unknown)
				wantKind(t, err, platform.ErrNoCredentials)
				if n := silentTouches.Load(); n != before || touched.Load() {
					t.Errorf("a silent request asked for %d touch(es), announced: %v", n-before, touched.Load())
				}
				_, err = k.GetAssertion(ctx, platform.GetAssertionRequest{RPID: rpID, ClientDataHash: cdh[:], Silent: true})
				wantKind(t, err, platform.ErrUnsupported)
				_, err = k.GetAssertion(ctx, platform.GetAssertionRequest{RPID: rpID, ClientDataHash: cdh[:], AllowList: [][]byte{att.CredentialID},
					Silent: true, UserVerification: true})
				wantKind(t, err, platform.ErrUnsupported)
			}},
	}
}

// silentTouches counts the touches of the silent-request case's key.
var silentTouches atomic.Int64

// countingPresence approves every request for a touch at once, counting
// them in n.
func countingPresence(n *atomic.Int64) softkey.Presence {
	return softkey.PresenceFunc(func(context.Context) error {
		n.Add(1)
		return nil
	})
}
