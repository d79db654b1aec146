package profile

import (
	"errors"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/enroll/webauthn"
)

func TestValidateShouldAcceptAndNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   Profile
		want Profile
	}{
		{
			name: "ShouldDefaultRPIDAndAPIURLToTheOrigin",
			in:   Profile{Name: "work", Origin: "https://example.com"},
			want: Profile{Name: "work", Origin: "https://example.com", RPID: "example.com", APIURL: "https://example.com"},
		},
		{
			name: "ShouldCanonicalizeTheOrigin",
			in:   Profile{Name: "work", Origin: "https://Login.Example.COM:443/"},
			want: Profile{Name: "work", Origin: "https://login.example.com", RPID: "login.example.com", APIURL: "https://login.example.com"},
		},
		{
			name: "ShouldAcceptARegistrableParentDomainAsRPID",
			in:   Profile{Name: "work", Origin: "https://login.example.com", RPID: "example.com"},
			want: Profile{Name: "work", Origin: "https://login.example.com", RPID: "example.com", APIURL: "https://login.example.com"},
		},
		{
			name: "ShouldKeepTheRPIDAsSpelled",
			in:   Profile{Name: "work", Origin: "https://login.example.com", RPID: "Example.com"},
			want: Profile{Name: "work", Origin: "https://login.example.com", RPID: "Example.com", APIURL: "https://login.example.com"},
		},
		{
			name: "ShouldAcceptHTTPOnLocalhost",
			in:   Profile{Name: "dev", Origin: "http://localhost:8787", APIURL: "http://127.0.0.1:8787/api"},
			want: Profile{Name: "dev", Origin: "http://localhost:8787", RPID: "localhost", APIURL: "http://127.0.0.1:8787/api"},
		},
		{
			name: "ShouldAcceptALoopbackAddress",
			in:   Profile{Name: "dev", Origin: "http://127.0.0.1:8080"},
			want: Profile{Name: "dev", Origin: "http://127.0.0.1:8080", RPID: "127.0.0.1", APIURL: "http://127.0.0.1:8080"},
		},
		{
			name: "ShouldConvertAUnicodeHost",
			in:   Profile{Name: "books", Origin: "https://bücher.example"},
			want: Profile{Name: "books", Origin: "https://xn--bcher-kva.example", RPID: "xn--bcher-kva.example", APIURL: "https://xn--bcher-kva.example"},
		},
		{
			name: "ShouldKeepAnAPIURLWithAPath",
			in:   Profile{Name: "work", Origin: "https://login.example.com", APIURL: "https://api.example.net/rp/v1/", Username: "alice@example.com"},
			want: Profile{Name: "work", Origin: "https://login.example.com", RPID: "login.example.com", APIURL: "https://api.example.net/rp/v1/", Username: "alice@example.com"},
		},
		{
			name: "ShouldAcceptTheLongestNameAndEveryNameCharacter",
			in:   Profile{Name: "Az09-_." + strings.Repeat("x", MaxNameLength-7), Origin: "https://example.com", Username: "Zoë Ünal"},
			want: Profile{Name: "Az09-_." + strings.Repeat("x", MaxNameLength-7), Origin: "https://example.com", RPID: "example.com", APIURL: "https://example.com", Username: "Zoë Ünal"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Validate()
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got != tt.want {
				t.Errorf("Validate:\n got  %+v\n want %+v", got, tt.want)
			}
			// What Validate returns validates to itself.
			if again, err := got.Validate(); err != nil || again != got {
				t.Errorf("Validate of the result: got %+v, %v", again, err)
			}
		})
	}
}

func TestValidateShouldRefuseWithAClearTypedError(t *testing.T) {
	good := Profile{Name: "work", Origin: "https://example.com"}
	with := func(f func(p *Profile)) Profile { p := good; f(&p); return p }
	tests := []struct {
		name     string
		in       Profile
		kind     error
		also     error  // a webauthn sentinel the error also matches, if any
		message  string // the whole message, or
		contains string // a part of it
	}{
		{name: "ShouldRefuseAnEmptyName", in: with(func(p *Profile) { p.Name = "" }), kind: ErrInvalidName, message: "a profile needs a name"},
		{name: "ShouldRefuseATooLongName", in: with(func(p *Profile) { p.Name = strings.Repeat("n", MaxNameLength+1) }), kind: ErrInvalidName, contains: "at most 64 characters"},
		{name: "ShouldRefuseASpaceInAName", in: with(func(p *Profile) { p.Name = "my work" }), kind: ErrInvalidName, message: `profile "my work": a profile name may contain only letters, digits, '-', '_' and '.', not ' '`},
		{name: "ShouldRefuseASlashInAName", in: with(func(p *Profile) { p.Name = "a/b" }), kind: ErrInvalidName, contains: `not '/'`},
		{name: "ShouldRefuseANonASCIILetterInAName", in: with(func(p *Profile) { p.Name = "büro" }), kind: ErrInvalidName, contains: `not 'ü'`},
		{name: "ShouldRefuseAControlCharacterInANameWithoutPrintingIt", in: with(func(p *Profile) { p.Name = "a\nb" }), kind: ErrInvalidName, contains: `profile "a?b"`},

		{name: "ShouldRefuseAMissingOrigin", in: with(func(p *Profile) { p.Origin = "" }), kind: ErrInvalidOrigin, message: `profile "work": no origin is set; write it as https://host`},
		{name: "ShouldRefuseAnOriginWithoutScheme", in: with(func(p *Profile) { p.Origin = "example.com" }), kind: ErrInvalidOrigin, also: webauthn.ErrBadOrigin, contains: "must start with https://"},
		{name: "ShouldRefuseHTTPOnARemoteHost", in: with(func(p *Profile) { p.Origin = "http://example.com" }), kind: ErrInvalidOrigin, also: webauthn.ErrInsecureOrigin, contains: "http://example.com uses http"},
		{name: "ShouldRefuseAnOriginWithAPath", in: with(func(p *Profile) { p.Origin = "https://example.com/login" }), kind: ErrInvalidOrigin, also: webauthn.ErrBadOrigin, contains: "has a path"},
		{name: "ShouldRefuseAnotherScheme", in: with(func(p *Profile) { p.Origin = "ftp://example.com" }), kind: ErrInvalidOrigin, also: webauthn.ErrBadOrigin},
		{name: "ShouldRefuseCredentialsInTheOrigin", in: with(func(p *Profile) { p.Origin = "https://alice:hunter2@example.com" }), kind: ErrInvalidOrigin, also: webauthn.ErrBadOrigin, contains: "user name or password"},

		{name: "ShouldRefuseAnRPIDOfAnotherSite", in: with(func(p *Profile) { p.RPID = "login.example.org" }), kind: ErrInvalidRPID, also: webauthn.ErrRPIDMismatch,
			message: `profile "work": the RP ID login.example.org does not belong to https://example.com: it is neither the origin's host nor a domain the host belongs to`},
		{name: "ShouldRefuseASubdomainOfTheHostAsRPID", in: with(func(p *Profile) { p.RPID = "login.example.com" }), kind: ErrInvalidRPID, also: webauthn.ErrRPIDMismatch,
			contains: "the RP ID login.example.com does not belong to https://example.com"},
		{name: "ShouldRefuseAPublicSuffixAsRPID", in: with(func(p *Profile) { p.RPID = "com" }), kind: ErrInvalidRPID, also: webauthn.ErrRPIDMismatch, contains: "public suffix"},
		{name: "ShouldRefuseASharedHostingSuffixAsRPID", in: Profile{Name: "pages", Origin: "https://me.github.io", RPID: "github.io"}, kind: ErrInvalidRPID, contains: "public suffix"},
		{name: "ShouldRefuseADomainRPIDForAnIPOrigin", in: Profile{Name: "dev", Origin: "http://127.0.0.1:8080", RPID: "localhost"}, kind: ErrInvalidRPID, contains: "IP address"},
		{name: "ShouldRefuseAUnicodeRPID", in: Profile{Name: "books", Origin: "https://bücher.example", RPID: "bücher.example"}, kind: ErrInvalidRPID, contains: "ASCII"},

		{name: "ShouldRefuseHTTPForAPIOnARemoteHost", in: with(func(p *Profile) { p.APIURL = "http://api.example.com" }), kind: ErrInvalidAPIURL, also: webauthn.ErrInsecureOrigin, contains: "not usable"},
		{name: "ShouldRefuseCredentialsInTheAPIURL", in: with(func(p *Profile) { p.APIURL = "https://alice:hunter2@api.example.com" }), kind: ErrInvalidAPIURL, contains: "user name or password"},
		{name: "ShouldRefuseAQueryInTheAPIURL", in: with(func(p *Profile) { p.APIURL = "https://api.example.com/v1?tenant=a" }), kind: ErrInvalidAPIURL, contains: "query or fragment"},
		{name: "ShouldRefuseARelativeAPIURL", in: with(func(p *Profile) { p.APIURL = "/api" }), kind: ErrInvalidAPIURL, contains: "https://host"},
		{name: "ShouldRefuseAnAPIURLWithoutHost", in: with(func(p *Profile) { p.APIURL = "https://" }), kind: ErrInvalidAPIURL},
		{name: "ShouldRefuseAnotherSchemeForTheAPI", in: with(func(p *Profile) { p.APIURL = "ftp://api.example.com" }), kind: ErrInvalidAPIURL},
		{name: "ShouldRefuseSpacesInTheAPIURL", in: with(func(p *Profile) { p.APIURL = "https://api.example.com/a b" }), kind: ErrInvalidAPIURL, contains: "spaces"},
		{name: "ShouldRefuseATooLongAPIURL", in: with(func(p *Profile) { p.APIURL = "https://example.com/" + strings.Repeat("a", MaxAPIURLLength) }), kind: ErrInvalidAPIURL, contains: "longer than"},

		{name: "ShouldRefuseATooLongUsername", in: with(func(p *Profile) { p.Username = strings.Repeat("u", MaxUsernameLength+1) }), kind: ErrInvalidUsername},
		{name: "ShouldRefuseControlCharactersInAUsername", in: with(func(p *Profile) { p.Username = "alice\x00" }), kind: ErrInvalidUsername, contains: "control characters"},
		{name: "ShouldRefuseAUsernameThatIsNotUTF8", in: with(func(p *Profile) { p.Username = "\xffalice" }), kind: ErrInvalidUsername, contains: "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Validate()
			if err == nil {
				t.Fatalf("Validate accepted it: %+v", got)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.kind)
			}
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.also)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Errorf("the error is a %T, want *Error", err)
			}
			msg := err.Error()
			if tt.message != "" && msg != tt.message {
				t.Errorf("message:\n got  %s\n want %s", msg, tt.message)
			}
			if !strings.Contains(msg, tt.contains) {
				t.Errorf("message %q does not say %q", msg, tt.contains)
			}
			if tt.in.Name != "" && tt.kind != ErrInvalidName && !strings.HasPrefix(msg, `profile "`+tt.in.Name+`": `) {
				t.Errorf("message %q does not start with the profile's name", msg)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("message %q repeats the password", msg)
			}
			if got != (Profile{}) {
				t.Errorf("Validate returned %+v with its error", got)
			}
		})
	}
}

func TestSameRPShouldTellWhetherATokenMayFollowAnEdit(t *testing.T) {
	base, err := Profile{Name: "work", Origin: "https://login.example.com", RPID: "example.com"}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(p *Profile)
		same bool
	}{
		{name: "ShouldKeepTheSessionWhenOnlyTheUsernameChanges", edit: func(p *Profile) { p.Username = "bob" }, same: true},
		{name: "ShouldDropTheSessionWhenTheOriginChanges", edit: func(p *Profile) { p.Origin = "https://sso.example.com" }},
		{name: "ShouldDropTheSessionWhenTheRPIDChanges", edit: func(p *Profile) { p.RPID = "login.example.com" }},
		{name: "ShouldDropTheSessionWhenTheAPIChanges", edit: func(p *Profile) { p.APIURL = "https://api.example.com" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.edit(&p)
			if got := base.SameRP(p); got != tt.same {
				t.Errorf("SameRP = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestParseOriginShouldGiveTheWebAuthnOrigin(t *testing.T) {
	p, err := Profile{Name: "work", Origin: "https://login.example.com", RPID: "example.com"}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	o, err := p.ParseOrigin()
	if err != nil {
		t.Fatal(err)
	}
	if o.String() != "https://login.example.com" {
		t.Errorf("origin = %s", o)
	}
	if err := o.CheckRPID(p.RPID); err != nil {
		t.Errorf("the origin refuses the profile's RP ID: %v", err)
	}
}
