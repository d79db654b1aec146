package softkey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform/pinuvauth"
)

// testClient plays the platform side of CTAP2 against an in-process key:
// it encodes requests, decodes responses, and runs the PIN/UV auth
// protocols with its own key agreement key.
type testClient struct {
	t   testing.TB
	key *Authenticator
	now time.Time // the key's clock, moved by tests
}

// newTestKey returns a key in memory with the given presence policy and a
// controllable clock.
func newTestKey(t testing.TB, cfg Config) *testClient {
	t.Helper()
	c := &testClient{t: t, now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return c.now }
	}
	k, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.key = k
	return c
}

// do sends a command with raw CBOR parameters and returns the status and body.
func (c *testClient) doRaw(cmd Command, params []byte) (Status, []byte) {
	c.t.Helper()
	resp := c.key.CBOR(context.Background(), append([]byte{byte(cmd)}, params...), nil)
	if len(resp) == 0 {
		c.t.Fatalf("empty response to command 0x%02x", byte(cmd))
	}
	if resp[0] != 0 && len(resp) != 1 {
		c.t.Fatalf("error 0x%02x with a body", resp[0])
	}
	return Status(resp[0]), resp[1:]
}

// do encodes params (nil for none), sends the command and decodes the
// response into out (when non-nil and the command succeeded).
func (c *testClient) do(cmd Command, params any, out any) error {
	c.t.Helper()
	var raw []byte
	if params != nil {
		raw = marshal(params)
	}
	st, body := c.doRaw(cmd, raw)
	if st != StatusOK {
		return st
	}
	if out != nil {
		if err := decMode.Unmarshal(body, out); err != nil {
			c.t.Fatalf("decode response to 0x%02x: %v", byte(cmd), err)
		}
	}
	return nil
}

// platform is the platform half of a PIN/UV auth protocol session, run
// with package pinuvauth as a real platform runs it.
type platform struct {
	t      testing.TB
	proto  pinuvauth.Protocol
	pub    pinuvauth.COSEKey // the platform's key agreement key
	shared []byte
}

// agree runs getKeyAgreement and derives the shared secret.
func (c *testClient) agree(version int) *platform {
	c.t.Helper()
	var resp authenticatorClientPINResponse
	if err := c.do(CmdClientPIN, map[int]any{1: version, 2: ClientPINGetKeyAgreement}, &resp); err != nil {
		c.t.Fatalf("getKeyAgreement: %v", err)
	}
	proto := pinuvauth.Protocol(version)
	pub, shared, err := proto.Encapsulate(*resp.KeyAgreement)
	if err != nil {
		c.t.Fatalf("shared secret: %v", err)
	}
	return &platform{t: c.t, proto: proto, pub: pub, shared: shared}
}

// encrypt, decrypt and authenticate run the protocol under the shared
// secret; encrypt fails the test on error.
func (p *platform) encrypt(plain []byte) []byte {
	p.t.Helper()
	ct, err := p.proto.Encrypt(p.shared, plain)
	if err != nil {
		p.t.Fatalf("encrypt: %v", err)
	}
	return ct
}

func (p *platform) decrypt(ct []byte) ([]byte, error) { return p.proto.Decrypt(p.shared, ct) }

func (p *platform) authenticate(msg []byte) []byte { return p.proto.Authenticate(p.shared, msg) }

// setPIN sets the first PIN with the given protocol.
func (c *testClient) setPIN(version int, pin string) error {
	c.t.Helper()
	p := c.agree(version)
	enc := p.encrypt(pinuvauth.PaddedPIN(pin))
	return c.do(CmdClientPIN, map[int]any{1: version, 2: ClientPINSetPIN, 3: p.pub, 4: p.authenticate(enc), 5: enc}, nil)
}

// changePIN changes the PIN.
func (c *testClient) changePIN(version int, cur, next string) error {
	c.t.Helper()
	p := c.agree(version)
	newEnc := p.encrypt(pinuvauth.PaddedPIN(next))
	hashEnc := p.encrypt(pinuvauth.PINHash([]byte(cur)))
	auth := p.authenticate(append(append([]byte{}, newEnc...), hashEnc...))
	return c.do(CmdClientPIN, map[int]any{1: version, 2: ClientPINChangePIN, 3: p.pub, 4: auth, 5: newEnc, 6: hashEnc}, nil)
}

// token obtains a pinUvAuthToken with permissions (0 for the legacy getPinToken).
func (c *testClient) token(version int, pin string, perms byte, rpID string) (*tokenHandle, error) {
	c.t.Helper()
	p := c.agree(version)
	hashEnc := p.encrypt(pinuvauth.PINHash([]byte(pin)))
	req := map[int]any{1: version, 2: ClientPINGetPinToken, 3: p.pub, 6: hashEnc}
	if perms != 0 {
		req[2] = ClientPINGetPinUvAuthTokenUsingPinWithPerms
		req[9] = perms
		if rpID != "" {
			req[10] = rpID
		}
	}
	return c.requestToken(p, version, req)
}

// requestToken sends a clientPIN token request made with p and decrypts
// the pinUvAuthToken it returns.
func (c *testClient) requestToken(p *platform, version int, req map[int]any) (*tokenHandle, error) {
	c.t.Helper()
	var resp authenticatorClientPINResponse
	if err := c.do(CmdClientPIN, req, &resp); err != nil {
		return nil, err
	}
	tok, err := p.decrypt(resp.PinUvAuthToken)
	if err != nil {
		c.t.Fatalf("decrypt token: %v", err)
	}
	return &tokenHandle{proto: p.proto, version: version, value: tok}, nil
}

// mustToken is token that fails the test on error.
func (c *testClient) mustToken(version int, pin string, perms byte, rpID string) *tokenHandle {
	c.t.Helper()
	tok, err := c.token(version, pin, perms, rpID)
	if err != nil {
		c.t.Fatalf("token: %v", err)
	}
	return tok
}

// retries returns pinRetries and powerCycleState.
func (c *testClient) retries() (uint, bool) {
	c.t.Helper()
	var resp authenticatorClientPINResponse
	if err := c.do(CmdClientPIN, map[int]any{2: ClientPINGetPINRetries}, &resp); err != nil {
		c.t.Fatalf("getPINRetries: %v", err)
	}
	return *resp.PinRetries, resp.PowerCycleState != nil && *resp.PowerCycleState
}

// tokenHandle is a pinUvAuthToken held by the platform.
type tokenHandle struct {
	proto   pinuvauth.Protocol
	version int
	value   []byte
}

func (t *tokenHandle) auth(msg []byte) []byte { return t.proto.Authenticate(t.value, msg) }

// makeCredReq builds a makeCredential request for rpID and user name.
func makeCredReq(rpID, user string, rk bool) map[int]any {
	cdh := sha256.Sum256([]byte("client data " + rpID + user))
	return map[int]any{
		1: cdh[:],
		2: map[string]any{"id": rpID, "name": rpID},
		3: map[string]any{"id": []byte("uid-" + user), "name": user, "displayName": "User " + user},
		4: []any{map[string]any{"type": "public-key", "alg": -7}},
		7: map[string]bool{"rk": rk},
	}
}

func getAssertReq(rpID string, allow ...[]byte) map[int]any {
	cdh := sha256.Sum256([]byte("assert " + rpID))
	req := map[int]any{1: rpID, 2: cdh[:]}
	if len(allow) > 0 {
		list := make([]any, len(allow))
		for i, id := range allow {
			list[i] = map[string]any{"type": "public-key", "id": id}
		}
		req[3] = list
	}
	return req
}

// withToken adds pinUvAuthParam/protocol over clientDataHash (key 1 or 2).
func withToken(req map[int]any, tok *tokenHandle, cdhKey, paramKey int) map[int]any {
	req[paramKey] = tok.auth(req[cdhKey].([]byte))
	req[paramKey+1] = tok.version
	return req
}

// makeCred runs makeCredential and returns the parsed response.
func (c *testClient) makeCred(req map[int]any) (*authenticatorMakeCredentialResponse, error) {
	c.t.Helper()
	var resp authenticatorMakeCredentialResponse
	if err := c.do(CmdMakeCredential, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// credID extracts the credential ID from attested authenticator data.
func credID(t testing.TB, authData []byte) []byte {
	t.Helper()
	if len(authData) < 55 || authData[32]&flagAT == 0 {
		t.Fatalf("no attested credential data")
	}
	n := int(authData[53])<<8 | int(authData[54])
	return authData[55 : 55+n]
}

// wantStatus fails unless err is the CTAP status want.
func wantStatus(t testing.TB, err error, want Status) {
	t.Helper()
	if want == StatusOK {
		if err != nil {
			t.Fatalf("got %v, want success", err)
		}
		return
	}
	var got Status
	if !errors.As(err, &got) || got != want {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func signCount(authData []byte) uint32 {
	return uint32(authData[33])<<24 | uint32(authData[34])<<16 | uint32(authData[35])<<8 | uint32(authData[36])
}

var _ = bytes.Equal
