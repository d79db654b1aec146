// Package webauthn is Keydesk's WebAuthn client: it plays the browser's
// part between a relying party's options and a security key. It checks
// the configured origin and the RP ID the service asks for, reads and
// checks the service's options as strictly as a browser, builds
// clientDataJSON, maps the options to the key's requests (settling
// resident key, user verification and credProtect against what the key
// can do), asks for the PIN when the key needs it, and assembles the
// standard PublicKeyCredential JSON that go-webauthn and other servers
// verify. It is pure Go and talks to keys only through
// platform.WebAuthnAuthenticator.
package webauthn

import (
	"context"
	"errors"
	"fmt"

	"github.com/keydesk/keydesk/platform"
)

// PINPrompt asks the user for the key's PIN. retriesLeft is the attempts
// left after a wrong PIN, or -1 on the first request, when it is not
// known. It returns an error (such as platform.ErrCancelled) when the user
// gives up, and must not keep or log the PIN.
type PINPrompt func(ctx context.Context, retriesLeft int) (string, error)

// AccountChooser lets the user pick one of several accounts whose
// discoverable credentials the key offered for the service, as a browser's
// account picker does; it returns the index of the chosen assertion. The
// assertions are in the key's order, most recently created first (CTAP
// 2.1 §6.2.2), and each names its user when the key verified the user.
type AccountChooser func(assertions []platform.Assertion) (int, error)

// CeremonyOptions are what one ceremony needs besides the service's
// options: how to reach the user and what the key can do.
type CeremonyOptions struct {
	// PIN is asked when the key needs its PIN; nil fails such a ceremony
	// with platform.ErrPINRequired.
	PIN PINPrompt
	// ChooseAccount picks among several discoverable credentials; nil
	// takes the first, the most recently created.
	ChooseAccount AccountChooser
	// Capabilities describe the key (see CapabilitiesOf).
	Capabilities Capabilities
}

// Client runs WebAuthn ceremonies with a key. Its zero value is ready to
// use; it holds no state between ceremonies and is safe for concurrent
// use.
type Client struct {
	// BlindAAGUID also zeroes the AAGUID under attestation "none" (see
	// Registration.BlindAAGUID).
	BlindAAGUID bool
}

// maxPINAttempts bounds the PIN prompts of one ceremony. The key counts
// and blocks wrong PINs itself (three in a row need a re-plug); this only
// keeps a key that answers nonsense from looping for ever.
const maxPINAttempts = 8

// Create runs a registration (navigator.credentials.create()): it parses
// optionsJSON, checks the RP ID against origin before the key is touched,
// asks key to make the credential (asking for the PIN as needed) and
// returns the RegistrationResponseJSON to send to the service. The
// ceremony ends after the options' timeout, clamped by the client.
//
// Specification: WebAuthn L3 §5.1.3. Create a New Credential - PublicKeyCredential's [[Create]](origin, options, sameOriginWithAncestors) Method (https://www.w3.org/TR/webauthn-3/#sctn-createCredential)
func (c *Client) Create(ctx context.Context, key platform.WebAuthnAuthenticator, origin Origin, optionsJSON []byte, opts CeremonyOptions) ([]byte, error) {
	options, err := ParseCreationOptions(optionsJSON)
	if err != nil {
		return nil, err
	}
	reg, err := CreationRequest(origin, options, opts.Capabilities)
	if err != nil {
		return nil, err
	}
	reg.BlindAAGUID = c.BlindAAGUID
	ctx, cancel := context.WithTimeout(ctx, reg.Timeout)
	defer cancel()
	var att *platform.Attestation
	err = withPIN(ctx, "create credential", opts, reg.Request.UserVerification, func(pin string) error {
		req := reg.Request
		req.PIN = pin
		var err error
		att, err = key.MakeCredential(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return reg.Response(att)
}

// Get runs an authentication (navigator.credentials.get()) as Create runs
// a registration. When the key offers several discoverable credentials,
// opts.ChooseAccount picks one.
//
// Specification: WebAuthn L3 §5.1.4. Use an Existing Credential to Make an Assertion (https://www.w3.org/TR/webauthn-3/#sctn-getAssertion)
func (c *Client) Get(ctx context.Context, key platform.WebAuthnAuthenticator, origin Origin, optionsJSON []byte, opts CeremonyOptions) ([]byte, error) {
	options, err := ParseRequestOptions(optionsJSON)
	if err != nil {
		return nil, err
	}
	auth, err := AssertionRequest(origin, options, opts.Capabilities)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, auth.Timeout)
	defer cancel()
	var assertions []platform.Assertion
	err = withPIN(ctx, "sign in", opts, auth.Request.UserVerification, func(pin string) error {
		req := auth.Request
		req.PIN = pin
		var err error
		assertions, err = key.GetAssertion(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	chosen, err := chooseAssertion(assertions, len(auth.Request.AllowList) == 0, opts.ChooseAccount)
	if err != nil {
		return nil, err
	}
	return auth.Response(chosen)
}

// chooseAssertion picks the assertion to return: the one a key answers
// for an allow list, or the user's choice among discoverable credentials.
//
// Specification: WebAuthn L3 §5.1.4.2. Issuing a Credential Request to an Authenticator, step "credential selection" (https://www.w3.org/TR/webauthn-3/#sctn-issuing-cred-request-to-authenticator)
func chooseAssertion(as []platform.Assertion, discoverable bool, choose AccountChooser) (platform.Assertion, error) {
	switch {
	case len(as) == 0:
		return platform.Assertion{}, &platform.Error{Op: "sign in", Kind: platform.ErrNoCredentials, RetriesLeft: -1}
	case len(as) == 1 || !discoverable || choose == nil:
		return as[0], nil
	}
	i, err := choose(as)
	if err != nil {
		return platform.Assertion{}, fmt.Errorf("choose an account: %w", err)
	}
	if i < 0 || i >= len(as) {
		return platform.Assertion{}, fmt.Errorf("choose an account: choice %d of %d accounts", i, len(as))
	}
	return as[i], nil
}

// withPIN runs op, first without a PIN unless user verification needs
// one from the start (the key has a PIN and no built-in UV), and asks for
// the PIN when the key says it is needed or was wrong, showing the
// attempts left, or when its built-in UV failed. A blocked PIN ends the ceremony with the key's error,
// which says what to do. op's error is returned as it is otherwise.
func withPIN(ctx context.Context, op string, opts CeremonyOptions, uv bool, run func(pin string) error) error {
	pin, retries := "", -1
	caps := opts.Capabilities
	ask := uv && caps.PINSet && !caps.BuiltInUV
	for attempt := 0; ; attempt++ {
		if ask {
			var err error
			if pin, err = askPIN(ctx, op, opts.PIN, retries); err != nil {
				return err
			}
		}
		err := run(pin)
		switch {
		case err == nil:
			return nil
		case attempt+1 >= maxPINAttempts:
			return err
		case errors.Is(err, platform.ErrPINRequired) && pin == "":
			retries = -1
		case errors.Is(err, platform.ErrPINInvalid) && pin != "":
			retries = retriesLeft(err)
		case (errors.Is(err, platform.ErrUVInvalid) || errors.Is(err, platform.ErrUVBlocked)) && pin == "" && caps.PINSet:
			// A finger the key did not recognise, or a blocked sensor:
			// the PIN is the fallback (CTAP 2.1 §6.5.1).
			retries = -1
		default:
			// ErrPINBlocked, ErrPINAuthBlocked and all else.
			return err
		}
		ask = true
	}
}

// askPIN asks for the PIN; without a prompt the ceremony cannot go on.
func askPIN(ctx context.Context, op string, prompt PINPrompt, retries int) (string, error) {
	if prompt == nil {
		return "", &platform.Error{Op: op, Kind: platform.ErrPINRequired, RetriesLeft: retries}
	}
	pin, err := prompt(ctx, retries)
	if err != nil {
		return "", fmt.Errorf("%s: PIN entry: %w", op, err)
	}
	if pin == "" {
		return "", &platform.Error{Op: op, Kind: platform.ErrCancelled, RetriesLeft: -1}
	}
	return pin, nil
}

// retriesLeft reads the attempts left from a key's error, -1 if unknown.
func retriesLeft(err error) int {
	var e *platform.Error
	if errors.As(err, &e) {
		return e.RetriesLeft
	}
	return -1
}
