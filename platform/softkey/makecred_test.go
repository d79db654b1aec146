package softkey

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestMakeCredentialErrors(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		setup  func(c *testClient)
		mutate func(req map[int]any)
		want   Status
	}{
		{name: "ShouldSucceedWithDefaults", mutate: func(map[int]any) {}, want: StatusOK},
		{name: "ShouldRequireClientDataHash", mutate: func(r map[int]any) { delete(r, 1) }, want: ErrMissingParameter},
		{name: "ShouldRequireRP", mutate: func(r map[int]any) { delete(r, 2) }, want: ErrMissingParameter},
		{name: "ShouldRequireRPID", mutate: func(r map[int]any) { r[2] = map[string]any{"name": "x"} }, want: ErrMissingParameter},
		{name: "ShouldRequireUser", mutate: func(r map[int]any) { delete(r, 3) }, want: ErrMissingParameter},
		{name: "ShouldRequireUserID", mutate: func(r map[int]any) { r[3] = map[string]any{"name": "x"} }, want: ErrMissingParameter},
		{name: "ShouldRequirePubKeyCredParams", mutate: func(r map[int]any) { delete(r, 4) }, want: ErrMissingParameter},
		{name: "ShouldRejectShortClientDataHash", mutate: func(r map[int]any) { r[1] = []byte{1, 2, 3} }, want: ErrInvalidLength},
		{name: "ShouldRejectLongUserID", mutate: func(r map[int]any) {
			r[3] = map[string]any{"id": make([]byte, 65), "name": "x"}
		}, want: ErrInvalidLength},
		{name: "ShouldRejectTextClientDataHash", mutate: func(r map[int]any) { r[1] = "hash" }, want: ErrCBORUnexpectedType},
		{name: "ShouldRejectTextUserID", mutate: func(r map[int]any) { r[3] = map[string]any{"id": "text"} }, want: ErrCBORUnexpectedType},
		{name: "ShouldRejectRPAsArray", mutate: func(r map[int]any) { r[2] = []any{"x"} }, want: ErrCBORUnexpectedType},
		{name: "ShouldRejectUnsupportedAlgorithm", mutate: func(r map[int]any) {
			r[4] = []any{map[string]any{"type": "public-key", "alg": -257}}
		}, want: ErrUnsupportedAlgorithm},
		{name: "ShouldSkipUnknownCredentialTypes", mutate: func(r map[int]any) {
			r[4] = []any{map[string]any{"type": "future", "alg": -7}, map[string]any{"type": "public-key", "alg": -8}}
		}, want: StatusOK},
		{name: "ShouldRequireAlgInParams", mutate: func(r map[int]any) {
			r[4] = []any{map[string]any{"type": "public-key"}}
		}, want: ErrMissingParameter},
		{name: "ShouldRejectUpFalse", mutate: func(r map[int]any) { r[7] = map[string]bool{"up": false} }, want: ErrInvalidOption},
		{name: "ShouldRejectUvWithoutFingerprint", mutate: func(r map[int]any) { r[7] = map[string]bool{"uv": true} }, want: ErrInvalidOption},
		{name: "ShouldRejectNonBoolOption", mutate: func(r map[int]any) { r[7] = map[string]any{"rk": 1} }, want: ErrCBORUnexpectedType},
		{name: "ShouldRejectEnterpriseAttestationWhenDisabled", mutate: func(r map[int]any) { r[10] = 1 }, want: ErrInvalidParameter},
		{name: "ShouldRequireProtocolWithPinUvAuthParam", mutate: func(r map[int]any) { r[8] = make([]byte, 32) }, want: ErrMissingParameter},
		{name: "ShouldRejectUnknownProtocol", mutate: func(r map[int]any) { r[8] = make([]byte, 32); r[9] = 3 }, want: ErrInvalidParameter},
		{name: "ShouldRejectBadPinUvAuthParam", setup: func(c *testClient) { c.setPIN(2, "1234") },
			mutate: func(r map[int]any) { r[8] = make([]byte, 32); r[9] = 2 }, want: ErrPINAuthInvalid},
		{name: "ShouldAnswerSelectionProbeWithoutPIN", mutate: func(r map[int]any) { r[8] = []byte{}; r[9] = 2 }, want: ErrPINNotSet},
		{name: "ShouldAnswerSelectionProbeWithPIN", setup: func(c *testClient) { c.setPIN(2, "1234") },
			mutate: func(r map[int]any) { r[8] = []byte{}; r[9] = 2 }, want: ErrPINInvalid},
		{name: "ShouldRequireTokenForResidentKeyWhenPINSet", setup: func(c *testClient) { c.setPIN(2, "1234") },
			mutate: func(r map[int]any) { r[7] = map[string]bool{"rk": true} }, want: ErrPUATRequired},
		{name: "ShouldNotRequireTokenForServerSideCredential", setup: func(c *testClient) { c.setPIN(2, "1234") },
			mutate: func(map[int]any) {}, want: StatusOK},
		{name: "ShouldReportDeniedPresence", cfg: Config{Presence: DenyAlways}, mutate: func(map[int]any) {}, want: ErrOperationDenied},
		{name: "ShouldReportPresenceTimeout", cfg: Config{Presence: PresenceFunc(func(context.Context) error { return ErrUserActionTimeout })},
			mutate: func(map[int]any) {}, want: ErrUserActionTimeout},
		{name: "ShouldLimitExcludeList", mutate: func(r map[int]any) {
			var l []any
			for i := 0; i < 9; i++ {
				l = append(l, map[string]any{"type": "public-key", "id": []byte{byte(i)}})
			}
			r[5] = l
		}, want: ErrLimitExceeded},
		{name: "ShouldIgnoreForeignExcludedCredentials", mutate: func(r map[int]any) {
			r[5] = []any{map[string]any{"type": "public-key", "id": make([]byte, 65)}}
		}, want: StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, tt.cfg)
			if tt.setup != nil {
				tt.setup(c)
			}
			req := makeCredReq("example.com", "alice", false)
			tt.mutate(req)
			_, err := c.makeCred(req)
			wantStatus(t, err, tt.want)
		})
	}
}

func TestMakeCredentialPackedAttestationChainsToCA(t *testing.T) {
	c := newTestKey(t, Config{})
	req := makeCredReq("example.com", "alice", true)
	resp, err := c.makeCred(req)
	wantStatus(t, err, StatusOK)
	if resp.Fmt != "packed" {
		t.Fatalf("fmt = %q", resp.Fmt)
	}
	x5c, ok := resp.AttStmt["x5c"].([]any)
	if !ok || len(x5c) != 2 {
		t.Fatalf("x5c = %#v, want leaf and CA", resp.AttStmt["x5c"])
	}
	leaf, err := x509.ParseCertificate(x5c[0].([]byte))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(c.key.AttestationCA())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("leaf does not chain to the key's CA: %v", err)
	}
	signed := append(append([]byte{}, resp.AuthData...), req[1].([]byte)...)
	h := sha256.Sum256(signed)
	if !ecdsa.VerifyASN1(leaf.PublicKey.(*ecdsa.PublicKey), h[:], resp.AttStmt["sig"].([]byte)) {
		t.Fatal("attestation signature does not verify")
	}
	if resp.AuthData[32]&(flagUP|flagAT) != flagUP|flagAT {
		t.Fatalf("flags = %08b", resp.AuthData[32])
	}
}

func TestMakeCredentialNoneAttestation(t *testing.T) {
	c := newTestKey(t, Config{NoneAttestation: true})
	resp, err := c.makeCred(makeCredReq("example.com", "alice", false))
	wantStatus(t, err, StatusOK)
	if resp.Fmt != "none" || len(resp.AttStmt) != 0 {
		t.Fatalf("fmt %q attStmt %v", resp.Fmt, resp.AttStmt)
	}
	// A CTAP 2.2 platform can ask for packed explicitly.
	req := makeCredReq("example.com", "alice", false)
	req[11] = []string{"packed"}
	resp, err = c.makeCred(req)
	wantStatus(t, err, StatusOK)
	if resp.Fmt != "packed" {
		t.Fatalf("fmt %q with preference packed", resp.Fmt)
	}
}

func TestMakeCredentialExcludeList(t *testing.T) {
	c := newTestKey(t, Config{})
	resp, err := c.makeCred(makeCredReq("example.com", "alice", false))
	wantStatus(t, err, StatusOK)
	id := credID(t, resp.AuthData)

	req := makeCredReq("example.com", "alice", false)
	req[5] = []any{map[string]any{"type": "public-key", "id": id}}
	_, err = c.makeCred(req)
	wantStatus(t, err, ErrCredentialExcluded)

	// The same ID means nothing to another RP.
	req = makeCredReq("other.example", "alice", false)
	req[5] = []any{map[string]any{"type": "public-key", "id": id}}
	_, err = c.makeCred(req)
	wantStatus(t, err, StatusOK)
}

func TestMakeCredentialResidentKeyStoreFull(t *testing.T) {
	c := newTestKey(t, Config{MaxCredentials: 2})
	for _, u := range []string{"a", "b"} {
		_, err := c.makeCred(makeCredReq("example.com", u, true))
		wantStatus(t, err, StatusOK)
	}
	_, err := c.makeCred(makeCredReq("example.com", "c", true))
	wantStatus(t, err, ErrKeyStoreFull)
	// Re-registering the same user replaces the credential in place.
	_, err = c.makeCred(makeCredReq("example.com", "a", true))
	wantStatus(t, err, StatusOK)
	if n := len(c.key.st.Credentials); n != 2 {
		t.Fatalf("%d credentials, want 2", n)
	}
}

func TestMakeCredentialWithToken(t *testing.T) {
	c := newTestKey(t, Config{})
	wantStatus(t, c.setPIN(2, "1234"), StatusOK)

	tok := c.mustToken(2, "1234", PermMakeCredential, "example.com")
	resp, err := c.makeCred(withToken(makeCredReq("example.com", "alice", true), tok, 1, 8))
	wantStatus(t, err, StatusOK)
	if resp.AuthData[32]&flagUV == 0 {
		t.Fatal("UV flag not set with a PIN token")
	}

	// The token is bound to example.com.
	tok = c.mustToken(1, "1234", PermMakeCredential, "example.com")
	_, err = c.makeCred(withToken(makeCredReq("other.example", "alice", true), tok, 1, 8))
	wantStatus(t, err, ErrPINAuthInvalid)

	// A token for assertions cannot make credentials.
	tok = c.mustToken(2, "1234", PermGetAssertion, "example.com")
	_, err = c.makeCred(withToken(makeCredReq("example.com", "alice", true), tok, 1, 8))
	wantStatus(t, err, ErrPINAuthInvalid)

	// The legacy getPinToken grants mc and ga, and protocol 1 works too.
	tok = c.mustToken(1, "1234", 0, "")
	_, err = c.makeCred(withToken(makeCredReq("example.com", "bob", true), tok, 1, 8))
	wantStatus(t, err, StatusOK)
}

func TestMakeCredentialExtensions(t *testing.T) {
	c := newTestKey(t, Config{})
	req := makeCredReq("example.com", "alice", true)
	req[6] = map[string]any{"credProtect": 2, "hmac-secret": true, "minPinLength": true, "unknownExt": "ignored"}
	resp, err := c.makeCred(req)
	wantStatus(t, err, StatusOK)
	if resp.AuthData[32]&flagED == 0 {
		t.Fatal("ED flag not set")
	}
	// The extensions map ends the authenticator data.
	var ext map[string]any
	id := credID(t, resp.AuthData)
	rest := resp.AuthData[55+len(id):]
	var pub coseKey
	restAfterKey, err := decMode.UnmarshalFirst(rest, &pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := decMode.Unmarshal(restAfterKey, &ext); err != nil {
		t.Fatal(err)
	}
	if ext["credProtect"] != int64(2) || ext["hmac-secret"] != true {
		t.Fatalf("extensions = %v", ext)
	}
	if _, ok := ext["minPinLength"]; ok {
		t.Fatal("minPinLength returned to an RP not in minPinLengthRPIDs")
	}
}

// TestAnotherModelNamesItsAAGUIDEverywhere: a key configured as another
// model says so in getInfo, in the credential's authenticator data and in
// its attestation certificate's id-fido-gen-ce-aaguid extension, which a
// relying party checks against each other.
func TestAnotherModelNamesItsAAGUIDEverywhere(t *testing.T) {
	model := [16]byte{0x6d, 0x44, 0xba, 0x9b, 0xf6, 0xec, 0x2e, 0x49, 0xb9, 0x30, 0x0c, 0x8f, 0xe9, 0x20, 0xcb, 0x73}
	c := newTestKey(t, Config{AAGUID: model})
	resp := c.key.CBOR(context.Background(), []byte{byte(CmdGetInfo)}, nil)
	var info authenticatorGetInfoResponse
	if len(resp) == 0 || resp[0] != 0 || cbor.Unmarshal(resp[1:], &info) != nil {
		t.Fatalf("getInfo: %x", resp)
	}
	if string(info.AAGUID) != string(model[:]) {
		t.Fatalf("getInfo AAGUID %x", info.AAGUID)
	}
	mc, err := c.makeCred(makeCredReq("example.com", "alice", true))
	wantStatus(t, err, StatusOK)
	// rpIdHash (32), flags (1), signCount (4), then the AAGUID.
	if got := mc.AuthData[37:53]; string(got) != string(model[:]) {
		t.Fatalf("authData AAGUID %x", got)
	}
	leaf, err := x509.ParseCertificate(mc.AttStmt["x5c"].([]any)[0].([]byte))
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range leaf.Extensions {
		if ext.Id.Equal(oidFIDOGenCeAAGUID) {
			var v []byte
			if _, err := asn1.Unmarshal(ext.Value, &v); err != nil || string(v) != string(model[:]) {
				t.Fatalf("certificate AAGUID %x (%v)", v, err)
			}
			return
		}
	}
	t.Fatal("no AAGUID extension in the attestation certificate")
}
