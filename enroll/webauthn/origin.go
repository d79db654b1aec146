package webauthn

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	// golang.org/x/net (already required by go-webauthn and otel) is the
	// one place Go keeps the Public Suffix List and UTS #46 IDNA mapping;
	// both are needed to tell a registrable domain from a public suffix
	// exactly as browsers do, and neither is worth re-implementing.
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Limits of DNS names (RFC 1035 §2.3.4), which hosts and RP IDs are.
const (
	maxDomainLength = 253
	maxLabelLength  = 63
	// maxOriginLength bounds a configured origin: a scheme, a host of at
	// most 253 bytes and a port fit easily.
	maxOriginLength = 300
)

// Origin is a web origin, the (scheme, host, port) tuple that
// clientDataJSON names and that decides which RP IDs a ceremony may use.
// Keydesk takes it from its configuration, never from the service, just
// as a browser takes it from the page's address and not from the page.
// Only ParseOrigin makes a valid one; the zero Origin is refused
// everywhere.
//
// Specification: HTML Living Standard §7.1.1. Origins (https://html.spec.whatwg.org/multipage/browsers.html#origin)
type Origin struct {
	scheme string     // "https", or "http" on loopback
	host   string     // lowercase ASCII (A-labels); an IP address as addr.String()
	port   string     // "" for the scheme's default port
	addr   netip.Addr // valid when the host is an IP address
}

// ParseOrigin parses and checks a configured origin such as
// "https://login.example.com" or "http://localhost:8787". It must be a
// tuple origin: https, or http only when the host is loopback (localhost,
// *.localhost, 127.0.0.0/8, ::1), which browsers treat as a secure
// context; and nothing but scheme, host and port (a lone trailing "/" is
// accepted, since it is how the URL parser spells an empty path). A
// Unicode host is converted to its ASCII form with IDNA, as the URL parser
// of a browser does; the default port is dropped. It fails with
// ErrBadOrigin or ErrInsecureOrigin.
//
// Specification: WebAuthn L3 §5.1.3. Create a New Credential, callerOrigin and effectiveDomain (https://www.w3.org/TR/webauthn-3/#sctn-createCredential)
func ParseOrigin(s string) (Origin, error) {
	if len(s) > maxOriginLength {
		return Origin{}, newError(ErrBadOrigin, "it is too long")
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return Origin{}, newError(ErrBadOrigin, fmt.Sprintf("%q contains spaces or control characters", s))
		}
	}
	// url.Parse drops an empty query or fragment ("https://a.example?"),
	// so look at the text itself.
	if strings.ContainsAny(s, "?#") {
		return Origin{}, newError(ErrBadOrigin, fmt.Sprintf("%q has a query or fragment; an origin is only scheme://host[:port]", s))
	}
	u, err := url.Parse(s)
	if err != nil {
		return Origin{}, &Error{Kind: ErrBadOrigin, Detail: fmt.Sprintf("%q cannot be read as a web address", s), Err: err}
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return Origin{}, newError(ErrBadOrigin, fmt.Sprintf("%q must start with https://", s))
	case u.Opaque != "" || u.Host == "":
		return Origin{}, newError(ErrBadOrigin, fmt.Sprintf("%q has no host; write it as https://host", s))
	case u.User != nil:
		return Origin{}, newError(ErrBadOrigin, fmt.Sprintf("%q contains a user name or password", redactUserinfo(u)))
	case (u.Path != "" && u.Path != "/") || u.RawPath != "":
		return Origin{}, newError(ErrBadOrigin, fmt.Sprintf("%q has a path; an origin is only scheme://host[:port]", s))
	}
	o := Origin{scheme: u.Scheme}
	if o.port, err = canonicalPort(u.Scheme, u.Port()); err != nil {
		return Origin{}, &Error{Kind: ErrBadOrigin, Detail: fmt.Sprintf("%q has an invalid port", s), Err: err}
	}
	host := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return Origin{}, &Error{Kind: ErrBadOrigin, Detail: fmt.Sprintf("%q has an invalid IPv6 address", s), Err: err}
		}
		o.addr, o.host = a, a.String()
	} else if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		o.addr, o.host = a, a.String()
	} else {
		if o.host, err = asciiDomain(host); err != nil {
			return Origin{}, &Error{Kind: ErrBadOrigin, Detail: fmt.Sprintf("%q has an invalid host", s), Err: err}
		}
	}
	if o.scheme == "http" && !o.isLoopback() {
		return Origin{}, newError(ErrInsecureOrigin, fmt.Sprintf("%s uses http on a host other than this computer", o))
	}
	return o, nil
}

// redactUserinfo shows where a configured origin went wrong without
// repeating a password someone put in it.
func redactUserinfo(u *url.URL) string {
	c := *u
	c.User = url.User("…")
	return c.String()
}

// canonicalPort checks a port and drops it when it is the scheme's
// default, as the origin's serialization does.
func canonicalPort(scheme, port string) (string, error) {
	if port == "" {
		return "", nil
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("port %q is not a number", port)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n > 65535 {
		return "", fmt.Errorf("port %q is out of range", port)
	}
	if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
		return "", nil
	}
	return strconv.Itoa(n), nil
}

// asciiDomain turns a host into lowercase A-labels with UTS #46 (what the
// URL parser does with a host) and checks it is a DNS name a browser would
// accept: LDH labels of 1 to 63 bytes, at most 253 bytes, no trailing
// dot, and not ending in a number (the URL parser would read that as an
// IPv4 address).
func asciiDomain(host string) (string, error) {
	a, err := idna.Lookup.ToASCII(host)
	if err != nil {
		return "", err
	}
	if err := checkDomain(a); err != nil {
		return "", err
	}
	return a, nil
}

// checkDomain checks the syntax of a lowercase ASCII domain.
func checkDomain(d string) error {
	if d == "" || len(d) > maxDomainLength {
		return fmt.Errorf("a domain must be 1 to %d characters long", maxDomainLength)
	}
	labels := strings.Split(d, ".")
	for _, l := range labels {
		if l == "" || len(l) > maxLabelLength {
			return fmt.Errorf("%q has an empty or over-long label", d)
		}
		for _, c := range l {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return fmt.Errorf("%q has a character other than letters, digits and '-'", d)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" || (strings.HasPrefix(last, "0x") && strings.Trim(last[2:], "0123456789abcdef") == "") {
		return fmt.Errorf("%q ends in a number, which is read as an IPv4 address", d)
	}
	return nil
}

// isLoopback reports whether the origin's host is this computer: the
// "localhost" names (RFC 6761 §6.3, which browsers resolve to loopback
// themselves) and loopback addresses, the hosts on which a browser treats
// http as a secure context.
func (o Origin) isLoopback() bool {
	if o.addr.IsValid() {
		return o.addr.IsLoopback()
	}
	return o.host == "localhost" || strings.HasSuffix(o.host, ".localhost")
}

// valid reports whether o came from ParseOrigin.
func (o Origin) valid() bool { return o.scheme != "" && o.host != "" }

// String serializes the origin as clientDataJSON carries it:
// scheme "://" host [":" port], IPv6 addresses in brackets.
//
// Specification: HTML Living Standard §7.1.1. ASCII serialization of an origin (https://html.spec.whatwg.org/multipage/browsers.html#ascii-serialisation-of-an-origin)
func (o Origin) String() string {
	if !o.valid() {
		return "(no origin)"
	}
	s := o.scheme + "://" + o.EffectiveDomain()
	if o.port != "" {
		s += ":" + o.port
	}
	return s
}

// EffectiveDomain is the origin's host, serialized: the RP ID a service
// gets when its options name none.
//
// Specification: HTML Living Standard §7.1.1.1. Relaxing the same-origin restriction, effective domain (https://html.spec.whatwg.org/multipage/browsers.html#concept-origin-effective-domain)
func (o Origin) EffectiveDomain() string {
	if o.addr.Is6() {
		return "[" + o.host + "]"
	}
	return o.host
}

// CheckRPID checks that the origin may claim rpID: rpID must equal the
// origin's host or be a registrable domain suffix of it. A public suffix
// ("com", "co.uk", "github.io") is refused, and so is a suffix that lies
// inside the host's own public suffix, so that one tenant of a shared
// domain cannot claim credentials for its neighbours. An IP-address
// origin may claim only its own address.
//
// Hosts compare case-insensitively. The RP ID must be ASCII: a Unicode
// name is refused rather than converted, because the key hashes the RP
// ID's exact bytes into rpIdHash and the service checks that hash against
// its own spelling, so a converted name could only fail later and more
// obscurely (browsers compare the RP ID against the host's ASCII form and
// refuse it too). It fails with ErrRPIDMismatch.
//
// Specification: WebAuthn L3 §5.1.3. Create a New Credential, "If pkOptions.rp.id is present" (https://www.w3.org/TR/webauthn-3/#sctn-createCredential)
//
// Specification: HTML Living Standard, is a registrable domain suffix of or is equal to (https://html.spec.whatwg.org/multipage/browsers.html#is-a-registrable-domain-suffix-of-or-is-equal-to)
func (o Origin) CheckRPID(rpID string) error {
	if !o.valid() {
		return newError(ErrBadOrigin, "no origin is configured")
	}
	mismatch := func(why string) error {
		return newError(ErrRPIDMismatch, fmt.Sprintf("%s may not use the RP ID %q: %s", o, printable(rpID), why))
	}
	switch {
	case rpID == "":
		return mismatch("it is empty")
	case len(rpID) > maxDomainLength:
		return mismatch("it is too long")
	}
	for i := 0; i < len(rpID); i++ {
		if rpID[i] >= 0x80 {
			return mismatch("RP IDs must be written in ASCII (punycode), as the service's own configuration spells them")
		}
	}
	lower := strings.ToLower(rpID)
	// "is a registrable domain suffix of or is equal to": an equal host
	// is always allowed, IP addresses included.
	if lower == o.EffectiveDomain() {
		return nil
	}
	// Beyond equality, IP addresses match nothing.
	if o.addr.IsValid() {
		return mismatch("an origin with an IP address may use only that exact address")
	}
	if _, err := netip.ParseAddr(strings.Trim(lower, "[]")); err == nil {
		return mismatch("it is an IP address and the origin's host is a domain")
	}
	if a, err := idna.Lookup.ToASCII(lower); err != nil || a != lower || checkDomain(lower) != nil {
		return mismatch("it is not a valid domain name")
	}
	// The RP ID, preceded by a dot, must end the host.
	if !strings.HasSuffix(o.host, "."+lower) {
		return mismatch("it is neither the origin's host nor a domain the host belongs to")
	}
	// And it must be neither a public suffix nor inside the host's
	// public suffix (x/net/publicsuffix includes the list's private section,
	// as browsers do, so "github.io" is a public suffix).
	if ps, _ := publicsuffix.PublicSuffix(lower); ps == lower {
		return mismatch("it is a public suffix, shared by unrelated sites")
	}
	if hostPS, _ := publicsuffix.PublicSuffix(o.host); hostPS == lower || strings.HasSuffix(hostPS, "."+lower) {
		return mismatch("it lies inside the public suffix of the origin's host, shared by unrelated sites")
	}
	return nil
}

// CheckRPID parses origin (which comes from configuration) and checks that
// it may claim rpID, as Origin.CheckRPID does.
func CheckRPID(origin, rpID string) error {
	o, err := ParseOrigin(origin)
	if err != nil {
		return err
	}
	return o.CheckRPID(rpID)
}

// printable shortens a service-supplied string for an error message and
// keeps control characters out of logs.
func printable(s string) string {
	const maxLen = 80
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
