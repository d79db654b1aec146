package softkey

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"testing"
)

// verifyAssertion checks an ES256 assertion signature with the credential's COSE key.
func verifyAssertion(t *testing.T, pub coseKey, resp *authenticatorGetAssertionResponse, cdh []byte) {
	t.Helper()
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, pub.X...), pub.Y...))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(append(append([]byte{}, resp.AuthData...), cdh...))
	if !ecdsa.VerifyASN1(k, h[:], resp.Signature) {
		t.Fatal("assertion signature does not verify")
	}
}

// credPublicKey extracts the COSE key from attested authenticator data.
func credPublicKey(t *testing.T, authData []byte) coseKey {
	t.Helper()
	id := credID(t, authData)
	var pub coseKey
	if _, err := decMode.UnmarshalFirst(authData[55+len(id):], &pub); err != nil {
		t.Fatal(err)
	}
	return pub
}

func (c *testClient) getAssert(req map[int]any) (*authenticatorGetAssertionResponse, error) {
	c.t.Helper()
	var resp authenticatorGetAssertionResponse
	if err := c.do(CmdGetAssertion, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

func TestGetAssertionWithAllowList(t *testing.T) {
	touches := 0
	c := newTestKey(t, Config{Presence: PresenceFunc(func(context.Context) error { touches++; return nil })})
	mc, err := c.makeCred(makeCredReq("example.com", "alice", false))
	wantStatus(t, err, StatusOK)
	id, pub := credID(t, mc.AuthData), credPublicKey(t, mc.AuthData)

	req := getAssertReq("example.com", []byte("unknown"), id)
	resp, err := c.getAssert(req)
	wantStatus(t, err, StatusOK)
	if !bytes.Equal(resp.Credential.ID, id) || resp.User != nil {
		t.Fatalf("credential %x user %v", resp.Credential.ID, resp.User)
	}
	verifyAssertion(t, pub, resp, req[2].([]byte))
	first := signCount(resp.AuthData)

	resp, err = c.getAssert(req)
	wantStatus(t, err, StatusOK)
	if signCount(resp.AuthData) <= first {
		t.Fatalf("sign counter %d did not grow past %d", signCount(resp.AuthData), first)
	}
	if resp.AuthData[32] != flagUP {
		t.Fatalf("flags %08b, want UP only", resp.AuthData[32])
	}

	// A silent check (up=false) does not set UP and needs no touch.
	req[5] = map[string]bool{"up": false}
	before := touches
	resp, err = c.getAssert(req)
	wantStatus(t, err, StatusOK)
	if resp.AuthData[32]&flagUP != 0 || touches != before {
		t.Fatalf("silent assertion: flags %08b, %d touches", resp.AuthData[32], touches-before)
	}
}

func TestGetAssertionErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		setup func(c *testClient)
		req   func() map[int]any
		want  Status
	}{
		{name: "ShouldReportNoCredentials", req: func() map[int]any { return getAssertReq("example.com") }, want: ErrNoCredentials},
		{name: "ShouldReportNoCredentialsForForeignID", req: func() map[int]any { return getAssertReq("example.com", make([]byte, 65)) }, want: ErrNoCredentials},
		{name: "ShouldRequireRPID", req: func() map[int]any { r := getAssertReq("x"); delete(r, 1); return r }, want: ErrMissingParameter},
		{name: "ShouldRequireClientDataHash", req: func() map[int]any { r := getAssertReq("x"); delete(r, 2); return r }, want: ErrMissingParameter},
		{name: "ShouldRejectRKOption", req: func() map[int]any {
			r := getAssertReq("x")
			r[5] = map[string]bool{"rk": true}
			return r
		}, want: ErrUnsupportedOption},
		{name: "ShouldRejectUVWithoutFingerprint", req: func() map[int]any {
			r := getAssertReq("x")
			r[5] = map[string]bool{"uv": true}
			return r
		}, want: ErrInvalidOption},
		{name: "ShouldRejectDescriptorWithoutID", req: func() map[int]any {
			r := getAssertReq("x")
			r[3] = []any{map[string]any{"type": "public-key"}}
			return r
		}, want: ErrMissingParameter},
		{name: "ShouldLimitAllowList", req: func() map[int]any {
			ids := make([][]byte, 9)
			for i := range ids {
				ids[i] = []byte{byte(i)}
			}
			return getAssertReq("x", ids...)
		}, want: ErrLimitExceeded},
		{name: "ShouldRejectBadPinUvAuthParam", setup: func(c *testClient) { c.setPIN(1, "1234") }, req: func() map[int]any {
			r := getAssertReq("x")
			r[6], r[7] = make([]byte, 16), 1
			return r
		}, want: ErrPINAuthInvalid},
		{name: "ShouldReportDeniedPresence", cfg: Config{Presence: DenyAlways}, req: func() map[int]any { return getAssertReq("example.com") }, want: ErrOperationDenied},
		{name: "ShouldAnswerSelectionProbe", req: func() map[int]any {
			r := getAssertReq("x")
			r[6], r[7] = []byte{}, 2
			return r
		}, want: ErrPINNotSet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, tt.cfg)
			if tt.setup != nil {
				tt.setup(c)
			}
			_, err := c.getAssert(tt.req())
			wantStatus(t, err, tt.want)
		})
	}
}

func TestGetAssertionDiscoverableAndGetNext(t *testing.T) {
	c := newTestKey(t, Config{})
	for _, u := range []string{"alice", "bob", "carol"} {
		_, err := c.makeCred(makeCredReq("example.com", u, true))
		wantStatus(t, err, StatusOK)
	}
	_, err := c.makeCred(makeCredReq("other.example", "dave", true))
	wantStatus(t, err, StatusOK)

	// getNextAssertion before any getAssertion is refused.
	wantStatus(t, c.do(CmdGetNextAssertion, nil, nil), ErrNotAllowed)

	resp, err := c.getAssert(getAssertReq("example.com"))
	wantStatus(t, err, StatusOK)
	if resp.NumberOfCredentials != 3 {
		t.Fatalf("numberOfCredentials = %d", resp.NumberOfCredentials)
	}
	// Newest first; without UV only the user handle is returned.
	users := []string{string(resp.User.ID)}
	if resp.User.Name != "" {
		t.Fatal("user name returned without user verification")
	}
	for i := 0; i < 2; i++ {
		var next authenticatorGetAssertionResponse
		wantStatus(t, c.do(CmdGetNextAssertion, nil, &next), StatusOK)
		users = append(users, string(next.User.ID))
	}
	if want := []string{"uid-carol", "uid-bob", "uid-alice"}; !equalStrings(users, want) {
		t.Fatalf("users %v, want %v", users, want)
	}
	wantStatus(t, c.do(CmdGetNextAssertion, nil, nil), ErrNotAllowed)

	// Another command in between ends the batch.
	_, err = c.getAssert(getAssertReq("example.com"))
	wantStatus(t, err, StatusOK)
	wantStatus(t, c.do(CmdGetInfo, nil, nil), StatusOK)
	wantStatus(t, c.do(CmdGetNextAssertion, nil, nil), ErrNotAllowed)

	// The batch expires after 30 seconds.
	_, err = c.getAssert(getAssertReq("example.com"))
	wantStatus(t, err, StatusOK)
	c.now = c.now.Add(31e9)
	wantStatus(t, c.do(CmdGetNextAssertion, nil, nil), ErrNotAllowed)
}

func TestGetAssertionUserVerifiedReturnsNames(t *testing.T) {
	c := newTestKey(t, Config{})
	wantStatus(t, c.setPIN(2, "1234"), StatusOK)
	tok := c.mustToken(2, "1234", PermMakeCredential|PermGetAssertion, "example.com")
	_, err := c.makeCred(withToken(makeCredReq("example.com", "alice", true), tok, 1, 8))
	wantStatus(t, err, StatusOK)

	tok = c.mustToken(2, "1234", PermGetAssertion, "example.com")
	resp, err := c.getAssert(withToken(getAssertReq("example.com"), tok, 2, 6))
	wantStatus(t, err, StatusOK)
	if resp.User.Name != "alice" || resp.User.DisplayName != "User alice" || resp.AuthData[32]&flagUV == 0 {
		t.Fatalf("user %+v flags %08b", resp.User, resp.AuthData[32])
	}
}

func TestGetAssertionCredProtect(t *testing.T) {
	c := newTestKey(t, Config{})
	req := makeCredReq("example.com", "alice", true)
	req[6] = map[string]any{"credProtect": credProtectUVRequired}
	mc, err := c.makeCred(req)
	wantStatus(t, err, StatusOK)
	id := credID(t, mc.AuthData)
	req = makeCredReq("example.com", "bob", true)
	req[6] = map[string]any{"credProtect": credProtectUVOptionalWithID}
	mc2, err := c.makeCred(req)
	wantStatus(t, err, StatusOK)
	id2 := credID(t, mc2.AuthData)

	// Level 3 is invisible without UV, even by ID; level 2 only by ID.
	_, err = c.getAssert(getAssertReq("example.com", id))
	wantStatus(t, err, ErrNoCredentials)
	_, err = c.getAssert(getAssertReq("example.com"))
	wantStatus(t, err, ErrNoCredentials)
	_, err = c.getAssert(getAssertReq("example.com", id2))
	wantStatus(t, err, StatusOK)

	wantStatus(t, c.setPIN(2, "1234"), StatusOK)
	tok := c.mustToken(2, "1234", PermGetAssertion, "example.com")
	resp, err := c.getAssert(withToken(getAssertReq("example.com", id), tok, 2, 6))
	wantStatus(t, err, StatusOK)
	if !bytes.Equal(resp.Credential.ID, id) {
		t.Fatal("wrong credential")
	}
}

func TestGetAssertionHMACSecret(t *testing.T) {
	c := newTestKey(t, Config{})
	req := makeCredReq("example.com", "alice", false)
	req[6] = map[string]any{"hmac-secret": true}
	mc, err := c.makeCred(req)
	wantStatus(t, err, StatusOK)
	id := credID(t, mc.AuthData)

	for _, version := range []int{1, 2} {
		p := c.agree(version)
		salt := bytes.Repeat([]byte{7}, 32)
		get := func() []byte {
			saltEnc := p.encrypt(salt)
			r := getAssertReq("example.com", id)
			r[4] = map[string]any{"hmac-secret": map[int]any{1: p.pub, 2: saltEnc, 3: p.authenticate(saltEnc), 4: version}}
			resp, err := c.getAssert(r)
			wantStatus(t, err, StatusOK)
			var ext map[string][]byte
			var rest = resp.AuthData[37:]
			if err := decMode.Unmarshal(rest, &ext); err != nil {
				t.Fatal(err)
			}
			out, err := p.decrypt(ext["hmac-secret"])
			if err != nil || len(out) != 32 {
				t.Fatalf("hmac-secret output %x: %v", out, err)
			}
			return out
		}
		a, b := get(), get()
		if !bytes.Equal(a, b) {
			t.Fatalf("protocol %d: hmac-secret not stable", version)
		}

		// A bad saltAuth is refused.
		saltEnc := p.encrypt(salt)
		r := getAssertReq("example.com", id)
		r[4] = map[string]any{"hmac-secret": map[int]any{1: p.pub, 2: saltEnc, 3: make([]byte, 32), 4: version}}
		_, err = c.getAssert(r)
		wantStatus(t, err, ErrPINAuthInvalid)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
