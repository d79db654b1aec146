package softkey

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"time"

	"github.com/keydesk/keydesk/platform/pinuvauth"
)

// authenticatorGetAssertionRequest holds the parameters of
// authenticatorGetAssertion (0x02).
//
// Specification: §6.2. authenticatorGetAssertion (0x02) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorGetAssertion)
type authenticatorGetAssertionRequest struct {
	RPID              *string                `cbor:"1,keyasint"`
	ClientDataHash    *[]byte                `cbor:"2,keyasint"`
	AllowList         []credentialDescriptor `cbor:"3,keyasint"`
	Extensions        *getAssertionExts      `cbor:"4,keyasint"`
	Options           map[string]bool        `cbor:"5,keyasint"`
	PinUvAuthParam    *[]byte                `cbor:"6,keyasint"`
	PinUvAuthProtocol *uint64                `cbor:"7,keyasint"`
}

// getAssertionExts are the authentication extension inputs this key knows.
type getAssertionExts struct {
	HMACSecret *hmacSecretInput `cbor:"hmac-secret"`
}

// hmacSecretInput is the hmac-secret extension input of getAssertion.
//
// Specification: §12.5. HMAC Secret Extension (hmac-secret) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#sctn-hmac-secret-extension)
type hmacSecretInput struct {
	KeyAgreement      *pinuvauth.COSEKey `cbor:"1,keyasint"`
	SaltEnc           *[]byte            `cbor:"2,keyasint"`
	SaltAuth          *[]byte            `cbor:"3,keyasint"`
	PinUvAuthProtocol *uint64            `cbor:"4,keyasint"`
}

// authenticatorGetAssertionResponse is one assertion.
type authenticatorGetAssertionResponse struct {
	Credential          credentialDescriptorOut `cbor:"1,keyasint"`
	AuthData            []byte                  `cbor:"2,keyasint"`
	Signature           []byte                  `cbor:"3,keyasint"`
	User                *userEntityOut          `cbor:"4,keyasint,omitempty"`
	NumberOfCredentials uint                    `cbor:"5,keyasint,omitempty"`
}

// assertionBatch remembers the credentials that getNextAssertion still
// has to return.
type assertionBatch struct {
	remaining      []*credentialSource
	clientDataHash []byte
	flags          byte
	uv             bool
	hmac           *hmacSecretInput
	started        time.Time
}

// getAssertion is authenticatorGetAssertion (0x02), following §6.2.2.
func (a *Authenticator) getAssertion(ctx context.Context, params []byte, keepalive func(byte)) (any, error) {
	a.next = nil
	var req authenticatorGetAssertionRequest
	if err := decodeParams(params, &req); err != nil {
		return nil, err
	}
	if req.RPID == nil || req.ClientDataHash == nil {
		return nil, ErrMissingParameter
	}
	rpID, clientDataHash := *req.RPID, *req.ClientDataHash
	if len(clientDataHash) != clientDataHashSz || len(rpID) > maxRPIDLength {
		return nil, ErrInvalidLength
	}
	if err := checkDescriptors(req.AllowList); err != nil {
		return nil, err
	}
	// Steps 1-2.
	proto, err := a.pinUvAuthProtocolOf(ctx, keepalive, req.PinUvAuthParam, req.PinUvAuthProtocol)
	if err != nil {
		return nil, err
	}
	// Steps 3-5. Options: "rk" has no meaning here.
	if _, ok := req.Options["rk"]; ok {
		return nil, ErrUnsupportedOption
	}
	up, uvOpt := true, false
	if v, ok := req.Options["up"]; ok {
		up = v
	}
	if v, ok := req.Options["uv"]; ok && v {
		if !a.uvConfigured() {
			return nil, ErrInvalidOption
		}
		uvOpt = proto == nil
	}
	// Step 6. alwaysUv.
	if a.st.AlwaysUV && proto == nil && !uvOpt && up {
		if !a.pinSet() && !a.uvConfigured() {
			return nil, ErrPINNotSet
		}
		return nil, ErrPUATRequired
	}
	// Step 6 continued. Verify pinUvAuthParam or perform built-in UV.
	uv := false
	switch {
	case proto != nil:
		if err := a.checkToken(proto, clientDataHash, *req.PinUvAuthParam, PermGetAssertion, rpID); err != nil {
			return nil, err
		}
		uv = proto.token.userVerified
	case uvOpt:
		if err := a.builtInUV(ctx, keepalive); err != nil {
			return nil, err
		}
		uv = true
	}
	// Step 7. Locate credentials, applying credProtect.
	rpIDHash := sha256.Sum256([]byte(rpID))
	var creds []*credentialSource
	if len(req.AllowList) > 0 {
		for _, d := range req.AllowList {
			if *d.Type != coseKeyTypePublic {
				continue
			}
			src := a.openCredential(rpIDHash[:], *d.ID)
			if src != nil && (src.credProtect != credProtectUVRequired || uv) {
				creds = append(creds, src)
				break
			}
		}
	} else {
		for _, c := range a.residentsFor(rpID) {
			src := a.openCredential(rpIDHash[:], c.ID)
			if src == nil || (src.credProtect >= credProtectUVOptionalWithID && !uv) {
				continue
			}
			creds = append(creds, src)
		}
	}
	// Step 9. User presence, unless the platform asks for a silent check.
	flags := byte(0)
	if up {
		if err := a.userPresence(ctx, keepalive); err != nil {
			return nil, err
		}
		flags |= flagUP
		if proto != nil {
			proto.token.userPresent = false
		}
	}
	if uv {
		flags |= flagUV
	}
	if len(creds) == 0 {
		return nil, ErrNoCredentials
	}
	var hmacIn *hmacSecretInput
	if req.Extensions != nil {
		hmacIn = req.Extensions.HMACSecret
	}
	batch := &assertionBatch{remaining: creds[1:], clientDataHash: clientDataHash, flags: flags, uv: uv, hmac: hmacIn, started: a.now()}
	resp, err := a.assert(creds[0], batch)
	if err != nil {
		return nil, err
	}
	if len(req.AllowList) == 0 && len(creds) > 1 {
		resp.NumberOfCredentials = uint(len(creds))
		a.next = batch
	}
	return resp, nil
}

// getNextAssertion is authenticatorGetNextAssertion (0x08): only right
// after getAssertion or getNextAssertion, within 30 seconds.
func (a *Authenticator) getNextAssertion() (any, error) {
	b := a.next
	if b == nil || (a.lastCmd != CmdGetAssertion && a.lastCmd != CmdGetNextAssertion) || len(b.remaining) == 0 {
		a.next = nil
		return nil, ErrNotAllowed
	}
	if a.now().Sub(b.started) > nextAssertionTimeout {
		a.next = nil
		return nil, ErrNotAllowed
	}
	src := b.remaining[0]
	b.remaining = b.remaining[1:]
	b.started = a.now()
	return a.assert(src, b)
}

// assert signs one assertion (§6.2.2 step 12).
func (a *Authenticator) assert(src *credentialSource, b *assertionBatch) (*authenticatorGetAssertionResponse, error) {
	var ext map[string]any
	if b.hmac != nil {
		out, err := a.hmacSecret(src, b.hmac, b.uv)
		if err != nil {
			return nil, err
		}
		ext = map[string]any{"hmac-secret": out}
	}
	authData := authenticatorData(a.cfg.AAGUID, src.rpIDHash, b.flags, a.nextSignCount(), nil, nil, ext)
	msg := append(append([]byte{}, authData...), b.clientDataHash...)
	sig, err := src.key.sign(msg)
	if err != nil {
		return nil, err
	}
	resp := &authenticatorGetAssertionResponse{
		Credential: credentialDescriptorOut{ID: src.id, Type: coseKeyTypePublic},
		AuthData:   authData,
		Signature:  sig,
	}
	if c := src.resident; c != nil {
		// Step 12: only the user handle, unless the user was verified;
		// then names too, so the platform can show an account chooser.
		resp.User = &userEntityOut{ID: c.UserID}
		if b.uv {
			resp.User.Name, resp.User.DisplayName = c.UserName, c.UserDisplayName
		}
	}
	return resp, nil
}

// hmacSecret computes the hmac-secret extension output (§12.5).
func (a *Authenticator) hmacSecret(src *credentialSource, in *hmacSecretInput, uv bool) ([]byte, error) {
	if in.KeyAgreement == nil || in.SaltEnc == nil || in.SaltAuth == nil {
		return nil, ErrMissingParameter
	}
	version := uint64(1)
	if in.PinUvAuthProtocol != nil {
		version = *in.PinUvAuthProtocol
	}
	p, err := a.protocol(&version)
	if err != nil {
		return nil, err
	}
	shared, err := p.sharedSecret(*in.KeyAgreement)
	if err != nil {
		return nil, err
	}
	if !p.proto.Verify(shared, *in.SaltEnc, *in.SaltAuth) {
		return nil, ErrPINAuthInvalid
	}
	salts, err := p.decrypt(shared, *in.SaltEnc)
	if err != nil {
		return nil, err
	}
	if len(salts) != 32 && len(salts) != 64 {
		return nil, ErrInvalidLength
	}
	credRandom := a.credRandom(src.id, uv)
	var out []byte
	for i := 0; i < len(salts); i += 32 {
		m := hmac.New(sha256.New, credRandom)
		m.Write(salts[i : i+32])
		out = m.Sum(out)
	}
	return p.encrypt(shared, out)
}
