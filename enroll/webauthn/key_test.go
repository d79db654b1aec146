package webauthn

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/pinuvauth"
	"github.com/keydesk/keydesk/platform/softkey"
)

// softKey is a platform.WebAuthnAuthenticator over the software key's CTAP
// engine, for tests: it encodes authenticatorMakeCredential and
// authenticatorGetAssertion as a platform does, gets a pinUvAuthToken
// with PIN/UV auth protocol two when given a PIN, and turns CTAP statuses
// into platform errors. It is deliberately independent of the
// implementations in platform/, so that this package's tests check the
// client against the key engine alone.
type softKey struct {
	engine *softkey.Authenticator

	mu    sync.Mutex
	calls int // MakeCredential and GetAssertion calls
}

var _ platform.WebAuthnAuthenticator = (*softKey)(nil)

// newSoftKey returns a software key in memory that approves every touch.
func newSoftKey(t testing.TB, cfg softkey.Config) *softKey {
	t.Helper()
	a, err := softkey.New(cfg)
	if err != nil {
		t.Fatalf("softkey.New: %v", err)
	}
	return &softKey{engine: a}
}

// setPIN sets the key's PIN through the in-process platform.
func (k *softKey) setPIN(t testing.TB, pin string) {
	t.Helper()
	if err := inprocess.New(k.engine).SetPIN(context.Background(), pin); err != nil {
		t.Fatalf("SetPIN: %v", err)
	}
}

// capabilities reads the key's getInfo as the GUI would.
func (k *softKey) capabilities(t testing.TB) Capabilities {
	t.Helper()
	info, err := inprocess.New(k.engine).Info(context.Background())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	return CapabilitiesOf(info, platform.Device{Transport: platform.TransportUSB})
}

// callCount is how many ceremonies reached the key.
func (k *softKey) callCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls
}

func (k *softKey) count() {
	k.mu.Lock()
	k.calls++
	k.mu.Unlock()
}

// ctap sends one command and decodes its response into out (when not nil).
func (k *softKey) ctap(ctx context.Context, op string, cmd softkey.Command, params, out any) error {
	req := []byte{byte(cmd)}
	if params != nil {
		b, err := cborEnc.Marshal(params)
		if err != nil {
			return err
		}
		req = append(req, b...)
	}
	resp := k.engine.CBOR(ctx, req, nil)
	if len(resp) == 0 {
		return errors.New("empty CTAP response")
	}
	if resp[0] != 0 {
		return platform.FromCode(op, int(resp[0]))
	}
	if out != nil {
		return cbor.Unmarshal(resp[1:], out)
	}
	return nil
}

// clientPINResponse is the part of authenticatorClientPIN's response used
// here.
type clientPINResponse struct {
	KeyAgreement *pinuvauth.COSEKey `cbor:"1,keyasint"`
	Token        []byte             `cbor:"2,keyasint"`
	PINRetries   *uint64            `cbor:"3,keyasint"`
}

// token gets a pinUvAuthToken for perm and rpID with the PIN; a wrong PIN
// is an error with the attempts left.
func (k *softKey) token(ctx context.Context, op, pin string, perm byte, rpID string) ([]byte, error) {
	const proto = pinuvauth.Two
	var ka clientPINResponse
	if err := k.ctap(ctx, op, softkey.CmdClientPIN, map[int]any{1: int(proto), 2: softkey.ClientPINGetKeyAgreement}, &ka); err != nil {
		return nil, err
	}
	pub, shared, err := proto.Encapsulate(*ka.KeyAgreement)
	if err != nil {
		return nil, err
	}
	hashEnc, err := proto.Encrypt(shared, pinuvauth.PINHash([]byte(pin)))
	if err != nil {
		return nil, err
	}
	var tr clientPINResponse
	err = k.ctap(ctx, op, softkey.CmdClientPIN, map[int]any{
		1: int(proto), 2: softkey.ClientPINGetPinUvAuthTokenUsingPinWithPerms, 3: pub, 6: hashEnc, 9: perm, 10: rpID,
	}, &tr)
	if errors.Is(err, platform.ErrPINInvalid) || errors.Is(err, platform.ErrPINAuthBlocked) {
		var r clientPINResponse
		if k.ctap(ctx, op, softkey.CmdClientPIN, map[int]any{1: int(proto), 2: softkey.ClientPINGetPINRetries}, &r) == nil && r.PINRetries != nil {
			return nil, platform.WithRetries(err, int(*r.PINRetries))
		}
	}
	if err != nil {
		return nil, err
	}
	return proto.Decrypt(shared, tr.Token)
}

// authorize adds the PIN's pinUvAuthParam to params, or the uv option for
// built-in UV, or fails as a platform does when UV is needed and there is
// no PIN.
func (k *softKey) authorize(ctx context.Context, op, pin string, uv bool, perm byte, rpID string, cdh []byte, params map[int]any, paramKey int, options map[string]bool) error {
	if pin != "" {
		tok, err := k.token(ctx, op, pin, perm, rpID)
		if err != nil {
			return err
		}
		params[paramKey] = pinuvauth.Two.Authenticate(tok, cdh)
		params[paramKey+1] = int(pinuvauth.Two)
		return nil
	}
	if !uv {
		return nil
	}
	info, err := inprocess.New(k.engine).Describe(ctx)
	if err != nil {
		return err
	}
	switch {
	case info.HasOption("uv"):
		options["uv"] = true
	case info.PINSet():
		return &platform.Error{Op: op, Kind: platform.ErrPINRequired, RetriesLeft: -1}
	default:
		return &platform.Error{Op: op, Kind: platform.ErrUnsupported, RetriesLeft: -1}
	}
	return nil
}

// descriptors encodes a list of credential IDs as CTAP descriptors.
func descriptors(ids [][]byte) []map[string]any {
	out := make([]map[string]any, len(ids))
	for i, id := range ids {
		out[i] = map[string]any{"id": id, "type": "public-key"}
	}
	return out
}

// MakeCredential is authenticatorMakeCredential (0x01).
func (k *softKey) MakeCredential(ctx context.Context, req platform.MakeCredentialRequest) (*platform.Attestation, error) {
	const op = "create credential"
	k.count()
	algs := make([]map[string]any, len(req.Algorithms))
	for i, a := range req.Algorithms {
		algs[i] = map[string]any{"alg": a, "type": "public-key"}
	}
	params := map[int]any{
		1: req.ClientDataHash,
		2: map[string]any{"id": req.RP.ID, "name": req.RP.Name},
		3: map[string]any{"id": req.User.ID, "name": req.User.Name, "displayName": req.User.DisplayName},
		4: algs,
	}
	if len(req.ExcludeList) > 0 {
		params[5] = descriptors(req.ExcludeList)
	}
	if req.CredProtect > 0 {
		params[6] = map[string]any{"credProtect": req.CredProtect}
	}
	options := map[string]bool{}
	if req.ResidentKey {
		options["rk"] = true
	}
	if err := k.authorize(ctx, op, req.PIN, req.UserVerification, softkey.PermMakeCredential, req.RP.ID, req.ClientDataHash, params, 8, options); err != nil {
		return nil, err
	}
	if len(options) > 0 {
		params[7] = options
	}
	var r struct {
		Fmt      string          `cbor:"1,keyasint"`
		AuthData []byte          `cbor:"2,keyasint"`
		AttStmt  cbor.RawMessage `cbor:"3,keyasint"`
	}
	if err := k.ctap(ctx, op, softkey.CmdMakeCredential, params, &r); err != nil {
		return nil, err
	}
	att := &platform.Attestation{Format: r.Fmt, AuthData: r.AuthData, AttStmt: r.AttStmt}
	// rpIdHash, flags, signCount, aaguid, then the ID's length and the ID.
	const idLenAt = 32 + 1 + 4 + 16
	if len(r.AuthData) >= idLenAt+2 {
		n := int(binary.BigEndian.Uint16(r.AuthData[idLenAt:]))
		if len(r.AuthData) >= idLenAt+2+n {
			att.CredentialID = r.AuthData[idLenAt+2 : idLenAt+2+n]
		}
	}
	return att, nil
}

// assertionResponse is authenticatorGetAssertion's response.
type assertionResponse struct {
	Credential struct {
		ID []byte `cbor:"id"`
	} `cbor:"1,keyasint"`
	AuthData  []byte `cbor:"2,keyasint"`
	Signature []byte `cbor:"3,keyasint"`
	User      *struct {
		ID          []byte `cbor:"id"`
		Name        string `cbor:"name"`
		DisplayName string `cbor:"displayName"`
	} `cbor:"4,keyasint"`
	NumberOfCredentials int `cbor:"5,keyasint"`
}

// assertion turns a response into a platform.Assertion.
func (r *assertionResponse) assertion() platform.Assertion {
	a := platform.Assertion{CredentialID: r.Credential.ID, AuthData: r.AuthData, Signature: r.Signature}
	if r.User != nil {
		a.User = &platform.User{ID: r.User.ID, Name: r.User.Name, DisplayName: r.User.DisplayName}
	}
	return a
}

// GetAssertion is authenticatorGetAssertion (0x02), followed by
// authenticatorGetNextAssertion (0x08) for each further credential.
func (k *softKey) GetAssertion(ctx context.Context, req platform.GetAssertionRequest) ([]platform.Assertion, error) {
	const op = "sign in"
	k.count()
	params := map[int]any{1: req.RPID, 2: req.ClientDataHash}
	if len(req.AllowList) > 0 {
		params[3] = descriptors(req.AllowList)
	}
	options := map[string]bool{}
	if err := k.authorize(ctx, op, req.PIN, req.UserVerification, softkey.PermGetAssertion, req.RPID, req.ClientDataHash, params, 6, options); err != nil {
		return nil, err
	}
	if len(options) > 0 {
		params[5] = options
	}
	var r assertionResponse
	if err := k.ctap(ctx, op, softkey.CmdGetAssertion, params, &r); err != nil {
		return nil, err
	}
	out := []platform.Assertion{r.assertion()}
	for i := 1; i < r.NumberOfCredentials; i++ {
		var next assertionResponse
		if err := k.ctap(ctx, op, softkey.CmdGetNextAssertion, nil, &next); err != nil {
			return nil, err
		}
		out = append(out, next.assertion())
	}
	return out, nil
}
