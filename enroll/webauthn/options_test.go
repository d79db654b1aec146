package webauthn

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keydesk/keydesk/platform"
)

func TestParseCreationOptionsFromGoWebAuthn(t *testing.T) {
	rk := true
	excluded := []protocol.CredentialDescriptor{
		{Type: protocol.PublicKeyCredentialType, CredentialID: []byte("credential-one")},
		{Type: protocol.PublicKeyCredentialType, CredentialID: []byte("credential-two"), Transport: []protocol.AuthenticatorTransport{protocol.USB}},
	}
	tests := []struct {
		name  string
		opts  []webauthn.RegistrationOption
		check func(t *testing.T, o *CreationOptions)
	}{
		{
			name: "ShouldReadDefaults",
			check: func(t *testing.T, o *CreationOptions) {
				// go-webauthn offers ES256, ES384, ES512, RS256, ...,
				// EdDSA; only the three Keydesk knows are kept, in its
				// order.
				if !slices.Equal(o.PubKeyCredParams, []int{-7, -257, -8}) {
					t.Errorf("PubKeyCredParams = %v, want [-7 -257 -8]", o.PubKeyCredParams)
				}
				if o.Attestation != protocol.PreferNoAttestation {
					t.Errorf("Attestation = %q, want none", o.Attestation)
				}
				if o.AuthenticatorSelection.UserVerification != protocol.VerificationPreferred {
					t.Errorf("UserVerification = %q, want preferred", o.AuthenticatorSelection.UserVerification)
				}
				if len(o.ExcludeCredentials) != 0 || o.Extensions.CredProtect != nil || o.Extensions.CredProps {
					t.Errorf("unexpected exclusions or extensions: %+v", o)
				}
			},
		},
		{
			name: "ShouldReadResidentKeyAndUserVerification",
			opts: []webauthn.RegistrationOption{webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
				RequireResidentKey: &rk, ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationRequired,
				AuthenticatorAttachment: protocol.CrossPlatform,
			})},
			check: func(t *testing.T, o *CreationOptions) {
				s := o.AuthenticatorSelection
				if s.ResidentKey != protocol.ResidentKeyRequirementRequired || s.UserVerification != protocol.VerificationRequired ||
					s.RequireResidentKey == nil || !*s.RequireResidentKey || s.AuthenticatorAttachment != protocol.CrossPlatform {
					t.Errorf("AuthenticatorSelection = %+v", s)
				}
			},
		},
		{
			name: "ShouldReadExclusions",
			opts: []webauthn.RegistrationOption{webauthn.WithExclusions(excluded)},
			check: func(t *testing.T, o *CreationOptions) {
				if len(o.ExcludeCredentials) != 2 || string(o.ExcludeCredentials[0]) != "credential-one" || string(o.ExcludeCredentials[1]) != "credential-two" {
					t.Errorf("ExcludeCredentials = %q", o.ExcludeCredentials)
				}
			},
		},
		{
			name: "ShouldReadDirectAttestation",
			opts: []webauthn.RegistrationOption{webauthn.WithConveyancePreference(protocol.PreferDirectAttestation)},
			check: func(t *testing.T, o *CreationOptions) {
				if o.Attestation != protocol.PreferDirectAttestation {
					t.Errorf("Attestation = %q, want direct", o.Attestation)
				}
			},
		},
		{
			name: "ShouldReadCredProtectAndCredProps",
			opts: []webauthn.RegistrationOption{webauthn.WithExtensions(
				webauthn.WithExtensionCredentialProtectionPolicy(protocol.CredentialProtectionPolicyUserVerificationOptionalWithCredentialIDList, true),
				webauthn.WithExtensionCredProps(),
			)},
			check: func(t *testing.T, o *CreationOptions) {
				cp := o.Extensions.CredProtect
				if cp == nil || credProtectLevel(cp.Policy) != 2 || !cp.Enforce || !o.Extensions.CredProps {
					t.Errorf("Extensions = %+v (credProtect %+v)", o.Extensions, cp)
				}
			},
		},
		{
			name: "ShouldReadEdDSAOnly",
			opts: []webauthn.RegistrationOption{webauthn.WithCredentialParameters([]protocol.CredentialParameter{
				{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA},
			})},
			check: func(t *testing.T, o *CreationOptions) {
				if !slices.Equal(o.PubKeyCredParams, []int{platform.COSEAlgEdDSA}) {
					t.Errorf("PubKeyCredParams = %v, want EdDSA", o.PubKeyCredParams)
				}
			},
		},
	}
	rp := newRP(t)
	user := newUser("alice")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creation, session, err := rp.BeginRegistration(user, tt.opts...)
			if err != nil {
				t.Fatalf("BeginRegistration: %v", err)
			}
			forms := map[string][]byte{"wrapped": mustJSON(t, creation), "bare": mustJSON(t, creation.Response)}
			for form, data := range forms {
				o, err := ParseCreationOptions(data)
				if err != nil {
					t.Fatalf("%s: ParseCreationOptions: %v\n%s", form, err, data)
				}
				if b64(o.Challenge) != session.Challenge {
					t.Errorf("%s: challenge %q, want %q", form, b64(o.Challenge), session.Challenge)
				}
				if o.RP.ID != testRPID || o.RP.Name != "Example" {
					t.Errorf("%s: RP = %+v", form, o.RP)
				}
				if !bytes.Equal(o.User.ID, user.id) || o.User.Name != "alice" || o.User.DisplayName != "Alice" {
					t.Errorf("%s: User = %+v", form, o.User)
				}
				if o.Timeout < minTimeout || o.Timeout > maxTimeout {
					t.Errorf("%s: Timeout = %v, outside the clamp", form, o.Timeout)
				}
				tt.check(t, o)
			}
		})
	}
}

func TestParseRequestOptionsFromGoWebAuthn(t *testing.T) {
	rp := newRP(t)
	user := newUser("alice")
	user.creds = []webauthn.Credential{{ID: []byte("credential-one")}, {ID: []byte("credential-two")}}
	tests := []struct {
		name      string
		begin     func() (*protocol.CredentialAssertion, *webauthn.SessionData, error)
		wantAllow []string
		wantUV    protocol.UserVerificationRequirement
	}{
		{
			name:      "ShouldReadLogin",
			begin:     func() (*protocol.CredentialAssertion, *webauthn.SessionData, error) { return rp.BeginLogin(user) },
			wantAllow: []string{"credential-one", "credential-two"},
			wantUV:    protocol.VerificationPreferred,
		},
		{
			name: "ShouldReadRequiredUserVerification",
			begin: func() (*protocol.CredentialAssertion, *webauthn.SessionData, error) {
				return rp.BeginLogin(user, webauthn.WithUserVerification(protocol.VerificationRequired))
			},
			wantAllow: []string{"credential-one", "credential-two"},
			wantUV:    protocol.VerificationRequired,
		},
		{
			name: "ShouldReadDiscoverableLogin",
			begin: func() (*protocol.CredentialAssertion, *webauthn.SessionData, error) {
				return rp.BeginDiscoverableLogin()
			},
			wantUV: protocol.VerificationPreferred,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertion, session, err := tt.begin()
			if err != nil {
				t.Fatalf("begin: %v", err)
			}
			for form, data := range map[string][]byte{"wrapped": mustJSON(t, assertion), "bare": mustJSON(t, assertion.Response)} {
				o, err := ParseRequestOptions(data)
				if err != nil {
					t.Fatalf("%s: ParseRequestOptions: %v\n%s", form, err, data)
				}
				if b64(o.Challenge) != session.Challenge {
					t.Errorf("%s: challenge %q, want %q", form, b64(o.Challenge), session.Challenge)
				}
				if o.RPID != testRPID {
					t.Errorf("%s: RPID = %q", form, o.RPID)
				}
				var allow []string
				for _, id := range o.AllowCredentials {
					allow = append(allow, string(id))
				}
				if !slices.Equal(allow, tt.wantAllow) {
					t.Errorf("%s: AllowCredentials = %q, want %q", form, allow, tt.wantAllow)
				}
				if o.UserVerification != tt.wantUV {
					t.Errorf("%s: UserVerification = %q, want %q", form, o.UserVerification, tt.wantUV)
				}
			}
		})
	}
}

// creationBase is minimal valid creation options, for tests to change.
func creationBase() map[string]any {
	return map[string]any{
		"rp":               map[string]any{"id": testRPID, "name": "Example"},
		"user":             map[string]any{"id": b64([]byte("id-of-alice")), "name": "alice", "displayName": "Alice"},
		"challenge":        b64(challenge16),
		"pubKeyCredParams": []any{map[string]any{"type": "public-key", "alg": -7}},
	}
}

// requestBase is minimal valid request options.
func requestBase() map[string]any {
	return map[string]any{"challenge": b64(challenge16), "rpId": testRPID}
}

// sub returns the object member name of m, for edits of nested members.
func sub(m map[string]any, name string) map[string]any { return m[name].(map[string]any) }

// descriptorList is n credential descriptors.
func descriptorList(n int) []any {
	l := make([]any, n)
	for i := range l {
		l[i] = map[string]any{"type": "public-key", "id": b64([]byte{byte(i), byte(i >> 8), 1, 2})}
	}
	return l
}

func TestParseCreationOptionsNormalizes(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(m map[string]any)
		check func(t *testing.T, o *CreationOptions)
	}{
		{
			name: "ShouldDefaultEmptyAlgorithmsToES256AndRS256",
			edit: func(m map[string]any) { m["pubKeyCredParams"] = []any{} },
			check: func(t *testing.T, o *CreationOptions) {
				if !slices.Equal(o.PubKeyCredParams, []int{-7, -257}) {
					t.Errorf("PubKeyCredParams = %v", o.PubKeyCredParams)
				}
			},
		},
		{
			name: "ShouldKeepKnownAlgorithmsInServiceOrder",
			edit: func(m map[string]any) {
				m["pubKeyCredParams"] = []any{
					map[string]any{"type": "public-key", "alg": -35},
					map[string]any{"type": "public-key", "alg": -257},
					map[string]any{"type": "secret-key", "alg": -7},
					map[string]any{"type": "public-key", "alg": -8},
					map[string]any{"type": "public-key", "alg": -257},
				}
			},
			check: func(t *testing.T, o *CreationOptions) {
				if !slices.Equal(o.PubKeyCredParams, []int{-257, -8}) {
					t.Errorf("PubKeyCredParams = %v, want [-257 -8]", o.PubKeyCredParams)
				}
			},
		},
		{
			name: "ShouldTakeRequireResidentKeyWhenResidentKeyUnknown",
			edit: func(m map[string]any) {
				m["authenticatorSelection"] = map[string]any{"residentKey": "mandatory", "requireResidentKey": true, "userVerification": "always"}
			},
			check: func(t *testing.T, o *CreationOptions) {
				if o.AuthenticatorSelection.ResidentKey != protocol.ResidentKeyRequirementRequired {
					t.Errorf("ResidentKey = %q, want required", o.AuthenticatorSelection.ResidentKey)
				}
				if o.AuthenticatorSelection.UserVerification != protocol.VerificationPreferred {
					t.Errorf("UserVerification = %q, want preferred", o.AuthenticatorSelection.UserVerification)
				}
			},
		},
		{
			name: "ShouldPreferResidentKeyOverRequireResidentKey",
			edit: func(m map[string]any) {
				m["authenticatorSelection"] = map[string]any{"residentKey": "discouraged", "requireResidentKey": true}
			},
			check: func(t *testing.T, o *CreationOptions) {
				if o.AuthenticatorSelection.ResidentKey != protocol.ResidentKeyRequirementDiscouraged {
					t.Errorf("ResidentKey = %q, want discouraged", o.AuthenticatorSelection.ResidentKey)
				}
			},
		},
		{
			name: "ShouldTreatUnknownAttestationAsNone",
			edit: func(m map[string]any) { m["attestation"] = "everything" },
			check: func(t *testing.T, o *CreationOptions) {
				if o.Attestation != protocol.PreferNoAttestation {
					t.Errorf("Attestation = %q, want none", o.Attestation)
				}
			},
		},
		{
			name: "ShouldSkipDescriptorsOfOtherTypes",
			edit: func(m map[string]any) {
				m["excludeCredentials"] = []any{
					map[string]any{"type": "future-key", "id": b64([]byte("other"))},
					map[string]any{"type": "public-key", "id": b64([]byte("mine")), "transports": []any{"usb", "warp-drive"}},
				}
			},
			check: func(t *testing.T, o *CreationOptions) {
				if len(o.ExcludeCredentials) != 1 || string(o.ExcludeCredentials[0]) != "mine" {
					t.Errorf("ExcludeCredentials = %q", o.ExcludeCredentials)
				}
			},
		},
		{
			name: "ShouldIgnoreUnknownMembersAndTreatNullAsAbsent",
			edit: func(m map[string]any) {
				m["futureMember"] = map[string]any{"x": []any{1, 2}}
				m["Challenge"] = 12
				m["hints"] = []any{"security-key"}
				m["extensions"] = map[string]any{"prf": map[string]any{}, "credProps": nil}
				sub(m, "rp")["id"] = nil
				m["timeout"] = nil
			},
			check: func(t *testing.T, o *CreationOptions) {
				if o.RP.ID != "" || o.Extensions.CredProps || o.Timeout != defaultTimeout {
					t.Errorf("options = %+v", o)
				}
			},
		},
		{
			name: "ShouldAcceptPaddedBase64URL",
			edit: func(m map[string]any) {
				sub(m, "user")["id"] = base64.URLEncoding.EncodeToString([]byte("id-of-alice"))
			},
			check: func(t *testing.T, o *CreationOptions) {
				if string(o.User.ID) != "id-of-alice" {
					t.Errorf("User.ID = %q", o.User.ID)
				}
			},
		},
		{
			name: "ShouldRaiseShortTimeout",
			edit: func(m map[string]any) { m["timeout"] = 1000 },
			check: func(t *testing.T, o *CreationOptions) {
				if o.Timeout != minTimeout {
					t.Errorf("Timeout = %v, want %v", o.Timeout, minTimeout)
				}
			},
		},
		{
			name: "ShouldLowerHugeTimeout",
			edit: func(m map[string]any) { m["timeout"] = 1e300 },
			check: func(t *testing.T, o *CreationOptions) {
				if o.Timeout != maxTimeout {
					t.Errorf("Timeout = %v, want %v", o.Timeout, maxTimeout)
				}
			},
		},
		{
			name: "ShouldKeepTimeoutInRange",
			edit: func(m map[string]any) { m["timeout"] = 420000 },
			check: func(t *testing.T, o *CreationOptions) {
				if o.Timeout != 7*time.Minute {
					t.Errorf("Timeout = %v, want 7m", o.Timeout)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := creationBase()
			tt.edit(m)
			o, err := ParseCreationOptions(mustJSON(t, m))
			if err != nil {
				t.Fatalf("ParseCreationOptions: %v", err)
			}
			tt.check(t, o)
		})
	}
}

func TestParseCreationOptionsRefusesHostileInput(t *testing.T) {
	tests := []struct {
		name string
		edit func(m map[string]any)
		raw  string // used instead of the edited base when set
		kind error
		says string // part of the message
	}{
		{name: "ShouldRefuseHugeExcludeList", edit: func(m map[string]any) { m["excludeCredentials"] = descriptorList(MaxCredentialDescriptors + 1) }, kind: ErrBadOptions, says: "excludeCredentials has 65 entries"},
		{name: "ShouldRefuseOnlyUnknownAlgorithms", edit: func(m map[string]any) {
			m["pubKeyCredParams"] = []any{map[string]any{"type": "public-key", "alg": -35}, map[string]any{"type": "public-key", "alg": -36}}
		}, kind: ErrUnsupportedAlgorithm, says: "ES256, EdDSA, RS256"},
		{name: "ShouldRefuseOnlyUnknownTypes", edit: func(m map[string]any) {
			m["pubKeyCredParams"] = []any{map[string]any{"type": "secret-key", "alg": -7}}
		}, kind: ErrUnsupportedAlgorithm, says: "no public-key algorithm"},
		{name: "ShouldRefuseMissingAlgorithms", edit: func(m map[string]any) { delete(m, "pubKeyCredParams") }, kind: ErrBadOptions, says: "pubKeyCredParams is missing"},
		{name: "ShouldRefuseFractionalAlgorithm", edit: func(m map[string]any) {
			m["pubKeyCredParams"] = []any{map[string]any{"type": "public-key", "alg": -7.5}}
		}, kind: ErrBadOptions, says: "whole number"},
		{name: "ShouldRefuseEmptyChallenge", edit: func(m map[string]any) { m["challenge"] = "" }, kind: ErrBadOptions, says: "challenge is 0 bytes"},
		{name: "ShouldRefuseShortChallenge", edit: func(m map[string]any) { m["challenge"] = b64(make([]byte, 15)) }, kind: ErrBadOptions, says: "at least 16"},
		{name: "ShouldRefuseLongChallenge", edit: func(m map[string]any) { m["challenge"] = b64(make([]byte, 1025)) }, kind: ErrBadOptions, says: "challenge"},
		{name: "ShouldRefuseMissingChallenge", edit: func(m map[string]any) { delete(m, "challenge") }, kind: ErrBadOptions, says: "challenge is missing"},
		{name: "ShouldRefuseMalformedBase64", edit: func(m map[string]any) { m["challenge"] = "AAECAwQFBgcICQoLDA0OD$" }, kind: ErrBadOptions, says: "not base64url"},
		{name: "ShouldRefuseStandardAlphabet", edit: func(m map[string]any) { m["challenge"] = "+/+/+/+/+/+/+/+/+/+/+/+/" }, kind: ErrBadOptions, says: "not base64url"},
		{name: "ShouldRefuseNewlinesInBase64", edit: func(m map[string]any) { m["challenge"] = "AAECAwQFBgcI\nCQoLDA0ODw" }, kind: ErrBadOptions, says: "not base64url"},
		{name: "ShouldRefuseWrongPadding", edit: func(m map[string]any) { m["challenge"] = b64(challenge16) + "=" }, kind: ErrBadOptions, says: "not base64url"},
		{name: "ShouldRefuseChallengeNumber", edit: func(m map[string]any) { m["challenge"] = 12345 }, kind: ErrBadOptions, says: "challenge must be a string, not a number"},
		{name: "ShouldRefuseMissingUserID", edit: func(m map[string]any) { delete(sub(m, "user"), "id") }, kind: ErrBadOptions, says: "user.id is missing"},
		{name: "ShouldRefuseEmptyUserID", edit: func(m map[string]any) { sub(m, "user")["id"] = "" }, kind: ErrBadOptions, says: "user.id is empty"},
		{name: "ShouldRefuseOversizedUserID", edit: func(m map[string]any) { sub(m, "user")["id"] = b64(make([]byte, 65)) }, kind: ErrBadOptions, says: "user.id is 65 bytes"},
		{name: "ShouldRefuseMissingUserName", edit: func(m map[string]any) { delete(sub(m, "user"), "name") }, kind: ErrBadOptions, says: "user.name is missing"},
		{name: "ShouldRefuseMissingDisplayName", edit: func(m map[string]any) { delete(sub(m, "user"), "displayName") }, kind: ErrBadOptions, says: "user.displayName is missing"},
		{name: "ShouldRefuseMissingRP", edit: func(m map[string]any) { delete(m, "rp") }, kind: ErrBadOptions, says: "rp is missing"},
		{name: "ShouldRefuseNullRP", edit: func(m map[string]any) { m["rp"] = nil }, kind: ErrBadOptions, says: "rp is missing"},
		{name: "ShouldRefuseMissingRPName", edit: func(m map[string]any) { delete(sub(m, "rp"), "name") }, kind: ErrBadOptions, says: "rp.name is missing"},
		{name: "ShouldRefuseRPAsString", edit: func(m map[string]any) { m["rp"] = "example.com" }, kind: ErrBadOptions, says: "rp must be an object, not a string"},
		{name: "ShouldRefuseRPIDNumber", edit: func(m map[string]any) { sub(m, "rp")["id"] = 7 }, kind: ErrBadOptions, says: "rp.id must be a string"},
		{name: "ShouldRefuseEmptyRPID", edit: func(m map[string]any) { sub(m, "rp")["id"] = "" }, kind: ErrRPIDMismatch, says: "empty RP ID"},
		{name: "ShouldRefuseAlgorithmsAsObject", edit: func(m map[string]any) { m["pubKeyCredParams"] = map[string]any{"alg": -7} }, kind: ErrBadOptions, says: "pubKeyCredParams must be a list"},
		{name: "ShouldRefuseTimeoutString", edit: func(m map[string]any) { m["timeout"] = "60000" }, kind: ErrBadOptions, says: "timeout must be a number"},
		{name: "ShouldRefuseDescriptorIDNumber", edit: func(m map[string]any) {
			m["excludeCredentials"] = []any{map[string]any{"type": "public-key", "id": 5}}
		}, kind: ErrBadOptions, says: "excludeCredentials[0].id must be a string"},
		{name: "ShouldRefuseDescriptorWithoutType", edit: func(m map[string]any) {
			m["excludeCredentials"] = []any{map[string]any{"id": b64([]byte("x"))}}
		}, kind: ErrBadOptions, says: "excludeCredentials[0].type is missing"},
		{name: "ShouldRefuseOversizedCredentialID", edit: func(m map[string]any) {
			m["excludeCredentials"] = []any{map[string]any{"type": "public-key", "id": b64(make([]byte, 1024))}}
		}, kind: ErrBadOptions, says: "at most 1023"},
		{name: "ShouldRefuseRequireResidentKeyString", edit: func(m map[string]any) {
			m["authenticatorSelection"] = map[string]any{"requireResidentKey": "yes"}
		}, kind: ErrBadOptions, says: "requireResidentKey must be true or false"},
		{name: "ShouldRefuseUnknownProtectionPolicy", edit: func(m map[string]any) {
			m["extensions"] = map[string]any{"credentialProtectionPolicy": "sometimes"}
		}, kind: ErrBadOptions, says: "not a credential protection policy"},
		{name: "ShouldRefuseWrapperThatIsNotAnObject", raw: `{"publicKey": "options"}`, kind: ErrBadOptions, says: "publicKey must be an object"},
		{name: "ShouldRefuseTopLevelList", raw: `[{"challenge": "AAECAwQFBgcICQoLDA0ODw"}]`, kind: ErrBadOptions, says: "options must be an object"},
		{name: "ShouldRefuseInvalidJSON", raw: `{"challenge": `, kind: ErrBadOptions, says: "not valid JSON"},
		{name: "ShouldRefuseTrailingData", raw: `{} {}`, kind: ErrBadOptions, says: "not valid JSON"},
		{name: "ShouldRefuseEmptyInput", raw: ``, kind: ErrBadOptions, says: "not valid JSON"},
		{name: "ShouldRefuseTooLarge", raw: `{"pad": "` + strings.Repeat("a", MaxOptionsSize) + `"}`, kind: ErrBadOptions, says: "at most 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.raw)
			if tt.edit != nil {
				m := creationBase()
				tt.edit(m)
				data = mustJSON(t, m)
			}
			o, err := ParseCreationOptions(data)
			if err == nil {
				t.Fatalf("ParseCreationOptions accepted it: %+v", o)
			}
			wantKind(t, err, tt.kind)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error", err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
}

func TestParseRequestOptions(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(m map[string]any)
		kind  error // nil: accepted
		says  string
		check func(t *testing.T, o *RequestOptions)
	}{
		{name: "ShouldDefaultRPIDToNone", edit: func(m map[string]any) { delete(m, "rpId") }, check: func(t *testing.T, o *RequestOptions) {
			if o.RPID != "" || o.UserVerification != protocol.VerificationPreferred || len(o.AllowCredentials) != 0 {
				t.Errorf("options = %+v", o)
			}
		}},
		{name: "ShouldTreatUnknownUserVerificationAsPreferred", edit: func(m map[string]any) { m["userVerification"] = "strict" }, check: func(t *testing.T, o *RequestOptions) {
			if o.UserVerification != protocol.VerificationPreferred {
				t.Errorf("UserVerification = %q", o.UserVerification)
			}
		}},
		{name: "ShouldReadDiscouragedUserVerification", edit: func(m map[string]any) { m["userVerification"] = "discouraged" }, check: func(t *testing.T, o *RequestOptions) {
			if o.UserVerification != protocol.VerificationDiscouraged || o.Timeout != defaultTimeout {
				t.Errorf("options = %+v", o)
			}
		}},
		{name: "ShouldAcceptFullAllowList", edit: func(m map[string]any) { m["allowCredentials"] = descriptorList(MaxCredentialDescriptors) }, check: func(t *testing.T, o *RequestOptions) {
			if len(o.AllowCredentials) != MaxCredentialDescriptors {
				t.Errorf("%d credentials", len(o.AllowCredentials))
			}
		}},
		{name: "ShouldRefuseHugeAllowList", edit: func(m map[string]any) { m["allowCredentials"] = descriptorList(1000) }, kind: ErrBadOptions, says: "allowCredentials has 1000 entries"},
		{name: "ShouldRefuseEmptyChallenge", edit: func(m map[string]any) { m["challenge"] = "" }, kind: ErrBadOptions, says: "challenge is 0 bytes"},
		{name: "ShouldRefuseEmptyRPID", edit: func(m map[string]any) { m["rpId"] = "" }, kind: ErrRPIDMismatch},
		{name: "ShouldRefuseRPIDList", edit: func(m map[string]any) { m["rpId"] = []any{"example.com"} }, kind: ErrBadOptions, says: "rpId must be a string, not a list"},
		{name: "ShouldRefuseAllowListOfStrings", edit: func(m map[string]any) { m["allowCredentials"] = []any{"AAAA"} }, kind: ErrBadOptions, says: "allowCredentials[0] must be an object"},
		{name: "ShouldRefuseUserVerificationBool", edit: func(m map[string]any) { m["userVerification"] = true }, kind: ErrBadOptions, says: "userVerification must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := requestBase()
			tt.edit(m)
			o, err := ParseRequestOptions(mustJSON(t, m))
			if tt.kind == nil {
				if err != nil {
					t.Fatalf("ParseRequestOptions: %v", err)
				}
				tt.check(t, o)
				return
			}
			wantKind(t, err, tt.kind)
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
}
