package webauthn

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/keydesk/keydesk/platform"
)

// Bounds on what a service may send. A browser has similar ones; these
// keep a hostile or broken service from making Keydesk allocate, loop or
// send the key more than any real service needs.
const (
	// MaxOptionsSize bounds the options JSON. Real options are 1 to 5 KiB;
	// 64 KiB holds the largest lists below with typical credential IDs.
	MaxOptionsSize = 64 << 10
	// MinChallengeLength is the challenge size the specification asks
	// services for (16 random bytes, WebAuthn L3 §13.4.3); a shorter one
	// is a broken service whose signatures could be replayed.
	MinChallengeLength = 16
	// MaxChallengeLength is far above any real challenge (16 to 64
	// bytes); the challenge is copied into clientDataJSON, so it bounds
	// that too.
	MaxChallengeLength = 1024
	// MaxUserIDLength is the user handle's maximum (WebAuthn L3 §5.4.3).
	MaxUserIDLength = 64
	// MaxCredentialIDLength is a credential ID's maximum (WebAuthn L3 §4,
	// Credential ID).
	MaxCredentialIDLength = 1023
	// MaxCredentialDescriptors bounds excludeCredentials and
	// allowCredentials. Services cap the keys of an account at 10 to 25;
	// 64 leaves room, while each entry can cost a round trip to the key
	// (keys take 8 to 20 IDs per command), so a list of thousands would
	// keep the key busy for minutes. Longer lists are refused, not cut:
	// a shortened exclude list could register a key twice.
	MaxCredentialDescriptors = 64
	// MaxPubKeyCredParams bounds pubKeyCredParams; COSE registers about
	// 40 signature algorithms.
	MaxPubKeyCredParams = 64
	// maxEntityNameLength is where names are cut before they go to the
	// key: authenticators store at least 64 bytes and may truncate the
	// rest (WebAuthn L3 §6.4.1), so Keydesk cuts at a character boundary
	// itself rather than let a key cut inside one.
	maxEntityNameLength = 64
)

// The COSE algorithms Keydesk can ask keys for and describe in a response
// (publicKeyAlgorithm and the SPKI publicKey), most common first.
var supportedAlgorithms = []int{platform.COSEAlgES256, platform.COSEAlgEdDSA, platform.COSEAlgRS256}

// defaultAlgorithms is what an empty pubKeyCredParams means.
//
// Specification: WebAuthn L3 §5.1.3. Create a New Credential, "If pkOptions.pubKeyCredParams’s size is zero" (https://www.w3.org/TR/webauthn-3/#sctn-createCredential)
var defaultAlgorithms = []int{platform.COSEAlgES256, platform.COSEAlgRS256}

// algorithmName names a COSE algorithm for messages.
func algorithmName(alg int) string {
	switch alg {
	case platform.COSEAlgES256:
		return "ES256"
	case platform.COSEAlgEdDSA:
		return "EdDSA"
	case platform.COSEAlgRS256:
		return "RS256"
	}
	return "COSE algorithm " + strconv.Itoa(alg)
}

// credentialTypePublicKey is the one PublicKeyCredentialType; entries of
// other types are skipped, as the specification requires of clients that
// do not know them.
const credentialTypePublicKey = string(protocol.PublicKeyCredentialType)

// credProtectLevel is a credential protection policy's number in CTAP (1
// to 3), 0 for an unknown policy. The policies say when the key may use,
// or even reveal, a credential without user verification.
//
// Specification: CTAP 2.1 §12.1. Credential Protection (credProtect) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#sctn-credProtect-extension)
func credProtectLevel(p protocol.CredentialProtectionPolicy) int {
	switch p {
	case protocol.CredentialProtectionPolicyUserVerificationOptional:
		return 1
	case protocol.CredentialProtectionPolicyUserVerificationOptionalWithCredentialIDList:
		return 2
	case protocol.CredentialProtectionPolicyUserVerificationRequired:
		return 3
	}
	return 0
}

// CredProtectInput is the credProtect extension's client input.
//
// Specification: CTAP 2.1 §12.1. Credential Protection (credProtect), client extension input (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#sctn-credProtect-extension)
type CredProtectInput struct {
	// Policy is credentialProtectionPolicy.
	Policy protocol.CredentialProtectionPolicy
	// Enforce is enforceCredentialProtectionPolicy: fail rather than
	// create a less protected credential on a key without credProtect.
	Enforce bool
}

// CreationExtensions are the registration extensions Keydesk acts on;
// others are ignored, as browsers ignore extensions they do not know.
//
// Specification: WebAuthn L3 §5.7.1. Authentication Extensions Client Inputs (https://www.w3.org/TR/webauthn-3/#iface-authentication-extensions-client-inputs)
type CreationExtensions struct {
	// CredProtect is nil when the service did not ask for it.
	CredProtect *CredProtectInput
	// CredProps asks the client to say whether the credential is
	// discoverable (WebAuthn L3 §10.1.3).
	CredProps bool
}

// CreationOptions are the PublicKeyCredentialCreationOptions of a
// registration, read and checked by ParseCreationOptions. Enumerations are
// normalized: an absent or unknown value is replaced by what the
// specification says it means.
//
// Specification: WebAuthn L3 §5.4. Options for Credential Creation (dictionary PublicKeyCredentialCreationOptions) (https://www.w3.org/TR/webauthn-3/#dictionary-makecredentialoptions)
type CreationOptions struct {
	// RP is the relying party; its ID is "" when the service named none,
	// which means the origin's effective domain.
	RP platform.RPEntity
	// User is the account: ID (the user handle), name and display name.
	User platform.User
	// Challenge is the service's challenge, raw.
	Challenge []byte
	// PubKeyCredParams are the COSE algorithms of pubKeyCredParams that
	// Keydesk supports, in the service's order of preference, or ES256
	// and RS256 when the service listed none.
	PubKeyCredParams []int
	// Timeout is the service's timeout, brought into the range of
	// WebAuthn L3 §15.1 (5 to 10 minutes; 5 when the service set none).
	Timeout time.Duration
	// ExcludeCredentials are the IDs of credentials already registered,
	// of type "public-key".
	ExcludeCredentials [][]byte
	// AuthenticatorSelection holds the service's requirements, with
	// ResidentKey and UserVerification always set to a known value.
	AuthenticatorSelection protocol.AuthenticatorSelection
	// Attestation is "none", "indirect", "direct" or "enterprise".
	Attestation protocol.ConveyancePreference
	// Extensions are the extensions Keydesk acts on.
	Extensions CreationExtensions
}

// RequestOptions are the PublicKeyCredentialRequestOptions of a sign-in,
// read and checked by ParseRequestOptions.
//
// Specification: WebAuthn L3 §5.5. Options for Assertion Generation (dictionary PublicKeyCredentialRequestOptions) (https://www.w3.org/TR/webauthn-3/#dictionary-assertion-options)
type RequestOptions struct {
	// Challenge is the service's challenge, raw.
	Challenge []byte
	// Timeout is the service's timeout, brought into range as in
	// CreationOptions.
	Timeout time.Duration
	// RPID is "" when the service named none, which means the origin's
	// effective domain.
	RPID string
	// AllowCredentials are the credential IDs the service accepts, of
	// type "public-key"; empty asks for a discoverable credential.
	AllowCredentials [][]byte
	// UserVerification is "required", "preferred" or "discouraged".
	UserVerification protocol.UserVerificationRequirement
}

// ParseCreationOptions reads the options of navigator.credentials.create()
// in their JSON form, PublicKeyCredentialCreationOptionsJSON (base64url
// strings for binary members), bare or inside the {"publicKey": ...}
// wrapper that go-webauthn's BeginRegistration produces. Like a browser it
// ignores members it does not know and refuses wrong types and missing
// required members; beyond a browser it refuses oversized input and lists
// and short challenges. Errors are *Error of kind ErrBadOptions,
// ErrRPIDMismatch (an empty rp.id) or ErrUnsupportedAlgorithm.
//
// Specification: WebAuthn L3 §5.1.9. Deserialize Registration ceremony options - PublicKeyCredential's parseCreationOptionsFromJSON() Method (https://www.w3.org/TR/webauthn-3/#sctn-parseCreationOptionsFromJSON)
func ParseCreationOptions(data []byte) (*CreationOptions, error) {
	o, err := optionsObject(data)
	if err != nil {
		return nil, err
	}
	var opts CreationOptions

	rp, _, err := o.object("rp", true)
	if err != nil {
		return nil, err
	}
	if opts.RP.Name, _, err = rp.str("name", true); err != nil {
		return nil, err
	}
	rpID, hasID, err := rp.str("id", false)
	if err != nil {
		return nil, err
	}
	if hasID && rpID == "" {
		return nil, newError(ErrRPIDMismatch, "the service sent an empty RP ID")
	}
	opts.RP.ID = rpID

	user, _, err := o.object("user", true)
	if err != nil {
		return nil, err
	}
	if opts.User.ID, _, err = user.base64URL("id", true, 1, MaxUserIDLength); err != nil {
		return nil, err
	}
	if opts.User.Name, _, err = user.str("name", true); err != nil {
		return nil, err
	}
	if opts.User.DisplayName, _, err = user.str("displayName", true); err != nil {
		return nil, err
	}

	if opts.Challenge, _, err = o.base64URL("challenge", true, MinChallengeLength, MaxChallengeLength); err != nil {
		return nil, err
	}
	if opts.PubKeyCredParams, err = parsePubKeyCredParams(o); err != nil {
		return nil, err
	}
	if opts.ExcludeCredentials, err = parseDescriptors(o, "excludeCredentials"); err != nil {
		return nil, err
	}
	if opts.AuthenticatorSelection, err = parseAuthenticatorSelection(o); err != nil {
		return nil, err
	}

	// An unknown attestation value is ignored like an absent one, and
	// absent means "none" (§5.4.7).
	att, _, err := o.str("attestation", false)
	if err != nil {
		return nil, err
	}
	switch p := protocol.ConveyancePreference(att); p {
	case protocol.PreferIndirectAttestation, protocol.PreferDirectAttestation, protocol.PreferEnterpriseAttestation:
		opts.Attestation = p
	default:
		opts.Attestation = protocol.PreferNoAttestation
	}

	if opts.Extensions, err = parseCreationExtensions(o); err != nil {
		return nil, err
	}
	if opts.Timeout, err = parseTimeout(o); err != nil {
		return nil, err
	}
	return &opts, nil
}

// ParseRequestOptions reads the options of navigator.credentials.get() in
// their JSON form, PublicKeyCredentialRequestOptionsJSON, bare or inside
// the {"publicKey": ...} wrapper of go-webauthn's BeginLogin, with the
// same rules as ParseCreationOptions.
//
// Specification: WebAuthn L3 §5.1.10. Deserialize Authentication ceremony options - PublicKeyCredential's parseRequestOptionsFromJSON() Methods (https://www.w3.org/TR/webauthn-3/#sctn-parseRequestOptionsFromJSON)
func ParseRequestOptions(data []byte) (*RequestOptions, error) {
	o, err := optionsObject(data)
	if err != nil {
		return nil, err
	}
	var opts RequestOptions
	if opts.Challenge, _, err = o.base64URL("challenge", true, MinChallengeLength, MaxChallengeLength); err != nil {
		return nil, err
	}
	rpID, hasID, err := o.str("rpId", false)
	if err != nil {
		return nil, err
	}
	if hasID && rpID == "" {
		return nil, newError(ErrRPIDMismatch, "the service sent an empty RP ID")
	}
	opts.RPID = rpID
	if opts.AllowCredentials, err = parseDescriptors(o, "allowCredentials"); err != nil {
		return nil, err
	}
	uv, _, err := o.str("userVerification", false)
	if err != nil {
		return nil, err
	}
	opts.UserVerification = userVerification(uv)
	if opts.Timeout, err = parseTimeout(o); err != nil {
		return nil, err
	}
	return &opts, nil
}

// optionsObject checks the size of the options and unwraps
// {"publicKey": {...}}. A bare options dictionary has no publicKey member
// (it would be an unknown one), so its presence marks the wrapper; the
// wrapper's other members (mediation) do not concern a key.
func optionsObject(data []byte) (jsonObject, error) {
	if len(data) > MaxOptionsSize {
		return jsonObject{}, newError(ErrBadOptions, fmt.Sprintf("the options are %d bytes; Keydesk accepts at most %d", len(data), MaxOptionsSize))
	}
	if !json.Valid(data) {
		return jsonObject{}, newError(ErrBadOptions, "the options are not valid JSON")
	}
	top, err := parseObject(data, "options")
	if err != nil {
		return jsonObject{}, err
	}
	top.path = ""
	pk, ok, err := top.object("publicKey", false)
	if err != nil || !ok {
		return top, err
	}
	pk.path = ""
	return pk, nil
}

// parsePubKeyCredParams reads pubKeyCredParams: entries of type
// "public-key" with an algorithm Keydesk supports, duplicates dropped.
//
// Specification: WebAuthn L3 §5.1.3. Create a New Credential, credTypesAndPubKeyAlgs (https://www.w3.org/TR/webauthn-3/#sctn-createCredential)
func parsePubKeyCredParams(o jsonObject) ([]int, error) {
	const name = "pubKeyCredParams"
	list, _, err := o.list(name, true, MaxPubKeyCredParams)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return append([]int(nil), defaultAlgorithms...), nil
	}
	var algs, offered []int
	for i, raw := range list {
		p, err := parseObject(raw, fmt.Sprintf("%s[%d]", name, i))
		if err != nil {
			return nil, err
		}
		typ, _, err := p.str("type", true)
		if err != nil {
			return nil, err
		}
		alg, _, err := p.integer("alg", true)
		if err != nil {
			return nil, err
		}
		if typ != credentialTypePublicKey {
			continue
		}
		offered = append(offered, alg)
		if slices.Contains(supportedAlgorithms, alg) && !slices.Contains(algs, alg) {
			algs = append(algs, alg)
		}
	}
	if len(algs) == 0 {
		names := make([]string, len(offered))
		for i, a := range offered {
			names[i] = algorithmName(a)
		}
		detail := "the service listed no public-key algorithm"
		if len(names) > 0 {
			detail = "the service accepts only " + strings.Join(names, ", ")
		}
		return nil, newError(ErrUnsupportedAlgorithm, detail)
	}
	return algs, nil
}

// parseDescriptors reads excludeCredentials or allowCredentials: the IDs
// of entries of type "public-key"; entries of other types are skipped.
// transports is not used: Keydesk talks to the key in front of it.
//
// Specification: WebAuthn L3 §5.8.3. Credential Descriptor (dictionary PublicKeyCredentialDescriptor) (https://www.w3.org/TR/webauthn-3/#dictionary-credential-descriptor)
func parseDescriptors(o jsonObject, name string) ([][]byte, error) {
	list, _, err := o.list(name, false, MaxCredentialDescriptors)
	if err != nil {
		return nil, err
	}
	var ids [][]byte
	for i, raw := range list {
		d, err := parseObject(raw, fmt.Sprintf("%s[%d]", o.sub(name), i))
		if err != nil {
			return nil, err
		}
		typ, _, err := d.str("type", true)
		if err != nil {
			return nil, err
		}
		id, _, err := d.base64URL("id", true, 1, MaxCredentialIDLength)
		if err != nil {
			return nil, err
		}
		if _, _, err := d.list("transports", false, MaxCredentialDescriptors); err != nil {
			return nil, err
		}
		if typ == credentialTypePublicKey {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// parseAuthenticatorSelection reads authenticatorSelection and settles
// residentKey (from requireResidentKey when absent or unknown) and
// userVerification (default "preferred").
//
// Specification: WebAuthn L3 §5.4.4. Authenticator Selection Criteria (dictionary AuthenticatorSelectionCriteria) (https://www.w3.org/TR/webauthn-3/#dictionary-authenticatorSelection)
func parseAuthenticatorSelection(o jsonObject) (protocol.AuthenticatorSelection, error) {
	var sel protocol.AuthenticatorSelection
	s, _, err := o.object("authenticatorSelection", false)
	if err != nil {
		return sel, err
	}
	attachment, _, err := s.str("authenticatorAttachment", false)
	if err != nil {
		return sel, err
	}
	switch a := protocol.AuthenticatorAttachment(attachment); a {
	case protocol.Platform, protocol.CrossPlatform:
		sel.AuthenticatorAttachment = a
	}
	rrk, hasRRK, err := s.boolean("requireResidentKey")
	if err != nil {
		return sel, err
	}
	if hasRRK {
		sel.RequireResidentKey = &rrk
	}
	rk, _, err := s.str("residentKey", false)
	if err != nil {
		return sel, err
	}
	switch r := protocol.ResidentKeyRequirement(rk); r {
	case protocol.ResidentKeyRequirementRequired, protocol.ResidentKeyRequirementPreferred, protocol.ResidentKeyRequirementDiscouraged:
		sel.ResidentKey = r
	default:
		// §5.4.4: without a known residentKey, requireResidentKey
		// decides, and false is its default.
		sel.ResidentKey = protocol.ResidentKeyRequirementDiscouraged
		if rrk {
			sel.ResidentKey = protocol.ResidentKeyRequirementRequired
		}
	}
	uv, _, err := s.str("userVerification", false)
	if err != nil {
		return sel, err
	}
	sel.UserVerification = userVerification(uv)
	return sel, nil
}

// userVerification settles a userVerification value: unknown or absent is
// "preferred".
//
// Specification: WebAuthn L3 §5.8.6. User Verification Requirement Enumeration (https://www.w3.org/TR/webauthn-3/#enum-userVerificationRequirement)
func userVerification(s string) protocol.UserVerificationRequirement {
	switch uv := protocol.UserVerificationRequirement(s); uv {
	case protocol.VerificationRequired, protocol.VerificationDiscouraged:
		return uv
	}
	return protocol.VerificationPreferred
}

// parseCreationExtensions reads the extensions Keydesk acts on.
func parseCreationExtensions(o jsonObject) (CreationExtensions, error) {
	var ext CreationExtensions
	e, _, err := o.object("extensions", false)
	if err != nil {
		return ext, err
	}
	if ext.CredProps, _, err = e.boolean("credProps"); err != nil {
		return ext, err
	}
	policy, hasPolicy, err := e.str("credentialProtectionPolicy", false)
	if err != nil {
		return ext, err
	}
	enforce, _, err := e.boolean("enforceCredentialProtectionPolicy")
	if err != nil {
		return ext, err
	}
	if hasPolicy {
		// Unlike the enumerations of WebAuthn, an unknown protection
		// policy is refused: ignoring it would create a credential less
		// protected than the service meant.
		p := protocol.CredentialProtectionPolicy(policy)
		if credProtectLevel(p) == 0 {
			return ext, badOptions(e.sub("credentialProtectionPolicy"), "is %q, which is not a credential protection policy", printable(policy))
		}
		ext.CredProtect = &CredProtectInput{Policy: p, Enforce: enforce}
	}
	return ext, nil
}

// The range a client keeps a service's timeout in, and the default when
// it sets none (WebAuthn L3 §15.1). The floor is generous on purpose: a
// user may have to find the key, read the screen and type a PIN, and the
// specification sets it for accessibility.
const (
	minTimeout     = 5 * time.Minute
	maxTimeout     = 10 * time.Minute
	defaultTimeout = 5 * time.Minute
)

// parseTimeout reads timeout (milliseconds) and brings it into the range
// of §15.1, as a client must rather than refuse it.
//
// Specification: WebAuthn L3 §15.1. Recommended Range for Ceremony Timeouts (https://www.w3.org/TR/webauthn-3/#sctn-timeout-recommended-range)
func parseTimeout(o jsonObject) (time.Duration, error) {
	ms, ok, err := o.number("timeout")
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return defaultTimeout, nil
	// Compare in milliseconds: a huge number must not overflow a
	// Duration.
	case ms < float64(minTimeout/time.Millisecond):
		return minTimeout, nil
	case ms > float64(maxTimeout/time.Millisecond):
		return maxTimeout, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}
