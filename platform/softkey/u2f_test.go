package softkey

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform/softkey/ctaphid"
)

// The CTAPHID transport hands CTAPHID_MSG to the key, and stops
// advertising CAPABILITY_NMSG, only if the key implements MSGHandler.
var _ ctaphid.MSGHandler = (*Authenticator)(nil)

// extendedAPDU encodes a command the way libfido2 does (iso7816.c): case 4
// extended, 00 INS P1 00 00 Lc1 Lc2 data 00 00, Le 65536.
func extendedAPDU(ins, p1 byte, data []byte) []byte {
	out := []byte{0, ins, p1, 0, 0}
	out = binary.BigEndian.AppendUint16(out, uint16(len(data)))
	out = append(out, data...)
	return append(out, 0, 0)
}

func registerAPDU(challenge, application []byte) []byte {
	return extendedAPDU(insRegister, 0, append(append([]byte{}, challenge...), application...))
}

func authenticateAPDU(control byte, challenge, application, keyHandle []byte) []byte {
	data := append(append([]byte{}, challenge...), application...)
	data = append(data, byte(len(keyHandle)))
	return extendedAPDU(insAuthenticate, control, append(data, keyHandle...))
}

// param is a 32-byte challenge or application parameter.
func param(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// msg sends one APDU and splits the answer into data and status word.
func (c *testClient) msg(apdu []byte) ([]byte, statusWord) {
	c.t.Helper()
	resp := c.key.MSG(context.Background(), apdu)
	if len(resp) < 2 {
		c.t.Fatalf("response %x has no status word", resp)
	}
	n := len(resp) - 2
	sw := statusWord(binary.BigEndian.Uint16(resp[n:]))
	if sw != swNoError && n != 0 {
		c.t.Fatalf("status %04x with %d bytes of data", uint16(sw), n)
	}
	return resp[:n], sw
}

// poll repeats a request while the key answers "touch required", as
// libfido2 does, for at most 5 seconds.
func (c *testClient) poll(apdu []byte) ([]byte, statusWord) {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, sw := c.msg(apdu)
		if sw != swConditionsNotSatisfied || time.Now().After(deadline) {
			return data, sw
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantSW(t testing.TB, got, want statusWord) {
	t.Helper()
	if got != want {
		t.Fatalf("status word %04x, want %04x", uint16(got), uint16(want))
	}
}

// registration is a parsed U2F_REGISTER response whose attestation
// signature verified.
type registration struct {
	pub       *ecdsa.PublicKey
	keyHandle []byte
	cert      []byte
}

// parseRegistration checks a registration response: the reserved byte,
// the public key, the key handle, the attestation certificate and its
// signature over 0x00 | application | challenge | key handle | public key.
func parseRegistration(t testing.TB, data, challenge, application []byte) registration {
	t.Helper()
	if len(data) < 67 || data[0] != u2fRegisterID {
		t.Fatalf("registration response %x", data)
	}
	rawPub := data[1:66]
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), rawPub)
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	n := int(data[66])
	if len(data) < 67+n {
		t.Fatalf("key handle of %d bytes in a %d-byte response", n, len(data))
	}
	kh, rest := data[67:67+n], data[67+n:]
	sig, err := asn1.Unmarshal(rest, &asn1.RawValue{})
	if err != nil {
		t.Fatalf("attestation certificate: %v", err)
	}
	certDER := rest[:len(rest)-len(sig)]
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		t.Fatal(err)
	}
	signed := append([]byte{0}, application...)
	signed = append(signed, challenge...)
	signed = append(signed, kh...)
	signed = append(signed, rawPub...)
	h := sha256.Sum256(signed)
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), h[:], sig) {
		t.Fatal("attestation signature does not verify")
	}
	return registration{pub: pub, keyHandle: kh, cert: certDER}
}

// verifyU2FSignature checks an authentication response and returns its
// user presence byte and counter.
func verifyU2FSignature(t testing.TB, pub *ecdsa.PublicKey, data, challenge, application []byte) (byte, uint32) {
	t.Helper()
	if len(data) < 5+8 {
		t.Fatalf("authentication response %x", data)
	}
	signed := append(append(append([]byte{}, application...), data[:5]...), challenge...)
	h := sha256.Sum256(signed)
	if !ecdsa.VerifyASN1(pub, h[:], data[5:]) {
		t.Fatal("authentication signature does not verify")
	}
	return data[0], binary.BigEndian.Uint32(data[1:5])
}

// register makes a U2F credential for application on a key that approves.
func (c *testClient) register(application []byte) registration {
	c.t.Helper()
	challenge := param("register challenge")
	data, sw := c.poll(registerAPDU(challenge, application))
	wantSW(c.t, sw, swNoError)
	return parseRegistration(c.t, data, challenge, application)
}

func TestU2FVersion(t *testing.T) {
	tests := []struct {
		name   string
		apdu   []byte
		wantSW statusWord
	}{
		{name: "ShouldAnswerHeaderOnly", apdu: []byte{0, insVersion, 0, 0}, wantSW: swNoError},
		{name: "ShouldAnswerShortLe", apdu: []byte{0, insVersion, 0, 0, 0}, wantSW: swNoError},
		{name: "ShouldAnswerExtendedLe", apdu: []byte{0, insVersion, 0, 0, 0, 0, 0}, wantSW: swNoError},
		{name: "ShouldRefuseData", apdu: extendedAPDU(insVersion, 0, []byte{1}), wantSW: swWrongLength},
	}
	c := newTestKey(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, sw := c.msg(tt.apdu)
			wantSW(t, sw, tt.wantSW)
			if sw == swNoError && string(data) != "U2F_V2" {
				t.Fatalf("version %q", data)
			}
		})
	}
}

func TestU2FMalformedRequests(t *testing.T) {
	c := newTestKey(t, Config{})
	app, chal := param("example.com"), param("challenge")
	kh := c.register(app).keyHandle
	register := registerAPDU(chal, app)
	auth := authenticateAPDU(authEnforceUserPresenceAndSign, chal, app, kh)
	with := func(b []byte, i int, v byte) []byte {
		b = bytes.Clone(b)
		b[i] = v
		return b
	}
	tests := []struct {
		name   string
		apdu   []byte
		wantSW statusWord
	}{
		{name: "ShouldRefuseEmptyMessage", apdu: nil, wantSW: swWrongLength},
		{name: "ShouldRefuseShortHeader", apdu: []byte{0, insVersion, 0}, wantSW: swWrongLength},
		{name: "ShouldRefuseProprietaryClass", apdu: with(register, 0, 0x80), wantSW: swCLANotSupported},
		{name: "ShouldRefuseClassBeforeInstruction", apdu: []byte{0x01, 0x99, 0, 0}, wantSW: swCLANotSupported},
		{name: "ShouldRefuseUnknownInstruction", apdu: with(register, 1, 0x04), wantSW: swINSNotSupported},
		{name: "ShouldRefuseVendorInstruction", apdu: with(register, 1, 0x40), wantSW: swINSNotSupported},
		{name: "ShouldRefuseInstructionBeforeLength", apdu: []byte{0, 0xC0, 0, 0, 0, 0}, wantSW: swINSNotSupported},
		{name: "ShouldRefuseLcAboveData", apdu: register[:len(register)-3], wantSW: swWrongLength},
		{name: "ShouldRefuseLcBelowData", apdu: append(bytes.Clone(register), 0), wantSW: swWrongLength},
		{name: "ShouldRefuseShortLeAfterExtendedLc", apdu: register[:len(register)-1], wantSW: swWrongLength},
		{name: "ShouldRefuseZeroExtendedLc", apdu: []byte{0, insRegister, 0, 0, 0, 0, 0, 1, 2}, wantSW: swWrongLength},
		{name: "ShouldRefuseTwoByteBody", apdu: []byte{0, insRegister, 0, 0, 0, 0}, wantSW: swWrongLength},
		{name: "ShouldRefuseShortLcMismatch", apdu: append([]byte{0, insRegister, 0, 0, 64}, make([]byte, 63)...), wantSW: swWrongLength},
		{name: "ShouldRefuseRegisterWithoutData", apdu: []byte{0, insRegister, 0, 0}, wantSW: swWrongLength},
		{name: "ShouldRefuseRegisterDataTooShort", apdu: extendedAPDU(insRegister, 0, make([]byte, 63)), wantSW: swWrongLength},
		{name: "ShouldRefuseRegisterDataTooLong", apdu: extendedAPDU(insRegister, 0, make([]byte, 65)), wantSW: swWrongLength},
		{name: "ShouldRefuseAuthenticateWithoutKeyHandleLength", apdu: extendedAPDU(insAuthenticate, authCheckOnly, make([]byte, 64)), wantSW: swWrongLength},
		{name: "ShouldRefuseKeyHandleLengthAboveData", apdu: extendedAPDU(insAuthenticate, authCheckOnly, append(make([]byte, 64), 2, 1)), wantSW: swWrongLength},
		{name: "ShouldRefuseKeyHandleLengthBelowData", apdu: extendedAPDU(insAuthenticate, authCheckOnly, append(make([]byte, 64), 0, 1)), wantSW: swWrongLength},
		{name: "ShouldRefuseUnknownControlByte", apdu: with(auth, 2, 0x05), wantSW: swWrongData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sw := c.msg(tt.apdu)
			wantSW(t, sw, tt.wantSW)
		})
	}
}

func TestU2FRegisterEncodings(t *testing.T) {
	app, chal := param("example.com"), param("challenge")
	data := append(append([]byte{}, chal...), app...)
	short := append([]byte{0, insRegister, 0, 0, byte(len(data))}, data...)
	extended := append([]byte{0, insRegister, 0, 0, 0, 0, byte(len(data))}, data...)
	tests := []struct {
		name string
		apdu []byte
	}{
		{name: "ShouldAcceptExtendedWithLe", apdu: registerAPDU(chal, app)},
		{name: "ShouldAcceptExtendedWithoutLe", apdu: extended},
		{name: "ShouldAcceptShortWithoutLe", apdu: short},
		{name: "ShouldAcceptShortWithLe", apdu: append(bytes.Clone(short), 0)},
		// Chrome sets P1 to 0x03 for a registration that needs a touch;
		// P1 means nothing to U2F_REGISTER and is ignored.
		{name: "ShouldIgnoreRegisterP1", apdu: extendedAPDU(insRegister, authEnforceUserPresenceAndSign, data)},
	}
	c := newTestKey(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, sw := c.poll(tt.apdu)
			wantSW(t, sw, swNoError)
			parseRegistration(t, resp, chal, app)
		})
	}
}

func TestU2FRegister(t *testing.T) {
	c := newTestKey(t, Config{})
	app := param("https://example.com")
	reg := c.register(app)
	if !bytes.Equal(reg.cert, c.key.att.leafDER) {
		t.Fatal("the registration is not attested with the key's attestation certificate")
	}
	if len(reg.keyHandle) > 255 {
		t.Fatalf("key handle of %d bytes", len(reg.keyHandle))
	}
	if len(c.key.st.Credentials) != 0 || c.key.st.SignCount != 0 {
		t.Fatal("a U2F registration stored something")
	}
	if other := c.register(app); bytes.Equal(other.keyHandle, reg.keyHandle) || other.pub.Equal(reg.pub) {
		t.Fatal("two registrations share a key")
	}
}

// TestU2FAuthenticate covers the three control bytes against key handles
// of every kind: U2F ones, CTAP2 ones and ones U2F must not accept.
func TestU2FAuthenticate(t *testing.T) {
	var user switchPresence
	c := newTestKey(t, Config{Presence: &user})
	const rpID = "example.com"
	app, chal := param(rpID), param("authenticate challenge")
	reg := c.register(app)

	ctap2Cred := func(alg int, credProtect int) ([]byte, *ecdsa.PublicKey) {
		req := makeCredReq(rpID, "alice", false)
		req[4] = []any{map[string]any{"type": "public-key", "alg": alg}}
		if credProtect != 0 {
			req[6] = map[string]any{"credProtect": credProtect}
		}
		resp, err := c.makeCred(req)
		wantStatus(t, err, StatusOK)
		var pub *ecdsa.PublicKey
		if k := credPublicKey(t, resp.AuthData); k.Alg == AlgES256 {
			pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, k.X...), k.Y...))
			if err != nil {
				t.Fatal(err)
			}
		}
		return credID(t, resp.AuthData), pub
	}
	es256ID, es256Pub := ctap2Cred(int(AlgES256), 0)
	withIDListID, withIDListPub := ctap2Cred(int(AlgES256), credProtectUVOptionalWithID)
	uvRequiredID, _ := ctap2Cred(int(AlgES256), credProtectUVRequired)
	eddsaID, _ := ctap2Cred(int(AlgEdDSA), 0)
	rkResp, err := c.makeCred(makeCredReq(rpID, "bob", true))
	wantStatus(t, err, StatusOK)
	rkID := credID(t, rkResp.AuthData)

	tests := []struct {
		name      string
		control   byte
		app       []byte
		keyHandle []byte
		pub       *ecdsa.PublicKey
		presence  Presence
		wantSW    statusWord
		wantUP    byte
	}{
		{name: "ShouldConfirmKnownKeyHandleOnCheckOnly", control: authCheckOnly, app: app, keyHandle: reg.keyHandle, wantSW: swConditionsNotSatisfied},
		{name: "ShouldRefuseUnknownKeyHandleOnCheckOnly", control: authCheckOnly, app: app, keyHandle: bytes.Repeat([]byte{1}, len(reg.keyHandle)), wantSW: swWrongData},
		{name: "ShouldRefuseKeyHandleOfAnotherApplication", control: authCheckOnly, app: param("example.org"), keyHandle: reg.keyHandle, wantSW: swWrongData},
		{name: "ShouldRefuseTruncatedKeyHandle", control: authEnforceUserPresenceAndSign, app: app, keyHandle: reg.keyHandle[:len(reg.keyHandle)-1], wantSW: swWrongData},
		{name: "ShouldRefuseEmptyKeyHandle", control: authEnforceUserPresenceAndSign, app: app, keyHandle: nil, wantSW: swWrongData},
		{name: "ShouldSignWithPresence", control: authEnforceUserPresenceAndSign, app: app, keyHandle: reg.keyHandle, pub: reg.pub, wantSW: swNoError, wantUP: 1},
		{name: "ShouldSignWithoutPresenceWhenNotEnforced", control: authDontEnforceUserPresenceAndSign, app: app, keyHandle: reg.keyHandle, pub: reg.pub, presence: DenyAlways, wantSW: swNoError, wantUP: 0},
		{name: "ShouldSignWithCTAP2Credential", control: authEnforceUserPresenceAndSign, app: app, keyHandle: es256ID, pub: es256Pub, wantSW: swNoError, wantUP: 1},
		// credProtect level 2 only hides a credential from requests
		// without its ID; a key handle is one.
		{name: "ShouldSignWithCredentialProtectedByIDList", control: authEnforceUserPresenceAndSign, app: app, keyHandle: withIDListID, pub: withIDListPub, wantSW: swNoError, wantUP: 1},
		{name: "ShouldRefuseCredentialRequiringUV", control: authCheckOnly, app: app, keyHandle: uvRequiredID, wantSW: swWrongData},
		{name: "ShouldRefuseEdDSACredential", control: authCheckOnly, app: app, keyHandle: eddsaID, wantSW: swWrongData},
		{name: "ShouldConfirmDiscoverableCredential", control: authCheckOnly, app: app, keyHandle: rkID, wantSW: swConditionsNotSatisfied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user.set(ApproveAlways)
			if tt.presence != nil {
				user.set(tt.presence)
			}
			before := c.key.st.SignCount
			data, sw := c.msg(authenticateAPDU(tt.control, chal, tt.app, tt.keyHandle))
			wantSW(t, sw, tt.wantSW)
			if sw != swNoError {
				if c.key.st.SignCount != before {
					t.Fatal("the counter moved without a signature")
				}
				return
			}
			up, counter := verifyU2FSignature(t, tt.pub, data, chal, tt.app)
			if up != tt.wantUP {
				t.Fatalf("user presence byte %d, want %d", up, tt.wantUP)
			}
			if counter != before+1 || c.key.st.SignCount != counter {
				t.Fatalf("counter %d after %d", counter, before)
			}
		})
	}
}

// TestU2FKeyHandleWorksWithCTAP2 checks the interoperation CTAP 2.1
// requires: the key handle of U2F_REGISTER is a credential ID that
// authenticatorGetAssertion accepts for the RP ID whose hash was the
// application parameter, signed with the registered key.
func TestU2FKeyHandleWorksWithCTAP2(t *testing.T) {
	c := newTestKey(t, Config{})
	reg := c.register(param("example.com"))
	req := getAssertReq("example.com", reg.keyHandle)
	resp, err := c.getAssert(req)
	wantStatus(t, err, StatusOK)
	h := sha256.Sum256(append(append([]byte{}, resp.AuthData...), req[2].([]byte)...))
	if !ecdsa.VerifyASN1(reg.pub, h[:], resp.Signature) {
		t.Fatal("CTAP2 assertion does not verify with the U2F public key")
	}
	// U2F credentials are never discoverable.
	_, err = c.getAssert(getAssertReq("example.com"))
	wantStatus(t, err, ErrNoCredentials)
	// The excludeList knows them too.
	mc := makeCredReq("example.com", "alice", false)
	mc[5] = []any{credDesc(reg.keyHandle)}
	_, err = c.makeCred(mc)
	wantStatus(t, err, ErrCredentialExcluded)
}

// TestU2FUserPresence checks that a request needing a touch answers at
// once, "touch required" until the presence policy approved, and that one
// touch approves one request.
func TestU2FUserPresence(t *testing.T) {
	app, chal := param("example.com"), param("challenge")
	register := registerAPDU(chal, app)

	tests := []struct {
		name string
		run  func(t *testing.T, c *testClient, user *switchPresence, sig *Signal)
	}{
		{name: "ShouldRegisterAtOnceWithApproveAlways", run: func(t *testing.T, c *testClient, user *switchPresence, _ *Signal) {
			user.set(ApproveAlways)
			_, sw := c.msg(register)
			wantSW(t, sw, swNoError)
		}},
		{name: "ShouldAnswerTouchRequiredWhileDenied", run: func(t *testing.T, c *testClient, user *switchPresence, _ *Signal) {
			user.set(ApproveAlways)
			kh := c.register(app).keyHandle
			user.set(DenyAlways)
			for range 3 {
				start := time.Now()
				_, sw := c.msg(register)
				wantSW(t, sw, swConditionsNotSatisfied)
				_, sw = c.msg(authenticateAPDU(authEnforceUserPresenceAndSign, chal, app, kh))
				wantSW(t, sw, swConditionsNotSatisfied)
				if d := time.Since(start); d > time.Second {
					t.Fatalf("a refused touch took %v to report", d)
				}
			}
		}},
		{name: "ShouldKeepTouchForNextRequest", run: func(t *testing.T, c *testClient, _ *switchPresence, sig *Signal) {
			waiting := sig.Waiting()
			_, sw := c.msg(register)
			wantSW(t, sw, swConditionsNotSatisfied)
			waitSignal(t, waiting)
			// A repeat while the key blinks does not ask again.
			again := sig.Waiting()
			_, sw = c.msg(register)
			wantSW(t, sw, swConditionsNotSatisfied)
			select {
			case <-again:
				t.Fatal("a repeated request asked for a second touch")
			default:
			}
			if n := sig.Touch(); n != 1 {
				t.Fatalf("%d waits for a touch, want 1", n)
			}
			<-c.key.u2fTouch.done
			_, sw = c.msg(register)
			wantSW(t, sw, swNoError)
			// The touch is used up.
			_, sw = c.msg(register)
			wantSW(t, sw, swConditionsNotSatisfied)
		}},
		{name: "ShouldAskAgainAfterRefusal", run: func(t *testing.T, c *testClient, _ *switchPresence, sig *Signal) {
			waiting := sig.Waiting()
			_, sw := c.msg(register)
			wantSW(t, sw, swConditionsNotSatisfied)
			waitSignal(t, waiting)
			sig.Deny()
			<-c.key.u2fTouch.done
			waiting = sig.Waiting()
			_, sw = c.msg(register)
			wantSW(t, sw, swConditionsNotSatisfied)
			waitSignal(t, waiting)
		}},
		{name: "ShouldForgetStaleTouch", run: func(t *testing.T, c *testClient, _ *switchPresence, sig *Signal) {
			waiting := sig.Waiting()
			c.msg(register)
			waitSignal(t, waiting)
			sig.Touch()
			<-c.key.u2fTouch.done
			c.key.u2fTouch.at = c.key.u2fTouch.at.Add(-u2fTouchLifetime - time.Second)
			_, sw := c.msg(register)
			wantSW(t, sw, swConditionsNotSatisfied)
		}},
		{name: "ShouldForgetTouchOnPowerCycle", run: func(t *testing.T, c *testClient, _ *switchPresence, sig *Signal) {
			waiting := sig.Waiting()
			c.msg(register)
			waitSignal(t, waiting)
			pending := c.key.u2fTouch
			c.key.PowerCycle()
			select {
			case <-pending.done:
			case <-time.After(5 * time.Second):
				t.Fatal("the wait for a touch outlived the power cycle")
			}
			if sig.Touch() != 0 || c.key.u2fTouch != nil {
				t.Fatal("a touch is still awaited after the power cycle")
			}
			_, sw := c.msg(register)
			wantSW(t, sw, swConditionsNotSatisfied)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := NewSignal(10 * time.Second)
			var user switchPresence
			user.set(sig)
			c := newTestKey(t, Config{Presence: &user})
			t.Cleanup(c.key.PowerCycle) // stops a wait still running
			tt.run(t, c, &user, sig)
		})
	}
}

func TestU2FCounterIsSaved(t *testing.T) {
	dir := t.TempDir()
	cfg := stateConfig(t)
	cfg.StatePath = filepath.Join(dir, "sub", "key.state")
	if err := os.Mkdir(filepath.Dir(cfg.StatePath), 0o700); err != nil {
		t.Fatal(err)
	}
	c := newTestKey(t, cfg)
	app, chal := param("example.com"), param("challenge")
	reg := c.register(app)
	auth := authenticateAPDU(authEnforceUserPresenceAndSign, chal, app, reg.keyHandle)
	data, sw := c.msg(auth)
	wantSW(t, sw, swNoError)
	_, counter := verifyU2FSignature(t, reg.pub, data, chal, app)

	// A restarted key goes on from the saved counter.
	restarted := newTestKey(t, cfg)
	data, sw = restarted.msg(auth)
	wantSW(t, sw, swNoError)
	if _, next := verifyU2FSignature(t, reg.pub, data, chal, app); next != counter+1 {
		t.Fatalf("counter %d after restart, want %d", next, counter+1)
	}

	// A counter that cannot be saved is not used: the next start would
	// hand it out again.
	if err := os.RemoveAll(filepath.Dir(cfg.StatePath)); err != nil {
		t.Fatal(err)
	}
	_, sw = restarted.msg(auth)
	wantSW(t, sw, swNoDiagnosis)
	if restarted.key.st.SignCount != counter+1 {
		t.Fatalf("counter %d in memory after a failed write, want %d", restarted.key.st.SignCount, counter+1)
	}
}

func TestU2FEndsGetNextAssertion(t *testing.T) {
	c := newTestKey(t, Config{})
	for _, user := range []string{"alice", "bob"} {
		_, err := c.makeCred(makeCredReq("example.com", user, true))
		wantStatus(t, err, StatusOK)
	}
	resp, err := c.getAssert(getAssertReq("example.com"))
	wantStatus(t, err, StatusOK)
	if resp.NumberOfCredentials != 2 {
		t.Fatalf("numberOfCredentials %d", resp.NumberOfCredentials)
	}
	c.msg([]byte{0, insVersion, 0, 0})
	wantStatus(t, c.do(CmdGetNextAssertion, nil, nil), ErrNotAllowed)
}

// FuzzMSG sends arbitrary APDUs to a key and checks the answers are
// well-formed U2F: never a panic, always a status word the specification
// (or ISO 7816-4, for an internal failure) defines, data only with
// SW_NO_ERROR, and data that parses as the instruction's response. The
// seeds are the requests libfido2 1.12 sends (u2f.c), with key handles
// this key accepts: the key's wrapping key is fixed, so they open in every
// fuzzing process.
func FuzzMSG(f *testing.F) {
	c := newTestKey(f, Config{})
	c.key.st.WrapKey = bytes.Repeat([]byte{0x5a}, 32)
	if err := c.key.loadKeys(); err != nil {
		f.Fatal(err)
	}
	app, chal := param("example.com"), param("fuzz challenge")
	kh := c.register(app).keyHandle
	ff := bytes.Repeat([]byte{0xff}, 32)
	for _, seed := range [][]byte{
		registerAPDU(chal, app),
		registerAPDU(ff, ff), // libfido2's dummy registration for an excluded credential
		authenticateAPDU(authCheckOnly, ff, app, kh),
		authenticateAPDU(authEnforceUserPresenceAndSign, chal, app, kh),
		authenticateAPDU(authDontEnforceUserPresenceAndSign, chal, app, kh),
		authenticateAPDU(authCheckOnly, ff, param("example.org"), kh),
		{0, insVersion, 0, 0},
		{0, insVersion, 0, 0, 0},
		{0, insVersion, 0, 0, 0, 0, 0},
		append([]byte{0, insRegister, 0, 0, 64}, append(chal, app...)...),
		{0x80, insRegister, 0, 0},
		{0, 0x40, 0, 0},
		{},
	} {
		f.Add(seed)
	}
	known := map[statusWord]bool{
		swNoError: true, swConditionsNotSatisfied: true, swWrongData: true,
		swWrongLength: true, swCLANotSupported: true, swINSNotSupported: true,
	}
	f.Fuzz(func(t *testing.T, apdu []byte) {
		resp := c.key.MSG(context.Background(), apdu)
		if len(resp) < 2 {
			t.Fatalf("response %x has no status word", resp)
		}
		data := resp[:len(resp)-2]
		sw := statusWord(binary.BigEndian.Uint16(resp[len(resp)-2:]))
		if !known[sw] {
			t.Fatalf("status word %04x", uint16(sw))
		}
		if sw != swNoError {
			if len(data) != 0 {
				t.Fatalf("status %04x with data %x", uint16(sw), data)
			}
			return
		}
		body, _ := apduData(apdu[apduHeaderLen:])
		switch apdu[1] {
		case insVersion:
			if string(data) != u2fVersionString {
				t.Fatalf("version %q", data)
			}
		case insRegister:
			reg := parseRegistration(t, data, body[:u2fParamLen], body[u2fParamLen:])
			check := c.key.MSG(context.Background(), authenticateAPDU(authCheckOnly, chal, body[u2fParamLen:], reg.keyHandle))
			if !bytes.Equal(check, []byte{0x69, 0x85}) {
				t.Fatalf("check-only of the new key handle answers %x", check)
			}
		case insAuthenticate:
			if len(data) < 5+8 || data[0] > 1 || (data[0] == 1) != (apdu[2] == authEnforceUserPresenceAndSign) {
				t.Fatalf("authentication response %x to control byte %02x", data, apdu[2])
			}
		default:
			t.Fatalf("instruction %02x succeeded", apdu[1])
		}
	})
}
