package softkey

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform/pinuvauth"
)

// fromHex decodes hex written with spaces between items for legibility.
func fromHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// cborArrayHex and cborMapHex build inputs at the decoder's limits, too long
// to write out in the tables.
func cborArrayHex(n int) string {
	return hex.EncodeToString(marshal(make([]int, n)))
}

func cborMapHex(n int) string {
	m := make(map[int]int, n)
	for i := range n {
		m[i] = 0
	}
	return hex.EncodeToString(marshal(m))
}

// requireCanonical fails unless a response body is canonical CBOR, which is
// what a strict platform decoder (libfido2, Chromium) insists on.
func requireCanonical(t testing.TB, what string, body []byte) {
	t.Helper()
	if err := checkCanonical(body); err != nil {
		t.Fatalf("%s is not canonical CBOR: %x", what, body)
	}
}

// shortHex keeps failure messages about long inputs readable.
func shortHex(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func TestCheckCanonical(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want error
	}{
		{name: "ShouldAcceptSmallInteger", hex: "17"},
		{name: "ShouldAcceptOneByteInteger", hex: "18 18"},
		{name: "ShouldAcceptTwoByteInteger", hex: "19 0100"},
		{name: "ShouldAcceptFourByteInteger", hex: "1a 00010000"},
		{name: "ShouldAcceptEightByteInteger", hex: "1b 0000000100000000"},
		{name: "ShouldAcceptLargestInteger", hex: "1b ffffffffffffffff"},
		{name: "ShouldAcceptNegativeInteger", hex: "38 18"},
		{name: "ShouldAcceptEmptyStrings", hex: "82 40 60"},
		{name: "ShouldAcceptMultibyteUTF8", hex: "65 c3a9e282ac"},
		{name: "ShouldAcceptSimpleValuesInUse", hex: "83 f4 f5 f6"},
		{name: "ShouldAcceptSortedIntegerKeys", hex: "a4 01 00 03 00 20 00 21 00"},
		{name: "ShouldAcceptShorterTextKeyFirst", hex: "a3 61 62 00 62 6161 00 62 6162 00"},
		{name: "ShouldAcceptIntegerKeysBeforeTextKeys", hex: "a2 18 18 00 61 61 00"},
		{name: "ShouldAcceptFourLevels", hex: "a1 01 81 a1 01 80"},
		{name: "ShouldAcceptDecoderArrayLimit", hex: cborArrayHex(maxCBORArrayElements)},
		{name: "ShouldAcceptDecoderMapLimit", hex: cborMapHex(maxCBORMapPairs)},

		{name: "ShouldRejectEmptyInput", hex: "", want: ErrInvalidCBOR},
		{name: "ShouldRejectTruncatedOneByteArgument", hex: "18", want: ErrInvalidCBOR},
		{name: "ShouldRejectTruncatedTwoByteArgument", hex: "19 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectTruncatedFourByteArgument", hex: "1a 010000", want: ErrInvalidCBOR},
		{name: "ShouldRejectTruncatedEightByteArgument", hex: "1b 01000000000000", want: ErrInvalidCBOR},
		{name: "ShouldRejectTruncatedByteString", hex: "42 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectTruncatedTextString", hex: "63 6161", want: ErrInvalidCBOR},
		{name: "ShouldRejectTruncatedArray", hex: "82 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectMapMissingValue", hex: "a1 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectTruncatedNestedMap", hex: "a1 01 a2 01 01 02", want: ErrInvalidCBOR},
		{name: "ShouldRejectHugeStringLength", hex: "5b ffffffffffffffff 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectHugeArrayLength", hex: "9b ffffffffffffffff 00", want: ErrInvalidCBOR},
		// 2^63+1 pairs: twice that wraps to 2 items in 64 bits.
		{name: "ShouldRejectMapLengthThatWraps", hex: "bb 8000000000000001 01 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectTrailingByte", hex: "a0 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectTwoItems", hex: "01 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectIndefiniteArray", hex: "9f 01 ff", want: ErrInvalidCBOR},
		{name: "ShouldRejectIndefiniteMap", hex: "bf 01 01 ff", want: ErrInvalidCBOR},
		{name: "ShouldRejectIndefiniteByteString", hex: "5f 41 00 ff", want: ErrInvalidCBOR},
		{name: "ShouldRejectIndefiniteTextString", hex: "7f 61 61 ff", want: ErrInvalidCBOR},
		{name: "ShouldRejectIndefiniteNestedArray", hex: "a1 01 9f ff", want: ErrInvalidCBOR},
		{name: "ShouldRejectLoneBreak", hex: "ff", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalOne", hex: "18 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimal23", hex: "18 17", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalTwoByteOne", hex: "19 0001", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalTwoByte255", hex: "19 00ff", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalFourByte", hex: "1a 0000ffff", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalEightByte", hex: "1b 00000000ffffffff", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalNegative", hex: "38 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalStringLength", hex: "58 01 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalTextLength", hex: "79 0001 61", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalArrayLength", hex: "98 01 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalMapLength", hex: "b8 01 00 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalMapKey", hex: "a1 18 01 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectReservedAdditionalInfo28", hex: "1c", want: ErrInvalidCBOR},
		{name: "ShouldRejectReservedAdditionalInfo30", hex: "5e", want: ErrInvalidCBOR},
		{name: "ShouldRejectIntegerKeysOutOfOrder", hex: "a2 02 00 01 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectNegativeKeyBeforeUnsigned", hex: "a2 20 00 01 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectLongerIntegerKeyFirst", hex: "a2 18 18 00 17 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectLongerTextKeyFirst", hex: "a2 62 6161 00 61 62 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectTextKeysOutOfByteOrder", hex: "a2 62 6162 00 62 6161 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectTextKeyBeforeIntegerKey", hex: "a2 61 61 00 01 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectUnsortedNestedMap", hex: "a1 01 a2 02 00 01 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectDuplicateIntegerKey", hex: "a2 01 00 01 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectDuplicateTextKey", hex: "a2 62 6964 00 62 6964 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectArrayKey", hex: "a1 81 01 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectMapKey", hex: "a1 a0 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectTag", hex: "c0 74 323032362d31312d32355431323a30303a30305a", want: ErrInvalidCBOR},
		{name: "ShouldRejectBignumTag", hex: "c2 41 01", want: ErrInvalidCBOR},
		{name: "ShouldRejectTwoByteTag", hex: "d8 20 60", want: ErrInvalidCBOR},
		{name: "ShouldRejectTagInsideMap", hex: "a1 01 c6 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectHalfFloat", hex: "f9 3c00", want: ErrInvalidCBOR},
		{name: "ShouldRejectHalfFloatZero", hex: "f9 0000", want: ErrInvalidCBOR},
		{name: "ShouldRejectSingleFloat", hex: "fa 3f800000", want: ErrInvalidCBOR},
		{name: "ShouldRejectDoubleFloat", hex: "fb 3ff0000000000000", want: ErrInvalidCBOR},
		{name: "ShouldRejectFloatAsMapValue", hex: "a1 01 fa 3f800000", want: ErrInvalidCBOR},
		{name: "ShouldRejectUndefined", hex: "f7", want: ErrInvalidCBOR},
		{name: "ShouldRejectUnassignedSimpleValue", hex: "e0", want: ErrInvalidCBOR},
		{name: "ShouldRejectSimpleValue19", hex: "f3", want: ErrInvalidCBOR},
		{name: "ShouldRejectOneByteSimpleValue", hex: "f8 20", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalSimpleValue", hex: "f8 14", want: ErrInvalidCBOR},
		{name: "ShouldRejectFiveLevelsOfArrays", hex: "81 81 81 81 80", want: ErrInvalidCBOR},
		{name: "ShouldRejectFiveLevelsOfMaps", hex: "a1 01 a1 01 a1 01 a1 01 a0", want: ErrInvalidCBOR},
		{name: "ShouldRejectFiveLevelsMixed", hex: "a1 01 81 a1 01 81 80", want: ErrInvalidCBOR},
		{name: "ShouldRejectInvalidUTF8Byte", hex: "61 ff", want: ErrInvalidCBOR},
		{name: "ShouldRejectTruncatedUTF8Sequence", hex: "62 61 c3", want: ErrInvalidCBOR},
		{name: "ShouldRejectOverlongUTF8", hex: "62 c0af", want: ErrInvalidCBOR},
		{name: "ShouldRejectUTF8Surrogate", hex: "63 eda080", want: ErrInvalidCBOR},
		{name: "ShouldRejectInvalidUTF8InMapKey", hex: "a1 61 80 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectInvalidUTF8InNestedValue", hex: "a1 02 a1 62 6964 62 c328", want: ErrInvalidCBOR},
		{name: "ShouldRejectArrayOverDecoderLimit", hex: cborArrayHex(maxCBORArrayElements + 1), want: ErrInvalidCBOR},
		{name: "ShouldRejectMapOverDecoderLimit", hex: cborMapHex(maxCBORMapPairs + 1), want: ErrInvalidCBOR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := fromHex(t, tt.hex)
			if err := checkCanonical(b); err != tt.want {
				t.Fatalf("checkCanonical(%s) = %v, want %v", shortHex(tt.hex), err, tt.want)
			}
			// unmarshal, the gate every request passes, agrees.
			var v any
			if err := unmarshal(b, &v); tt.want != nil && err != tt.want {
				t.Fatalf("unmarshal(%s) = %v, want %v", shortHex(tt.hex), err, tt.want)
			}
		})
	}
}

func TestUnmarshalStatus(t *testing.T) {
	type target struct {
		A *[]byte `cbor:"1,keyasint"`
		B *string `cbor:"2,keyasint"`
		C *uint64 `cbor:"3,keyasint"`
		D *int64  `cbor:"4,keyasint"`
	}
	tests := []struct {
		name string
		hex  string
		want error
	}{
		{name: "ShouldDecodeMatchingTypes", hex: "a4 01 41 00 02 61 61 03 01 04 20"},
		{name: "ShouldIgnoreUnknownKeys", hex: "a1 18 63 f6"},
		{name: "ShouldRejectTextForBytes", hex: "a1 01 61 61", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectBytesForText", hex: "a1 02 41 61", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectNegativeForUnsigned", hex: "a1 03 20", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectBoolForInteger", hex: "a1 03 f5", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectMapForInteger", hex: "a1 03 a0", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectIntegerOverflow", hex: "a1 04 1b ffffffffffffffff", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectArrayForStruct", hex: "80", want: ErrCBORUnexpectedType},
		{name: "ShouldCheckCanonicalFirst", hex: "a1 01 61 ff", want: ErrInvalidCBOR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v target
			if err := unmarshal(fromHex(t, tt.hex), &v); err != tt.want {
				t.Fatalf("unmarshal(%s) = %v, want %v", tt.hex, err, tt.want)
			}
		})
	}
}

func TestCommandCBORErrors(t *testing.T) {
	const (
		mc  = CmdMakeCredential
		ga  = CmdGetAssertion
		pin = CmdClientPIN
	)
	tests := []struct {
		name string
		cmd  Command
		hex  string // the parameters
		want Status
	}{
		{name: "ShouldRejectTruncatedMap", cmd: mc, hex: "a2 01 58 20", want: ErrInvalidCBOR},
		{name: "ShouldRejectTrailingBytes", cmd: pin, hex: "a1 02 02 00", want: ErrInvalidCBOR},
		{name: "ShouldRejectIndefiniteMap", cmd: pin, hex: "bf 01 02 02 02 ff", want: ErrInvalidCBOR},
		{name: "ShouldRejectIndefiniteString", cmd: ga, hex: "a1 01 7f 61 61 ff", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalKey", cmd: pin, hex: "a1 18 02 02", want: ErrInvalidCBOR},
		{name: "ShouldRejectNonMinimalValue", cmd: pin, hex: "a1 02 19 0002", want: ErrInvalidCBOR},
		{name: "ShouldRejectUnsortedKeys", cmd: pin, hex: "a2 02 02 01 02", want: ErrInvalidCBOR},
		{name: "ShouldRejectUnsortedTextKeys", cmd: mc, hex: "a1 02 a2 64 6e616d65 61 78 62 6964 61 78", want: ErrInvalidCBOR},
		{name: "ShouldRejectDuplicateKeys", cmd: pin, hex: "a2 02 02 02 02", want: ErrInvalidCBOR},
		{name: "ShouldRejectTag", cmd: pin, hex: "a1 02 c0 02", want: ErrInvalidCBOR},
		{name: "ShouldRejectFloat", cmd: pin, hex: "a1 02 f9 4000", want: ErrInvalidCBOR},
		{name: "ShouldRejectUndefined", cmd: mc, hex: "a1 01 f7", want: ErrInvalidCBOR},
		{name: "ShouldRejectDeepNesting", cmd: mc, hex: "a1 06 a1 61 78 81 81 81 80", want: ErrInvalidCBOR},
		{name: "ShouldRejectInvalidUTF8RPID", cmd: ga, hex: "a1 01 61 ff", want: ErrInvalidCBOR},
		{name: "ShouldRejectTextClientDataHash", cmd: mc, hex: "a1 01 64 74657874", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectIntegerRPID", cmd: ga, hex: "a1 01 01", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectTextSubCommand", cmd: pin, hex: "a1 02 61 02", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectArrayParameters", cmd: mc, hex: "80", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectIntegerParameters", cmd: pin, hex: "02", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectTextParametersOfCredMgmt", cmd: CmdCredentialManagement, hex: "61 61", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectNullParametersOfConfig", cmd: CmdConfig, hex: "f6", want: ErrCBORUnexpectedType},
		{name: "ShouldCheckNonMapParametersAreCBOR", cmd: mc, hex: "81", want: ErrInvalidCBOR},
		{name: "ShouldRequireMakeCredentialParameters", cmd: mc, hex: "", want: ErrMissingParameter},
		{name: "ShouldRequireMakeCredentialMembers", cmd: mc, hex: "a0", want: ErrMissingParameter},
		{name: "ShouldRequireGetAssertionParameters", cmd: ga, hex: "", want: ErrMissingParameter},
		{name: "ShouldRequireClientPINParameters", cmd: pin, hex: "", want: ErrMissingParameter},
		{name: "ShouldRequireCredMgmtParameters", cmd: CmdCredentialManagement, hex: "", want: ErrMissingParameter},
		{name: "ShouldRequireConfigParameters", cmd: CmdConfig, hex: "", want: ErrMissingParameter},
		{name: "ShouldRequireBioParameters", cmd: CmdBioEnrollment, hex: "", want: ErrMissingParameter},
		{name: "ShouldRejectNonCanonicalSubCommandParams", cmd: CmdConfig, hex: "a2 01 03 02 a1 01 18 06", want: ErrInvalidCBOR},
		{name: "ShouldRejectUnknownCommand", cmd: 0xff, hex: "", want: ErrInvalidCommand},
		{name: "ShouldRejectUnassignedCommand", cmd: 0x03, hex: "", want: ErrInvalidCommand},
		{name: "ShouldRejectUnknownCommandWithParameters", cmd: 0x0c, hex: "a0", want: ErrInvalidCommand},
		{name: "ShouldRejectVendorCommand", cmd: 0x50, hex: "", want: ErrInvalidCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, Config{})
			st, _ := c.doRaw(tt.cmd, fromHex(t, tt.hex))
			if st != tt.want {
				t.Fatalf("command 0x%02x with %s: got %v, want %v", byte(tt.cmd), tt.hex, st, tt.want)
			}
		})
	}
}

func TestCommandFraming(t *testing.T) {
	tests := []struct {
		name string
		req  []byte
		want Status
	}{
		{name: "ShouldRejectEmptyRequest", req: nil, want: ErrInvalidLength},
		{name: "ShouldRejectOversizedRequest", req: append([]byte{byte(CmdGetInfo)}, make([]byte, maxMsgSize)...), want: ErrRequestTooLarge},
		{name: "ShouldAcceptLargestRequest", req: append([]byte{byte(CmdClientPIN)}, fromHex(t, "a2 02 01 18 63 59 1db0"+strings.Repeat("00", maxMsgSize-9))...), want: StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, Config{})
			resp := c.key.CBOR(t.Context(), tt.req, nil)
			if len(resp) == 0 || Status(resp[0]) != tt.want {
				t.Fatalf("got %x, want status %v", resp, tt.want)
			}
		})
	}
}

func TestResponsesAreCanonical(t *testing.T) {
	tests := []struct {
		name string
		run  func(c *testClient) (Command, any)
	}{
		{name: "ShouldEncodeGetInfo", run: func(*testClient) (Command, any) { return CmdGetInfo, nil }},
		{name: "ShouldEncodePackedAttestation", run: func(*testClient) (Command, any) {
			req := makeCredReq("example.com", "alice", true)
			req[6] = map[string]any{"credProtect": 2, "hmac-secret": true}
			return CmdMakeCredential, req
		}},
		{name: "ShouldEncodeEnterpriseAttestation", run: func(c *testClient) (Command, any) {
			wantStatus(c.t, c.cfgCall(nil, ConfigEnableEnterpriseAttestation, nil), StatusOK)
			req := makeCredReq("example.com", "alice", false)
			req[10] = 1
			return CmdMakeCredential, req
		}},
		{name: "ShouldEncodeNoneAttestation", run: func(*testClient) (Command, any) {
			req := makeCredReq("example.com", "alice", false)
			req[11] = []string{"none"}
			return CmdMakeCredential, req
		}},
		{name: "ShouldEncodeDiscoverableAssertion", run: func(c *testClient) (Command, any) {
			for _, u := range []string{"alice", "bob"} {
				_, err := c.makeCred(makeCredReq("example.com", u, true))
				wantStatus(c.t, err, StatusOK)
			}
			return CmdGetAssertion, getAssertReq("example.com")
		}},
		{name: "ShouldEncodeNextAssertion", run: func(c *testClient) (Command, any) {
			for _, u := range []string{"alice", "bob"} {
				_, err := c.makeCred(makeCredReq("example.com", u, true))
				wantStatus(c.t, err, StatusOK)
			}
			wantStatus(c.t, c.do(CmdGetAssertion, getAssertReq("example.com"), nil), StatusOK)
			return CmdGetNextAssertion, nil
		}},
		{name: "ShouldEncodeAllowListAssertion", run: func(c *testClient) (Command, any) {
			resp, err := c.makeCred(makeCredReq("example.com", "alice", false))
			wantStatus(c.t, err, StatusOK)
			return CmdGetAssertion, getAssertReq("example.com", credID(c.t, resp.AuthData))
		}},
		{name: "ShouldEncodeKeyAgreement", run: func(*testClient) (Command, any) {
			return CmdClientPIN, map[int]any{1: 2, 2: ClientPINGetKeyAgreement}
		}},
		{name: "ShouldEncodePINRetries", run: func(*testClient) (Command, any) {
			return CmdClientPIN, map[int]any{2: ClientPINGetPINRetries}
		}},
		{name: "ShouldEncodeUVRetries", run: func(*testClient) (Command, any) {
			return CmdClientPIN, map[int]any{2: ClientPINGetUVRetries}
		}},
		{name: "ShouldEncodePinToken", run: func(c *testClient) (Command, any) {
			wantStatus(c.t, c.setPIN(1, "1234"), StatusOK)
			p := c.agree(1)
			return CmdClientPIN, map[int]any{1: 1, 2: ClientPINGetPinUvAuthTokenUsingPinWithPerms, 3: p.pub,
				6: p.encrypt(pinuvauth.PINHash([]byte("1234"))), 9: PermCredentialMgmt}
		}},
		{name: "ShouldEncodeCredentialEnumeration", run: func(c *testClient) (Command, any) {
			_, err := c.makeCred(makeCredReq("example.com", "alice", true))
			wantStatus(c.t, err, StatusOK)
			wantStatus(c.t, c.setPIN(2, "1234"), StatusOK)
			tok := c.mustToken(2, "1234", PermCredentialMgmt, "")
			raw := marshal(map[int]any{1: rpHash("example.com")})
			return CmdCredentialManagement, map[int]any{1: CredMgmtEnumerateCredentialsBegin, 2: cbor.RawMessage(raw), 3: 2,
				4: tok.auth(append([]byte{CredMgmtEnumerateCredentialsBegin}, raw...))}
		}},
		{name: "ShouldEncodeRPEnumeration", run: func(c *testClient) (Command, any) {
			_, err := c.makeCred(makeCredReq("example.com", "alice", true))
			wantStatus(c.t, err, StatusOK)
			wantStatus(c.t, c.setPIN(2, "1234"), StatusOK)
			tok := c.mustToken(2, "1234", PermCredentialMgmt, "")
			return CmdCredentialManagement, map[int]any{1: CredMgmtEnumerateRPsBegin, 3: 2, 4: tok.auth([]byte{CredMgmtEnumerateRPsBegin})}
		}},
		{name: "ShouldEncodeEnrollments", run: func(c *testClient) (Command, any) {
			wantStatus(c.t, c.setPIN(2, "1234"), StatusOK)
			tok := c.mustToken(2, "1234", PermBioEnrollment, "")
			id := c.enrollFinger(CmdBioEnrollment, tok)
			wantStatus(c.t, c.bioCall(CmdBioEnrollment, tok, BioSetFriendlyName, map[int]any{1: id, 2: "thumb"}, nil), StatusOK)
			return CmdBioEnrollment, map[int]any{1: 1, 2: BioEnumerateEnrollments, 4: 2,
				5: tok.auth([]byte{BioModalityFingerprint, BioEnumerateEnrollments})}
		}},
		{name: "ShouldEncodeSensorInfo", run: func(*testClient) (Command, any) {
			return CmdBioEnrollment, map[int]any{1: 1, 2: BioGetFingerprintSensorInfo}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, Config{})
			cmd, params := tt.run(c)
			var raw []byte
			if params != nil {
				raw = marshal(params)
			}
			st, body := c.doRaw(cmd, raw)
			if st != StatusOK || len(body) == 0 {
				t.Fatalf("got %v with %d bytes, want a response body", st, len(body))
			}
			requireCanonical(t, tt.name, body)
		})
	}
}
