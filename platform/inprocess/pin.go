package inprocess

import (
	"context"
	"errors"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/pinuvauth"
	"github.com/keydesk/keydesk/platform/softkey"
)

// getInfoResponse is the part of authenticatorGetInfo that platform.Info
// carries.
//
// Specification: CTAP 2.1 §6.4. authenticatorGetInfo (0x04) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorGetInfo)
type getInfoResponse struct {
	Versions           []string          `cbor:"1,keyasint"`
	Extensions         []string          `cbor:"2,keyasint"`
	AAGUID             []byte            `cbor:"3,keyasint"`
	Options            map[string]bool   `cbor:"4,keyasint"`
	MaxMsgSize         uint64            `cbor:"5,keyasint"`
	PinUvAuthProtocols []uint64          `cbor:"6,keyasint"`
	Algorithms         []credentialParam `cbor:"10,keyasint"`
	ForcePINChange     bool              `cbor:"12,keyasint"`
	MinPINLength       uint64            `cbor:"13,keyasint"`
	FirmwareVersion    uint64            `cbor:"14,keyasint"`
	RemainingDiscCreds *uint64           `cbor:"20,keyasint"`
}

// credentialParam is a PublicKeyCredentialParameters entry.
//
// Specification: WebAuthn §5.3. Parameters for Credential Generation (https://www.w3.org/TR/webauthn-3/#dictionary-credential-params)
type credentialParam struct {
	Type string `cbor:"type"`
	Alg  int64  `cbor:"alg"`
}

// clientPINResponse is the response of authenticatorClientPIN.
//
// Specification: CTAP 2.1 §6.5.5. authenticatorClientPIN (0x06) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authnrClientPin-cmd-dfn)
type clientPINResponse struct {
	KeyAgreement   *pinuvauth.COSEKey `cbor:"1,keyasint"`
	PinUvAuthToken []byte             `cbor:"2,keyasint"`
	PinRetries     *uint64            `cbor:"3,keyasint"`
	UvRetries      *uint64            `cbor:"5,keyasint"`
}

// Info reads authenticatorGetInfo and the PIN and UV retry counters.
func (k *Key) Info(ctx context.Context) (*platform.Info, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.info(ctx, "read key information")
}

// Describe reads authenticatorGetInfo only.
func (k *Key) Describe(ctx context.Context) (*platform.Info, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.getInfo(ctx, "read key information")
}

// info is Info for an operation in progress, named op in errors.
func (k *Key) info(ctx context.Context, op string) (*platform.Info, error) {
	info, err := k.getInfo(ctx, op)
	if err != nil {
		return nil, err
	}
	// The counters stay -1 when the key does not answer, as in libfido2.
	if n, ok := k.retries(ctx, softkey.ClientPINGetPINRetries); ok {
		info.PINRetries = n
	}
	if _, builtInUV := info.Options["uv"]; builtInUV {
		if n, ok := k.retries(ctx, softkey.ClientPINGetUVRetries); ok {
			info.UVRetries = n
		}
	}
	return info, nil
}

// getInfo reads authenticatorGetInfo, with the counters at -1.
func (k *Key) getInfo(ctx context.Context, op string) (*platform.Info, error) {
	var r getInfoResponse
	if err := k.call(ctx, op, softkey.CmdGetInfo, nil, &r); err != nil {
		return nil, err
	}
	info := &platform.Info{
		Versions: r.Versions, Extensions: r.Extensions, Options: r.Options,
		FirmwareVersion: r.FirmwareVersion, MaxMsgSize: int(r.MaxMsgSize),
		PINRetries: -1, UVRetries: -1, RemainingDiscoverableCredentials: -1,
		MinPINLength: int(r.MinPINLength), ForcePINChange: r.ForcePINChange,
	}
	if info.Options == nil {
		info.Options = map[string]bool{}
	}
	copy(info.AAGUID[:], r.AAGUID)
	info.Model = platform.ModelName(info.AAGUID)
	for _, a := range r.Algorithms {
		info.Algorithms = append(info.Algorithms, int(a.Alg))
	}
	for _, p := range r.PinUvAuthProtocols {
		info.PINProtocols = append(info.PINProtocols, int(p))
	}
	if r.RemainingDiscCreds != nil {
		info.RemainingDiscoverableCredentials = int(*r.RemainingDiscCreds)
	}
	return info, nil
}

// retries reads the PIN (getPINRetries) or UV (getUVRetries) counter.
func (k *Key) retries(ctx context.Context, sub int) (int, bool) {
	var r clientPINResponse
	if err := k.call(ctx, "read retries", softkey.CmdClientPIN, map[int]any{2: sub}, &r); err != nil {
		return 0, false
	}
	switch {
	case sub == softkey.ClientPINGetPINRetries && r.PinRetries != nil:
		return int(*r.PinRetries), true
	case sub == softkey.ClientPINGetUVRetries && r.UvRetries != nil:
		return int(*r.UvRetries), true
	}
	return 0, false
}

// pinError adds the attempts left to a wrong PIN, read after the failure
// (the context may have ended: the count is read regardless).
func (k *Key) pinError(ctx context.Context, err error) error {
	if errors.Is(err, platform.ErrPINInvalid) || errors.Is(err, platform.ErrPINAuthBlocked) {
		if n, ok := k.retries(context.WithoutCancel(ctx), softkey.ClientPINGetPINRetries); ok {
			return platform.WithRetries(err, n)
		}
	}
	if errors.Is(err, platform.ErrPINBlocked) {
		return platform.WithRetries(err, 0)
	}
	return err
}

// protocol picks the first PIN/UV auth protocol the key lists that this
// package speaks (the key lists its preferred one first).
func protocol(op string, info *platform.Info) (pinuvauth.Protocol, error) {
	for _, v := range info.PINProtocols {
		if p := pinuvauth.Protocol(v); p == pinuvauth.One || p == pinuvauth.Two {
			return p, nil
		}
	}
	return 0, unsupported(op)
}

// session is a shared secret agreed with the key for one clientPIN request.
type session struct {
	proto  pinuvauth.Protocol
	pub    pinuvauth.COSEKey // the platform's key agreement key
	shared []byte
}

// close wipes the shared secret.
func (s *session) close() { clear(s.shared) }

// newPinEnc encrypts pin, zero-padded, as setPIN and changePIN carry it.
func (s *session) newPinEnc(op, pin string) ([]byte, error) {
	padded := pinuvauth.PaddedPIN(pin)
	defer clear(padded)
	enc, err := s.proto.Encrypt(s.shared, padded)
	if err != nil {
		return nil, protocolError(op, err)
	}
	return enc, nil
}

// pinHashEnc encrypts LEFT(SHA-256(pin), 16), as changePIN and the token
// requests carry the current PIN.
func (s *session) pinHashEnc(op, pin string) ([]byte, error) {
	b := []byte(pin)
	hash := pinuvauth.PINHash(b)
	clear(b)
	defer clear(hash)
	enc, err := s.proto.Encrypt(s.shared, hash)
	if err != nil {
		return nil, protocolError(op, err)
	}
	return enc, nil
}

// agree picks the protocol, runs getKeyAgreement and derives the shared
// secret; the caller closes the session.
func (k *Key) agree(ctx context.Context, op string, info *platform.Info) (*session, error) {
	p, err := protocol(op, info)
	if err != nil {
		return nil, err
	}
	var r clientPINResponse
	if err := k.call(ctx, op, softkey.CmdClientPIN, map[int]any{1: p, 2: softkey.ClientPINGetKeyAgreement}, &r); err != nil {
		return nil, err
	}
	if r.KeyAgreement == nil {
		return nil, protocolError(op, errors.New("getKeyAgreement without a key"))
	}
	pub, shared, err := p.Encapsulate(*r.KeyAgreement)
	if err != nil {
		return nil, protocolError(op, err)
	}
	return &session{proto: p, pub: pub, shared: shared}, nil
}

// token is a pinUvAuthToken held for one operation.
type token struct {
	proto pinuvauth.Protocol
	value []byte
}

// auth is the pinUvAuthParam of message.
func (t *token) auth(message []byte) []byte { return t.proto.Authenticate(t.value, message) }

// close wipes the token.
func (t *token) close() { clear(t.value) }

// pinToken gets a token with perms (and an RP ID, for mc and ga) with
// getPinUvAuthTokenUsingPinWithPermissions. A key without the
// pinUvAuthToken option (CTAP 2.0, or a 2.1 preview) does not know that
// subcommand: as libfido2 does, it is asked with getPinToken (0x05)
// instead, whose token carries no permissions and no RP ID (it serves mc,
// ga and, on preview keys, credential management). An empty PIN is
// refused before it can cost an attempt.
func (k *Key) pinToken(ctx context.Context, op string, info *platform.Info, pin string, perms byte, rpID string) (*token, error) {
	if !info.PINSet() {
		return nil, platform.FromCode(op, int(softkey.ErrPINNotSet))
	}
	if pin == "" {
		return nil, &platform.Error{Op: op, Kind: platform.ErrPINRequired, RetriesLeft: -1}
	}
	s, err := k.agree(ctx, op, info)
	if err != nil {
		return nil, err
	}
	defer s.close()
	hashEnc, err := s.pinHashEnc(op, pin)
	if err != nil {
		return nil, err
	}
	req := map[int]any{1: s.proto, 2: softkey.ClientPINGetPinUvAuthTokenUsingPinWithPerms, 3: s.pub, 6: hashEnc, 9: perms}
	if rpID != "" {
		req[10] = rpID
	}
	if !info.HasOption("pinUvAuthToken") {
		req = map[int]any{1: s.proto, 2: softkey.ClientPINGetPinToken, 3: s.pub, 6: hashEnc}
	}
	var r clientPINResponse
	if err := k.call(ctx, op, softkey.CmdClientPIN, req, &r); err != nil {
		var e *platform.Error
		if info.ForcePINChange && errors.As(err, &e) && e.Kind == platform.ErrPINPolicy {
			e.Detail = "The key requires a new PIN first: change the PIN, then try again."
		}
		return nil, k.pinError(ctx, err)
	}
	v, err := s.proto.Decrypt(s.shared, r.PinUvAuthToken)
	if err != nil {
		return nil, protocolError(op, err)
	}
	return &token{proto: s.proto, value: v}, nil
}

// SetPIN sets the first PIN after checking it against the key's policy,
// so that the user hears what is wrong rather than a bare violation.
func (k *Key) SetPIN(ctx context.Context, pin string) error {
	const op = "set PIN"
	k.mu.Lock()
	defer k.mu.Unlock()
	info, err := k.info(ctx, op)
	if err != nil {
		return err
	}
	if info.PINSet() {
		return &platform.Error{Op: op, Kind: platform.ErrNotAllowed, RetriesLeft: -1, Detail: "The key already has a PIN; change it instead."}
	}
	if err := checkPIN(op, pin, info.MinPINLength); err != nil {
		return err
	}
	s, err := k.agree(ctx, op, info)
	if err != nil {
		return err
	}
	defer s.close()
	newPinEnc, err := s.newPinEnc(op, pin)
	if err != nil {
		return err
	}
	req := map[int]any{1: s.proto, 2: softkey.ClientPINSetPIN, 3: s.pub, 4: s.proto.Authenticate(s.shared, newPinEnc), 5: newPinEnc}
	return k.call(ctx, op, softkey.CmdClientPIN, req, nil)
}

// ChangePIN changes the PIN; a wrong old PIN fails with ErrPINInvalid and
// the attempts left.
func (k *Key) ChangePIN(ctx context.Context, oldPIN, newPIN string) error {
	const op = "change PIN"
	k.mu.Lock()
	defer k.mu.Unlock()
	info, err := k.info(ctx, op)
	if err != nil {
		return err
	}
	if !info.PINSet() {
		return platform.FromCode(op, int(softkey.ErrPINNotSet))
	}
	if err := checkPIN(op, newPIN, info.MinPINLength); err != nil {
		return err
	}
	if info.ForcePINChange && oldPIN == newPIN {
		return &platform.Error{Op: op, Kind: platform.ErrPINPolicy, RetriesLeft: -1,
			Detail: "The key requires a new PIN: choose one different from the current PIN."}
	}
	if oldPIN == "" {
		return &platform.Error{Op: op, Kind: platform.ErrPINRequired, RetriesLeft: -1}
	}
	s, err := k.agree(ctx, op, info)
	if err != nil {
		return err
	}
	defer s.close()
	newPinEnc, err := s.newPinEnc(op, newPIN)
	if err != nil {
		return err
	}
	pinHashEnc, err := s.pinHashEnc(op, oldPIN)
	if err != nil {
		return err
	}
	msg := append(append([]byte{}, newPinEnc...), pinHashEnc...)
	req := map[int]any{1: s.proto, 2: softkey.ClientPINChangePIN, 3: s.pub, 4: s.proto.Authenticate(s.shared, msg), 5: newPinEnc, 6: pinHashEnc}
	if err := k.call(ctx, op, softkey.CmdClientPIN, req, nil); err != nil {
		return k.pinError(ctx, err)
	}
	return nil
}

// checkPIN is platform.CheckPIN with the error naming op, the operation
// the user asked for.
func checkPIN(op, pin string, minLength int) error {
	return retitle(platform.CheckPIN(pin, minLength), op)
}
