package softkey

import (
	"context"
	"encoding/binary"
	"time"
)

// U2F (CTAP1) support: the raw U2F messages a platform sends in
// CTAPHID_MSG, answered the way FIDO2 keys that kept U2F answer them.
// Registrations and CTAP2 credentials share one kind of credential ID, so a
// key handle from U2F_REGISTER works with authenticatorGetAssertion and a
// non-discoverable ES256 CTAP2 credential works with U2F_AUTHENTICATE, as
// CTAP 2.1 "Interoperating with CTAP1/U2F authenticators" requires.
//
// Specification: FIDO U2F Raw Message Formats v1.2 (https://fidoalliance.org/specs/fido-u2f-v1.2-ps-20170411/fido-u2f-raw-message-formats-v1.2-ps-20170411.html)
// and CTAP 2.1 Interoperating with CTAP1/U2F authenticators (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#u2f-interoperability)

// statusWord is the two-byte ISO 7816-4 status (SW1 SW2) that ends every
// U2F response.
//
// Specification: FIDO U2F Raw Message Formats v1.2 §3.3 Status Codes
type statusWord uint16

// The status words a U2F key answers with, named as in the specification.
const (
	swNoError                statusWord = 0x9000 // SW_NO_ERROR
	swConditionsNotSatisfied statusWord = 0x6985 // SW_CONDITIONS_NOT_SATISFIED: test of user presence required
	swWrongData              statusWord = 0x6A80 // SW_WRONG_DATA: invalid key handle
	swWrongLength            statusWord = 0x6700 // SW_WRONG_LENGTH
	swCLANotSupported        statusWord = 0x6E00 // SW_CLA_NOT_SUPPORTED
	swINSNotSupported        statusWord = 0x6D00 // SW_INS_NOT_SUPPORTED
	// swNoDiagnosis is ISO 7816-4's "no precise diagnosis": U2F names no
	// status for an internal failure such as a state file that cannot be
	// written.
	swNoDiagnosis statusWord = 0x6F00
)

// U2F instructions (the INS byte).
//
// Specification: FIDO U2F Raw Message Formats v1.2 §3.1 Request Message Framing
const (
	insRegister     = 0x01 // U2F_REGISTER
	insAuthenticate = 0x02 // U2F_AUTHENTICATE
	insVersion      = 0x03 // U2F_VERSION
)

// Control bytes of U2F_AUTHENTICATE, carried in P1.
//
// Specification: FIDO U2F Raw Message Formats v1.2 §5.1 Authentication Request Message - U2F_AUTHENTICATE
const (
	authEnforceUserPresenceAndSign     = 0x03 // enforce-user-presence-and-sign
	authCheckOnly                      = 0x07 // check-only
	authDontEnforceUserPresenceAndSign = 0x08 // dont-enforce-user-presence-and-sign
)

const (
	apduHeaderLen     = 4 // CLA INS P1 P2
	u2fParamLen       = 32
	u2fRegisterID     = 0x05 // the reserved byte that starts a registration response
	u2fVersionString  = "U2F_V2"
	u2fUncompressedEC = 0x04 // X9.62 uncompressed point marker
)

// A U2F key never blocks a request on the user: it answers
// SW_CONDITIONS_NOT_SATISFIED at once, blinks, and the platform repeats
// the request until a touch has been given (libfido2 every 100 ms). The
// software key starts the presence policy when a request needs a touch
// and keeps the policy's approval for the next U2F request.
const (
	// u2fPresenceGrace is how long a request waits for the policy before
	// answering SW_CONDITIONS_NOT_SATISFIED. A person cannot touch that
	// fast, but a policy that answers at once (ApproveAlways, DenyAlways)
	// decides the very request that asked, as a test expects.
	u2fPresenceGrace = 20 * time.Millisecond
	// u2fPromptTimeout bounds how long the key blinks for a request
	// nobody repeats; the next request asks again.
	u2fPromptTimeout = 10 * time.Second
	// u2fTouchLifetime is how long a touch waits to be used: long enough
	// for any polling platform, short enough that a touch nobody collected
	// does not approve a much later request.
	u2fTouchLifetime = 10 * time.Second
)

// u2fTouch is one request for a touch, started by a U2F message: the
// presence policy runs in the background while the platform polls.
type u2fTouch struct {
	cancel context.CancelFunc
	done   chan struct{} // closed once the policy answered
	err    error         // the policy's answer, written before done is closed
	at     time.Time     // when it answered, written before done is closed
}

// MSG answers one U2F request, a CTAPHID_MSG: apdu is an ISO 7816-4
// command APDU and the result is the response data followed by the status
// word. Requests that need a touch do not wait for one; they answer
// SW_CONDITIONS_NOT_SATISFIED until the presence policy has approved, and
// the platform is expected to repeat them. ctx cancels the short wait for
// a policy that may answer at once.
func (a *Authenticator) MSG(ctx context.Context, apdu []byte) []byte {
	a.cmdMu.Lock()
	defer a.cmdMu.Unlock()

	var (
		resp []byte
		sw   statusWord
	)
	if !a.transact(func() { resp, sw = a.u2fDispatch(ctx, apdu) }) {
		// The counter advanced in a signature the host must not get:
		// the disk does not know it, so the next start would reuse it.
		resp, sw = nil, swNoDiagnosis
	}
	// Any other command ends a getAssertion sequence (§6.3): a U2F
	// request in between is one.
	a.lastCmd = 0
	return binary.BigEndian.AppendUint16(resp, uint16(sw))
}

// u2fDispatch checks the APDU header, then routes the request: the class
// first, then the instruction, then the length encoding and the
// instruction's data, the order in which ISO 7816-4 cards report errors.
func (a *Authenticator) u2fDispatch(ctx context.Context, apdu []byte) ([]byte, statusWord) {
	if len(apdu) < apduHeaderLen {
		return nil, swWrongLength
	}
	cla, ins, p1 := apdu[0], apdu[1], apdu[2]
	if cla != 0 {
		return nil, swCLANotSupported
	}
	if ins != insRegister && ins != insAuthenticate && ins != insVersion {
		return nil, swINSNotSupported
	}
	data, ok := apduData(apdu[apduHeaderLen:])
	if !ok {
		return nil, swWrongLength
	}
	switch ins {
	case insRegister:
		return a.u2fRegister(ctx, data)
	case insAuthenticate:
		return a.u2fAuthenticate(ctx, p1, data)
	}
	if len(data) != 0 {
		return nil, swWrongLength
	}
	return []byte(u2fVersionString), swNoError
}

// apduData returns the command data of an APDU body (what follows the
// four header bytes), accepting each ISO 7816-4 case in short and
// extended encoding: 1 (nothing), 2 (Le), 3 (Lc, data) and 4 (Lc, data,
// Le). Platforms use several: libfido2 sends case 4 extended
// (00 Lc1 Lc2 data 00 00), others short or header-only U2F_VERSION. The
// expected length Le is not enforced: a response over CTAPHID is never
// cut short, so every key returns it whole.
//
// Specification: FIDO U2F Raw Message Formats v1.2 §3.1 Request Message Framing, ISO/IEC 7816-4 §5.1
func apduData(body []byte) ([]byte, bool) {
	switch {
	case len(body) <= 1:
		// Case 1, or case 2 short: at most Le.
		return nil, true
	case body[0] != 0:
		// Short Lc (1 to 255), then the data and an optional Le.
		n := int(body[0])
		if len(body) != 1+n && len(body) != 2+n {
			return nil, false
		}
		return body[1 : 1+n], true
	case len(body) == 3:
		// Case 2 extended: 00 Le1 Le2.
		return nil, true
	case len(body) < 3:
		return nil, false
	}
	// Extended Lc: 00 Lc1 Lc2 (1 to 65535), the data, an optional Le1 Le2.
	n := int(binary.BigEndian.Uint16(body[1:3]))
	if n == 0 || (len(body) != 3+n && len(body) != 5+n) {
		return nil, false
	}
	return body[3 : 3+n], true
}

// u2fRegister is U2F_REGISTER: a new ES256 key pair for the application
// parameter, attested with the key's attestation certificate. The key
// handle is a CTAP2 credential ID bound to the application parameter,
// which is the RP ID hash of CTAP2, and never discoverable.
//
// Specification: FIDO U2F Raw Message Formats v1.2 §4 Registration Messages
func (a *Authenticator) u2fRegister(ctx context.Context, data []byte) ([]byte, statusWord) {
	if len(data) != 2*u2fParamLen {
		return nil, swWrongLength
	}
	challenge, application := data[:u2fParamLen], data[u2fParamLen:]
	if !a.u2fUserPresence(ctx) {
		return nil, swConditionsNotSatisfied
	}
	key, err := newSigner(AlgES256)
	if err != nil {
		return nil, swNoDiagnosis
	}
	keyHandle := a.sealCredentialID(application, key, credProtectUVOptional, false)
	pub := key.uncompressedPoint()

	// The attestation signs 0x00 | application | challenge | key handle | public key.
	signed := make([]byte, 0, 1+2*u2fParamLen+len(keyHandle)+len(pub))
	signed = append(signed, 0x00)
	signed = append(signed, application...)
	signed = append(signed, challenge...)
	signed = append(signed, keyHandle...)
	signed = append(signed, pub...)
	sig, err := (&signer{alg: AlgES256, priv: a.att.key}).sign(signed)
	if err != nil {
		return nil, swNoDiagnosis
	}

	resp := make([]byte, 0, 2+len(pub)+len(keyHandle)+len(a.att.leafDER)+len(sig)+2)
	resp = append(resp, u2fRegisterID)
	resp = append(resp, pub...)
	resp = append(resp, byte(len(keyHandle)))
	resp = append(resp, keyHandle...)
	resp = append(resp, a.att.leafDER...)
	resp = append(resp, sig...)
	return resp, swNoError
}

// u2fAuthenticate is U2F_AUTHENTICATE. A key handle this key did not make
// for this application, or one that U2F cannot use (an EdDSA credential,
// or one whose credProtect policy requires user verification, which U2F
// cannot perform), is a bad key handle. The signature covers
// application | user presence | counter | challenge, which is CTAP2's
// authenticator data followed by the client data hash, so either protocol
// verifies the other's assertions the same way.
//
// Specification: FIDO U2F Raw Message Formats v1.2 §5 Authentication Messages
func (a *Authenticator) u2fAuthenticate(ctx context.Context, control byte, data []byte) ([]byte, statusWord) {
	const fixed = 2*u2fParamLen + 1 // challenge, application, key handle length
	if len(data) < fixed || len(data) != fixed+int(data[fixed-1]) {
		return nil, swWrongLength
	}
	challenge, application, keyHandle := data[:u2fParamLen], data[u2fParamLen:2*u2fParamLen], data[fixed:]
	switch control {
	case authEnforceUserPresenceAndSign, authCheckOnly, authDontEnforceUserPresenceAndSign:
	default:
		return nil, swWrongData
	}
	src := a.openCredential(application, keyHandle)
	if src == nil || src.key.alg != AlgES256 || src.credProtect == credProtectUVRequired {
		return nil, swWrongData
	}
	var flags byte
	switch control {
	case authCheckOnly:
		// "Test of user presence required" is the answer that says the
		// key handle is known: check-only never signs.
		return nil, swConditionsNotSatisfied
	case authEnforceUserPresenceAndSign:
		if !a.u2fUserPresence(ctx) {
			return nil, swConditionsNotSatisfied
		}
		flags = flagUP
	}
	authData := authenticatorData(a.cfg.AAGUID, application, flags, a.nextSignCount(), nil, nil, nil)
	signed := make([]byte, 0, len(authData)+len(challenge))
	signed = append(signed, authData...)
	signed = append(signed, challenge...)
	sig, err := src.key.sign(signed)
	if err != nil {
		return nil, swNoDiagnosis
	}
	// The response is the user presence byte and the counter, the tail
	// of the authenticator data, then the signature.
	return append(authData[u2fParamLen:], sig...), swNoError
}

// u2fUserPresence reports whether the user has touched the key for this
// request. It consumes an approval the presence policy gave since the last
// request, or starts the policy and gives it u2fPresenceGrace to answer;
// a refusal, a timeout or a wait still going on is no touch, and the
// platform repeats the request.
func (a *Authenticator) u2fUserPresence(ctx context.Context) bool {
	if t := a.u2fTouch; t != nil {
		select {
		case <-t.done:
			a.dropU2FTouch()
			if t.err == nil && time.Since(t.at) <= u2fTouchLifetime {
				return true
			}
			// Refused, timed out or stale: blink again.
		default:
			return false // still blinking
		}
	}
	t := a.startU2FTouch()
	grace := time.NewTimer(u2fPresenceGrace)
	defer grace.Stop()
	select {
	case <-t.done:
		a.dropU2FTouch()
		return t.err == nil
	case <-grace.C:
	case <-ctx.Done():
	}
	return false
}

// startU2FTouch runs the presence policy in the background, detached from
// the request: the request answers long before a person touches.
func (a *Authenticator) startU2FTouch() *u2fTouch {
	ctx, cancel := context.WithTimeout(context.Background(), u2fPromptTimeout)
	t := &u2fTouch{cancel: cancel, done: make(chan struct{})}
	a.u2fTouch = t
	go func() {
		err := a.userPresence(ctx, func(byte) {})
		t.err, t.at = err, time.Now()
		close(t.done)
	}()
	return t
}

// dropU2FTouch forgets the pending or given touch, stopping the policy if
// it still waits: a power cycle ends the blinking, and a touch counts for
// one request only.
func (a *Authenticator) dropU2FTouch() {
	if a.u2fTouch != nil {
		a.u2fTouch.cancel()
		a.u2fTouch = nil
	}
}

// uncompressedPoint returns an ES256 public key as U2F carries it: 0x04,
// then the X and Y coordinates.
func (s *signer) uncompressedPoint() []byte {
	k := s.publicCOSE()
	out := make([]byte, 0, 1+len(k.X)+len(k.Y))
	out = append(out, u2fUncompressedEC)
	out = append(out, k.X...)
	return append(out, k.Y...)
}
