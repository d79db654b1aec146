package softkey

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// bioCommands are the two numbers of authenticatorBioEnrollment.
var bioCommands = []struct {
	name string
	cmd  Command
}{
	{"0x09", CmdBioEnrollment},
	{"0x40", CmdBioEnrollmentPreview},
}

const bioPIN = "1234"

// switchPresence is a user whose behaviour a test changes as it goes, to
// refuse one touch after approving others. It approves until set.
type switchPresence struct{ p atomic.Pointer[Presence] }

func (s *switchPresence) set(p Presence) { s.p.Store(&p) }

func (s *switchPresence) Wait(ctx context.Context) error {
	if p := s.p.Load(); p != nil {
		return (*p).Wait(ctx)
	}
	return nil
}

// bioCall sends one fingerprint subcommand. A nil tok sends no
// pinUvAuthParam; the MAC covers modality || subCommand || subCommandParams.
func (c *testClient) bioCall(cmd Command, tok *tokenHandle, sub byte, params map[int]any, out any) error {
	c.t.Helper()
	req := map[int]any{1: BioModalityFingerprint, 2: sub}
	var raw []byte
	if params != nil {
		raw = marshal(params)
		req[3] = cbor.RawMessage(raw)
	}
	if tok != nil {
		req[4] = tok.version
		req[5] = tok.auth(append([]byte{BioModalityFingerprint, sub}, raw...))
	}
	return c.do(cmd, req, out)
}

// enrollFinger enrolls a finger with as many touches as the key asks for,
// so that tests do not hard-code the sample count.
func (c *testClient) enrollFinger(cmd Command, tok *tokenHandle) []byte {
	c.t.Helper()
	var resp authenticatorBioEnrollmentResponse
	if err := c.bioCall(cmd, tok, BioEnrollBegin, nil, &resp); err != nil {
		c.t.Fatalf("enrollBegin: %v", err)
	}
	id := resp.TemplateID
	for *resp.RemainingSamples > 0 {
		resp = authenticatorBioEnrollmentResponse{}
		if err := c.bioCall(cmd, tok, BioEnrollCaptureNextSample, map[int]any{1: id}, &resp); err != nil {
			c.t.Fatalf("enrollCaptureNextSample: %v", err)
		}
	}
	return id
}

// uvTokenWithPerms gets a token by fingerprint, which client_test.go's
// token helper (PIN only) cannot.
func (c *testClient) uvTokenWithPerms(version int, perms byte, rpID string) (*tokenHandle, error) {
	c.t.Helper()
	p := c.agree(version)
	req := map[int]any{1: version, 2: ClientPINGetPinUvAuthTokenUsingUvWithPerms, 3: p.pub, 9: perms}
	if rpID != "" {
		req[10] = rpID
	}
	return c.requestToken(p, version, req)
}

func newBioKey(t *testing.T, presence Presence) (*testClient, *tokenHandle) {
	t.Helper()
	c := newTestKey(t, Config{Presence: presence})
	wantStatus(t, c.setPIN(2, bioPIN), StatusOK)
	return c, c.mustToken(2, bioPIN, PermBioEnrollment, "")
}

func TestBioSensorInfo(t *testing.T) {
	for _, tt := range bioCommands {
		t.Run("ShouldDescribeTouchSensor/"+tt.name, func(t *testing.T) {
			c := newTestKey(t, Config{})
			// Neither query needs a PIN or token.
			var info authenticatorBioEnrollmentResponse
			wantStatus(t, c.bioCall(tt.cmd, nil, BioGetFingerprintSensorInfo, nil, &info), StatusOK)
			if info.FingerprintKind != bioFingerprintKindTouch || info.MaxCaptureSamplesRequiredForEnroll != bioSamplesPerEnrollment ||
				info.MaxTemplateFriendlyName != bioMaxFriendlyName {
				t.Fatalf("sensor info = %+v", info)
			}
			var mod authenticatorBioEnrollmentResponse
			wantStatus(t, c.do(tt.cmd, map[int]any{6: true}, &mod), StatusOK)
			if mod.Modality != BioModalityFingerprint {
				t.Fatalf("modality = %d, want fingerprint", mod.Modality)
			}
		})
	}
}

func TestBioEnrollment(t *testing.T) {
	for _, tt := range bioCommands {
		t.Run("ShouldEnrollNameAndRemoveFingerprint/"+tt.name, func(t *testing.T) {
			c, tok := newBioKey(t, nil)
			if info := c.readInfo(); info.Options["uv"] || info.Options["bioEnroll"] {
				t.Fatalf("uv %v bioEnroll %v before enrollment", info.Options["uv"], info.Options["bioEnroll"])
			}
			var resp authenticatorBioEnrollmentResponse
			wantStatus(t, c.bioCall(tt.cmd, tok, BioEnrollBegin, map[int]any{3: 10000}, &resp), StatusOK)
			id := resp.TemplateID
			if len(id) == 0 || resp.LastEnrollSampleStatus == nil || *resp.LastEnrollSampleStatus != bioSampleGood ||
				resp.RemainingSamples == nil || *resp.RemainingSamples != 3 {
				t.Fatalf("enrollBegin = %+v", resp)
			}
			for want := uint(2); ; want-- {
				resp = authenticatorBioEnrollmentResponse{}
				wantStatus(t, c.bioCall(tt.cmd, tok, BioEnrollCaptureNextSample, map[int]any{1: id}, &resp), StatusOK)
				if *resp.RemainingSamples != want || *resp.LastEnrollSampleStatus != bioSampleGood {
					t.Fatalf("capture = %+v, want %d remaining", resp, want)
				}
				if want == 0 {
					break
				}
			}
			if info := c.readInfo(); !info.Options["uv"] || !info.Options["bioEnroll"] {
				t.Fatalf("uv %v bioEnroll %v after enrollment", info.Options["uv"], info.Options["bioEnroll"])
			}

			enumerate := func() []templateInfo {
				t.Helper()
				var r authenticatorBioEnrollmentResponse
				wantStatus(t, c.bioCall(tt.cmd, tok, BioEnumerateEnrollments, nil, &r), StatusOK)
				return *r.TemplateInfos
			}
			if got := enumerate(); len(got) != 1 || !bytes.Equal(got[0].TemplateID, id) || got[0].TemplateFriendlyName != "" {
				t.Fatalf("enrollments = %+v", got)
			}
			wantStatus(t, c.bioCall(tt.cmd, tok, BioSetFriendlyName, map[int]any{1: id, 2: "right index"}, nil), StatusOK)
			if got := enumerate(); len(got) != 1 || got[0].TemplateFriendlyName != "right index" {
				t.Fatalf("enrollments after rename = %+v", got)
			}
			wantStatus(t, c.bioCall(tt.cmd, tok, BioRemoveEnrollment, map[int]any{1: id}, nil), StatusOK)
			wantStatus(t, c.bioCall(tt.cmd, tok, BioEnumerateEnrollments, nil, nil), ErrInvalidOption)
			if c.readInfo().Options["uv"] {
				t.Fatal("uv still true with no fingerprint left")
			}
		})
	}
}

func TestBioErrors(t *testing.T) {
	const be = CmdBioEnrollment
	tests := []struct {
		name string
		run  func(c *testClient, tok *tokenHandle, user *switchPresence) error
		want Status
	}{
		{name: "ShouldRejectCaptureWithWrongTemplateID", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			var r authenticatorBioEnrollmentResponse
			wantStatus(c.t, c.bioCall(be, tok, BioEnrollBegin, nil, &r), StatusOK)
			wrong := append([]byte{^r.TemplateID[0]}, r.TemplateID[1:]...)
			return c.bioCall(be, tok, BioEnrollCaptureNextSample, map[int]any{1: wrong}, nil)
		}, want: ErrInvalidParameter},
		{name: "ShouldRequireTemplateIDToCapture", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			wantStatus(c.t, c.bioCall(be, tok, BioEnrollBegin, nil, nil), StatusOK)
			return c.bioCall(be, tok, BioEnrollCaptureNextSample, nil, nil)
		}, want: ErrMissingParameter},
		{name: "ShouldRejectCaptureWithoutEnrollment", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			return c.bioCall(be, tok, BioEnrollCaptureNextSample, map[int]any{1: []byte("template")}, nil)
		}, want: ErrInvalidParameter},
		{name: "ShouldRejectCaptureAfterCancel", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			var r authenticatorBioEnrollmentResponse
			wantStatus(c.t, c.bioCall(be, tok, BioEnrollBegin, nil, &r), StatusOK)
			wantStatus(c.t, c.bioCall(be, nil, BioCancelCurrentEnrollment, nil, nil), StatusOK)
			return c.bioCall(be, tok, BioEnrollCaptureNextSample, map[int]any{1: r.TemplateID}, nil)
		}, want: ErrInvalidParameter},
		{name: "ShouldNotStoreCancelledEnrollment", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			wantStatus(c.t, c.bioCall(be, tok, BioEnrollBegin, nil, nil), StatusOK)
			wantStatus(c.t, c.bioCall(be, nil, BioCancelCurrentEnrollment, nil, nil), StatusOK)
			return c.bioCall(be, tok, BioEnumerateEnrollments, nil, nil)
		}, want: ErrInvalidOption},
		{name: "ShouldRejectSixthTemplate", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			for range bioMaxTemplates {
				c.enrollFinger(be, tok)
			}
			return c.bioCall(be, tok, BioEnrollBegin, nil, nil)
		}, want: ErrFPDatabaseFull},
		{name: "ShouldAcceptNewTemplateAfterRemoval", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			var last []byte
			for range bioMaxTemplates {
				last = c.enrollFinger(be, tok)
			}
			wantStatus(c.t, c.bioCall(be, tok, BioRemoveEnrollment, map[int]any{1: last}, nil), StatusOK)
			return c.bioCall(be, tok, BioEnrollBegin, nil, nil)
		}, want: StatusOK},
		{name: "ShouldTimeOutWhenNoFingerDuringCapture", run: func(c *testClient, tok *tokenHandle, user *switchPresence) error {
			var r authenticatorBioEnrollmentResponse
			wantStatus(c.t, c.bioCall(be, tok, BioEnrollBegin, nil, &r), StatusOK)
			user.set(DenyAlways)
			return c.bioCall(be, tok, BioEnrollCaptureNextSample, map[int]any{1: r.TemplateID}, nil)
		}, want: ErrUserActionTimeout},
		{name: "ShouldTimeOutWhenNoFingerAtBegin", run: func(c *testClient, tok *tokenHandle, user *switchPresence) error {
			user.set(DenyAlways)
			return c.bioCall(be, tok, BioEnrollBegin, nil, nil)
		}, want: ErrUserActionTimeout},
		{name: "ShouldRequirePinUvAuthParam", run: func(c *testClient, _ *tokenHandle, _ *switchPresence) error {
			return c.bioCall(be, nil, BioEnrollBegin, nil, nil)
		}, want: ErrPUATRequired},
		{name: "ShouldRequirePinUvAuthParamToEnumerate", run: func(c *testClient, _ *tokenHandle, _ *switchPresence) error {
			return c.bioCall(be, nil, BioEnumerateEnrollments, nil, nil)
		}, want: ErrPUATRequired},
		{name: "ShouldRejectWrongPinUvAuthParam", run: func(c *testClient, _ *tokenHandle, _ *switchPresence) error {
			return c.do(be, map[int]any{1: BioModalityFingerprint, 2: BioEnrollBegin, 4: 2, 5: make([]byte, 32)}, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectParamWithoutModality", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			return c.do(be, map[int]any{1: BioModalityFingerprint, 2: BioEnrollBegin, 4: 2, 5: tok.auth([]byte{BioEnrollBegin})}, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectUnknownProtocol", run: func(c *testClient, _ *tokenHandle, _ *switchPresence) error {
			return c.do(be, map[int]any{1: BioModalityFingerprint, 2: BioEnrollBegin, 4: 5, 5: make([]byte, 32)}, nil)
		}, want: ErrInvalidParameter},
		// CTAP 2.1 §6.7: a token without the be permission is
		// CTAP2_ERR_PIN_AUTH_INVALID, as for the other management commands.
		{name: "ShouldRejectTokenWithoutBePermission", run: func(c *testClient, _ *tokenHandle, _ *switchPresence) error {
			return c.bioCall(be, c.mustToken(2, bioPIN, PermCredentialMgmt|PermAuthenticatorCfg, ""), BioEnrollBegin, nil, nil)
		}, want: ErrPINAuthInvalid},
		{name: "ShouldRejectUnknownSubcommand", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			return c.bioCall(be, tok, 0x08, nil, nil)
		}, want: ErrInvalidSubcommand},
		{name: "ShouldRequireSubcommand", run: func(c *testClient, _ *tokenHandle, _ *switchPresence) error {
			return c.do(be, map[int]any{1: BioModalityFingerprint}, nil)
		}, want: ErrMissingParameter},
		{name: "ShouldRejectEnumerateWithoutEnrollments", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			return c.bioCall(be, tok, BioEnumerateEnrollments, nil, nil)
		}, want: ErrInvalidOption},
		{name: "ShouldRejectRenamingUnknownTemplate", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			c.enrollFinger(be, tok)
			return c.bioCall(be, tok, BioSetFriendlyName, map[int]any{1: []byte("nope"), 2: "x"}, nil)
		}, want: ErrInvalidOption},
		{name: "ShouldRejectRemovingUnknownTemplate", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			c.enrollFinger(be, tok)
			return c.bioCall(be, tok, BioRemoveEnrollment, map[int]any{1: []byte("nope")}, nil)
		}, want: ErrInvalidOption},
		{name: "ShouldRequireFriendlyName", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			return c.bioCall(be, tok, BioSetFriendlyName, map[int]any{1: c.enrollFinger(be, tok)}, nil)
		}, want: ErrMissingParameter},
		{name: "ShouldRejectTemplateIDOfWrongType", run: func(c *testClient, tok *tokenHandle, _ *switchPresence) error {
			return c.bioCall(be, tok, BioRemoveEnrollment, map[int]any{1: "template"}, nil)
		}, want: ErrCBORUnexpectedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := &switchPresence{}
			c, tok := newBioKey(t, user)
			wantStatus(t, tt.run(c, tok, user), tt.want)
		})
	}
}

func TestBioNoBiometrics(t *testing.T) {
	tests := []struct {
		name string
		run  func(c *testClient) error
		want Status
	}{
		{name: "ShouldRejectBioEnrollment", run: func(c *testClient) error {
			return c.bioCall(CmdBioEnrollment, nil, BioGetFingerprintSensorInfo, nil, nil)
		}, want: ErrInvalidCommand},
		{name: "ShouldRejectBioEnrollmentPreview", run: func(c *testClient) error {
			return c.bioCall(CmdBioEnrollmentPreview, nil, BioGetFingerprintSensorInfo, nil, nil)
		}, want: ErrInvalidCommand},
		{name: "ShouldRejectGetModality", run: func(c *testClient) error {
			return c.do(CmdBioEnrollment, map[int]any{6: true}, nil)
		}, want: ErrInvalidCommand},
		// §6.5.5.7: a permission for a feature the key lacks.
		{name: "ShouldRefuseBePermission", run: func(c *testClient) error {
			wantStatus(c.t, c.setPIN(2, bioPIN), StatusOK)
			_, err := c.token(2, bioPIN, PermBioEnrollment, "")
			return err
		}, want: ErrUnauthorizedPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestKey(t, Config{NoBiometrics: true})
			wantStatus(t, tt.run(c), tt.want)
			info := c.readInfo()
			if _, ok := info.Options["uv"]; ok {
				t.Fatal("getInfo has uv without a sensor")
			}
			if _, ok := info.Options["bioEnroll"]; ok {
				t.Fatal("getInfo has bioEnroll without a sensor")
			}
		})
	}
}

func TestBioUserVerification(t *testing.T) {
	tests := []struct {
		name string
		req  func(c *testClient) (map[int]any, error)
		want Status
	}{
		{name: "ShouldIssueUVTokenForMakeCredential", req: func(c *testClient) (map[int]any, error) {
			tok, err := c.uvTokenWithPerms(2, PermMakeCredential, "example.com")
			if err != nil {
				return nil, err
			}
			return withToken(makeCredReq("example.com", "alice", true), tok, 1, 8), nil
		}, want: StatusOK},
		{name: "ShouldIssueUVTokenWithProtocolOne", req: func(c *testClient) (map[int]any, error) {
			tok, err := c.uvTokenWithPerms(1, PermMakeCredential|PermGetAssertion, "example.com")
			if err != nil {
				return nil, err
			}
			return withToken(makeCredReq("example.com", "alice", false), tok, 1, 8), nil
		}, want: StatusOK},
		{name: "ShouldVerifyWithUvOption", req: func(c *testClient) (map[int]any, error) {
			req := makeCredReq("example.com", "alice", true)
			req[7] = map[string]bool{"rk": true, "uv": true}
			return req, nil
		}, want: StatusOK},
		{name: "ShouldRequireRPIDForMakeCredentialPermission", req: func(c *testClient) (map[int]any, error) {
			_, err := c.uvTokenWithPerms(2, PermMakeCredential, "")
			return nil, err
		}, want: ErrMissingParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, tok := newBioKey(t, nil)
			c.enrollFinger(CmdBioEnrollment, tok)
			req, err := tt.req(c)
			if err == nil {
				var resp *authenticatorMakeCredentialResponse
				resp, err = c.makeCred(req)
				if err == nil && resp.AuthData[32]&flagUV == 0 {
					t.Fatalf("UV flag not set: flags %08b", resp.AuthData[32])
				}
			}
			wantStatus(t, err, tt.want)
		})
	}
}
