package platform

import (
	"context"
	"errors"
)

// COSE algorithm identifiers a key may be asked to create credentials for.
//
// Specification: WebAuthn L3 §5.8.5. Cryptographic Algorithm Identifier (https://www.w3.org/TR/webauthn-3/#typedefdef-cosealgorithmidentifier)
const (
	COSEAlgES256 = -7   // ECDSA P-256 with SHA-256
	COSEAlgEdDSA = -8   // EdDSA (Ed25519)
	COSEAlgRS256 = -257 // RSASSA-PKCS1-v1_5 with SHA-256
)

// RPEntity is the relying party a credential is made for.
//
// Specification: CTAP 2.1 §6.1. authenticatorMakeCredential, rp (PublicKeyCredentialRpEntity) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorMakeCredential)
type RPEntity struct {
	ID   string
	Name string
}

// MakeCredentialRequest is authenticatorMakeCredential's input as a
// WebAuthn client has prepared it (the client checked origin and RP ID).
//
// Specification: CTAP 2.1 §6.1. authenticatorMakeCredential (0x01) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorMakeCredential)
type MakeCredentialRequest struct {
	// ClientDataHash is SHA-256 of the clientDataJSON.
	ClientDataHash []byte
	RP             RPEntity
	// User must have an ID (1 to 64 bytes) and a name.
	User User
	// Algorithms are COSE algorithm identifiers, most preferred first
	// (pubKeyCredParams); the key uses the first it supports.
	Algorithms []int
	// ExcludeList holds credential IDs already registered for this user:
	// a key holding one fails with ErrCredentialExcluded.
	ExcludeList [][]byte
	// ResidentKey asks for a discoverable credential (the rk option).
	ResidentKey bool
	// UserVerification requires UV: the PIN below, or the key's built-in
	// UV (fingerprint) when PIN is empty and the key has one.
	UserVerification bool
	// CredProtect is the credProtect extension's level (1 to 3), 0 for
	// none.
	CredProtect int
	// PIN is the key's PIN, or "" to send none. Never logged.
	PIN string
}

// Attestation is what authenticatorMakeCredential returned, complete, so
// that a client can assemble the attestation object (fmt, authData,
// attStmt) byte for byte.
type Attestation struct {
	// Format is the attestation statement format, such as "packed".
	Format string
	// AuthData is the raw authenticator data, not CBOR-wrapped.
	AuthData []byte
	// AttStmt is the attestation statement as the key encoded it (a CBOR
	// map), with every certificate of x5c.
	AttStmt []byte
	// CredentialID is the new credential's ID.
	CredentialID []byte
}

// GetAssertionRequest is authenticatorGetAssertion's input.
//
// Specification: CTAP 2.1 §6.2. authenticatorGetAssertion (0x02) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorGetAssertion)
type GetAssertionRequest struct {
	RPID string
	// ClientDataHash is SHA-256 of the clientDataJSON.
	ClientDataHash []byte
	// AllowList holds the credential IDs the RP accepts; empty asks for
	// the key's discoverable credentials for RPID.
	AllowList [][]byte
	// UserVerification requires UV (PIN below or built-in).
	UserVerification bool
	// Silent asks without user presence (the up option false): the key
	// answers at once, with no touch, whether it holds a credential of
	// AllowList, which must not be empty. It tells which of a user's keys
	// is plugged in; the assertion it returns signs nothing an RP would
	// accept (its UP flag is clear). UserVerification must be false.
	Silent bool
	// PIN is the key's PIN, or "". Never logged.
	PIN string
}

// Assertion is one credential's answer to authenticatorGetAssertion.
type Assertion struct {
	CredentialID []byte
	// AuthData is the raw authenticator data, not CBOR-wrapped.
	AuthData  []byte
	Signature []byte
	// User is the user entity stored with a discoverable credential: the
	// ID always, name and display name when the key verified the user
	// and several credentials matched; nil when the key sent none.
	User *User
}

// WebAuthnAuthenticator is the part of a key that WebAuthn ceremonies use.
// Every Authenticator implements it.
type WebAuthnAuthenticator interface {
	// MakeCredential creates a credential. It reports StageTouch through
	// the context's Progress while the key waits for a touch.
	MakeCredential(ctx context.Context, req MakeCredentialRequest) (*Attestation, error)
	// GetAssertion signs with a credential. With an empty AllowList it
	// returns every discoverable credential of the RP that the key
	// offers (one assertion each: the caller lets the user choose),
	// else the first one the key finds.
	GetAssertion(ctx context.Context, req GetAssertionRequest) ([]Assertion, error)
}

// CheckSilent refuses a silent request that could not be one: a silent
// sign-in names the credentials it looks for and does not verify the
// user (a key would ask for a touch or refuse).
func CheckSilent(op string, req GetAssertionRequest) error {
	switch {
	case !req.Silent:
		return nil
	case len(req.AllowList) == 0:
		return &Error{Op: op, Kind: ErrUnsupported, RetriesLeft: -1, Err: errors.New("a silent request needs an allow list")}
	case req.UserVerification || req.PIN != "":
		return &Error{Op: op, Kind: ErrUnsupported, RetriesLeft: -1, Err: errors.New("a silent request cannot verify the user")}
	}
	return nil
}
