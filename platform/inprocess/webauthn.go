package inprocess

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// makeCredentialResponse is the response of authenticatorMakeCredential.
// The attestation statement stays as the key encoded it, so that a client
// can put it into the attestation object byte for byte, every x5c
// certificate included.
//
// Specification: CTAP 2.1 §6.1. authenticatorMakeCredential (0x01) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorMakeCredential)
type makeCredentialResponse struct {
	Fmt      string          `cbor:"1,keyasint"`
	AuthData []byte          `cbor:"2,keyasint"`
	AttStmt  cbor.RawMessage `cbor:"3,keyasint"`
}

// getAssertionResponse is the response of authenticatorGetAssertion and
// authenticatorGetNextAssertion.
//
// Specification: CTAP 2.1 §6.2. authenticatorGetAssertion (0x02) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorGetAssertion)
type getAssertionResponse struct {
	Credential          *descriptor `cbor:"1,keyasint"`
	AuthData            []byte      `cbor:"2,keyasint"`
	Signature           []byte      `cbor:"3,keyasint"`
	User                *userEntity `cbor:"4,keyasint"`
	NumberOfCredentials uint64      `cbor:"5,keyasint"`
}

// Sizes in authenticator data (WebAuthn §6.1): rpIdHash, flags and
// signCount come first; attested credential data follows when flag AT is
// set, as aaguid, a two-byte length and the credential ID.
const (
	authDataHeaderLen  = 32 + 1 + 4
	authDataFlagsIndex = 32
	authDataFlagAT     = 0x40
	attestedIDOffset   = authDataHeaderLen + 16 + 2
)

// maxAssertions bounds the credentials one GetAssertion collects, so that
// a faulty key announcing an absurd numberOfCredentials cannot keep
// Keydesk asking for the next one.
const maxAssertions = 1024

// MakeCredential creates a credential with authenticatorMakeCredential
// (0x01). With a PIN it first gets a token with the mc permission for the RP;
// without one, required UV is left to the key's built-in UV. StageTouch
// is reported before the key waits for the touch.
func (k *Key) MakeCredential(ctx context.Context, req platform.MakeCredentialRequest) (*platform.Attestation, error) {
	const op = "create credential"
	if len(req.Algorithms) == 0 {
		return nil, unsupported(op)
	}
	if err := checkIDs(op, req.ExcludeList); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	tok, err := k.webAuthnToken(ctx, op, req.PIN, req.UserVerification, softkey.PermMakeCredential, req.RP.ID)
	if err != nil {
		return nil, err
	}
	if tok != nil {
		defer tok.close()
	}
	params := map[int]any{
		1: req.ClientDataHash,
		2: rpEntity{ID: req.RP.ID, Name: req.RP.Name},
		3: userEntity{ID: req.User.ID, Name: req.User.Name, DisplayName: req.User.DisplayName},
	}
	algs := make([]credentialParam, 0, len(req.Algorithms))
	for _, alg := range req.Algorithms {
		algs = append(algs, credentialParam{Type: "public-key", Alg: int64(alg)})
	}
	params[4] = algs
	if len(req.ExcludeList) > 0 {
		params[5] = descriptors(req.ExcludeList)
	}
	if req.CredProtect != 0 {
		params[6] = map[string]any{"credProtect": req.CredProtect}
	}
	if opts := webAuthnOptions(req.ResidentKey, req.UserVerification && tok == nil); opts != nil {
		params[7] = opts
	}
	if tok != nil {
		params[8] = tok.auth(req.ClientDataHash)
		params[9] = tok.proto
	}
	var r makeCredentialResponse
	if err := k.touchCall(ctx, op, softkey.CmdMakeCredential, params, &r); err != nil {
		return nil, err
	}
	if r.Fmt == "" || len(r.AttStmt) == 0 {
		return nil, protocolError(op, errors.New("makeCredential without fmt or attStmt"))
	}
	id, err := attestedCredentialID(r.AuthData)
	if err != nil {
		return nil, protocolError(op, err)
	}
	return &platform.Attestation{Format: r.Fmt, AuthData: r.AuthData, AttStmt: r.AttStmt, CredentialID: id}, nil
}

// GetAssertion signs with authenticatorGetAssertion (0x02). With an
// empty allow list the key offers every discoverable credential of the
// RP: it says how many (numberOfCredentials) and each further one is read
// with authenticatorGetNextAssertion (0x08), which needs no touch.
func (k *Key) GetAssertion(ctx context.Context, req platform.GetAssertionRequest) ([]platform.Assertion, error) {
	const op = "sign in"
	if err := checkIDs(op, req.AllowList); err != nil {
		return nil, err
	}
	if err := platform.CheckSilent(op, req); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	tok, err := k.webAuthnToken(ctx, op, req.PIN, req.UserVerification, softkey.PermGetAssertion, req.RPID)
	if err != nil {
		return nil, err
	}
	if tok != nil {
		defer tok.close()
	}
	params := map[int]any{1: req.RPID, 2: req.ClientDataHash}
	if len(req.AllowList) > 0 {
		params[3] = descriptors(req.AllowList)
	}
	if opts := webAuthnOptions(false, req.UserVerification && tok == nil); opts != nil {
		params[5] = opts
	}
	if tok != nil {
		params[6] = tok.auth(req.ClientDataHash)
		params[7] = tok.proto
	}
	var r getAssertionResponse
	if req.Silent {
		// No touch is asked for, so none is announced.
		params[5] = map[string]bool{"up": false}
		if err := k.call(ctx, op, softkey.CmdGetAssertion, params, &r); err != nil {
			return nil, err
		}
	} else if err := k.touchCall(ctx, op, softkey.CmdGetAssertion, params, &r); err != nil {
		return nil, err
	}
	first, err := assertionOf(op, &r, req.AllowList)
	if err != nil {
		return nil, err
	}
	out := []platform.Assertion{first}
	n := r.NumberOfCredentials
	if len(req.AllowList) > 0 || n <= 1 {
		return out, nil
	}
	if n > maxAssertions {
		return nil, protocolError(op, errors.New("too many credentials"))
	}
	for i := uint64(1); i < n; i++ {
		r = getAssertionResponse{}
		if err := k.call(ctx, op, softkey.CmdGetNextAssertion, nil, &r); err != nil {
			return nil, err
		}
		a, err := assertionOf(op, &r, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// webAuthnToken gets the pinUvAuthToken of a makeCredential or
// getAssertion when a PIN is given. Without a PIN, required UV needs the
// key's own UV: a key without it fails here, as it would after a touch,
// with what the user can do about it (give the PIN, or set one).
func (k *Key) webAuthnToken(ctx context.Context, op, pin string, uv bool, perm byte, rpID string) (*token, error) {
	if pin == "" && !uv {
		return nil, nil
	}
	info, err := k.getInfo(ctx, op)
	if err != nil {
		return nil, err
	}
	if pin == "" {
		if info.HasOption("uv") {
			return nil, nil
		}
		return nil, uvUnavailable(op, info)
	}
	return k.pinToken(ctx, op, info, pin, perm, rpID)
}

// uvUnavailable is the error of a request for UV without a PIN to a key
// that has no built-in UV: the PIN is needed, or first has to be set.
func uvUnavailable(op string, info *platform.Info) error {
	if info.PINSet() {
		return &platform.Error{Op: op, Kind: platform.ErrPINRequired, RetriesLeft: -1}
	}
	return platform.FromCode(op, int(softkey.ErrPINNotSet))
}

// webAuthnOptions is the options map of makeCredential and getAssertion,
// nil when neither option is needed: uv is sent only for the key's
// built-in UV, since a pinUvAuthParam already verifies the user, and
// CTAP 2.1 keys refuse uv with one.
func webAuthnOptions(rk, uv bool) map[string]bool {
	if !rk && !uv {
		return nil
	}
	opts := map[string]bool{}
	if rk {
		opts["rk"] = true
	}
	if uv {
		opts["uv"] = true
	}
	return opts
}

// checkIDs refuses an empty credential ID in an allow or exclude list:
// no key issues one, and libfido2 cannot send it, so both implementations
// refuse it alike.
func checkIDs(op string, ids [][]byte) error {
	for _, id := range ids {
		if len(id) == 0 {
			return protocolError(op, errors.New("empty credential ID in the request"))
		}
	}
	return nil
}

// descriptors is a list of credential IDs as PublicKeyCredentialDescriptors.
func descriptors(ids [][]byte) []descriptor {
	out := make([]descriptor, 0, len(ids))
	for _, id := range ids {
		out = append(out, descriptor{ID: id, Type: "public-key"})
	}
	return out
}

// assertionOf turns one response into an Assertion. A key may leave out
// the credential when the allow list held just one (CTAP 2.1 §6.2.2 step
// 12): it is that one.
func assertionOf(op string, r *getAssertionResponse, allow [][]byte) (platform.Assertion, error) {
	a := platform.Assertion{AuthData: r.AuthData, Signature: r.Signature}
	switch {
	case r.Credential != nil && len(r.Credential.ID) > 0:
		a.CredentialID = r.Credential.ID
	case len(allow) == 1:
		a.CredentialID = allow[0]
	default:
		return a, protocolError(op, errors.New("assertion without a credential"))
	}
	if len(r.AuthData) < authDataHeaderLen || len(r.Signature) == 0 {
		return a, protocolError(op, errors.New("assertion without authenticator data or signature"))
	}
	if r.User != nil {
		a.User = &platform.User{ID: r.User.ID, Name: r.User.Name, DisplayName: r.User.DisplayName}
	}
	return a, nil
}

// attestedCredentialID reads the credential ID from the attested
// credential data of authData.
//
// Specification: WebAuthn L3 §6.5.1. Attested Credential Data (https://www.w3.org/TR/webauthn-3/#sctn-attested-credential-data)
func attestedCredentialID(authData []byte) ([]byte, error) {
	if len(authData) < attestedIDOffset || authData[authDataFlagsIndex]&authDataFlagAT == 0 {
		return nil, errors.New("authenticator data without attested credential data")
	}
	n := int(binary.BigEndian.Uint16(authData[attestedIDOffset-2:]))
	if n == 0 || len(authData) < attestedIDOffset+n {
		return nil, errors.New("authenticator data too short for its credential ID")
	}
	return append([]byte(nil), authData[attestedIDOffset:attestedIDOffset+n]...), nil
}
