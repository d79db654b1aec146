package softkey

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform/pinuvauth"
)

// FuzzCheckCanonical holds checkCanonical to two promises: it never panics,
// and whatever it accepts the decoder reads and the encoder writes back
// byte for byte, so the three agree on what canonical CBOR is.
func FuzzCheckCanonical(f *testing.F) {
	for _, s := range []string{
		"00", "17", "1818", "190100", "1a00010000", "1b0000000100000000", "20", "3818",
		"40", "60", "6161", "80", "a0", "f4", "f5", "f6", "f7", "f93c00", "c0 60", "ff",
		"a2 01 02 03 04", "a2 20 01 21 02", "a2 61 61 01 62 6262 01", "a2 18 18 00 61 61 00",
		"81 81 81 80", "81 81 81 81 80", "9f ff", "bf ff", "1801", "190001", "a2 02 00 01 00",
		"a2 01 00 01 00", "61 ff", "a1 81 01 01", "bb 8000000000000001 01 01", "a1 41 00 01",
		"1bffffffffffffffff", "3bffffffffffffffff",
	} {
		f.Add(fromHex(f, s))
	}
	for _, locked := range []bool{false, true} {
		for _, s := range newFuzzKey(f, locked).seeds(f) {
			f.Add(s.params)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkCanonical(b)
		if err != nil {
			if err != ErrInvalidCBOR {
				t.Fatalf("checkCanonical(%x) = %v, want ErrInvalidCBOR or nil", b, err)
			}
			return
		}
		var v any
		if err := decMode.Unmarshal(b, &v); err != nil {
			// An unsigned integer above MaxInt64 is canonical but has no
			// place in an any: a type mismatch, which a request reports
			// as CTAP2_ERR_CBOR_UNEXPECTED_TYPE, not a disagreement about
			// the encoding.
			var typeErr *cbor.UnmarshalTypeError
			if errors.As(err, &typeErr) {
				return
			}
			t.Fatalf("checkCanonical accepted %x, the decoder refuses it: %v", b, err)
		}
		out, err := encMode.Marshal(v)
		if err != nil {
			t.Fatalf("re-encoding %x: %v", b, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("canonical %x re-encodes as %x", b, out)
		}
	})
}

// FuzzCommand sends arbitrary parameters to every command of a key in a
// known state and checks the answer is well-formed CTAP: never a panic,
// never empty, an error status alone, a success followed by canonical CBOR
// or nothing, no CTAP1_ERR_OTHER (an internal failure), and a key that
// still answers getInfo afterwards. locked picks a key with a PIN, a
// fingerprint and an issued token, so that the seeds' pinUvAuthParams
// verify and the fuzzer reaches past the authentication checks.
func FuzzCommand(f *testing.F) {
	keys := [2]*fuzzKey{newFuzzKey(f, false), newFuzzKey(f, true)}
	for _, k := range keys {
		for _, s := range k.seeds(f) {
			f.Add(k.locked, byte(s.cmd), s.params)
		}
	}
	f.Fuzz(func(t *testing.T, locked bool, cmd byte, params []byte) {
		k := keys[0]
		if locked {
			k = keys[1]
		}
		key := k.fresh()
		ctx := context.Background()
		checkFuzzResponse(t, "the command", key.CBOR(ctx, append([]byte{cmd}, params...), nil))
		// The continuation commands must cope with whatever ran before.
		checkFuzzResponse(t, "getNextAssertion", key.CBOR(ctx, []byte{byte(CmdGetNextAssertion)}, nil))
		checkFuzzResponse(t, "enumerateRPsGetNextRP", key.CBOR(ctx, append([]byte{byte(CmdCredentialManagement)}, 0xa1, 0x01, CredMgmtEnumerateRPsGetNextRP), nil))
		info := key.CBOR(ctx, []byte{byte(CmdGetInfo)}, nil)
		checkFuzzResponse(t, "getInfo", info)
		if info[0] != byte(StatusOK) {
			t.Fatalf("getInfo fails after the command: %v", Status(info[0]))
		}
	})
}

func checkFuzzResponse(t *testing.T, what string, resp []byte) {
	t.Helper()
	switch {
	case len(resp) == 0:
		t.Fatalf("%s: empty response", what)
	case resp[0] == byte(ErrOther):
		t.Fatalf("%s: CTAP1_ERR_OTHER, an internal failure", what)
	case resp[0] != byte(StatusOK) && len(resp) != 1:
		t.Fatalf("%s: status %v with a %d-byte body", what, Status(resp[0]), len(resp)-1)
	case resp[0] == byte(StatusOK) && len(resp) > 1 && checkCanonical(resp[1:]) != nil:
		t.Fatalf("%s: response is not canonical CBOR: %x", what, resp[1:])
	}
	if _, ok := statusNames[Status(resp[0])]; !ok {
		t.Fatalf("%s: status 0x%02x is not a CTAP status", what, resp[0])
	}
}

// fuzzKey is a key the fuzzer starts every input from, restored between
// inputs so that an input's outcome never depends on the inputs before it
// (a reset, a PIN set, alwaysUv toggled). Creating a key per input would
// cost an attestation CA each time.
type fuzzKey struct {
	locked    bool
	c         *testClient
	snap      []byte
	protocols map[int]pinUvAuthProtocol
	tok       *tokenHandle // the issued token of a locked key
	rkID      []byte       // a discoverable credential of example.com
	serverID  []byte       // a non-discoverable credential of example.com
	template  []byte       // the enrolled fingerprint of a locked key
}

const fuzzPIN = "1234"

func newFuzzKey(f *testing.F, locked bool) *fuzzKey {
	f.Helper()
	c := newTestKey(f, Config{})
	k := &fuzzKey{locked: locked, c: c}
	req := makeCredReq("example.com", "alice", true)
	req[6] = map[string]any{"hmac-secret": true}
	resp, err := c.makeCred(req)
	wantStatus(f, err, StatusOK)
	k.rkID = credID(f, resp.AuthData)
	_, err = c.makeCred(makeCredReq("example.com", "bob", true))
	wantStatus(f, err, StatusOK)
	resp, err = c.makeCred(makeCredReq("example.com", "carol", false))
	wantStatus(f, err, StatusOK)
	k.serverID = credID(f, resp.AuthData)
	if locked {
		wantStatus(f, c.setPIN(2, fuzzPIN), StatusOK)
		tok := c.mustToken(2, fuzzPIN, PermBioEnrollment, "")
		k.template = c.enrollFinger(CmdBioEnrollment, tok)
		k.tok = c.mustToken(2, fuzzPIN, PermMakeCredential|PermGetAssertion|PermCredentialMgmt|PermBioEnrollment|PermAuthenticatorCfg, "example.com")
	}
	k.snap = c.key.snapshot()
	// The key agreement keys and the token are volatile state, outside
	// the snapshot; they are kept too, or no seed's MAC would verify.
	k.protocols = map[int]pinUvAuthProtocol{}
	for v, p := range c.key.protocols {
		k.protocols[v] = *p
	}
	return k
}

// fresh returns the key as newFuzzKey left it.
func (k *fuzzKey) fresh() *Authenticator {
	a := k.c.key
	a.restore(k.snap)
	a.PowerCycle()
	for v, p := range k.protocols {
		*a.protocols[v] = p
	}
	return a
}

type fuzzSeed struct {
	cmd    Command
	params []byte
}

// seeds are real requests for every command, built against this key so
// that their MACs and key agreement verify.
func (k *fuzzKey) seeds(f *testing.F) []fuzzSeed {
	f.Helper()
	var seeds []fuzzSeed
	add := func(cmd Command, params any) {
		var raw []byte
		if params != nil {
			raw = marshal(params)
		}
		seeds = append(seeds, fuzzSeed{cmd, raw})
	}
	locked, c := k.locked, k.c

	add(CmdGetInfo, nil)
	add(CmdReset, nil)
	add(CmdSelection, nil)
	add(CmdGetNextAssertion, nil)

	// makeCredential
	add(CmdMakeCredential, makeCredReq("example.com", "dave", false))
	add(CmdMakeCredential, makeCredReq("example.com", "dave", true))
	mc := makeCredReq("example.com", "dave", true)
	mc[5] = []any{credDesc(k.serverID), credDesc(k.rkID)}
	mc[6] = map[string]any{"credProtect": 3, "hmac-secret": true, "minPinLength": true}
	mc[7] = map[string]bool{"rk": true, "uv": true, "up": true}
	mc[10] = 1
	mc[11] = []string{"none", "packed"}
	add(CmdMakeCredential, mc)
	mc = makeCredReq("example.com", "dave", false)
	mc[8], mc[9] = []byte{}, 2
	add(CmdMakeCredential, mc)
	if k.tok != nil {
		add(CmdMakeCredential, withToken(makeCredReq("example.com", "dave", true), k.tok, 1, 8))
		add(CmdGetAssertion, withToken(getAssertReq("example.com"), k.tok, 2, 6))
	}

	// getAssertion, with an hmac-secret input whose salts decrypt.
	add(CmdGetAssertion, getAssertReq("example.com"))
	add(CmdGetAssertion, getAssertReq("example.com", k.serverID, k.rkID))
	p := c.agree(2)
	saltEnc := p.encrypt(bytes.Repeat([]byte{0x5a}, 64))
	ga := getAssertReq("example.com")
	ga[4] = map[string]any{"hmac-secret": map[int]any{1: p.pub, 2: saltEnc, 3: p.authenticate(saltEnc), 4: 2}}
	ga[5] = map[string]bool{"up": true, "uv": locked}
	add(CmdGetAssertion, ga)
	ga = getAssertReq("example.com", k.rkID)
	ga[5] = map[string]bool{"up": false}
	add(CmdGetAssertion, ga)

	// clientPIN
	add(CmdClientPIN, map[int]any{2: ClientPINGetPINRetries})
	add(CmdClientPIN, map[int]any{2: ClientPINGetUVRetries})
	for _, v := range []int{1, 2} {
		p := c.agree(v)
		add(CmdClientPIN, map[int]any{1: v, 2: ClientPINGetKeyAgreement})
		newEnc := p.encrypt(pinuvauth.PaddedPIN("56789"))
		add(CmdClientPIN, map[int]any{1: v, 2: ClientPINSetPIN, 3: p.pub, 4: p.authenticate(newEnc), 5: newEnc})
		hashEnc := p.encrypt(pinuvauth.PINHash([]byte(fuzzPIN)))
		add(CmdClientPIN, map[int]any{1: v, 2: ClientPINChangePIN, 3: p.pub,
			4: p.authenticate(append(append([]byte{}, newEnc...), hashEnc...)), 5: newEnc, 6: hashEnc})
		add(CmdClientPIN, map[int]any{1: v, 2: ClientPINGetPinToken, 3: p.pub, 6: hashEnc})
		add(CmdClientPIN, map[int]any{1: v, 2: ClientPINGetPinUvAuthTokenUsingPinWithPerms, 3: p.pub, 6: hashEnc, 9: 0x2f, 10: "example.com"})
		add(CmdClientPIN, map[int]any{1: v, 2: ClientPINGetPinUvAuthTokenUsingUvWithPerms, 3: p.pub, 9: 0x03, 10: "example.com"})
	}

	// The management commands, authenticated when the key has a token.
	auth := func(msg []byte) []byte {
		if k.tok == nil {
			return make([]byte, 32)
		}
		return k.tok.auth(msg)
	}
	cmSubs := []struct {
		sub    byte
		params map[int]any
	}{
		{CredMgmtGetCredsMetadata, nil},
		{CredMgmtEnumerateRPsBegin, nil},
		{CredMgmtEnumerateRPsGetNextRP, nil},
		{CredMgmtEnumerateCredentialsBegin, map[int]any{1: rpHash("example.com")}},
		{CredMgmtEnumerateCredentialsGetNextCredential, nil},
		{CredMgmtDeleteCredential, map[int]any{2: credDesc(k.rkID)}},
		{CredMgmtUpdateUserInformation, map[int]any{2: credDesc(k.rkID), 3: map[string]any{"id": []byte("uid-alice"), "name": "al", "displayName": "Al"}}},
	}
	for _, s := range cmSubs {
		req := map[int]any{1: s.sub}
		var raw []byte
		if s.params != nil {
			raw = marshal(s.params)
			req[2] = cbor.RawMessage(raw)
		}
		if s.sub != CredMgmtEnumerateRPsGetNextRP && s.sub != CredMgmtEnumerateCredentialsGetNextCredential {
			req[3], req[4] = 2, auth(append([]byte{s.sub}, raw...))
		}
		add(CmdCredentialManagement, req)
		add(CmdCredentialMgmtPreview, req)
	}

	cfgSubs := []struct {
		sub    byte
		params map[int]any
	}{
		{ConfigEnableEnterpriseAttestation, nil},
		{ConfigToggleAlwaysUv, nil},
		{ConfigSetMinPINLength, map[int]any{1: 6, 2: []string{"example.com"}, 3: true}},
		{ConfigSetMinPINLength, map[int]any{1: 8}},
	}
	for _, s := range cfgSubs {
		req := map[int]any{1: s.sub}
		msg := append(bytes.Repeat([]byte{0xff}, 32), byte(CmdConfig), s.sub)
		if s.params != nil {
			raw := marshal(s.params)
			req[2] = cbor.RawMessage(raw)
			msg = append(msg, raw...)
		}
		if locked {
			req[3], req[4] = 2, auth(msg)
		}
		add(CmdConfig, req)
	}

	template := k.template
	if template == nil {
		template = []byte("template")
	}
	bioSubs := []struct {
		sub    byte
		params map[int]any
	}{
		{BioEnrollBegin, map[int]any{3: 5000}},
		{BioEnrollCaptureNextSample, map[int]any{1: template, 3: 5000}},
		{BioCancelCurrentEnrollment, nil},
		{BioEnumerateEnrollments, nil},
		{BioSetFriendlyName, map[int]any{1: template, 2: "thumb"}},
		{BioRemoveEnrollment, map[int]any{1: template}},
		{BioGetFingerprintSensorInfo, nil},
	}
	for _, s := range bioSubs {
		req := map[int]any{1: BioModalityFingerprint, 2: s.sub}
		var raw []byte
		if s.params != nil {
			raw = marshal(s.params)
			req[3] = cbor.RawMessage(raw)
		}
		req[4], req[5] = 2, auth(append([]byte{BioModalityFingerprint, s.sub}, raw...))
		add(CmdBioEnrollment, req)
		add(CmdBioEnrollmentPreview, req)
	}
	add(CmdBioEnrollment, map[int]any{6: true})
	return seeds
}
