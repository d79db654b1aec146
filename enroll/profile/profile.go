package profile

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keydesk/keydesk/enroll/webauthn"
)

// Limits of a profile's fields. Names are short because they are shown in
// menus and are the keyring account of the profile's session token;
// addresses are bounded so that a damaged file cannot hold megabytes in
// one field.
const (
	// MaxNameLength is the longest profile name, in bytes (names are
	// ASCII).
	MaxNameLength = 64
	// MaxUsernameLength is the longest remembered user name, in bytes.
	MaxUsernameLength = 256
	// MaxAPIURLLength is the longest RP API address, in bytes.
	MaxAPIURLLength = 2048
)

// Profile is one relying party Keydesk is configured for: where its sign-in
// page lives (Origin, which decides the RP IDs it may use, as a browser's
// address bar does), the RP ID its credentials are scoped to, and where its
// API answers. It holds no secret: the session token the RP grants lives in
// a TokenStore under the profile's name.
type Profile struct {
	// Name identifies the profile to the user and to the TokenStore:
	// 1 to MaxNameLength ASCII letters, digits, '-', '_' or '.', unique
	// in its Set ignoring case.
	Name string `json:"name"`
	// Origin is the RP's web origin, such as "https://login.example.com"
	// (see webauthn.ParseOrigin); Validate stores its canonical
	// spelling.
	Origin string `json:"origin"`
	// RPID is the RP ID, which must be Origin's host or a registrable
	// domain it belongs to (see webauthn.Origin.CheckRPID). Empty means
	// the origin's host, which Validate fills in.
	RPID string `json:"rpId"`
	// APIURL is the base address of the RP's API, https (or http on this
	// computer). Empty means Origin, which Validate fills in.
	APIURL string `json:"apiUrl"`
	// Username is the account last used with this RP, offered again at
	// the next sign-in; optional.
	Username string `json:"username,omitempty"`
}

// Validate checks every field of p and returns it as it is stored: the
// origin in its canonical form (lowercase host, default port dropped), and
// the RP ID and API address defaulted from the origin when empty. The
// error is an *Error naming the profile, of kind ErrInvalidName,
// ErrInvalidOrigin, ErrInvalidRPID, ErrInvalidAPIURL or
// ErrInvalidUsername.
func (p Profile) Validate() (Profile, error) {
	if err := ValidateName(p.Name); err != nil {
		return Profile{}, err
	}
	fail := func(kind error, detail string, cause error) (Profile, error) {
		return Profile{}, &Error{Profile: p.Name, Kind: kind, Detail: detail, Err: cause}
	}
	if p.Origin == "" {
		return fail(ErrInvalidOrigin, "no origin is set; write it as https://host", nil)
	}
	o, err := webauthn.ParseOrigin(p.Origin)
	if err != nil {
		return fail(ErrInvalidOrigin, err.Error(), err)
	}
	p.Origin = o.String()

	if p.RPID == "" {
		p.RPID = o.EffectiveDomain()
	}
	if err := o.CheckRPID(p.RPID); err != nil {
		return fail(ErrInvalidRPID, rpIDMismatch(o, p.RPID, err), err)
	}

	if p.APIURL == "" {
		p.APIURL = p.Origin
	} else if detail, err := checkAPIURL(p.APIURL); detail != "" {
		return fail(ErrInvalidAPIURL, detail, err)
	}

	if detail := checkUsername(p.Username); detail != "" {
		return fail(ErrInvalidUsername, detail, nil)
	}
	return p, nil
}

// ParseOrigin returns the profile's origin as the webauthn client takes it.
// It fails as webauthn.ParseOrigin does, which cannot happen for a
// profile that Validate returned.
func (p Profile) ParseOrigin() (webauthn.Origin, error) {
	return webauthn.ParseOrigin(p.Origin)
}

// SameRP reports whether p and q talk to the same relying party the same
// way: same origin, RP ID and API address. A session token granted under
// one may be sent under the other; when an edit changes any of them, the
// caller deletes the profile's token, so that no RP ever receives another
// RP's session.
func (p Profile) SameRP(q Profile) bool {
	return p.Origin == q.Origin && p.RPID == q.RPID && p.APIURL == q.APIURL
}

// ValidateName checks a profile name: 1 to MaxNameLength characters, each
// an ASCII letter or digit, '-', '_' or '.'. Names stay ASCII so that they
// compare case-insensitively the same way everywhere (including the
// keyring), and are safe in a file name or a command line. The error is an
// *Error of kind ErrInvalidName.
func ValidateName(name string) error {
	fail := func(detail string) error {
		return &Error{Profile: name, Kind: ErrInvalidName, Detail: detail}
	}
	if name == "" {
		return &Error{Kind: ErrInvalidName, Detail: "a profile needs a name"}
	}
	if len(name) > MaxNameLength {
		return fail(fmt.Sprintf("a profile name may be at most %d characters long", MaxNameLength))
	}
	for _, r := range name {
		if !isNameChar(r) {
			return fail(fmt.Sprintf("a profile name may contain only letters, digits, '-', '_' and '.', not %q", r))
		}
	}
	return nil
}

// isNameChar reports whether r may appear in a profile name.
func isNameChar(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') ||
		r == '-' || r == '_' || r == '.'
}

// rpIDMismatch says which RP ID does not belong to which origin, and why,
// reusing the reason the webauthn package gives after its own prefix.
func rpIDMismatch(o webauthn.Origin, rpID string, err error) string {
	msg := fmt.Sprintf("the RP ID %s does not belong to %s", printable(rpID), o)
	var we *webauthn.Error
	if errors.As(err, &we) {
		prefix := fmt.Sprintf("%s may not use the RP ID %q: ", o, rpID)
		if why, ok := strings.CutPrefix(we.Detail, prefix); ok && why != "" {
			msg += ": " + why
		}
	}
	return msg
}

// checkAPIURL checks an RP API base address and returns why it is refused
// ("" when it is fine). Session tokens travel to this address, so it must
// be https, or http on this computer only, exactly as an origin must; it
// may have a path but no query, fragment or credentials.
func checkAPIURL(s string) (string, error) {
	if len(s) > MaxAPIURLLength {
		return fmt.Sprintf("the API address is longer than %d characters", MaxAPIURLLength), nil
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return fmt.Sprintf("the API address %q contains spaces or control characters", printable(s)), nil
		}
	}
	if strings.ContainsAny(s, "?#") {
		return fmt.Sprintf("the API address %q has a query or fragment; write only https://host[:port][/path]", s), nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("the API address %q cannot be read as a web address", printable(s)), err
	}
	if u.User != nil {
		return "the API address contains a user name or password; Keydesk signs in itself", nil
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Opaque != "" || u.Host == "" {
		return fmt.Sprintf("the API address %q must be written as https://host[/path]", s), nil
	}
	// The scheme, host and port follow the rules of an origin: https, or
	// http only on loopback, and a well-formed host.
	if _, err := webauthn.ParseOrigin(u.Scheme + "://" + u.Host); err != nil {
		return fmt.Sprintf("the API address %q is not usable: %v", s, err), err
	}
	return "", nil
}

// checkUsername returns why a remembered user name is refused, or "".
func checkUsername(s string) string {
	if len(s) > MaxUsernameLength {
		return fmt.Sprintf("the user name is longer than %d bytes", MaxUsernameLength)
	}
	if !utf8.ValidString(s) {
		return "the user name is not valid UTF-8 text"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "the user name contains control characters"
		}
	}
	return ""
}
