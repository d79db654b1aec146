package webauthn

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/keydesk/keydesk/platform"
)

// Capabilities is what the client knows of the key before it asks it
// anything: the options of authenticatorGetInfo that decide how "preferred"
// requirements are settled and whether "required" ones can be met. The
// zero value describes a key that can do nothing optional; fill it with
// CapabilitiesOf.
//
// Specification: CTAP 2.1 §6.4. authenticatorGetInfo (0x04) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorGetInfo)
type Capabilities struct {
	// ResidentKey is the rk option: the key can store discoverable
	// credentials.
	ResidentKey bool
	// PINSet is the clientPin option being true: the key has a PIN.
	PINSet bool
	// BuiltInUV is the uv option being true: the key has built-in user
	// verification (a fingerprint) configured.
	BuiltInUV bool
	// CredProtect is the credProtect extension being listed.
	CredProtect bool
	// Algorithms are the key's COSE algorithms; empty when it did not
	// say (CTAP 2.0 keys), and then every algorithm is tried.
	Algorithms []int
	// Transports are the response's transports ("usb", "nfc"); empty
	// when unknown, which the specification prefers to a guess.
	Transports []string
}

// CapabilitiesOf reads a key's capabilities from its getInfo and how it
// is attached.
func CapabilitiesOf(info *platform.Info, dev platform.Device) Capabilities {
	c := Capabilities{
		ResidentKey: info.HasOption("rk"),
		PINSet:      info.PINSet(),
		BuiltInUV:   info.HasOption("uv"),
		CredProtect: slices.Contains(info.Extensions, "credProtect"),
		Algorithms:  slices.Clone(info.Algorithms),
	}
	switch dev.Transport {
	case platform.TransportUSB:
		c.Transports = []string{string(protocol.USB)}
	case platform.TransportNFC:
		c.Transports = []string{string(protocol.NFC)}
	}
	return c
}

// canVerifyUser reports whether the key can verify the user, with its PIN
// or its built-in UV.
func (c Capabilities) canVerifyUser() bool { return c.PINSet || c.BuiltInUV }

// Registration is one registration ceremony prepared for a key: the
// request to send and what is needed to turn the key's answer into the
// service's response. Make one with CreationRequest.
type Registration struct {
	// Request is authenticatorMakeCredential's input, without a PIN.
	Request platform.MakeCredentialRequest
	// ClientDataJSON is the serialized client data; Request holds its
	// hash.
	ClientDataJSON []byte
	// Timeout is how long the ceremony may take.
	Timeout time.Duration
	// Attestation is the service's conveyance preference, which decides
	// whether the key's attestation statement is kept.
	Attestation protocol.ConveyancePreference
	// CredProps is set when the service asked for the credProps output.
	CredProps bool
	// Transports go into the response as they are.
	Transports []string
	// BlindAAGUID also zeroes the AAGUID when the attestation is replaced
	// by "none", as WebAuthn L2 §5.1.3 did. L3 keeps the AAGUID,
	// so that services can name the key's model, and so does Keydesk
	// unless this is set.
	BlindAAGUID bool
}

// Authentication is one authentication ceremony prepared for a key. Make
// one with AssertionRequest.
type Authentication struct {
	// Request is authenticatorGetAssertion's input, without a PIN.
	Request platform.GetAssertionRequest
	// ClientDataJSON is the serialized client data; Request holds its
	// hash.
	ClientDataJSON []byte
	// Timeout is how long the ceremony may take.
	Timeout time.Duration
}

// CreationRequest prepares a registration for the key described by caps:
// it checks the RP ID against the origin (before any key is touched),
// settles residentKey, userVerification and credProtect against what the
// key can do, and builds clientDataJSON and the key's request. Options
// should come from ParseCreationOptions; their invariants are checked
// again here. Errors are *Error of kind ErrBadOrigin, ErrRPIDMismatch,
// ErrBadOptions, ErrUnsupportedAlgorithm or ErrKeyNotCapable.
//
// Specification: WebAuthn L3 §5.1.3. Create a New Credential - PublicKeyCredential's [[Create]](origin, options, sameOriginWithAncestors) Method (https://www.w3.org/TR/webauthn-3/#sctn-createCredential)
func CreationRequest(origin Origin, opts *CreationOptions, caps Capabilities) (*Registration, error) {
	if !origin.valid() {
		return nil, newError(ErrBadOrigin, "no origin is configured")
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	// "If pkOptions.rp.id is present": the RP ID is the origin's effective
	// domain unless the service names one the origin may claim.
	rpID := opts.RP.ID
	if rpID == "" {
		rpID = origin.EffectiveDomain()
	} else if err := origin.CheckRPID(rpID); err != nil {
		return nil, err
	}
	sel := opts.AuthenticatorSelection
	// Authenticator selection, authenticatorAttachment: a security key is
	// a roaming authenticator, never the platform's own.
	if sel.AuthenticatorAttachment == protocol.Platform {
		return nil, newError(ErrKeyNotCapable, "the service asks for the computer's built-in authenticator, not a security key")
	}
	// Authenticator selection, residentKey: "preferred" becomes a
	// discoverable credential when the key can store one.
	rk := false
	switch sel.ResidentKey {
	case protocol.ResidentKeyRequirementRequired:
		if !caps.ResidentKey {
			return nil, newError(ErrKeyNotCapable, "the service needs a passkey stored on the key, and this key cannot store one")
		}
		rk = true
	case protocol.ResidentKeyRequirementPreferred:
		rk = caps.ResidentKey
	}
	// Authenticator selection, userVerification: "preferred" becomes UV
	// when the key has a PIN or built-in UV.
	uv := false
	switch sel.UserVerification {
	case protocol.VerificationRequired:
		if !caps.canVerifyUser() {
			return nil, newError(ErrKeyNotCapable, "the service requires the key's PIN or fingerprint, and this key has neither: set a PIN on it first")
		}
		uv = true
	case protocol.VerificationPreferred:
		uv = caps.canVerifyUser()
	}
	algs := opts.PubKeyCredParams
	if len(caps.Algorithms) > 0 {
		algs = nil
		for _, a := range opts.PubKeyCredParams {
			if slices.Contains(caps.Algorithms, a) {
				algs = append(algs, a)
			}
		}
		if len(algs) == 0 {
			return nil, newError(ErrUnsupportedAlgorithm, "this security key supports none of the algorithms the service accepts")
		}
	}
	// CTAP 2.1 §12.1: without credProtect on the key, a policy above
	// userVerificationOptional is dropped unless the service enforces it.
	credProtect := 0
	if cp := opts.Extensions.CredProtect; cp != nil {
		switch {
		case caps.CredProtect:
			credProtect = credProtectLevel(cp.Policy)
		case cp.Enforce && credProtectLevel(cp.Policy) > 1:
			return nil, newError(ErrKeyNotCapable, "the service requires credential protection, which this key does not offer")
		}
	}
	cd := CollectedClientData{Type: protocol.CreateCeremony, Challenge: opts.Challenge, Origin: origin}
	cdj := cd.JSON()
	r := &Registration{
		Request: platform.MakeCredentialRequest{
			ClientDataHash: hash(cdj),
			RP:             platform.RPEntity{ID: rpID, Name: truncate(opts.RP.Name)},
			User: platform.User{
				ID:          slices.Clone(opts.User.ID),
				Name:        truncate(opts.User.Name),
				DisplayName: truncate(opts.User.DisplayName),
			},
			Algorithms:       slices.Clone(algs),
			ExcludeList:      cloneIDs(opts.ExcludeCredentials),
			ResidentKey:      rk,
			UserVerification: uv,
			CredProtect:      credProtect,
		},
		ClientDataJSON: cdj,
		Timeout:        opts.Timeout,
		Attestation:    opts.Attestation,
		CredProps:      opts.Extensions.CredProps,
		Transports:     slices.Clone(caps.Transports),
	}
	return r, nil
}

// AssertionRequest prepares a sign-in for the key described by caps, as
// CreationRequest does a registration.
//
// Specification: WebAuthn L3 §5.1.4. Use an Existing Credential to Make an Assertion (https://www.w3.org/TR/webauthn-3/#sctn-getAssertion)
func AssertionRequest(origin Origin, opts *RequestOptions, caps Capabilities) (*Authentication, error) {
	if !origin.valid() {
		return nil, newError(ErrBadOrigin, "no origin is configured")
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	// As in CreationRequest, for rpId.
	rpID := opts.RPID
	if rpID == "" {
		rpID = origin.EffectiveDomain()
	} else if err := origin.CheckRPID(rpID); err != nil {
		return nil, err
	}
	// userVerification, settled as in CreationRequest.
	uv := false
	switch opts.UserVerification {
	case protocol.VerificationRequired:
		if !caps.canVerifyUser() {
			return nil, newError(ErrKeyNotCapable, "the service requires the key's PIN or fingerprint, and this key has neither: set a PIN on it first")
		}
		uv = true
	case protocol.VerificationPreferred:
		uv = caps.canVerifyUser()
	}
	cd := CollectedClientData{Type: protocol.AssertCeremony, Challenge: opts.Challenge, Origin: origin}
	cdj := cd.JSON()
	return &Authentication{
		Request: platform.GetAssertionRequest{
			RPID:             rpID,
			ClientDataHash:   hash(cdj),
			AllowList:        cloneIDs(opts.AllowCredentials),
			UserVerification: uv,
		},
		ClientDataJSON: cdj,
		Timeout:        opts.Timeout,
	}, nil
}

// check re-checks what ParseCreationOptions guarantees, for options built
// by hand.
func (o *CreationOptions) check() error {
	if o == nil {
		return newError(ErrBadOptions, "there are no options")
	}
	if err := checkChallenge(o.Challenge); err != nil {
		return err
	}
	if n := len(o.User.ID); n == 0 || n > MaxUserIDLength {
		return badOptions("user.id", "is %d bytes; it must be 1 to %d", n, MaxUserIDLength)
	}
	if len(o.PubKeyCredParams) == 0 {
		return newError(ErrUnsupportedAlgorithm, "the options list no algorithm")
	}
	for _, a := range o.PubKeyCredParams {
		if !slices.Contains(supportedAlgorithms, a) {
			return newError(ErrUnsupportedAlgorithm, fmt.Sprintf("Keydesk does not support %s", algorithmName(a)))
		}
	}
	if cp := o.Extensions.CredProtect; cp != nil && credProtectLevel(cp.Policy) == 0 {
		return badOptions("credentialProtectionPolicy", "is not a credential protection policy")
	}
	return checkIDs("excludeCredentials", o.ExcludeCredentials)
}

// check re-checks what ParseRequestOptions guarantees.
func (o *RequestOptions) check() error {
	if o == nil {
		return newError(ErrBadOptions, "there are no options")
	}
	if err := checkChallenge(o.Challenge); err != nil {
		return err
	}
	return checkIDs("allowCredentials", o.AllowCredentials)
}

// checkChallenge checks a challenge's length.
func checkChallenge(c []byte) error {
	if n := len(c); n < MinChallengeLength || n > MaxChallengeLength {
		return badOptions("challenge", "is %d bytes; it must be %d to %d", n, MinChallengeLength, MaxChallengeLength)
	}
	return nil
}

// checkIDs checks a list of credential IDs.
func checkIDs(name string, ids [][]byte) error {
	if len(ids) > MaxCredentialDescriptors {
		return badOptions(name, "has %d entries; Keydesk accepts at most %d", len(ids), MaxCredentialDescriptors)
	}
	for i, id := range ids {
		if len(id) == 0 || len(id) > MaxCredentialIDLength {
			return badOptions(fmt.Sprintf("%s[%d].id", name, i), "is %d bytes; it must be 1 to %d", len(id), MaxCredentialIDLength)
		}
	}
	return nil
}

// cloneIDs copies a list of IDs, so that a request does not share memory
// with options the caller may reuse.
func cloneIDs(ids [][]byte) [][]byte {
	if len(ids) == 0 {
		return nil
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = slices.Clone(id)
	}
	return out
}

// truncate cuts a name to maxEntityNameLength bytes at a character
// boundary.
//
// Specification: WebAuthn L3 §6.4.1. String Truncation (https://www.w3.org/TR/webauthn-3/#sctn-strings-truncation)
func truncate(s string) string {
	if len(s) <= maxEntityNameLength {
		return s
	}
	n := maxEntityNameLength
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
