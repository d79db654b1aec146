package webauthn

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/keydesk/keydesk/platform"
)

// creationOptions is valid options for CreationRequest tests.
func creationOptions() *CreationOptions {
	return &CreationOptions{
		RP:               platform.RPEntity{ID: testRPID, Name: "Example"},
		User:             platform.User{ID: []byte("id-of-alice"), Name: "alice", DisplayName: "Alice"},
		Challenge:        challenge16,
		PubKeyCredParams: []int{platform.COSEAlgES256, platform.COSEAlgEdDSA},
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementDiscouraged, UserVerification: protocol.VerificationPreferred,
		},
		Attestation: protocol.PreferNoAttestation,
	}
}

func TestCreationRequest(t *testing.T) {
	full := Capabilities{ResidentKey: true, PINSet: true, CredProtect: true, Algorithms: []int{-7, -8}, Transports: []string{"usb"}}
	tests := []struct {
		name  string
		edit  func(o *CreationOptions)
		caps  Capabilities
		check func(t *testing.T, r *Registration)
	}{
		{name: "ShouldDefaultRPIDToTheOriginsHost", edit: func(o *CreationOptions) { o.RP.ID = "" }, check: func(t *testing.T, r *Registration) {
			if r.Request.RP.ID != "login.example.com" {
				t.Errorf("RP.ID = %q", r.Request.RP.ID)
			}
		}},
		{name: "ShouldKeepTheServicesRPIDSpelling", edit: func(o *CreationOptions) { o.RP.ID = "Example.COM" }, check: func(t *testing.T, r *Registration) {
			if r.Request.RP.ID != "Example.COM" {
				t.Errorf("RP.ID = %q; the key must hash the service's spelling", r.Request.RP.ID)
			}
		}},
		{name: "ShouldAskResidentKeyWhenPreferredAndPossible", caps: full, edit: func(o *CreationOptions) {
			o.AuthenticatorSelection.ResidentKey = protocol.ResidentKeyRequirementPreferred
		}, check: func(t *testing.T, r *Registration) {
			if !r.Request.ResidentKey {
				t.Error("ResidentKey = false")
			}
		}},
		{name: "ShouldNotAskResidentKeyWhenPreferredAndImpossible", edit: func(o *CreationOptions) {
			o.AuthenticatorSelection.ResidentKey = protocol.ResidentKeyRequirementPreferred
		}, check: func(t *testing.T, r *Registration) {
			if r.Request.ResidentKey {
				t.Error("ResidentKey = true")
			}
		}},
		{name: "ShouldNotAskResidentKeyWhenDiscouraged", caps: full, check: func(t *testing.T, r *Registration) {
			if r.Request.ResidentKey {
				t.Error("ResidentKey = true")
			}
		}},
		{name: "ShouldVerifyUserWhenPreferredAndPINSet", caps: full, check: func(t *testing.T, r *Registration) {
			if !r.Request.UserVerification {
				t.Error("UserVerification = false")
			}
		}},
		{name: "ShouldVerifyUserWhenPreferredAndBuiltInUV", caps: Capabilities{BuiltInUV: true}, check: func(t *testing.T, r *Registration) {
			if !r.Request.UserVerification {
				t.Error("UserVerification = false")
			}
		}},
		{name: "ShouldNotVerifyUserWhenPreferredWithoutPIN", check: func(t *testing.T, r *Registration) {
			if r.Request.UserVerification {
				t.Error("UserVerification = true")
			}
		}},
		{name: "ShouldNotVerifyUserWhenDiscouraged", caps: full, edit: func(o *CreationOptions) {
			o.AuthenticatorSelection.UserVerification = protocol.VerificationDiscouraged
		}, check: func(t *testing.T, r *Registration) {
			if r.Request.UserVerification {
				t.Error("UserVerification = true")
			}
		}},
		{name: "ShouldMapCredProtectLevels", caps: full, edit: func(o *CreationOptions) {
			o.Extensions.CredProtect = &CredProtectInput{Policy: protocol.CredentialProtectionPolicyUserVerificationOptionalWithCredentialIDList}
		}, check: func(t *testing.T, r *Registration) {
			if r.Request.CredProtect != 2 {
				t.Errorf("CredProtect = %d, want 2", r.Request.CredProtect)
			}
		}},
		{name: "ShouldDropUnenforcedCredProtectOnKeyWithout", edit: func(o *CreationOptions) {
			o.Extensions.CredProtect = &CredProtectInput{Policy: protocol.CredentialProtectionPolicyUserVerificationRequired}
		}, check: func(t *testing.T, r *Registration) {
			if r.Request.CredProtect != 0 {
				t.Errorf("CredProtect = %d, want 0", r.Request.CredProtect)
			}
		}},
		{name: "ShouldKeepOnlyTheKeysAlgorithms", caps: Capabilities{Algorithms: []int{-8, -257}}, check: func(t *testing.T, r *Registration) {
			if !slices.Equal(r.Request.Algorithms, []int{-8}) {
				t.Errorf("Algorithms = %v, want [-8]", r.Request.Algorithms)
			}
		}},
		{name: "ShouldTruncateNamesAtCharacterBoundary", edit: func(o *CreationOptions) {
			o.User.DisplayName = strings.Repeat("a", 63) + "é"
			o.RP.Name = strings.Repeat("b", 100)
		}, check: func(t *testing.T, r *Registration) {
			if r.Request.User.DisplayName != strings.Repeat("a", 63) || r.Request.RP.Name != strings.Repeat("b", 64) {
				t.Errorf("names %q, %q", r.Request.User.DisplayName, r.Request.RP.Name)
			}
		}},
		{name: "ShouldHashTheClientData", check: func(t *testing.T, r *Registration) {
			want := `{"type":"webauthn.create","challenge":"AAECAwQFBgcICQoLDA0ODw","origin":"https://login.example.com","crossOrigin":false}`
			if string(r.ClientDataJSON) != want || !bytes.Equal(r.Request.ClientDataHash, hash([]byte(want))) {
				t.Errorf("clientDataJSON %s", r.ClientDataJSON)
			}
			if r.Request.PIN != "" {
				t.Error("a request carries a PIN before one was asked")
			}
		}},
		{name: "ShouldCopyTheExcludeList", edit: func(o *CreationOptions) { o.ExcludeCredentials = [][]byte{[]byte("c1")} }, check: func(t *testing.T, r *Registration) {
			if len(r.Request.ExcludeList) != 1 || string(r.Request.ExcludeList[0]) != "c1" {
				t.Errorf("ExcludeList = %q", r.Request.ExcludeList)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := creationOptions()
			if tt.edit != nil {
				tt.edit(o)
			}
			r, err := CreationRequest(mustOrigin(t, testOrigin), o, tt.caps)
			if err != nil {
				t.Fatalf("CreationRequest: %v", err)
			}
			tt.check(t, r)
		})
	}
}

func TestCreationRequestRechecksHandMadeOptions(t *testing.T) {
	tests := []struct {
		name string
		edit func(o *CreationOptions)
		kind error
	}{
		{name: "ShouldRefuseShortChallenge", edit: func(o *CreationOptions) { o.Challenge = []byte("short") }, kind: ErrBadOptions},
		{name: "ShouldRefuseMissingUserID", edit: func(o *CreationOptions) { o.User.ID = nil }, kind: ErrBadOptions},
		{name: "ShouldRefuseNoAlgorithm", edit: func(o *CreationOptions) { o.PubKeyCredParams = nil }, kind: ErrUnsupportedAlgorithm},
		{name: "ShouldRefuseUnknownAlgorithm", edit: func(o *CreationOptions) { o.PubKeyCredParams = []int{-35} }, kind: ErrUnsupportedAlgorithm},
		{name: "ShouldRefuseEmptyCredentialID", edit: func(o *CreationOptions) { o.ExcludeCredentials = [][]byte{{}} }, kind: ErrBadOptions},
		{name: "ShouldRefuseUnknownPolicy", edit: func(o *CreationOptions) {
			o.Extensions.CredProtect = &CredProtectInput{Policy: "never"}
		}, kind: ErrBadOptions},
		{name: "ShouldRefuseForeignRPID", edit: func(o *CreationOptions) { o.RP.ID = "example.org" }, kind: ErrRPIDMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := creationOptions()
			tt.edit(o)
			_, err := CreationRequest(mustOrigin(t, testOrigin), o, Capabilities{})
			wantKind(t, err, tt.kind)
		})
	}
	if _, err := CreationRequest(mustOrigin(t, testOrigin), nil, Capabilities{}); err == nil {
		t.Error("CreationRequest(nil options) succeeded")
	}
	if _, err := AssertionRequest(mustOrigin(t, testOrigin), nil, Capabilities{}); err == nil {
		t.Error("AssertionRequest(nil options) succeeded")
	}
}

func TestAssertionRequest(t *testing.T) {
	tests := []struct {
		name   string
		opts   RequestOptions
		caps   Capabilities
		kind   error
		wantRP string
		wantUV bool
	}{
		{name: "ShouldDefaultRPIDToTheOriginsHost", opts: RequestOptions{Challenge: challenge16, UserVerification: protocol.VerificationPreferred}, wantRP: "login.example.com"},
		{name: "ShouldVerifyUserWhenPreferredAndPINSet", opts: RequestOptions{Challenge: challenge16, RPID: testRPID, UserVerification: protocol.VerificationPreferred}, caps: Capabilities{PINSet: true}, wantRP: testRPID, wantUV: true},
		{name: "ShouldNotVerifyUserWhenDiscouraged", opts: RequestOptions{Challenge: challenge16, RPID: testRPID, UserVerification: protocol.VerificationDiscouraged}, caps: Capabilities{PINSet: true}, wantRP: testRPID},
		{name: "ShouldRefuseRequiredUVWithoutPIN", opts: RequestOptions{Challenge: challenge16, UserVerification: protocol.VerificationRequired}, kind: ErrKeyNotCapable},
		{name: "ShouldRefuseForeignRPID", opts: RequestOptions{Challenge: challenge16, RPID: "login.example.com.evil.com"}, kind: ErrRPIDMismatch},
		{name: "ShouldRefuseShortChallenge", opts: RequestOptions{Challenge: challenge16[:8]}, kind: ErrBadOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := AssertionRequest(mustOrigin(t, testOrigin), &tt.opts, tt.caps)
			if tt.kind != nil {
				wantKind(t, err, tt.kind)
				return
			}
			if err != nil {
				t.Fatalf("AssertionRequest: %v", err)
			}
			if a.Request.RPID != tt.wantRP || a.Request.UserVerification != tt.wantUV {
				t.Errorf("request = %+v", a.Request)
			}
			if !strings.HasPrefix(string(a.ClientDataJSON), `{"type":"webauthn.get",`) || !bytes.Equal(a.Request.ClientDataHash, hash(a.ClientDataJSON)) {
				t.Errorf("clientDataJSON %s", a.ClientDataJSON)
			}
		})
	}
}
