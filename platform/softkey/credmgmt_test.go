package softkey

import (
	"bytes"
	"crypto/sha256"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// cmCommands are the two numbers of authenticatorCredentialManagement; the
// preview one is what libfido2 1.12 sends, so both must behave the same.
var cmCommands = []struct {
	name string
	cmd  Command
}{
	{"0x0A", CmdCredentialManagement},
	{"0x41", CmdCredentialMgmtPreview},
}

const cmPIN = "1234"

// cmCall sends one credential management subcommand. A nil tok sends no
// pinUvAuthParam, nil params no subCommandParams. The MAC covers the exact
// bytes sent, which is why the parameters travel as a RawMessage.
func (c *testClient) cmCall(cmd Command, tok *tokenHandle, sub byte, params map[int]any, out any) error {
	c.t.Helper()
	req := map[int]any{1: sub}
	var raw []byte
	if params != nil {
		raw = marshal(params)
		req[2] = cbor.RawMessage(raw)
	}
	if tok != nil {
		req[3] = tok.version
		req[4] = tok.auth(append([]byte{sub}, raw...))
	}
	return c.do(cmd, req, out)
}

// cmFixture is a key holding discoverable credentials for two RPs and a PIN.
type cmFixture struct {
	*testClient
	ids  map[string][]byte  // credential IDs by user name
	pubs map[string]coseKey // credential public keys by user name
}

// cmCred describes one credential of the fixture.
type cmCred struct {
	rp, user    string
	credProtect int // 0 for none requested
}

var cmCreds = []cmCred{
	{"example.com", "alice", credProtectUVOptionalWithID},
	{"example.com", "bob", 0},
	{"other.example", "carol", credProtectUVRequired},
}

func rpHash(rpID string) []byte {
	h := sha256.Sum256([]byte(rpID))
	return h[:]
}

func newCMFixture(t *testing.T) *cmFixture {
	t.Helper()
	c := newTestKey(t, Config{})
	f := &cmFixture{testClient: c, ids: map[string][]byte{}, pubs: map[string]coseKey{}}
	// The credentials come before the PIN: afterwards a discoverable
	// credential would need a token.
	for _, cc := range cmCreds {
		req := makeCredReq(cc.rp, cc.user, true)
		if cc.credProtect != 0 {
			req[6] = map[string]any{"credProtect": cc.credProtect}
		}
		resp, err := c.makeCred(req)
		wantStatus(t, err, StatusOK)
		id := credID(t, resp.AuthData)
		var pub coseKey
		if _, err := decMode.UnmarshalFirst(resp.AuthData[55+len(id):], &pub); err != nil {
			t.Fatalf("credential public key: %v", err)
		}
		f.ids[cc.user], f.pubs[cc.user] = id, pub
	}
	// A server-side credential is not the business of credential management.
	_, err := c.makeCred(makeCredReq("example.com", "dave", false))
	wantStatus(t, err, StatusOK)
	wantStatus(t, c.setPIN(2, cmPIN), StatusOK)
	return f
}

func (f *cmFixture) cmToken(rpID string) *tokenHandle {
	f.t.Helper()
	return f.mustToken(2, cmPIN, PermCredentialMgmt, rpID)
}

func credDesc(id []byte) map[string]any {
	return map[string]any{"type": "public-key", "id": id}
}

func TestCredMgmtMetadata(t *testing.T) {
	for _, tt := range cmCommands {
		t.Run("ShouldCountDiscoverableCredentials/"+tt.name, func(t *testing.T) {
			f := newCMFixture(t)
			var resp authenticatorCredentialManagementResponse
			wantStatus(t, f.cmCall(tt.cmd, f.cmToken(""), CredMgmtGetCredsMetadata, nil, &resp), StatusOK)
			if resp.ExistingResidentCredentialsCount == nil || *resp.ExistingResidentCredentialsCount != 3 {
				t.Fatalf("existing = %v, want 3", resp.ExistingResidentCredentialsCount)
			}
			if resp.MaxPossibleRemainingResidentCredentialsCount == nil || *resp.MaxPossibleRemainingResidentCredentialsCount != defaultMaxCredentials-3 {
				t.Fatalf("remaining = %v, want %d", resp.MaxPossibleRemainingResidentCredentialsCount, defaultMaxCredentials-3)
			}
		})
	}
}

func TestCredMgmtEnumerateRPs(t *testing.T) {
	for _, tt := range cmCommands {
		t.Run("ShouldListEveryRPOnce/"+tt.name, func(t *testing.T) {
			f := newCMFixture(t)
			tok := f.cmToken("")
			var first authenticatorCredentialManagementResponse
			wantStatus(t, f.cmCall(tt.cmd, tok, CredMgmtEnumerateRPsBegin, nil, &first), StatusOK)
			if first.TotalRPs != 2 {
				t.Fatalf("totalRPs = %d, want 2", first.TotalRPs)
			}
			got := []*authenticatorCredentialManagementResponse{&first}
			var next authenticatorCredentialManagementResponse
			wantStatus(t, f.cmCall(tt.cmd, nil, CredMgmtEnumerateRPsGetNextRP, nil, &next), StatusOK)
			if next.TotalRPs != 0 {
				t.Fatalf("totalRPs %d in GetNextRP, want it only in Begin", next.TotalRPs)
			}
			got = append(got, &next)
			var ids []string
			for _, r := range got {
				if r.RP == nil {
					t.Fatal("no rp in response")
				}
				if !bytes.Equal(r.RPIDHash, rpHash(r.RP.ID)) {
					t.Fatalf("rpIDHash of %q = %x", r.RP.ID, r.RPIDHash)
				}
				ids = append(ids, r.RP.ID)
			}
			sort.Strings(ids)
			if ids[0] != "example.com" || ids[1] != "other.example" {
				t.Fatalf("RPs = %v", ids)
			}
			// The enumeration is over.
			wantStatus(t, f.cmCall(tt.cmd, nil, CredMgmtEnumerateRPsGetNextRP, nil, nil), ErrNotAllowed)
		})
	}
}

func TestCredMgmtEnumerateCredentials(t *testing.T) {
	for _, tt := range cmCommands {
		t.Run("ShouldReturnUsersKeysAndProtection/"+tt.name, func(t *testing.T) {
			f := newCMFixture(t)
			tok := f.cmToken("")
			params := map[int]any{1: rpHash("example.com")}
			var first authenticatorCredentialManagementResponse
			wantStatus(t, f.cmCall(tt.cmd, tok, CredMgmtEnumerateCredentialsBegin, params, &first), StatusOK)
			if first.TotalCredentials != 2 {
				t.Fatalf("totalCredentials = %d, want 2", first.TotalCredentials)
			}
			var next authenticatorCredentialManagementResponse
			wantStatus(t, f.cmCall(tt.cmd, nil, CredMgmtEnumerateCredentialsGetNextCredential, nil, &next), StatusOK)
			wantProtect := map[string]uint{"alice": credProtectUVOptionalWithID, "bob": credProtectUVOptional}
			seen := map[string]bool{}
			for _, r := range []*authenticatorCredentialManagementResponse{&first, &next} {
				if r.User == nil || r.CredentialID == nil || r.PublicKey == nil {
					t.Fatalf("incomplete credential: %+v", r)
				}
				name := r.User.Name
				if !bytes.Equal(r.User.ID, []byte("uid-"+name)) || r.User.DisplayName != "User "+name {
					t.Fatalf("user = %+v", r.User)
				}
				if !bytes.Equal(r.CredentialID.ID, f.ids[name]) || r.CredentialID.Type != "public-key" {
					t.Fatalf("credential ID of %s = %x (%s), want %x", name, r.CredentialID.ID, r.CredentialID.Type, f.ids[name])
				}
				want := f.pubs[name]
				if r.PublicKey.Kty != want.Kty || r.PublicKey.Alg != want.Alg || !bytes.Equal(r.PublicKey.X, want.X) || !bytes.Equal(r.PublicKey.Y, want.Y) {
					t.Fatalf("public key of %s differs from the one attested", name)
				}
				if r.CredProtect != wantProtect[name] {
					t.Fatalf("credProtect of %s = %d, want %d", name, r.CredProtect, wantProtect[name])
				}
				seen[name] = true
			}
			if !seen["alice"] || !seen["bob"] {
				t.Fatalf("enumerated %v, want alice and bob", seen)
			}
			wantStatus(t, f.cmCall(tt.cmd, nil, CredMgmtEnumerateCredentialsGetNextCredential, nil, nil), ErrNotAllowed)
		})
	}
}

func TestCredMgmtDeleteCredential(t *testing.T) {
	for _, tt := range cmCommands {
		t.Run("ShouldForgetDeletedCredential/"+tt.name, func(t *testing.T) {
			f := newCMFixture(t)
			tok := f.cmToken("")
			del := map[int]any{2: credDesc(f.ids["carol"])}
			wantStatus(t, f.cmCall(tt.cmd, tok, CredMgmtDeleteCredential, del, nil), StatusOK)

			// carol was the only credential of other.example.
			wantStatus(t, f.do(CmdGetAssertion, getAssertReq("other.example"), nil), ErrNoCredentials)
			wantStatus(t, f.do(CmdGetAssertion, getAssertReq("other.example", f.ids["carol"]), nil), ErrNoCredentials)
			wantStatus(t, f.cmCall(tt.cmd, tok, CredMgmtEnumerateCredentialsBegin, map[int]any{1: rpHash("other.example")}, nil), ErrNoCredentials)
			var meta authenticatorCredentialManagementResponse
			wantStatus(t, f.cmCall(tt.cmd, tok, CredMgmtGetCredsMetadata, nil, &meta), StatusOK)
			if *meta.ExistingResidentCredentialsCount != 2 {
				t.Fatalf("existing = %d after a delete, want 2", *meta.ExistingResidentCredentialsCount)
			}
			// The other RP's credentials are untouched.
			wantStatus(t, f.do(CmdGetAssertion, getAssertReq("example.com", f.ids["bob"]), nil), StatusOK)

			wantStatus(t, f.cmCall(tt.cmd, tok, CredMgmtDeleteCredential, del, nil), ErrNoCredentials)
		})
	}
}

func TestCredMgmtUpdateUserInformation(t *testing.T) {
	tests := []struct {
		name string
		user map[string]any
		want Status
	}{
		{name: "ShouldReplaceNames", user: map[string]any{"id": []byte("uid-bob"), "name": "robert", "displayName": "Robert"}, want: StatusOK},
		{name: "ShouldRemoveAbsentNames", user: map[string]any{"id": []byte("uid-bob")}, want: StatusOK},
		{name: "ShouldRejectOtherUserID", user: map[string]any{"id": []byte("uid-alice"), "name": "robert"}, want: ErrInvalidParameter},
		{name: "ShouldRequireUserID", user: map[string]any{"name": "robert"}, want: ErrMissingParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCMFixture(t)
			tok := f.cmToken("")
			params := map[int]any{2: credDesc(f.ids["bob"]), 3: tt.user}
			wantStatus(t, f.cmCall(CmdCredentialManagement, tok, CredMgmtUpdateUserInformation, params, nil), tt.want)

			wantName, wantDisplay := "bob", "User bob"
			if tt.want == StatusOK {
				wantName, _ = tt.user["name"].(string)
				wantDisplay, _ = tt.user["displayName"].(string)
			}
			found := false
			var r authenticatorCredentialManagementResponse
			err := f.cmCall(CmdCredentialManagement, tok, CredMgmtEnumerateCredentialsBegin, map[int]any{1: rpHash("example.com")}, &r)
			for ; err == nil; err = f.cmCall(CmdCredentialManagement, nil, CredMgmtEnumerateCredentialsGetNextCredential, nil, &r) {
				if bytes.Equal(r.User.ID, []byte("uid-bob")) {
					found = true
					if r.User.Name != wantName || r.User.DisplayName != wantDisplay {
						t.Fatalf("user = %+v, want name %q displayName %q", r.User, wantName, wantDisplay)
					}
				}
				r = authenticatorCredentialManagementResponse{}
			}
			wantStatus(t, err, ErrNotAllowed)
			if !found {
				t.Fatal("bob's credential not enumerated")
			}
		})
	}
}

func TestCredMgmtErrors(t *testing.T) {
	const cm = CmdCredentialManagement
	exampleHash := map[int]any{1: rpHash("example.com")}
	tests := []struct {
		name string
		run  func(f *cmFixture) error
		want Status
	}{
		{name: "ShouldRequirePinUvAuthParam", run: func(f *cmFixture) error {
			return f.cmCall(cm, nil, CredMgmtGetCredsMetadata, nil, nil)
		}, want: ErrPUATRequired},
		{name: "ShouldRequirePinUvAuthParamToDelete", run: func(f *cmFixture) error {
			return f.cmCall(cm, nil, CredMgmtDeleteCredential, map[int]any{2: credDesc(f.ids["bob"])}, nil)
		}, want: ErrPUATRequired},
		{name: "ShouldRejectWrongPinUvAuthParam", run: func(f *cmFixture) error {
			f.cmToken("")
			return f.do(cm, map[int]any{1: CredMgmtGetCredsMetadata, 3: 2, 4: make([]byte, 32)}, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRequireProtocolWithParam", run: func(f *cmFixture) error {
			return f.do(cm, map[int]any{1: CredMgmtGetCredsMetadata, 4: make([]byte, 32)}, nil)
		}, want: ErrMissingParameter},
		{name: "ShouldRejectUnknownProtocol", run: func(f *cmFixture) error {
			return f.do(cm, map[int]any{1: CredMgmtGetCredsMetadata, 3: 7, 4: make([]byte, 32)}, nil)
		}, want: ErrInvalidParameter},
		{name: "ShouldRejectParamMadeForOtherSubcommand", run: func(f *cmFixture) error {
			tok := f.cmToken("")
			return f.do(cm, map[int]any{1: CredMgmtEnumerateRPsBegin, 3: 2, 4: tok.auth([]byte{CredMgmtGetCredsMetadata})}, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectParamMadeForOtherSubCommandParams", run: func(f *cmFixture) error {
			tok := f.cmToken("")
			signed := marshal(map[int]any{2: credDesc(f.ids["alice"])})
			sent := marshal(map[int]any{2: credDesc(f.ids["bob"])})
			return f.do(cm, map[int]any{1: CredMgmtDeleteCredential, 2: cbor.RawMessage(sent), 3: 2,
				4: tok.auth(append([]byte{CredMgmtDeleteCredential}, signed...))}, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectTokenFromEarlierPowerCycle", run: func(f *cmFixture) error {
			tok := f.cmToken("")
			f.key.PowerCycle()
			return f.cmCall(cm, tok, CredMgmtGetCredsMetadata, nil, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectExpiredToken", run: func(f *cmFixture) error {
			tok := f.cmToken("")
			f.now = f.now.Add(tokenMaxUsage + time.Second)
			return f.cmCall(cm, tok, CredMgmtGetCredsMetadata, nil, nil)
		}, want: ErrPINAuthInvalid},
		// CTAP 2.1 §6.8.2: "verifies that the pinUvAuthToken has the cm
		// permission ... If not, return CTAP2_ERR_PIN_AUTH_INVALID".
		{name: "ShouldRejectTokenWithoutCMPermission", run: func(f *cmFixture) error {
			tok := f.mustToken(2, cmPIN, PermMakeCredential|PermGetAssertion|PermAuthenticatorCfg, "example.com")
			return f.cmCall(cm, tok, CredMgmtGetCredsMetadata, nil, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectLegacyPinToken", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.mustToken(1, cmPIN, 0, ""), CredMgmtGetCredsMetadata, nil, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldAcceptProtocolOneToken", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.mustToken(1, cmPIN, PermCredentialMgmt, ""), CredMgmtGetCredsMetadata, nil, nil)
		}, want: StatusOK},
		{name: "ShouldRejectGetNextRPWithoutBegin", run: func(f *cmFixture) error {
			return f.cmCall(cm, nil, CredMgmtEnumerateRPsGetNextRP, nil, nil)
		}, want: ErrNotAllowed},
		{name: "ShouldRejectGetNextCredentialWithoutBegin", run: func(f *cmFixture) error {
			return f.cmCall(cm, nil, CredMgmtEnumerateCredentialsGetNextCredential, nil, nil)
		}, want: ErrNotAllowed},
		{name: "ShouldRejectGetNextRPAfterOtherCommand", run: func(f *cmFixture) error {
			wantStatus(f.t, f.cmCall(cm, f.cmToken(""), CredMgmtEnumerateRPsBegin, nil, nil), StatusOK)
			wantStatus(f.t, f.do(CmdGetInfo, nil, nil), StatusOK)
			return f.cmCall(cm, nil, CredMgmtEnumerateRPsGetNextRP, nil, nil)
		}, want: ErrNotAllowed},
		{name: "ShouldRejectGetNextCredentialAfterOtherCommand", run: func(f *cmFixture) error {
			wantStatus(f.t, f.cmCall(cm, f.cmToken(""), CredMgmtEnumerateCredentialsBegin, exampleHash, nil), StatusOK)
			wantStatus(f.t, f.do(CmdGetInfo, nil, nil), StatusOK)
			return f.cmCall(cm, nil, CredMgmtEnumerateCredentialsGetNextCredential, nil, nil)
		}, want: ErrNotAllowed},
		{name: "ShouldRejectGetNextCredentialAfterOtherSubcommand", run: func(f *cmFixture) error {
			tok := f.cmToken("")
			wantStatus(f.t, f.cmCall(cm, tok, CredMgmtEnumerateCredentialsBegin, exampleHash, nil), StatusOK)
			wantStatus(f.t, f.cmCall(cm, tok, CredMgmtGetCredsMetadata, nil, nil), StatusOK)
			return f.cmCall(cm, nil, CredMgmtEnumerateCredentialsGetNextCredential, nil, nil)
		}, want: ErrNotAllowed},
		{name: "ShouldRejectGetNextRPAfterMalformedRequest", run: func(f *cmFixture) error {
			wantStatus(f.t, f.cmCall(cm, f.cmToken(""), CredMgmtEnumerateRPsBegin, nil, nil), StatusOK)
			if st, _ := f.doRaw(cm, []byte{0xa1, 0x01}); st != ErrInvalidCBOR {
				f.t.Fatalf("truncated request: %v", st)
			}
			return f.cmCall(cm, nil, CredMgmtEnumerateRPsGetNextRP, nil, nil)
		}, want: ErrNotAllowed},
		{name: "ShouldRejectGetNextCredentialAfterRequestWithoutSubcommand", run: func(f *cmFixture) error {
			wantStatus(f.t, f.cmCall(cm, f.cmToken(""), CredMgmtEnumerateCredentialsBegin, exampleHash, nil), StatusOK)
			wantStatus(f.t, f.do(cm, map[int]any{3: 2}, nil), ErrMissingParameter)
			return f.cmCall(cm, nil, CredMgmtEnumerateCredentialsGetNextCredential, nil, nil)
		}, want: ErrNotAllowed},
		{name: "ShouldRejectGetNextRPOnOtherCommandNumber", run: func(f *cmFixture) error {
			wantStatus(f.t, f.cmCall(cm, f.cmToken(""), CredMgmtEnumerateRPsBegin, nil, nil), StatusOK)
			return f.cmCall(CmdCredentialMgmtPreview, nil, CredMgmtEnumerateRPsGetNextRP, nil, nil)
		}, want: ErrNotAllowed},
		{name: "ShouldRejectGetNextCredentialDuringRPEnumeration", run: func(f *cmFixture) error {
			wantStatus(f.t, f.cmCall(cm, f.cmToken(""), CredMgmtEnumerateRPsBegin, nil, nil), StatusOK)
			return f.cmCall(cm, nil, CredMgmtEnumerateCredentialsGetNextCredential, nil, nil)
		}, want: ErrNotAllowed},
		{name: "ShouldReportNoRPsOnEmptyKey", run: func(f *cmFixture) error {
			c := newTestKey(f.t, Config{})
			wantStatus(f.t, c.setPIN(2, cmPIN), StatusOK)
			return c.cmCall(cm, c.mustToken(2, cmPIN, PermCredentialMgmt, ""), CredMgmtEnumerateRPsBegin, nil, nil)
		}, want: ErrNoCredentials},
		{name: "ShouldReportNoCredentialsForUnknownRP", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken(""), CredMgmtEnumerateCredentialsBegin, map[int]any{1: rpHash("unknown.example")}, nil)
		}, want: ErrNoCredentials},
		{name: "ShouldReportNoCredentialsForServerSideCredential", run: func(f *cmFixture) error {
			resp, err := f.makeCred(makeCredReq("example.com", "erin", false))
			wantStatus(f.t, err, StatusOK)
			return f.cmCall(cm, f.cmToken(""), CredMgmtDeleteCredential, map[int]any{2: credDesc(credID(f.t, resp.AuthData))}, nil)
		}, want: ErrNoCredentials},
		{name: "ShouldRejectUnknownSubcommand", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken(""), 0x08, nil, nil)
		}, want: ErrInvalidSubcommand},
		{name: "ShouldRejectSubcommandZero", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken(""), 0x00, nil, nil)
		}, want: ErrInvalidSubcommand},
		{name: "ShouldRequireSubcommand", run: func(f *cmFixture) error {
			return f.do(cm, map[int]any{3: 2, 4: make([]byte, 32)}, nil)
		}, want: ErrMissingParameter},
		{name: "ShouldRequireRPIDHash", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken(""), CredMgmtEnumerateCredentialsBegin, nil, nil)
		}, want: ErrMissingParameter},
		{name: "ShouldRequireRPIDHashInParams", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken(""), CredMgmtEnumerateCredentialsBegin, map[int]any{2: credDesc(f.ids["bob"])}, nil)
		}, want: ErrMissingParameter},
		{name: "ShouldRequireCredentialIDToDelete", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken(""), CredMgmtDeleteCredential, exampleHash, nil)
		}, want: ErrMissingParameter},
		{name: "ShouldRejectSubCommandParamsOfWrongType", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken(""), CredMgmtEnumerateCredentialsBegin, map[int]any{1: "example.com"}, nil)
		}, want: ErrCBORUnexpectedType},
		// A token with a permissions RP ID reaches that RP's credentials
		// only (§6.8.2-6.8.6), and other uses are PIN_AUTH_INVALID.
		{name: "ShouldRejectRPBoundTokenForMetadata", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken("example.com"), CredMgmtGetCredsMetadata, nil, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectRPBoundTokenForEnumerateRPs", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken("example.com"), CredMgmtEnumerateRPsBegin, nil, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldAllowRPBoundTokenForItsRP", run: func(f *cmFixture) error {
			var r authenticatorCredentialManagementResponse
			err := f.cmCall(cm, f.cmToken("example.com"), CredMgmtEnumerateCredentialsBegin, exampleHash, &r)
			if err == nil && r.TotalCredentials != 2 {
				f.t.Fatalf("totalCredentials = %d, want 2", r.TotalCredentials)
			}
			return err
		}, want: StatusOK},
		{name: "ShouldRejectRPBoundTokenForOtherRP", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken("example.com"), CredMgmtEnumerateCredentialsBegin, map[int]any{1: rpHash("other.example")}, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldNotRevealOtherRPsToRPBoundToken", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken("example.com"), CredMgmtEnumerateCredentialsBegin, map[int]any{1: rpHash("unknown.example")}, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldAllowRPBoundTokenToDeleteItsRPCredential", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken("example.com"), CredMgmtDeleteCredential, map[int]any{2: credDesc(f.ids["bob"])}, nil)
		}, want: StatusOK},
		{name: "ShouldRejectRPBoundTokenDeletingOtherRPCredential", run: func(f *cmFixture) error {
			return f.cmCall(cm, f.cmToken("example.com"), CredMgmtDeleteCredential, map[int]any{2: credDesc(f.ids["carol"])}, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectRPBoundTokenUpdatingOtherRPUser", run: func(f *cmFixture) error {
			params := map[int]any{2: credDesc(f.ids["carol"]), 3: map[string]any{"id": []byte("uid-carol"), "name": "c"}}
			return f.cmCall(cm, f.cmToken("example.com"), CredMgmtUpdateUserInformation, params, nil)
		}, want: ErrPINAuthInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCMFixture(t)
			wantStatus(t, tt.run(f), tt.want)
		})
	}
}

// A key reopened with a lower MaxCredentials (a new --max-credentials flag)
// may hold more credentials than it now allows; the count left is then
// zero, not an unsigned wrap-around.
func TestCredMgmtMetadataOverFullKey(t *testing.T) {
	tests := []struct {
		name          string
		max           int
		wantRemaining uint
	}{
		{name: "ShouldReportRemainingSpace", max: 5, wantRemaining: 2},
		{name: "ShouldReportFullKey", max: 3, wantRemaining: 0},
		{name: "ShouldReportNoSpaceWhenOverFull", max: 2, wantRemaining: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{StatePath: t.TempDir() + "/key", StateKey: make([]byte, 32), MaxCredentials: 5}
			c := newTestKey(t, cfg)
			for _, u := range []string{"a", "b", "c"} {
				_, err := c.makeCred(makeCredReq("example.com", u, true))
				wantStatus(t, err, StatusOK)
			}
			wantStatus(t, c.setPIN(2, cmPIN), StatusOK)
			cfg.MaxCredentials = tt.max
			c = newTestKey(t, cfg)
			var resp authenticatorCredentialManagementResponse
			wantStatus(t, c.cmCall(CmdCredentialManagement, c.mustToken(2, cmPIN, PermCredentialMgmt, ""), CredMgmtGetCredsMetadata, nil, &resp), StatusOK)
			if *resp.ExistingResidentCredentialsCount != 3 || *resp.MaxPossibleRemainingResidentCredentialsCount != tt.wantRemaining {
				t.Fatalf("existing %d remaining %d, want 3 and %d", *resp.ExistingResidentCredentialsCount,
					*resp.MaxPossibleRemainingResidentCredentialsCount, tt.wantRemaining)
			}
		})
	}
}

// A key reopened with a MaxCredentials below what it holds reports none
// remaining rather than wrapping around (§6.4, 0x14).
func TestGetInfoRemainingOnOverFullKey(t *testing.T) {
	cfg := Config{StatePath: t.TempDir() + "/key", StateKey: make([]byte, 32), MaxCredentials: 3}
	c := newTestKey(t, cfg)
	for _, u := range []string{"a", "b", "c"} {
		_, err := c.makeCred(makeCredReq("example.com", u, true))
		wantStatus(t, err, StatusOK)
	}
	cfg.MaxCredentials = 2
	c = newTestKey(t, cfg)
	if got := c.readInfo().RemainingDiscoverableCredentials; got == nil || *got != 0 {
		t.Fatalf("remainingDiscoverableCredentials = %v, want 0", fmtUintPtr(got))
	}
}

func fmtUintPtr(p *uint) string {
	if p == nil {
		return "absent"
	}
	return strconv.FormatUint(uint64(*p), 10)
}
