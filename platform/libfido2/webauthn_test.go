package libfido2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// ctapRecorder stands in front of a software key: it keeps what the key
// answered to makeCredential and getAssertion, the subcommands of the
// clientPIN requests, and can leave an option out of getInfo, to look
// like an older key.
type ctapRecorder struct {
	*softkey.Authenticator
	hide string // getInfo option left out; "" for none

	mu         sync.Mutex
	made       []map[int]cbor.RawMessage // makeCredential responses
	asserted   []map[int]cbor.RawMessage // getAssertion and getNextAssertion responses
	clientPINs []uint64                  // clientPIN subcommands
}

func (r *ctapRecorder) CBOR(ctx context.Context, req []byte, keepalive func(byte)) []byte {
	resp := r.Authenticator.CBOR(ctx, req, keepalive)
	if len(req) == 0 || len(resp) == 0 || resp[0] != 0 {
		return resp
	}
	var m map[int]cbor.RawMessage
	if len(resp) > 1 {
		if err := cbor.Unmarshal(resp[1:], &m); err != nil {
			return resp
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch softkey.Command(req[0]) {
	case softkey.CmdMakeCredential:
		r.made = append(r.made, m)
	case softkey.CmdGetAssertion, softkey.CmdGetNextAssertion:
		r.asserted = append(r.asserted, m)
	case softkey.CmdClientPIN:
		var p struct {
			Sub uint64 `cbor:"2,keyasint"`
		}
		cbor.Unmarshal(req[1:], &p)
		r.clientPINs = append(r.clientPINs, p.Sub)
	case softkey.CmdGetInfo:
		if r.hide != "" {
			return hideOption(resp, m, r.hide)
		}
	}
	return resp
}

// responses returns what was recorded so far (under the lock, which
// orders it after the key's goroutine wrote it).
func (r *ctapRecorder) responses() (made, asserted []map[int]cbor.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(made, r.made...), append(asserted, r.asserted...)
}

// hideOption re-encodes a getInfo response m without option name.
func hideOption(resp []byte, m map[int]cbor.RawMessage, name string) []byte {
	var opts map[string]bool
	if err := cbor.Unmarshal(m[4], &opts); err != nil {
		return resp
	}
	delete(opts, name)
	enc, _ := cbor.CTAP2EncOptions().EncMode()
	m[4], _ = enc.Marshal(opts)
	b, err := enc.Marshal(m)
	if err != nil {
		return resp
	}
	return append([]byte{0}, b...)
}

// byteString decodes a CBOR byte string, as the key sent it.
func byteString(t *testing.T, raw cbor.RawMessage) []byte {
	t.Helper()
	var b []byte
	if err := cbor.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// recordedKey serves a software key with a ctapRecorder in front, opened
// through libfido2.
func recordedKey(t *testing.T, cfg softkey.Config, hide string) (*Key, *ctapRecorder) {
	t.Helper()
	a, err := softkey.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &ctapRecorder{Authenticator: a, hide: hide}
	sk := softkeytest.ServeHandler(t, a, rec)
	key, err := New(Config{}).Open(context.Background(), platform.Device{Path: sk.Path})
	if err != nil {
		t.Fatal(err)
	}
	return key.(*Key), rec
}

// webAuthnRequest is a discoverable-credential request for user on
// a.example.
func webAuthnRequest(user string) platform.MakeCredentialRequest {
	cdh := sha256.Sum256([]byte("register " + user))
	return platform.MakeCredentialRequest{
		ClientDataHash: cdh[:], RP: platform.RPEntity{ID: "a.example", Name: "A"},
		User:       platform.User{ID: []byte("uid-" + user), Name: user, DisplayName: "User " + user},
		Algorithms: []int{platform.COSEAlgES256}, ResidentKey: true,
	}
}

// TestWebAuthnPassesOnTheKeysBytes checks that what libfido2 hands over
// is what the key sent, byte for byte: the attestation statement (whose
// x5c go-libfido2 would cut to its first certificate), the raw
// authenticator data of the registration, and that of every assertion
// (which libfido2 1.12 keeps CBOR-wrapped), getNextAssertion's included.
func TestWebAuthnPassesOnTheKeysBytes(t *testing.T) {
	ctx := context.Background()
	key, rec := recordedKey(t, softkey.Config{}, "")
	var atts []*platform.Attestation
	for _, user := range []string{"alice", "bob"} {
		att, err := key.MakeCredential(ctx, webAuthnRequest(user))
		if err != nil {
			t.Fatal(err)
		}
		atts = append(atts, att)
	}
	made, _ := rec.responses()
	if len(made) != 2 {
		t.Fatalf("%d makeCredential responses recorded", len(made))
	}
	for i, att := range atts {
		if !bytes.Equal(att.AttStmt, made[i][3]) {
			t.Errorf("attStmt %d:\n got % x\nsent % x", i, att.AttStmt, []byte(made[i][3]))
		}
		if !bytes.Equal(att.AuthData, byteString(t, made[i][2])) {
			t.Errorf("authData %d differs from the key's", i)
		}
	}
	cdh := sha256.Sum256([]byte("sign in"))
	as, err := key.GetAssertion(ctx, platform.GetAssertionRequest{RPID: "a.example", ClientDataHash: cdh[:]})
	if err != nil {
		t.Fatal(err)
	}
	_, asserted := rec.responses()
	if len(as) != 2 || len(asserted) != 2 {
		t.Fatalf("%d assertions, %d responses recorded", len(as), len(asserted))
	}
	for i, a := range as {
		if !bytes.Equal(a.AuthData, byteString(t, asserted[i][2])) || !bytes.Equal(a.Signature, byteString(t, asserted[i][3])) {
			t.Errorf("assertion %d: authData or signature differs from the key's", i)
		}
	}
}

// TestWebAuthnWithAKeyWithoutTokenPermissions checks a key without the
// pinUvAuthToken option (CTAP 2.0): libfido2 gets the PIN token with
// getPinToken (0x05), and the ceremonies work.
func TestWebAuthnWithAKeyWithoutTokenPermissions(t *testing.T) {
	ctx := context.Background()
	key, rec := recordedKey(t, softkey.Config{}, "pinUvAuthToken")
	if err := key.SetPIN(ctx, cmTestPIN); err != nil {
		t.Fatal(err)
	}
	req := webAuthnRequest("alice")
	req.PIN, req.UserVerification = cmTestPIN, true
	att, err := key.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	cdh := sha256.Sum256([]byte("sign in"))
	as, err := key.GetAssertion(ctx, platform.GetAssertionRequest{RPID: "a.example", ClientDataHash: cdh[:], UserVerification: true, PIN: cmTestPIN})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || !bytes.Equal(as[0].CredentialID, att.CredentialID) || as[0].User == nil || as[0].User.Name != "alice" {
		t.Fatalf("assertions %+v", as)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	tokens := 0
	for _, sub := range rec.clientPINs {
		switch sub {
		case softkey.ClientPINGetPinToken:
			tokens++
		case softkey.ClientPINGetPinUvAuthTokenUsingPinWithPerms:
			t.Fatal("a token with permissions asked of a key without them")
		}
	}
	if tokens != 2 {
		t.Fatalf("%d getPinToken requests, want 2", tokens)
	}
}
