package softkey

import (
	"bytes"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// cfgCall sends one authenticatorConfig subcommand. A nil tok sends no
// pinUvAuthParam; the MAC covers 32×0xff || 0x0d || subCommand ||
// subCommandParams, the exact bytes sent.
func (c *testClient) cfgCall(tok *tokenHandle, sub byte, params map[int]any) error {
	c.t.Helper()
	req := map[int]any{1: sub}
	var raw []byte
	if params != nil {
		raw = marshal(params)
		req[2] = cbor.RawMessage(raw)
	}
	if tok != nil {
		msg := append(bytes.Repeat([]byte{0xff}, 32), byte(CmdConfig), sub)
		req[3] = tok.version
		req[4] = tok.auth(append(msg, raw...))
	}
	return c.do(CmdConfig, req, nil)
}

func (c *testClient) readInfo() *authenticatorGetInfoResponse {
	c.t.Helper()
	var info authenticatorGetInfoResponse
	if err := c.do(CmdGetInfo, nil, &info); err != nil {
		c.t.Fatalf("getInfo: %v", err)
	}
	return &info
}

// authDataExtensions digs out the extension outputs, which follow the
// variable-length credential ID and public key in attested authenticator data.
func authDataExtensions(t testing.TB, authData []byte) map[string]any {
	t.Helper()
	if authData[32]&flagED == 0 {
		return nil
	}
	id := credID(t, authData)
	var pub coseKey
	rest, err := decMode.UnmarshalFirst(authData[55+len(id):], &pub)
	if err != nil {
		t.Fatalf("credential public key: %v", err)
	}
	var ext map[string]any
	if err := decMode.Unmarshal(rest, &ext); err != nil {
		t.Fatalf("extensions: %v", err)
	}
	return ext
}

const cfgPIN = "1234"

func TestConfigToggleAlwaysUv(t *testing.T) {
	tests := []struct {
		name     string
		pin      bool
		withTok  bool
		rk       bool
		want     Status
		wantUVed bool
	}{
		// §6.1.2 step 6: alwaysUv on a key with no PIN or fingerprint.
		{name: "ShouldRequirePINForServerSideCredential", want: ErrPINNotSet},
		{name: "ShouldRequirePINForDiscoverableCredential", rk: true, want: ErrPINNotSet},
		{name: "ShouldRequireTokenForServerSideCredential", pin: true, want: ErrPUATRequired},
		{name: "ShouldRequireTokenForDiscoverableCredential", pin: true, rk: true, want: ErrPUATRequired},
		{name: "ShouldAcceptToken", pin: true, withTok: true, want: StatusOK, wantUVed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, Config{})
			if tt.pin {
				wantStatus(t, c.setPIN(2, cfgPIN), StatusOK)
				wantStatus(t, c.cfgCall(c.mustToken(2, cfgPIN, PermAuthenticatorCfg, ""), ConfigToggleAlwaysUv, nil), StatusOK)
			} else {
				wantStatus(t, c.cfgCall(nil, ConfigToggleAlwaysUv, nil), StatusOK)
			}
			if !c.readInfo().Options["alwaysUv"] {
				t.Fatal("getInfo alwaysUv false after toggleAlwaysUv")
			}
			req := makeCredReq("example.com", "alice", tt.rk)
			if tt.withTok {
				withToken(req, c.mustToken(2, cfgPIN, PermMakeCredential, "example.com"), 1, 8)
			}
			resp, err := c.makeCred(req)
			wantStatus(t, err, tt.want)
			if err == nil && (resp.AuthData[32]&flagUV != 0) != tt.wantUVed {
				t.Fatalf("flags = %08b", resp.AuthData[32])
			}
		})
	}
}

func TestConfigToggleAlwaysUvBack(t *testing.T) {
	c := newTestKey(t, Config{})
	wantStatus(t, c.setPIN(2, cfgPIN), StatusOK)
	tok := c.mustToken(2, cfgPIN, PermAuthenticatorCfg, "")
	wantStatus(t, c.cfgCall(tok, ConfigToggleAlwaysUv, nil), StatusOK)
	wantStatus(t, c.do(CmdGetAssertion, getAssertReq("example.com"), nil), ErrPUATRequired)
	wantStatus(t, c.cfgCall(tok, ConfigToggleAlwaysUv, nil), StatusOK)
	if c.readInfo().Options["alwaysUv"] {
		t.Fatal("getInfo alwaysUv true after toggling twice")
	}
	_, err := c.makeCred(makeCredReq("example.com", "alice", false))
	wantStatus(t, err, StatusOK)
}

// CTAP 2.1 §6.4 (alwaysUv): "If the alwaysUv option ID is present and true
// the authenticator MUST set the value of makeCredUvNotRqd to false", or a
// platform would skip UV that the key then demands.
func TestConfigAlwaysUvClearsMakeCredUvNotRqd(t *testing.T) {
	c := newTestKey(t, Config{})
	if !c.readInfo().Options["makeCredUvNotRqd"] {
		t.Fatal("makeCredUvNotRqd false before alwaysUv")
	}
	wantStatus(t, c.cfgCall(nil, ConfigToggleAlwaysUv, nil), StatusOK)
	if c.readInfo().Options["makeCredUvNotRqd"] {
		t.Fatal("makeCredUvNotRqd still true with alwaysUv true")
	}
}

func TestConfigSetMinPINLength(t *testing.T) {
	tests := []struct {
		name string
		pin  string // "" for a key without PIN
		// steps are setMinPINLength parameters sent in order; every one
		// but the last must succeed.
		steps           []map[int]any
		want            Status
		wantMin         uint
		wantForceChange bool
	}{
		{name: "ShouldRaiseMinimumWithoutPIN", steps: []map[int]any{{1: 6}}, want: StatusOK, wantMin: 6},
		{name: "ShouldRaiseMinimumWithPIN", pin: "12345678", steps: []map[int]any{{1: 6}}, want: StatusOK, wantMin: 6},
		{name: "ShouldKeepMinimumWhenAbsent", steps: []map[int]any{{1: 6}, {}}, want: StatusOK, wantMin: 6},
		{name: "ShouldAcceptSameMinimum", steps: []map[int]any{{1: 6}, {1: 6}}, want: StatusOK, wantMin: 6},
		{name: "ShouldRejectLoweringMinimum", steps: []map[int]any{{1: 6}, {1: 5}}, want: ErrPINPolicyViolation, wantMin: 6},
		{name: "ShouldRejectLoweringBelowDefault", steps: []map[int]any{{1: 3}}, want: ErrPINPolicyViolation, wantMin: defaultMinPINLength},
		{name: "ShouldForcePINChangeWhenPINTooShort", pin: "1234", steps: []map[int]any{{1: 5}}, want: StatusOK, wantMin: 5, wantForceChange: true},
		{name: "ShouldNotForcePINChangeWhenPINLongEnough", pin: "12345", steps: []map[int]any{{1: 5}}, want: StatusOK, wantMin: 5},
		{name: "ShouldForcePINChangeOnRequest", pin: "123456", steps: []map[int]any{{3: true}}, want: StatusOK, wantMin: defaultMinPINLength, wantForceChange: true},
		{name: "ShouldNotForcePINChangeWhenFalse", pin: "123456", steps: []map[int]any{{3: false}}, want: StatusOK, wantMin: defaultMinPINLength},
		{name: "ShouldRequirePINToForcePINChange", steps: []map[int]any{{3: true}}, want: ErrPINNotSet, wantMin: defaultMinPINLength},
		{name: "ShouldAcceptFourRPIDs", steps: []map[int]any{{2: []string{"a.example", "b.example", "c.example", "d.example"}}}, want: StatusOK, wantMin: defaultMinPINLength},
		{name: "ShouldRejectFiveRPIDs", steps: []map[int]any{{2: []string{"a.example", "b.example", "c.example", "d.example", "e.example"}}},
			want: ErrKeyStoreFull, wantMin: defaultMinPINLength},
		{name: "ShouldRejectRPIDsOfWrongType", steps: []map[int]any{{2: "example.com"}}, want: ErrCBORUnexpectedType, wantMin: defaultMinPINLength},
		{name: "ShouldRejectNewMinPINLengthOfWrongType", steps: []map[int]any{{1: "6"}}, want: ErrCBORUnexpectedType, wantMin: defaultMinPINLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, Config{})
			var tok *tokenHandle
			if tt.pin != "" {
				wantStatus(t, c.setPIN(2, tt.pin), StatusOK)
				tok = c.mustToken(2, tt.pin, PermAuthenticatorCfg, "")
			}
			for i, p := range tt.steps {
				want := StatusOK
				if i == len(tt.steps)-1 {
					want = tt.want
				}
				wantStatus(t, c.cfgCall(tok, ConfigSetMinPINLength, p), want)
			}
			info := c.readInfo()
			if info.MinPINLength != tt.wantMin || info.ForcePINChange != tt.wantForceChange {
				t.Fatalf("minPINLength %d forcePINChange %v, want %d %v", info.MinPINLength, info.ForcePINChange, tt.wantMin, tt.wantForceChange)
			}
		})
	}
}

func TestConfigForcedPINChange(t *testing.T) {
	tests := []struct {
		name    string
		pin     string
		params  map[int]any // of setMinPINLength
		newPINs []string    // tried in order; only the last succeeds
	}{
		{name: "ShouldDemandLongerPINAfterRaisedMinimum", pin: "1234", params: map[int]any{1: 6},
			newPINs: []string{"1234", "12345", "123456"}},
		{name: "ShouldDemandDifferentPINAfterForceChangePin", pin: "123456", params: map[int]any{3: true},
			newPINs: []string{"123456", "654321"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, Config{})
			wantStatus(t, c.setPIN(2, tt.pin), StatusOK)
			wantStatus(t, c.cfgCall(c.mustToken(2, tt.pin, PermAuthenticatorCfg, ""), ConfigSetMinPINLength, tt.params), StatusOK)
			if !c.readInfo().ForcePINChange {
				t.Fatal("forcePINChange false")
			}
			// §6.5.5.7: no token of any kind until the PIN is changed.
			_, err := c.token(2, tt.pin, PermCredentialMgmt, "")
			wantStatus(t, err, ErrPINPolicyViolation)
			_, err = c.token(1, tt.pin, 0, "")
			wantStatus(t, err, ErrPINPolicyViolation)

			cur := tt.pin
			for i, next := range tt.newPINs {
				want := ErrPINPolicyViolation
				if i == len(tt.newPINs)-1 {
					want = StatusOK
				}
				wantStatus(t, c.changePIN(2, cur, next), want)
			}
			cur = tt.newPINs[len(tt.newPINs)-1]
			if c.readInfo().ForcePINChange {
				t.Fatal("forcePINChange still true after changePIN")
			}
			c.mustToken(2, cur, PermCredentialMgmt, "")
			if retries, _ := c.retries(); retries != maxPINRetries {
				t.Fatalf("pinRetries = %d, want %d", retries, maxPINRetries)
			}
		})
	}
}

func TestConfigMinPinLengthExtension(t *testing.T) {
	tests := []struct {
		name    string
		rpID    string
		ask     bool
		wantExt bool
	}{
		{name: "ShouldReportMinimumToListedRP", rpID: "example.com", ask: true, wantExt: true},
		{name: "ShouldHideMinimumFromUnlistedRP", rpID: "other.example", ask: true},
		{name: "ShouldReportNothingUnasked", rpID: "example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, Config{})
			wantStatus(t, c.cfgCall(nil, ConfigSetMinPINLength, map[int]any{1: 7, 2: []string{"example.com"}}), StatusOK)
			req := makeCredReq(tt.rpID, "alice", false)
			if tt.ask {
				req[6] = map[string]any{"minPinLength": true}
			}
			resp, err := c.makeCred(req)
			wantStatus(t, err, StatusOK)
			got, ok := authDataExtensions(t, resp.AuthData)["minPinLength"]
			if ok != tt.wantExt || (ok && got != int64(7)) {
				t.Fatalf("minPinLength extension = %v (present %v), want present %v with 7", got, ok, tt.wantExt)
			}
		})
	}
}

func TestConfigEnterpriseAttestation(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		enable Status // status of enableEnterpriseAttestation; skipped when 0xff
		ep     any    // enterpriseAttestation in makeCredential
		want   Status
	}{
		{name: "ShouldReturnEpAttForVendorFacilitated", enable: StatusOK, ep: 1, want: StatusOK},
		{name: "ShouldReturnEpAttForPlatformManaged", enable: StatusOK, ep: 2, want: StatusOK},
		{name: "ShouldRejectUnknownEnterpriseAttestation", enable: StatusOK, ep: 3, want: ErrInvalidOption},
		{name: "ShouldRejectZeroEnterpriseAttestation", enable: StatusOK, ep: 0, want: ErrInvalidOption},
		{name: "ShouldRejectEnterpriseAttestationOfWrongType", enable: StatusOK, ep: "1", want: ErrCBORUnexpectedType},
		{name: "ShouldRejectEnterpriseAttestationBeforeEnabling", enable: 0xff, ep: 1, want: ErrInvalidParameter},
		{name: "ShouldRefuseEnableWithoutEnterpriseSupport", cfg: Config{NoEnterpriseAttestation: true},
			enable: ErrInvalidParameter, ep: 1, want: ErrInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, tt.cfg)
			ep, hasEP := c.readInfo().Options["ep"]
			if hasEP == tt.cfg.NoEnterpriseAttestation || ep {
				t.Fatalf("getInfo ep = %v (present %v) before enabling", ep, hasEP)
			}
			if tt.enable != 0xff {
				wantStatus(t, c.cfgCall(nil, ConfigEnableEnterpriseAttestation, nil), tt.enable)
				ep, hasEP = c.readInfo().Options["ep"]
				if tt.cfg.NoEnterpriseAttestation && hasEP {
					t.Fatal("getInfo has ep without enterprise attestation support")
				}
				if !tt.cfg.NoEnterpriseAttestation && !ep {
					t.Fatal("getInfo ep false after enableEnterpriseAttestation")
				}
			}
			req := makeCredReq("example.com", "alice", false)
			req[10] = tt.ep
			resp, err := c.makeCred(req)
			wantStatus(t, err, tt.want)
			if err == nil && (!resp.EpAtt || resp.Fmt != "packed") {
				t.Fatalf("epAtt %v fmt %q, want true packed", resp.EpAtt, resp.Fmt)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		noPIN bool
		setup func(c *testClient)
		run   func(c *testClient) error
		want  Status
	}{
		{name: "ShouldRequirePinUvAuthParam", run: func(c *testClient) error {
			return c.cfgCall(nil, ConfigToggleAlwaysUv, nil)
		}, want: ErrPUATRequired},
		{name: "ShouldRequirePinUvAuthParamForMinPINLength", run: func(c *testClient) error {
			return c.cfgCall(nil, ConfigSetMinPINLength, map[int]any{1: 8})
		}, want: ErrPUATRequired},
		{name: "ShouldRejectWrongPinUvAuthParam", run: func(c *testClient) error {
			c.mustToken(2, cfgPIN, PermAuthenticatorCfg, "")
			return c.do(CmdConfig, map[int]any{1: ConfigToggleAlwaysUv, 3: 2, 4: make([]byte, 32)}, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectParamWithoutPrefix", run: func(c *testClient) error {
			tok := c.mustToken(2, cfgPIN, PermAuthenticatorCfg, "")
			return c.do(CmdConfig, map[int]any{1: ConfigToggleAlwaysUv, 3: 2, 4: tok.auth([]byte{byte(CmdConfig), ConfigToggleAlwaysUv})}, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectParamMadeForOtherSubCommandParams", run: func(c *testClient) error {
			tok := c.mustToken(2, cfgPIN, PermAuthenticatorCfg, "")
			signed := append(bytes.Repeat([]byte{0xff}, 32), byte(CmdConfig), ConfigSetMinPINLength)
			signed = append(signed, marshal(map[int]any{1: 6})...)
			return c.do(CmdConfig, map[int]any{1: ConfigSetMinPINLength, 2: cbor.RawMessage(marshal(map[int]any{1: 8})), 3: 2, 4: tok.auth(signed)}, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRequireProtocolWithParam", run: func(c *testClient) error {
			return c.do(CmdConfig, map[int]any{1: ConfigToggleAlwaysUv, 4: make([]byte, 32)}, nil)
		}, want: ErrMissingParameter},
		{name: "ShouldRejectUnknownProtocol", run: func(c *testClient) error {
			return c.do(CmdConfig, map[int]any{1: ConfigToggleAlwaysUv, 3: 9, 4: make([]byte, 32)}, nil)
		}, want: ErrInvalidParameter},
		// CTAP 2.1 §6.11 step 4: "Verify that the pinUvAuthToken has the
		// acfg permission, if not, return CTAP2_ERR_PIN_AUTH_INVALID."
		{name: "ShouldRejectTokenWithoutAcfgPermission", run: func(c *testClient) error {
			return c.cfgCall(c.mustToken(2, cfgPIN, PermCredentialMgmt|PermBioEnrollment, ""), ConfigToggleAlwaysUv, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectLegacyPinToken", run: func(c *testClient) error {
			return c.cfgCall(c.mustToken(1, cfgPIN, 0, ""), ConfigToggleAlwaysUv, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldAcceptProtocolOneToken", run: func(c *testClient) error {
			return c.cfgCall(c.mustToken(1, cfgPIN, PermAuthenticatorCfg, ""), ConfigToggleAlwaysUv, nil)
		}, want: StatusOK},
		{name: "ShouldRejectUnknownSubcommand", run: func(c *testClient) error {
			return c.cfgCall(c.mustToken(2, cfgPIN, PermAuthenticatorCfg, ""), 0x04, nil)
		}, want: ErrInvalidSubcommand},
		{name: "ShouldRejectUnknownSubcommandWithoutPIN", noPIN: true, run: func(c *testClient) error {
			return c.cfgCall(nil, 0x04, nil)
		}, want: ErrInvalidSubcommand},
		{name: "ShouldRequireSubcommand", noPIN: true, run: func(c *testClient) error {
			return c.do(CmdConfig, map[int]any{3: 2}, nil)
		}, want: ErrMissingParameter},
		// §6.11 step 4 also guards a key with alwaysUv but no PIN.
		{name: "ShouldRequirePinUvAuthParamWithAlwaysUv", noPIN: true, setup: func(c *testClient) {
			wantStatus(c.t, c.cfgCall(nil, ConfigToggleAlwaysUv, nil), StatusOK)
		}, run: func(c *testClient) error {
			return c.cfgCall(nil, ConfigEnableEnterpriseAttestation, nil)
		}, want: ErrPUATRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, Config{})
			if !tt.noPIN {
				wantStatus(t, c.setPIN(2, cfgPIN), StatusOK)
			}
			if tt.setup != nil {
				tt.setup(c)
			}
			before := c.readInfo()
			err := tt.run(c)
			wantStatus(t, err, tt.want)
			if after := c.readInfo(); err != nil && (after.Options["alwaysUv"] != before.Options["alwaysUv"] ||
				after.MinPINLength != before.MinPINLength || after.Options["ep"] != before.Options["ep"]) {
				t.Fatal("a refused command changed the configuration")
			}
		})
	}
}
