package softkey

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"unicode/utf8"

	"github.com/keydesk/keydesk/platform/pinuvauth"
)

// clientPIN limits (§6.5.5): the longest PIN in bytes, and the
// permissions that only an RP ID can scope.
const (
	maxPINBytes                 = 63
	permissionsNeedingRPID byte = PermMakeCredential | PermGetAssertion
)

// authenticatorClientPINRequest holds the parameters of authenticatorClientPIN (0x06).
//
// Specification: §6.5.5. authenticatorClientPIN (0x06) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authnrClientPin-cmd-dfn)
type authenticatorClientPINRequest struct {
	PinUvAuthProtocol *uint64            `cbor:"1,keyasint"`
	SubCommand        *uint64            `cbor:"2,keyasint"`
	KeyAgreement      *pinuvauth.COSEKey `cbor:"3,keyasint"`
	PinUvAuthParam    *[]byte            `cbor:"4,keyasint"`
	NewPinEnc         *[]byte            `cbor:"5,keyasint"`
	PinHashEnc        *[]byte            `cbor:"6,keyasint"`
	Permissions       *uint64            `cbor:"9,keyasint"`
	RPID              *string            `cbor:"10,keyasint"`
}

// authenticatorClientPINResponse is the response of authenticatorClientPIN.
type authenticatorClientPINResponse struct {
	KeyAgreement    *pinuvauth.COSEKey `cbor:"1,keyasint,omitempty"`
	PinUvAuthToken  []byte             `cbor:"2,keyasint,omitempty"`
	PinRetries      *uint              `cbor:"3,keyasint,omitempty"`
	PowerCycleState *bool              `cbor:"4,keyasint,omitempty"`
	UvRetries       *uint              `cbor:"5,keyasint,omitempty"`
}

func (a *Authenticator) clientPIN(ctx context.Context, params []byte, keepalive func(byte)) (any, error) {
	var req authenticatorClientPINRequest
	if err := decodeParams(params, &req); err != nil {
		return nil, err
	}
	if req.SubCommand == nil {
		return nil, ErrMissingParameter
	}
	switch *req.SubCommand {
	case ClientPINGetPINRetries:
		retries := uint(a.st.PINRetries)
		blocked := a.pinFails >= maxPINFailsPerBoot
		return &authenticatorClientPINResponse{PinRetries: &retries, PowerCycleState: &blocked}, nil
	case ClientPINGetUVRetries:
		if !a.uvConfigured() && a.cfg.NoBiometrics {
			return nil, ErrInvalidSubcommand
		}
		retries := uint(a.st.UVRetries)
		return &authenticatorClientPINResponse{UvRetries: &retries}, nil
	}
	p, err := a.protocol(req.PinUvAuthProtocol)
	if err != nil {
		return nil, err
	}
	switch *req.SubCommand {
	case ClientPINGetKeyAgreement:
		k := pinuvauth.PublicCOSEKey(p.key.PublicKey())
		return &authenticatorClientPINResponse{KeyAgreement: &k}, nil
	case ClientPINSetPIN:
		return nil, a.setPIN(p, &req)
	case ClientPINChangePIN:
		return nil, a.changePIN(p, &req)
	case ClientPINGetPinToken:
		if req.Permissions != nil || req.RPID != nil {
			return nil, ErrInvalidParameter
		}
		return a.pinToken(p, &req, PermMakeCredential|PermGetAssertion, "")
	case ClientPINGetPinUvAuthTokenUsingPinWithPerms:
		perms, rpID, err := a.tokenPermissions(&req)
		if err != nil {
			return nil, err
		}
		return a.pinToken(p, &req, perms, rpID)
	case ClientPINGetPinUvAuthTokenUsingUvWithPerms:
		perms, rpID, err := a.tokenPermissions(&req)
		if err != nil {
			return nil, err
		}
		return a.uvToken(ctx, keepalive, p, &req, perms, rpID)
	}
	return nil, ErrInvalidSubcommand
}

// tokenPermissions validates the permissions and RP ID of a
// getPinUvAuthTokenUsing*WithPermissions request.
func (a *Authenticator) tokenPermissions(req *authenticatorClientPINRequest) (byte, string, error) {
	if req.Permissions == nil || req.KeyAgreement == nil {
		return 0, "", ErrMissingParameter
	}
	if *req.Permissions == 0 || *req.Permissions > 0xff {
		return 0, "", ErrInvalidParameter
	}
	perms := byte(*req.Permissions)
	rpID := ""
	if req.RPID != nil {
		rpID = *req.RPID
	}
	if perms&permissionsNeedingRPID != 0 && rpID == "" {
		return 0, "", ErrMissingParameter
	}
	// Permissions for features this key lacks cannot be granted.
	if perms&PermLargeBlobWrite != 0 || (perms&PermBioEnrollment != 0 && a.cfg.NoBiometrics) {
		return 0, "", ErrUnauthorizedPermission
	}
	return perms, rpID, nil
}

// setPIN is setPIN (0x03): only when no PIN is set yet.
func (a *Authenticator) setPIN(p *pinUvAuthProtocol, req *authenticatorClientPINRequest) error {
	if req.KeyAgreement == nil || req.PinUvAuthParam == nil || req.NewPinEnc == nil {
		return ErrMissingParameter
	}
	if a.pinSet() {
		return ErrNotAllowed
	}
	shared, err := p.sharedSecret(*req.KeyAgreement)
	if err != nil {
		return err
	}
	if !p.proto.Verify(shared, *req.NewPinEnc, *req.PinUvAuthParam) {
		return ErrPINAuthInvalid
	}
	pin, err := a.decryptNewPIN(p, shared, *req.NewPinEnc)
	if err != nil {
		return err
	}
	a.storePIN(pin)
	return nil
}

// changePIN is changePIN (0x04): the current PIN, then the new one.
func (a *Authenticator) changePIN(p *pinUvAuthProtocol, req *authenticatorClientPINRequest) error {
	if req.KeyAgreement == nil || req.PinUvAuthParam == nil || req.NewPinEnc == nil || req.PinHashEnc == nil {
		return ErrMissingParameter
	}
	if !a.pinSet() {
		return ErrPINNotSet
	}
	if err := a.pinUsable(); err != nil {
		return err
	}
	shared, err := p.sharedSecret(*req.KeyAgreement)
	if err != nil {
		return err
	}
	msg := append(append([]byte{}, *req.NewPinEnc...), *req.PinHashEnc...)
	if !p.proto.Verify(shared, msg, *req.PinUvAuthParam) {
		return ErrPINAuthInvalid
	}
	if err := a.checkPINHash(p, shared, *req.PinHashEnc); err != nil {
		return err
	}
	pin, err := a.decryptNewPIN(p, shared, *req.NewPinEnc)
	if err != nil {
		return err
	}
	// A forced change must really change the PIN (§6.5.5.6 step 6).
	if a.st.ForcePINChg && a.matchesPIN(pinuvauth.PINHash(pin)) {
		return ErrPINPolicyViolation
	}
	a.storePIN(pin)
	for _, q := range a.protocols {
		q.resetToken()
	}
	return nil
}

// pinToken is getPinToken (0x05) and
// getPinUvAuthTokenUsingPinWithPermissions (0x09).
func (a *Authenticator) pinToken(p *pinUvAuthProtocol, req *authenticatorClientPINRequest, perms byte, rpID string) (any, error) {
	if req.KeyAgreement == nil || req.PinHashEnc == nil {
		return nil, ErrMissingParameter
	}
	if !a.pinSet() {
		return nil, ErrPINNotSet
	}
	if err := a.pinUsable(); err != nil {
		return nil, err
	}
	shared, err := p.sharedSecret(*req.KeyAgreement)
	if err != nil {
		return nil, err
	}
	if err := a.checkPINHash(p, shared, *req.PinHashEnc); err != nil {
		return nil, err
	}
	if a.st.ForcePINChg {
		return nil, ErrPINPolicyViolation
	}
	// A new token makes every earlier one useless, in both protocols.
	for _, q := range a.protocols {
		q.resetToken()
	}
	p.beginUsingToken(a.now(), perms, rpID, true)
	enc, err := p.encrypt(shared, p.token.value)
	if err != nil {
		return nil, err
	}
	return &authenticatorClientPINResponse{PinUvAuthToken: enc}, nil
}

// uvToken is getPinUvAuthTokenUsingUvWithPermissions (0x06), with the
// simulated fingerprint as the built-in user verification.
func (a *Authenticator) uvToken(ctx context.Context, keepalive func(byte), p *pinUvAuthProtocol, req *authenticatorClientPINRequest, perms byte, rpID string) (any, error) {
	if !a.uvConfigured() {
		return nil, ErrNotAllowed
	}
	shared, err := p.sharedSecret(*req.KeyAgreement)
	if err != nil {
		return nil, err
	}
	if err := a.builtInUV(ctx, keepalive); err != nil {
		return nil, err
	}
	for _, q := range a.protocols {
		q.resetToken()
	}
	p.beginUsingToken(a.now(), perms, rpID, true)
	p.token.userPresent = true
	enc, err := p.encrypt(shared, p.token.value)
	if err != nil {
		return nil, err
	}
	return &authenticatorClientPINResponse{PinUvAuthToken: enc}, nil
}

// pinUsable refuses PIN checks while the key is blocked for good (no
// retries left) or until the next power cycle (three wrong in a row).
func (a *Authenticator) pinUsable() error {
	if a.st.PINRetries <= 0 {
		return ErrPINBlocked
	}
	if a.pinFails >= maxPINFailsPerBoot {
		return ErrPINAuthBlocked
	}
	return nil
}

// checkPINHash verifies pinHashEnc against the stored PIN, counting
// failures as §6.5.5.5 prescribes: the retry counter goes down before the
// comparison, so pulling the key mid-check cannot save an attempt.
func (a *Authenticator) checkPINHash(p *pinUvAuthProtocol, shared, pinHashEnc []byte) error {
	a.st.PINRetries--
	a.dirty = true
	if a.store != nil {
		if err := a.store.save(a.st); err != nil {
			a.st.PINRetries++
			return ErrOther
		}
	}
	got, err := p.decrypt(shared, pinHashEnc)
	if err == nil && len(got) == pinuvauth.PINHashLength && a.matchesPIN(got) {
		a.st.PINRetries = maxPINRetries
		a.pinFails = 0
		return nil
	}
	p.regenerate()
	a.pinFails++
	if a.st.PINRetries <= 0 {
		return ErrPINBlocked
	}
	if a.pinFails >= maxPINFailsPerBoot {
		return ErrPINAuthBlocked
	}
	return ErrPINInvalid
}

// decryptNewPIN recovers and checks a new PIN against the key's policy.
func (a *Authenticator) decryptNewPIN(p *pinUvAuthProtocol, shared, newPinEnc []byte) ([]byte, error) {
	if len(newPinEnc) != p.proto.CiphertextLength(pinuvauth.PaddedPINLength) {
		return nil, ErrInvalidParameter
	}
	padded, err := p.decrypt(shared, newPinEnc)
	if err != nil {
		return nil, err
	}
	pin := padded
	if i := bytes.IndexByte(padded, 0); i >= 0 {
		pin = padded[:i]
	}
	if len(pin) > maxPINBytes || !utf8.Valid(pin) || utf8.RuneCount(pin) < a.st.MinPINLength {
		return nil, ErrPINPolicyViolation
	}
	return pin, nil
}

// storePIN replaces the PIN verifier and clears a pending forced change.
func (a *Authenticator) storePIN(pin []byte) {
	salt := randomBytes(32)
	a.st.PIN = &pinVerifier{Salt: salt, MAC: pinMAC(salt, pinuvauth.PINHash(pin)), CodePoints: utf8.RuneCount(pin)}
	a.st.PINRetries = maxPINRetries
	a.st.ForcePINChg = false
	a.pinFails = 0
	a.dirty = true
}

// matchesPIN compares LEFT(SHA-256(PIN), 16) with the stored verifier.
func (a *Authenticator) matchesPIN(hash16 []byte) bool {
	v := a.st.PIN
	return v != nil && subtle.ConstantTimeCompare(pinMAC(v.Salt, hash16), v.MAC) == 1
}

func pinMAC(salt, hash16 []byte) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write(hash16)
	return m.Sum(nil)
}
