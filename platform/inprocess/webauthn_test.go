package inprocess

import (
	"bytes"
	"context"
	"crypto/sha256"
	"reflect"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// recordingEngine stands in front of a key engine: it keeps every request
// and can leave an option out of getInfo, to look like an older key.
type recordingEngine struct {
	a    *softkey.Authenticator
	hide string // getInfo option left out; "" for none

	mu   sync.Mutex
	reqs [][]byte
}

func (e *recordingEngine) CBOR(ctx context.Context, req []byte, keepalive func(byte)) []byte {
	e.mu.Lock()
	e.reqs = append(e.reqs, append([]byte(nil), req...))
	e.mu.Unlock()
	resp := e.a.CBOR(ctx, req, keepalive)
	if e.hide == "" || len(req) == 0 || softkey.Command(req[0]) != softkey.CmdGetInfo || len(resp) < 2 || resp[0] != 0 {
		return resp
	}
	var m map[int]cbor.RawMessage
	var opts map[string]bool
	if cbor.Unmarshal(resp[1:], &m) != nil || cbor.Unmarshal(m[4], &opts) != nil {
		return resp
	}
	delete(opts, e.hide)
	m[4], _ = encMode.Marshal(opts)
	b, _ := encMode.Marshal(m)
	return append([]byte{0}, b...)
}

// requests returns the parameters of the requests of command cmd.
func (e *recordingEngine) requests(t *testing.T, cmd softkey.Command) []map[int]cbor.RawMessage {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []map[int]cbor.RawMessage
	for _, r := range e.reqs {
		if softkey.Command(r[0]) != cmd {
			continue
		}
		m := map[int]cbor.RawMessage{}
		if len(r) > 1 { // getNextAssertion has no parameters
			if err := cbor.Unmarshal(r[1:], &m); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, m)
	}
	return out
}

// recordedKey is a Key over a recordingEngine over a fresh engine.
func recordedKey(t *testing.T, cfg softkey.Config, hide string) (*Key, *recordingEngine) {
	t.Helper()
	a, err := softkey.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &recordingEngine{a: a, hide: hide}
	return &Key{a: e}, e
}

// decode decodes raw into a value of v's type and returns it.
func decode[T any](t *testing.T, raw cbor.RawMessage) T {
	t.Helper()
	var v T
	if err := cbor.Unmarshal(raw, &v); err != nil {
		t.Fatalf("% x: %v", []byte(raw), err)
	}
	return v
}

func TestMakeCredentialRequest(t *testing.T) {
	ctx := context.Background()
	cdh := sha256.Sum256([]byte("client data"))
	base := platform.MakeCredentialRequest{
		ClientDataHash: cdh[:], RP: platform.RPEntity{ID: "a.example", Name: "A"},
		User:       platform.User{ID: []byte("uid-alice"), Name: "alice", DisplayName: "Alice"},
		Algorithms: []int{platform.COSEAlgRS256, platform.COSEAlgEdDSA, platform.COSEAlgES256},
	}
	cases := []struct {
		name    string
		pin     bool
		edit    func(r *platform.MakeCredentialRequest)
		options map[string]bool // nil: no options member
		token   bool
	}{
		{name: "ShouldSendNoOptionsForAPlainCredential"},
		{name: "ShouldAskForADiscoverableCredential", edit: func(r *platform.MakeCredentialRequest) { r.ResidentKey = true },
			options: map[string]bool{"rk": true}},
		{name: "ShouldVerifyWithAPINTokenAndNoUVOption", pin: true, token: true,
			edit: func(r *platform.MakeCredentialRequest) {
				r.ResidentKey, r.UserVerification, r.PIN, r.CredProtect = true, true, testPIN, 2
				r.ExcludeList = [][]byte{bytes.Repeat([]byte{9}, 32)}
			},
			options: map[string]bool{"rk": true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, e := recordedKey(t, softkey.Config{}, "")
			if tc.pin {
				wantKind(t, k.SetPIN(ctx, testPIN), nil)
			}
			req := base
			if tc.edit != nil {
				tc.edit(&req)
			}
			att, err := k.MakeCredential(ctx, req)
			wantKind(t, err, nil)
			mc := e.requests(t, softkey.CmdMakeCredential)
			if len(mc) != 1 {
				t.Fatalf("%d makeCredential requests", len(mc))
			}
			m := mc[0]
			// pubKeyCredParams in the caller's order, unsupported ones too:
			// choosing is the key's job.
			params := decode[[]map[string]any](t, m[4])
			var algs []int64
			for _, p := range params {
				if p["type"] != "public-key" {
					t.Fatalf("param %v", p)
				}
				algs = append(algs, p["alg"].(int64))
			}
			if !reflect.DeepEqual(algs, []int64{-257, -8, -7}) {
				t.Fatalf("algorithms %v", algs)
			}
			if user := decode[map[string]any](t, m[3]); !bytes.Equal(user["id"].([]byte), []byte("uid-alice")) || user["name"] != "alice" || user["displayName"] != "Alice" {
				t.Fatalf("user %v", user)
			}
			if m[7] == nil && tc.options != nil || m[7] != nil && !reflect.DeepEqual(decode[map[string]bool](t, m[7]), tc.options) {
				t.Fatalf("options % x, want %v", []byte(m[7]), tc.options)
			}
			if (m[8] != nil) != tc.token || (m[9] != nil) != tc.token {
				t.Fatalf("pinUvAuthParam % x protocol % x", []byte(m[8]), []byte(m[9]))
			}
			if tc.token {
				if ext := decode[map[string]int](t, m[6]); ext["credProtect"] != 2 {
					t.Fatalf("extensions %v", ext)
				}
				if ex := decode[[]map[string]any](t, m[5]); len(ex) != 1 || ex[0]["type"] != "public-key" {
					t.Fatalf("excludeList %v", ex)
				}
				pins := e.requests(t, softkey.CmdClientPIN)
				last := pins[len(pins)-1]
				if decode[int](t, last[2]) != softkey.ClientPINGetPinUvAuthTokenUsingPinWithPerms ||
					decode[int](t, last[9]) != int(softkey.PermMakeCredential) || decode[string](t, last[10]) != "a.example" {
					t.Fatalf("token request sub %s perms %s rpId %s", last[2], last[9], last[10])
				}
			}
			if !bytes.Equal(att.CredentialID, attestedID(t, att.AuthData)) || len(att.CredentialID) == 0 {
				t.Fatalf("credential ID %x", att.CredentialID)
			}
		})
	}
}

// attestedID reads the credential ID of authData independently of the
// code under test: 37 bytes of header, 16 of AAGUID, a 2-byte length.
func attestedID(t *testing.T, authData []byte) []byte {
	t.Helper()
	if len(authData) < 55 {
		t.Fatalf("authData of %d bytes", len(authData))
	}
	n := int(authData[53])<<8 | int(authData[54])
	return authData[55 : 55+n]
}

// TestGetAssertionReadsEveryCredential checks that a discoverable request
// asks for the others with getNextAssertion, without a touch, while a
// request with an allow list asks once.
func TestGetAssertionReadsEveryCredential(t *testing.T) {
	ctx := context.Background()
	k, e := recordedKey(t, softkey.Config{}, "")
	for _, user := range []string{"alice", "bob", "carol"} {
		req := platform.MakeCredentialRequest{
			ClientDataHash: make([]byte, 32), RP: platform.RPEntity{ID: "a.example"},
			User: platform.User{ID: []byte(user), Name: user}, Algorithms: []int{platform.COSEAlgES256}, ResidentKey: true,
		}
		_, err := k.MakeCredential(ctx, req)
		wantKind(t, err, nil)
	}
	var r recorder
	pctx := platform.WithProgress(ctx, r.report)
	as, err := k.GetAssertion(pctx, platform.GetAssertionRequest{RPID: "a.example", ClientDataHash: make([]byte, 32)})
	wantKind(t, err, nil)
	if len(as) != 3 || len(e.requests(t, softkey.CmdGetNextAssertion)) != 2 {
		t.Fatalf("%d assertions, %d getNextAssertion", len(as), len(e.requests(t, softkey.CmdGetNextAssertion)))
	}
	touches := 0
	for _, ev := range r.stages() {
		if ev.Stage == platform.StageTouch {
			touches++
		}
	}
	if touches != 1 {
		t.Fatalf("%d touches reported for one", touches)
	}
	as, err = k.GetAssertion(ctx, platform.GetAssertionRequest{RPID: "a.example", ClientDataHash: make([]byte, 32), AllowList: [][]byte{as[2].CredentialID, as[0].CredentialID}})
	wantKind(t, err, nil)
	if len(as) != 1 || len(e.requests(t, softkey.CmdGetNextAssertion)) != 2 {
		t.Fatalf("%d assertions with an allow list", len(as))
	}
}

// TestPINTokenWithoutPermissions checks a key without the pinUvAuthToken
// option (CTAP 2.0): the token comes from getPinToken (0x05), as libfido2
// asks for it, and serves both ceremonies.
func TestPINTokenWithoutPermissions(t *testing.T) {
	ctx := context.Background()
	k, e := recordedKey(t, softkey.Config{}, "pinUvAuthToken")
	wantKind(t, k.SetPIN(ctx, testPIN), nil)
	req := platform.MakeCredentialRequest{
		ClientDataHash: make([]byte, 32), RP: platform.RPEntity{ID: "a.example"},
		User: platform.User{ID: []byte("alice"), Name: "alice"}, Algorithms: []int{platform.COSEAlgES256},
		ResidentKey: true, UserVerification: true, PIN: testPIN,
	}
	_, err := k.MakeCredential(ctx, req)
	wantKind(t, err, nil)
	as, err := k.GetAssertion(ctx, platform.GetAssertionRequest{RPID: "a.example", ClientDataHash: make([]byte, 32), UserVerification: true, PIN: testPIN})
	wantKind(t, err, nil)
	if len(as) != 1 || as[0].User == nil || as[0].User.Name != "alice" {
		t.Fatalf("assertions %+v", as)
	}
	_, err = k.GetAssertion(ctx, platform.GetAssertionRequest{RPID: "a.example", ClientDataHash: make([]byte, 32), PIN: "0000"})
	wantKind(t, err, platform.ErrPINInvalid)
	if n := retriesLeft(t, err); n != 7 {
		t.Fatalf("%d attempts left", n)
	}
	tokens := 0
	for _, p := range e.requests(t, softkey.CmdClientPIN) {
		switch decode[int](t, p[2]) {
		case softkey.ClientPINGetPinToken:
			tokens++
		case softkey.ClientPINGetPinUvAuthTokenUsingPinWithPerms:
			t.Fatal("a token with permissions asked of a key without them")
		}
	}
	if tokens != 3 {
		t.Fatalf("%d getPinToken requests, want 3", tokens)
	}
}

func TestAttestedCredentialID(t *testing.T) {
	header := make([]byte, 37)
	withAT := func(rest ...byte) []byte {
		h := append([]byte(nil), header...)
		h[32] = 0x41
		return append(append(h, make([]byte, 16)...), rest...)
	}
	cases := []struct {
		name     string
		authData []byte
		want     []byte
	}{
		{name: "ShouldReadTheID", authData: withAT(0, 2, 0xaa, 0xbb, 0xa5), want: []byte{0xaa, 0xbb}},
		{name: "ShouldRefuseAuthDataWithoutTheATFlag", authData: append(append([]byte(nil), header...), make([]byte, 20)...)},
		{name: "ShouldRefuseATooShortID", authData: withAT(0, 9, 0xaa)},
		{name: "ShouldRefuseAnEmptyID", authData: withAT(0, 0)},
		{name: "ShouldRefuseTruncatedAuthData", authData: header[:20]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := attestedCredentialID(tc.authData)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("got %x, want an error", got)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x, %v", got, err)
			}
		})
	}
}
