package webauthn

import (
	"errors"
	"strings"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the serialization; "" when refused
		kind error
	}{
		{name: "ShouldAcceptHTTPS", in: "https://login.example.com", want: "https://login.example.com"},
		{name: "ShouldLowercaseSchemeAndHost", in: "HTTPS://Login.Example.COM", want: "https://login.example.com"},
		{name: "ShouldDropDefaultPort", in: "https://example.com:443", want: "https://example.com"},
		{name: "ShouldKeepOtherPort", in: "https://example.com:8443", want: "https://example.com:8443"},
		{name: "ShouldAcceptLoneSlash", in: "https://example.com/", want: "https://example.com"},
		{name: "ShouldAcceptHTTPLocalhost", in: "http://localhost:8787", want: "http://localhost:8787"},
		{name: "ShouldAcceptHTTPSubdomainOfLocalhost", in: "http://app.localhost", want: "http://app.localhost"},
		{name: "ShouldAcceptHTTPLoopbackIPv4", in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{name: "ShouldAcceptHTTPLoopbackIPv4Range", in: "http://127.5.6.7", want: "http://127.5.6.7"},
		{name: "ShouldAcceptHTTPLoopbackIPv6", in: "http://[::1]:3000", want: "http://[::1]:3000"},
		{name: "ShouldConvertUnicodeHost", in: "https://bücher.example", want: "https://xn--bcher-kva.example"},
		{name: "ShouldRefuseHTTPOnPublicHost", in: "http://example.com", kind: ErrInsecureOrigin},
		{name: "ShouldRefuseHTTPOnPublicIP", in: "http://192.0.2.1", kind: ErrInsecureOrigin},
		{name: "ShouldRefuseHTTPOnLocalhostLookalike", in: "http://localhost.example.com", kind: ErrInsecureOrigin},
		{name: "ShouldRefusePath", in: "https://example.com/login", kind: ErrBadOrigin},
		{name: "ShouldRefuseQuery", in: "https://example.com?x=1", kind: ErrBadOrigin},
		{name: "ShouldRefuseEmptyQuery", in: "https://example.com?", kind: ErrBadOrigin},
		{name: "ShouldRefuseFragment", in: "https://example.com#top", kind: ErrBadOrigin},
		{name: "ShouldRefuseUserinfo", in: "https://user:secret@example.com", kind: ErrBadOrigin},
		{name: "ShouldRefuseOtherScheme", in: "ftp://example.com", kind: ErrBadOrigin},
		{name: "ShouldRefuseOpaque", in: "https:example.com", kind: ErrBadOrigin},
		{name: "ShouldRefuseNoHost", in: "https://", kind: ErrBadOrigin},
		{name: "ShouldRefuseBadPort", in: "https://example.com:99999", kind: ErrBadOrigin},
		{name: "ShouldRefuseIPv6Zone", in: "http://[fe80::1%25eth0]", kind: ErrBadOrigin},
		{name: "ShouldRefuseTrailingDot", in: "https://example.com.", kind: ErrBadOrigin},
		{name: "ShouldRefuseUnderscore", in: "https://ex_ample.com", kind: ErrBadOrigin},
		{name: "ShouldRefuseNumericLastLabel", in: "https://127.1", kind: ErrBadOrigin},
		{name: "ShouldRefuseSpace", in: "https://exa mple.com", kind: ErrBadOrigin},
		{name: "ShouldRefuseEmpty", in: "", kind: ErrBadOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseOrigin(tt.in)
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) {
					t.Fatalf("ParseOrigin(%q) = %v, %v; want %v", tt.in, o, err, tt.kind)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q repeats the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOrigin(%q): %v", tt.in, err)
			}
			if got := o.String(); got != tt.want {
				t.Errorf("ParseOrigin(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCheckRPID(t *testing.T) {
	tests := []struct {
		name   string
		origin string
		rpID   string
		kind   error // nil: allowed
	}{
		{name: "ShouldAllowRegistrableSuffix", origin: "https://login.example.com", rpID: "example.com"},
		{name: "ShouldAllowHost", origin: "https://login.example.com", rpID: "login.example.com"},
		{name: "ShouldAllowDeepSuffix", origin: "https://a.b.login.example.com", rpID: "login.example.com"},
		{name: "ShouldAllowLocalhost", origin: "http://localhost:8787", rpID: "localhost"},
		{name: "ShouldAllowExactIPv4", origin: "http://127.0.0.1:8080", rpID: "127.0.0.1"},
		{name: "ShouldAllowExactIPv6", origin: "http://[::1]:8080", rpID: "[::1]"},
		{name: "ShouldCompareCaseInsensitively", origin: "https://login.example.com", rpID: "EXAMPLE.com"},
		{name: "ShouldAllowSuffixUnderMultiLabelPublicSuffix", origin: "https://www.example.co.uk", rpID: "example.co.uk"},
		{name: "ShouldAllowPunycodeRPID", origin: "https://login.bücher.example", rpID: "xn--bcher-kva.example"},
		{name: "ShouldAllowOwnSubdomainOfPrivateSuffix", origin: "https://a.github.io", rpID: "a.github.io"},

		{name: "ShouldRefuseOtherSite", origin: "https://evil.com", rpID: "example.com", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseSubdomainOfOrigin", origin: "https://example.com", rpID: "login.example.com", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseTopLevelDomain", origin: "https://example.com", rpID: "com", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseMultiLabelPublicSuffix", origin: "https://www.example.co.uk", rpID: "co.uk", kind: ErrRPIDMismatch},
		{name: "ShouldRefusePrivatePublicSuffix", origin: "https://a.github.io", rpID: "github.io", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseLabelSuffix", origin: "https://example.com", rpID: "ample.com", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseLabelSuffixOfSubdomain", origin: "https://www.example.com", rpID: "ample.com", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseLocalhostFromSubdomain", origin: "http://app.localhost", rpID: "localhost", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseOtherIP", origin: "http://127.0.0.1", rpID: "127.0.0.2", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseSuffixOfIP", origin: "http://127.0.0.1", rpID: "0.0.1", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseDomainForIP", origin: "http://127.0.0.1", rpID: "localhost", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseIPForDomain", origin: "https://example.com", rpID: "93.184.216.34", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseNonASCII", origin: "https://login.bücher.example", rpID: "bücher.example", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseNonASCIILookalike", origin: "https://example.com", rpID: "exаmple.com", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseEmpty", origin: "https://example.com", rpID: "", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseTrailingDot", origin: "https://login.example.com", rpID: "example.com.", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseLeadingDot", origin: "https://login.example.com", rpID: ".example.com", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseInvalidPunycode", origin: "https://a.xn--zz.example", rpID: "xn--zz.example", kind: ErrBadOrigin},
		{name: "ShouldRefuseURLAsRPID", origin: "https://login.example.com", rpID: "https://example.com", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseOverlongRPID", origin: "https://example.com", rpID: strings.Repeat("a.", 130) + "example.com", kind: ErrRPIDMismatch},
		{name: "ShouldRefuseInsecureOriginFirst", origin: "http://example.com", rpID: "example.com", kind: ErrInsecureOrigin},
		{name: "ShouldRefuseOriginWithPath", origin: "https://example.com/app", rpID: "example.com", kind: ErrBadOrigin},
		{name: "ShouldRefuseOriginWithUserinfo", origin: "https://u@example.com", rpID: "example.com", kind: ErrBadOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRPID(tt.origin, tt.rpID)
			if tt.kind == nil {
				if err != nil {
					t.Fatalf("CheckRPID(%q, %q): %v", tt.origin, tt.rpID, err)
				}
				return
			}
			if !errors.Is(err, tt.kind) {
				t.Fatalf("CheckRPID(%q, %q) = %v, want %v", tt.origin, tt.rpID, err, tt.kind)
			}
			var e *Error
			if !errors.As(err, &e) || e.Detail == "" {
				t.Errorf("CheckRPID(%q, %q) = %#v, want an *Error with a detail", tt.origin, tt.rpID, err)
			}
		})
	}
}

func TestZeroOriginIsRefused(t *testing.T) {
	var o Origin
	if err := o.CheckRPID("example.com"); !errors.Is(err, ErrBadOrigin) {
		t.Errorf("zero Origin CheckRPID = %v, want ErrBadOrigin", err)
	}
	if _, err := CreationRequest(o, &CreationOptions{}, Capabilities{}); !errors.Is(err, ErrBadOrigin) {
		t.Errorf("CreationRequest with the zero Origin = %v, want ErrBadOrigin", err)
	}
	if _, err := AssertionRequest(o, &RequestOptions{}, Capabilities{}); !errors.Is(err, ErrBadOrigin) {
		t.Errorf("AssertionRequest with the zero Origin = %v, want ErrBadOrigin", err)
	}
}
