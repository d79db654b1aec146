package webauthn

import "errors"

// The kinds of failure callers branch on with errors.Is. Every error this
// package returns for them is an *Error of that Kind, so errors.Is works
// and the message still names the specific problem. Failures of the key
// itself stay the platform package's errors (platform.ErrPINInvalid,
// platform.ErrProtocol, ...), wrapped or as they are.
var (
	// ErrBadOrigin is a configured origin that is not a web origin of the
	// form scheme://host[:port]: it has a path, a query, a fragment, a
	// user name, a scheme other than https or http, or a malformed host.
	ErrBadOrigin = errors.New("the configured web address is not a valid origin")
	// ErrInsecureOrigin is an http origin whose host is not this computer:
	// WebAuthn needs a secure context, which plain http is only on
	// loopback.
	ErrInsecureOrigin = errors.New("the configured web address is not secure (it must use https)")
	// ErrRPIDMismatch is an RP ID the origin may not claim: not its host
	// and not a registrable suffix of it (or a public suffix such as
	// "com", or malformed). A service sending one is misconfigured or is
	// trying to obtain credentials of another site.
	ErrRPIDMismatch = errors.New("the service asked for credentials of a site it does not belong to")
	// ErrBadOptions is creation or request options that are malformed,
	// oversized or missing a required member.
	ErrBadOptions = errors.New("the service sent an invalid WebAuthn request")
	// ErrUnsupportedAlgorithm is options, or a key, with no algorithm in
	// common with Keydesk (ES256, EdDSA, RS256).
	ErrUnsupportedAlgorithm = errors.New("none of the algorithms the service accepts is one Keydesk supports (ES256, EdDSA, RS256)")
	// ErrKeyNotCapable is a requirement of the service that this key
	// cannot meet, such as a discoverable credential on a key without
	// room for one, or user verification on a key without a PIN.
	ErrKeyNotCapable = errors.New("this security key cannot do what the service requires")
)

// Error is a refused origin, RP ID or set of options. Its message is the
// Kind's, followed by Detail, a specific for the person in front of the
// screen; it never holds a PIN, a challenge or key material.
type Error struct {
	// Kind is one of the Err* sentinels of this package, or
	// platform.ErrProtocol for a key's answer that does not add up.
	Kind error
	// Detail says what exactly is wrong, such as which member of the
	// options; "" when Kind says it all.
	Detail string
	// Err is the underlying cause, if any, for logs.
	Err error
}

// Error returns the kind's message and the detail.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Detail
}

// Is matches the error's kind, so errors.Is(err, ErrRPIDMismatch) works.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// newError is an *Error of kind with a detail; it keeps call sites short.
func newError(kind error, detail string) *Error { return &Error{Kind: kind, Detail: detail} }
