package softkey

import (
	"context"
	"crypto/sha256"
	"unicode/utf8"
)

// Limits on request fields, from WebAuthn §5.4.3 (user handle) and
// CTAP 2.1 §6.1 (entity names may be truncated to 64 bytes).
const (
	maxUserIDLength  = 64
	maxEntityNameLen = 64
	maxRPIDLength    = 253 // a DNS name
	clientDataHashSz = 32
)

// rpEntity is PublicKeyCredentialRpEntity.
//
// Specification: WebAuthn §5.4.2. Relying Party Parameters for Credential Generation (https://www.w3.org/TR/webauthn-3/#dictionary-rp-credential-params)
type rpEntity struct {
	ID   *string `cbor:"id"`
	Name string  `cbor:"name,omitempty"`
	Icon string  `cbor:"icon,omitempty"`
}

// userEntity is PublicKeyCredentialUserEntity.
//
// Specification: WebAuthn §5.4.3. User Account Parameters for Credential Generation (https://www.w3.org/TR/webauthn-3/#dictionary-user-credential-params)
type userEntity struct {
	ID          *[]byte `cbor:"id"`
	Name        string  `cbor:"name,omitempty"`
	DisplayName string  `cbor:"displayName,omitempty"`
	Icon        string  `cbor:"icon,omitempty"`
}

// userEntityOut is the user entity as the key returns it.
type userEntityOut struct {
	ID          []byte `cbor:"id"`
	Name        string `cbor:"name,omitempty"`
	DisplayName string `cbor:"displayName,omitempty"`
}

// credentialDescriptor is PublicKeyCredentialDescriptor.
//
// Specification: WebAuthn §5.8.3. Credential Descriptor (https://www.w3.org/TR/webauthn-3/#dictionary-credential-descriptor)
type credentialDescriptor struct {
	Type       *string  `cbor:"type"`
	ID         *[]byte  `cbor:"id"`
	Transports []string `cbor:"transports,omitempty"`
}

// credentialDescriptorOut is a descriptor as the key returns it.
type credentialDescriptorOut struct {
	ID   []byte `cbor:"id"`
	Type string `cbor:"type"`
}

// credParamIn is one entry of pubKeyCredParams.
type credParamIn struct {
	Type *string `cbor:"type"`
	Alg  *int64  `cbor:"alg"`
}

// authenticatorMakeCredentialRequest holds the parameters of
// authenticatorMakeCredential (0x01).
//
// Specification: §6.1. authenticatorMakeCredential (0x01) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorMakeCredential)
type authenticatorMakeCredentialRequest struct {
	ClientDataHash               *[]byte                `cbor:"1,keyasint"`
	RP                           *rpEntity              `cbor:"2,keyasint"`
	User                         *userEntity            `cbor:"3,keyasint"`
	PubKeyCredParams             *[]credParamIn         `cbor:"4,keyasint"`
	ExcludeList                  []credentialDescriptor `cbor:"5,keyasint"`
	Extensions                   *makeCredExtensions    `cbor:"6,keyasint"`
	Options                      map[string]bool        `cbor:"7,keyasint"`
	PinUvAuthParam               *[]byte                `cbor:"8,keyasint"`
	PinUvAuthProtocol            *uint64                `cbor:"9,keyasint"`
	EnterpriseAttestation        *uint64                `cbor:"10,keyasint"`
	AttestationFormatsPreference []string               `cbor:"11,keyasint"`
}

// makeCredExtensions are the registration extension inputs this key knows.
//
// Specification: §12. Defined Extensions (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#sctn-defined-extensions)
type makeCredExtensions struct {
	CredProtect  *uint64 `cbor:"credProtect"`
	HMACSecret   *bool   `cbor:"hmac-secret"`
	MinPinLength *bool   `cbor:"minPinLength"`
}

// authenticatorMakeCredentialResponse is the attestation object in CTAP form.
type authenticatorMakeCredentialResponse struct {
	Fmt      string         `cbor:"1,keyasint"`
	AuthData []byte         `cbor:"2,keyasint"`
	AttStmt  map[string]any `cbor:"3,keyasint"`
	EpAtt    bool           `cbor:"4,keyasint,omitempty"`
}

// credProtect levels (§12.1).
const (
	credProtectUVOptional       = 1
	credProtectUVOptionalWithID = 2
	credProtectUVRequired       = 3
)

// makeCredential is authenticatorMakeCredential (0x01), following the
// numbered steps of §6.1.2.
func (a *Authenticator) makeCredential(ctx context.Context, params []byte, keepalive func(byte)) (any, error) {
	var req authenticatorMakeCredentialRequest
	if err := decodeParams(params, &req); err != nil {
		return nil, err
	}
	if req.ClientDataHash == nil || req.RP == nil || req.RP.ID == nil || req.User == nil || req.User.ID == nil || req.PubKeyCredParams == nil {
		return nil, ErrMissingParameter
	}
	clientDataHash, rpID, userID := *req.ClientDataHash, *req.RP.ID, *req.User.ID
	if len(clientDataHash) != clientDataHashSz || len(userID) > maxUserIDLength || len(rpID) > maxRPIDLength {
		return nil, ErrInvalidLength
	}
	if err := checkDescriptors(req.ExcludeList); err != nil {
		return nil, err
	}
	// Steps 1-2.
	proto, err := a.pinUvAuthProtocolOf(ctx, keepalive, req.PinUvAuthParam, req.PinUvAuthProtocol)
	if err != nil {
		return nil, err
	}
	// Step 3. The first supported algorithm wins.
	alg, err := chooseAlgorithm(*req.PubKeyCredParams)
	if err != nil {
		return nil, err
	}
	// Steps 4-5. Options.
	rk, uvOpt := false, false
	if v, ok := req.Options["rk"]; ok {
		rk = v
	}
	if v, ok := req.Options["up"]; ok && !v {
		return nil, ErrInvalidOption
	}
	if v, ok := req.Options["uv"]; ok && v {
		if !a.uvConfigured() {
			return nil, ErrInvalidOption
		}
		uvOpt = proto == nil
	}
	// Step 6. alwaysUv and makeCredUvNotRqd decide whether UV is needed.
	protected := a.pinSet() || a.uvConfigured()
	uvNeeded := a.st.AlwaysUV || (protected && rk)
	if uvNeeded && proto == nil && !uvOpt {
		if !protected {
			return nil, ErrPINNotSet
		}
		return nil, ErrPUATRequired
	}
	// Step 7. Enterprise attestation only when enabled.
	epAtt := false
	if req.EnterpriseAttestation != nil {
		if a.cfg.NoEnterpriseAttestation || !a.st.EnterpriseAtt {
			return nil, ErrInvalidParameter
		}
		if *req.EnterpriseAttestation != 1 && *req.EnterpriseAttestation != 2 {
			return nil, ErrInvalidOption
		}
		epAtt = true
	}
	rpIDHash := sha256.Sum256([]byte(rpID))
	// Step 11. Verify the pinUvAuthParam, or perform built-in UV.
	uv := false
	switch {
	case proto != nil:
		if err := a.checkToken(proto, clientDataHash, *req.PinUvAuthParam, PermMakeCredential, rpID); err != nil {
			return nil, err
		}
		uv = proto.token.userVerified
	case uvOpt:
		if err := a.builtInUV(ctx, keepalive); err != nil {
			return nil, err
		}
		uv = true
	}
	// Step 12. A credential in the excludeList stops the ceremony, after a
	// touch so that a site cannot probe silently.
	for _, d := range req.ExcludeList {
		src := a.openCredential(rpIDHash[:], *d.ID)
		if src == nil || (src.credProtect == credProtectUVRequired && !uv) {
			continue
		}
		if err := a.userPresence(ctx, keepalive); err != nil && err == ErrKeepaliveCancel {
			return nil, err
		}
		return nil, ErrCredentialExcluded
	}
	// Step 13. Extensions.
	extOut := map[string]any{}
	credProtect := credProtectUVOptional
	if e := req.Extensions; e != nil {
		if e.CredProtect != nil && *e.CredProtect >= credProtectUVOptional && *e.CredProtect <= credProtectUVRequired {
			credProtect = int(*e.CredProtect)
			extOut["credProtect"] = credProtect
		}
		// hmac-secret needs nothing stored: CredRandom is derived on use.
		if e.HMACSecret != nil && *e.HMACSecret {
			extOut["hmac-secret"] = true
		}
		if e.MinPinLength != nil && *e.MinPinLength && contains(a.st.MinPINRPIDs, rpID) {
			extOut["minPinLength"] = a.st.MinPINLength
		}
	}
	// Step 14. User presence.
	if err := a.userPresence(ctx, keepalive); err != nil {
		return nil, err
	}
	if proto != nil {
		proto.token.userPresent = false
		proto.token.userVerified = false
		proto.token.permissions &= PermLargeBlobWrite
	}
	// Step 15-17. Create, and store when discoverable.
	var existing int = -1
	if rk {
		for i, c := range a.st.Credentials {
			if c.RPID == rpID && string(c.UserID) == string(userID) {
				existing = i
			}
		}
		if existing < 0 && len(a.st.Credentials) >= a.cfg.MaxCredentials {
			return nil, ErrKeyStoreFull
		}
	}
	key, err := newSigner(alg)
	if err != nil {
		return nil, err
	}
	credID := a.sealCredentialID(rpIDHash[:], key, credProtect, rk)
	if rk {
		c := &residentCred{
			ID:              credID,
			RPID:            rpID,
			RPName:          truncate(req.RP.Name),
			UserID:          append([]byte(nil), userID...),
			UserName:        truncate(req.User.Name),
			UserDisplayName: truncate(req.User.DisplayName),
			Alg:             alg,
			CredProtect:     credProtect,
			Created:         a.nextCreated(),
		}
		if existing >= 0 {
			a.st.Credentials[existing] = c
		} else {
			a.st.Credentials = append(a.st.Credentials, c)
		}
		a.dirty = true
	}
	flags := flagUP
	if uv {
		flags |= flagUV
	}
	pub := key.publicCOSE()
	authData := authenticatorData(a.cfg.AAGUID, rpIDHash[:], flags, a.nextSignCount(), credID, &pub, extOut)

	// Step 19. Attestation statement.
	resp := &authenticatorMakeCredentialResponse{AuthData: authData, EpAtt: epAtt}
	if a.attestationFormat(req.AttestationFormatsPreference) == "none" {
		resp.Fmt, resp.AttStmt = "none", map[string]any{}
		return resp, nil
	}
	sig, err := (&signer{alg: AlgES256, priv: a.att.key}).sign(append(append([]byte{}, authData...), clientDataHash...))
	if err != nil {
		return nil, err
	}
	resp.Fmt = "packed"
	resp.AttStmt = map[string]any{"alg": int(AlgES256), "sig": sig, "x5c": a.att.x5c()}
	return resp, nil
}

// attestationFormat honours a CTAP 2.2 attestationFormatsPreference, else
// the key's configuration.
func (a *Authenticator) attestationFormat(pref []string) string {
	for _, f := range pref {
		if f == "packed" || f == "none" {
			return f
		}
	}
	if a.cfg.NoneAttestation {
		return "none"
	}
	return "packed"
}

// chooseAlgorithm returns the first supported algorithm of
// pubKeyCredParams; entries of unknown type are skipped (§6.1.2 step 3).
func chooseAlgorithm(params []credParamIn) (COSEAlgorithm, error) {
	for _, p := range params {
		if p.Type == nil || p.Alg == nil {
			return 0, ErrMissingParameter
		}
	}
	for _, p := range params {
		if *p.Type != coseKeyTypePublic {
			continue
		}
		for _, alg := range supportedAlgorithms {
			if COSEAlgorithm(*p.Alg) == alg {
				return alg, nil
			}
		}
	}
	return 0, ErrUnsupportedAlgorithm
}

// checkDescriptors validates an excludeList or allowList: at most
// maxCredentialCountInList entries, each with a type and an ID.
func checkDescriptors(list []credentialDescriptor) error {
	if len(list) > maxCredentialsInList {
		return ErrLimitExceeded
	}
	for _, d := range list {
		if d.Type == nil || d.ID == nil {
			return ErrMissingParameter
		}
	}
	return nil
}

// pinUvAuthProtocolOf runs steps 1 and 2 shared by makeCredential and
// getAssertion: a zero-length pinUvAuthParam is the selection probe (which
// always ends the command), and a present one needs a known protocol. It
// returns nil when no pinUvAuthParam was sent.
func (a *Authenticator) pinUvAuthProtocolOf(ctx context.Context, keepalive func(byte), param *[]byte, version *uint64) (*pinUvAuthProtocol, error) {
	if param == nil {
		return nil, nil
	}
	if len(*param) == 0 {
		return nil, a.selectionProbe(ctx, keepalive)
	}
	return a.protocol(version)
}

// selectionProbe answers the zero-length pinUvAuthParam a platform sends to
// let the user pick a key by touching it (§6.1.2 step 1).
func (a *Authenticator) selectionProbe(ctx context.Context, keepalive func(byte)) error {
	if err := a.userPresence(ctx, keepalive); err != nil {
		return err
	}
	if a.pinSet() {
		return ErrPINInvalid
	}
	return ErrPINNotSet
}

// checkToken verifies a pinUvAuthParam over message and the token's
// permission and RP binding, binding the token to rpID on first use. A
// token without the permission, or bound to another RP, is an invalid
// pinUvAuthParam (§6.1.2 step 11, §6.8 step 4, §6.11 step 4): only
// clientPIN answers CTAP2_ERR_UNAUTHORIZED_PERMISSION, for permissions the
// key cannot grant at all.
func (a *Authenticator) checkToken(p *pinUvAuthProtocol, message, param []byte, perm byte, rpID string) error {
	if !p.verifyToken(a.now(), message, param) {
		return ErrPINAuthInvalid
	}
	if p.token.permissions&perm == 0 {
		return ErrPINAuthInvalid
	}
	if rpID != "" {
		if p.token.rpID != "" && p.token.rpID != rpID {
			return ErrPINAuthInvalid
		}
		p.token.rpID = rpID
	}
	return nil
}

// checkSubcommandToken is the check of the commands with subcommands
// (bio enrollment, credential management, config): a pinUvAuthParam is
// required, in a protocol the key speaks, made over message by a token
// with perm. It returns the token's protocol.
func (a *Authenticator) checkSubcommandToken(version *uint64, param *[]byte, message []byte, perm byte) (*pinUvAuthProtocol, error) {
	if param == nil {
		return nil, ErrPUATRequired
	}
	p, err := a.protocol(version)
	if err != nil {
		return nil, err
	}
	if err := a.checkToken(p, message, *param, perm, ""); err != nil {
		return nil, err
	}
	return p, nil
}

// builtInUV simulates a fingerprint match: the presence policy stands for
// the finger, a refusal for a finger that does not match.
func (a *Authenticator) builtInUV(ctx context.Context, keepalive func(byte)) error {
	if !a.uvConfigured() {
		return ErrInvalidOption
	}
	if a.st.UVRetries <= 0 {
		return ErrUVBlocked
	}
	err := a.userPresence(ctx, keepalive)
	switch err {
	case nil:
		if a.st.UVRetries != maxUVRetries {
			a.st.UVRetries = maxUVRetries
			a.dirty = true
		}
		a.uvFails = 0
		return nil
	case ErrOperationDenied:
		a.st.UVRetries--
		a.uvFails++
		a.dirty = true
		if a.st.UVRetries <= 0 {
			return ErrUVBlocked
		}
		return ErrUVInvalid
	}
	return err
}

// truncate shortens an entity name to 64 bytes without splitting a
// character, as §6.1.2 allows.
func truncate(s string) string {
	if len(s) <= maxEntityNameLen {
		return s
	}
	s = s[:maxEntityNameLen]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// decodeParams decodes a command's parameter map; a missing map means
// missing parameters.
func decodeParams(params []byte, v any) error {
	if len(params) == 0 {
		return ErrMissingParameter
	}
	if params[0]>>5 != 5 { // the parameters must be a map
		if err := checkCanonical(params); err != nil {
			return err
		}
		return ErrCBORUnexpectedType
	}
	return unmarshal(params, v)
}
