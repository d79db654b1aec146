package softkey

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/platform/pinuvauth"
)

func TestSetPINPolicy(t *testing.T) {
	tests := []struct {
		name string
		pin  string
		want Status
	}{
		{name: "ShouldAcceptFourDigits", pin: "1234", want: StatusOK},
		{name: "ShouldRejectThreeDigits", pin: "123", want: ErrPINPolicyViolation},
		{name: "ShouldCountCodePointsNotBytes", pin: "ééé", want: ErrPINPolicyViolation}, // 6 bytes, 3 code points
		{name: "ShouldAcceptFourMultibyteCodePoints", pin: "éééé", want: StatusOK},
		{name: "ShouldAccept63Bytes", pin: strings.Repeat("a", 63), want: StatusOK},
		{name: "ShouldRejectInvalidUTF8", pin: "12\xff4", want: ErrPINPolicyViolation},
	}
	for _, tt := range tests {
		for _, version := range []int{1, 2} {
			t.Run(tt.name, func(t *testing.T) {
				c := newTestKey(t, Config{})
				wantStatus(t, c.setPIN(version, tt.pin), tt.want)
			})
		}
	}
}

func TestClientPINRequestErrors(t *testing.T) {
	c := newTestKey(t, Config{})
	p := c.agree(2)
	enc := p.encrypt(pinuvauth.PaddedPIN("1234"))
	auth := p.authenticate(enc)
	offCurve := p.pub
	offCurve.Y = append([]byte{}, offCurve.Y...)
	offCurve.Y[0] ^= 1
	tests := []struct {
		name string
		req  map[int]any
		want Status
	}{
		{name: "ShouldRequireSubCommand", req: map[int]any{1: 2}, want: ErrMissingParameter},
		{name: "ShouldRejectUnknownSubCommand", req: map[int]any{1: 2, 2: 0x20}, want: ErrInvalidSubcommand},
		{name: "ShouldRequireProtocol", req: map[int]any{2: ClientPINGetKeyAgreement}, want: ErrMissingParameter},
		{name: "ShouldRejectUnknownProtocol", req: map[int]any{1: 3, 2: ClientPINGetKeyAgreement}, want: ErrInvalidParameter},
		{name: "ShouldRejectOffCurveKey", req: map[int]any{1: 2, 2: ClientPINSetPIN, 3: offCurve, 4: auth, 5: enc}, want: ErrInvalidParameter},
		{name: "ShouldRejectSetPINWithoutAuth", req: map[int]any{1: 2, 2: ClientPINSetPIN, 3: p.pub, 5: enc}, want: ErrMissingParameter},
		{name: "ShouldRejectWrongSetPINAuth", req: map[int]any{1: 2, 2: ClientPINSetPIN, 3: p.pub, 4: make([]byte, 32), 5: enc}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectShortNewPinEnc", req: map[int]any{1: 2, 2: ClientPINSetPIN, 3: p.pub, 4: p.authenticate(enc[:48]), 5: enc[:48]}, want: ErrInvalidParameter},
		{name: "ShouldRequirePINForToken", req: map[int]any{1: 2, 2: ClientPINGetPinToken, 3: p.pub, 6: make([]byte, 32)}, want: ErrPINNotSet},
		{name: "ShouldRequirePINForChange", req: map[int]any{1: 2, 2: ClientPINChangePIN, 3: p.pub, 4: auth, 5: enc, 6: make([]byte, 32)}, want: ErrPINNotSet},
		{name: "ShouldRequirePermissions", req: map[int]any{1: 2, 2: ClientPINGetPinUvAuthTokenUsingPinWithPerms, 3: p.pub, 6: make([]byte, 32)}, want: ErrMissingParameter},
		{name: "ShouldRejectZeroPermissions", req: map[int]any{1: 2, 2: ClientPINGetPinUvAuthTokenUsingPinWithPerms, 3: p.pub, 6: make([]byte, 32), 9: 0}, want: ErrInvalidParameter},
		{name: "ShouldRequireRPIDForMakeCredentialPermission", req: map[int]any{1: 2, 2: ClientPINGetPinUvAuthTokenUsingPinWithPerms, 3: p.pub, 6: make([]byte, 32), 9: 1}, want: ErrMissingParameter},
		{name: "ShouldRefuseLargeBlobPermission", req: map[int]any{1: 2, 2: ClientPINGetPinUvAuthTokenUsingPinWithPerms, 3: p.pub, 6: make([]byte, 32), 9: 0x10}, want: ErrUnauthorizedPermission},
		{name: "ShouldRefuseUVTokenWithoutFingerprint", req: map[int]any{1: 2, 2: ClientPINGetPinUvAuthTokenUsingUvWithPerms, 3: p.pub, 9: 4}, want: ErrNotAllowed},
		{name: "ShouldRejectTextSubCommand", req: map[int]any{1: 2, 2: "setPIN"}, want: ErrCBORUnexpectedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, c.do(CmdClientPIN, tt.req, nil), tt.want)
		})
	}
	if c.key.pinSet() {
		t.Fatal("a refused request set the PIN")
	}
}

func TestSetPINTwiceNotAllowed(t *testing.T) {
	c := newTestKey(t, Config{})
	wantStatus(t, c.setPIN(2, "1234"), StatusOK)
	wantStatus(t, c.setPIN(2, "5678"), ErrNotAllowed)
	c.mustToken(2, "1234", 0, "")
}

func TestChangePIN(t *testing.T) {
	for _, version := range []int{1, 2} {
		c := newTestKey(t, Config{})
		wantStatus(t, c.setPIN(version, "1234"), StatusOK)
		wantStatus(t, c.changePIN(version, "1234", "12"), ErrPINPolicyViolation)
		wantStatus(t, c.changePIN(version, "0000", "5678"), ErrPINInvalid)
		wantStatus(t, c.changePIN(version, "1234", "5678"), StatusOK)
		if _, err := c.token(version, "1234", 0, ""); err == nil {
			t.Fatal("old PIN still works")
		}
		c.mustToken(version, "5678", 0, "")
		if r, _ := c.retries(); r != maxPINRetries {
			t.Fatalf("retries %d after a correct PIN", r)
		}
	}
}

func TestWrongPINCountsAndBlocks(t *testing.T) {
	c := newTestKey(t, Config{})
	wantStatus(t, c.setPIN(2, "1234"), StatusOK)

	// Three wrong PINs in a row need a power cycle.
	for i := 1; i <= 2; i++ {
		_, err := c.token(2, "0000", 0, "")
		wantStatus(t, err, ErrPINInvalid)
		if r, blocked := c.retries(); r != uint(maxPINRetries-i) || blocked {
			t.Fatalf("after %d wrong: retries %d, power cycle %v", i, r, blocked)
		}
	}
	_, err := c.token(2, "0000", 0, "")
	wantStatus(t, err, ErrPINAuthBlocked)
	if _, blocked := c.retries(); !blocked {
		t.Fatal("powerCycleState not reported")
	}
	// Even the right PIN is refused until the power cycle, without cost.
	_, err = c.token(2, "1234", 0, "")
	wantStatus(t, err, ErrPINAuthBlocked)
	if r, _ := c.retries(); r != maxPINRetries-3 {
		t.Fatalf("retries %d, a blocked attempt must not count", r)
	}
	c.key.PowerCycle()
	c.mustToken(2, "1234", 0, "")
	if r, _ := c.retries(); r != maxPINRetries {
		t.Fatalf("retries %d after correct PIN", r)
	}

	// Eight wrong PINs block the PIN for good.
	for i := 0; i < maxPINRetries; i++ {
		if i > 0 && i%3 == 0 {
			c.key.PowerCycle()
		}
		_, err := c.token(1, "0000", 0, "")
		if i == maxPINRetries-1 {
			wantStatus(t, err, ErrPINBlocked)
		}
	}
	c.key.PowerCycle()
	_, err = c.token(2, "1234", 0, "")
	wantStatus(t, err, ErrPINBlocked)
	wantStatus(t, c.changePIN(2, "1234", "5678"), ErrPINBlocked)
	if r, _ := c.retries(); r != 0 {
		t.Fatalf("retries %d when blocked", r)
	}
}

func TestTokenIsInvalidatedByNewToken(t *testing.T) {
	c := newTestKey(t, Config{})
	wantStatus(t, c.setPIN(2, "1234"), StatusOK)
	old := c.mustToken(2, "1234", PermMakeCredential, "example.com")
	c.mustToken(1, "1234", PermGetAssertion, "example.com")
	_, err := c.makeCred(withToken(makeCredReq("example.com", "alice", true), old, 1, 8))
	wantStatus(t, err, ErrPINAuthInvalid)
}

func TestTokenExpires(t *testing.T) {
	c := newTestKey(t, Config{})
	wantStatus(t, c.setPIN(2, "1234"), StatusOK)
	tok := c.mustToken(2, "1234", PermMakeCredential, "example.com")
	c.now = c.now.Add(tokenMaxUsage + 1)
	_, err := c.makeCred(withToken(makeCredReq("example.com", "alice", true), tok, 1, 8))
	wantStatus(t, err, ErrPINAuthInvalid)
}

func TestPINNeverStoredInClear(t *testing.T) {
	c := newTestKey(t, Config{})
	wantStatus(t, c.setPIN(2, "hunter22"), StatusOK)
	blob := string(c.key.snapshot())
	bareHash := base64.StdEncoding.EncodeToString(pinuvauth.PINHash([]byte("hunter22")))
	if strings.Contains(blob, "hunter22") || strings.Contains(blob, bareHash) {
		t.Fatal("state holds the PIN or its bare hash")
	}
}
