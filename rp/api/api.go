// Package api is Keydesk's relying-party API: the OpenAPI document that an
// organization's identity service can implement (openapi.yaml, embedded
// here and served at /openapi.yaml), and the request and response bodies
// as Go types shared by the reference server (rp/server) and the desktop
// client (enroll/). WebAuthn options and credentials travel in the
// WebAuthn Level 3 toJSON() shapes, unchanged.
package api

import (
	_ "embed"
	"encoding/json"
	"time"
)

// OpenAPI is the API's OpenAPI 3.1 document.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Version is the path prefix of this version of the API.
const Version = "/v1"

// CeremonyBegin answers the begin step of a registration or login: the
// options to hand to navigator.credentials.create() or .get() (or to a
// security key), and the ceremony to name when finishing.
type CeremonyBegin struct {
	CeremonyID string `json:"ceremonyId"`
	// PublicKey is PublicKeyCredentialCreationOptionsJSON or
	// PublicKeyCredentialRequestOptionsJSON (WebAuthn L3 §5.1.8, §5.1.9).
	PublicKey json.RawMessage `json:"publicKey"`
	ExpiresAt time.Time       `json:"expiresAt"`
}

// RegistrationBeginRequest begins registering a key for the signed-in
// user.
type RegistrationBeginRequest struct {
	// Nickname names the key; it can also be given when finishing.
	Nickname string `json:"nickname,omitempty"`
}

// RegistrationFinishRequest finishes a registration.
type RegistrationFinishRequest struct {
	CeremonyID string `json:"ceremonyId"`
	Nickname   string `json:"nickname,omitempty"`
	// Credential is RegistrationResponseJSON (WebAuthn L3 §5.1.3,
	// PublicKeyCredential.toJSON()).
	Credential json.RawMessage `json:"credential"`
}

// LoginBeginRequest begins a sign-in: with a user name, the user's keys
// are listed in allowCredentials; without, the login is discoverable.
type LoginBeginRequest struct {
	Username string `json:"username,omitempty"`
}

// LoginFinishRequest finishes a sign-in.
type LoginFinishRequest struct {
	CeremonyID string `json:"ceremonyId"`
	// Credential is AuthenticationResponseJSON (WebAuthn L3 §5.1.4).
	Credential json.RawMessage `json:"credential"`
}

// GrantRedeemRequest trades an enrollment code for a session that may
// only register keys.
type GrantRedeemRequest struct {
	Username string `json:"username"`
	Code     string `json:"code"`
}

// Session is a bearer token and what it allows. The token is shown once;
// the server keeps only its hash.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Scope is "full" (signed in with a key), "register" (from an
	// enrollment grant) or "recovery".
	Scope string `json:"scope"`
	User  User   `json:"user"`
}

// Me describes the session's user and the session's freshness.
type Me struct {
	User      User      `json:"user"`
	Scope     string    `json:"scope"`
	ExpiresAt time.Time `json:"expiresAt"`
	// AuthTime is when a key was last used in this session: revoking a
	// key needs it within the last five minutes (step-up).
	AuthTime time.Time `json:"authTime"`
}

// User is an account.
type User struct {
	// ID is the WebAuthn user handle, base64url.
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"displayName,omitempty"`
	Roles       []string  `json:"roles"`
	Disabled    bool      `json:"disabled,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Key is a registered security key as its owner and the helpdesk see it.
type Key struct {
	// ID is the credential ID, base64url.
	ID       string `json:"id"`
	Nickname string `json:"nickname"`
	// AAGUID is the authenticator model's identifier (a dashed UUID) and
	// Model its name, when known.
	AAGUID            string     `json:"aaguid"`
	Model             string     `json:"model,omitempty"`
	CreatedAt         time.Time  `json:"createdAt"`
	LastUsedAt        *time.Time `json:"lastUsedAt,omitempty"`
	Transports        []string   `json:"transports,omitempty"`
	BackupEligible    bool       `json:"backupEligible"`
	BackupState       bool       `json:"backupState"`
	AttestationType   string     `json:"attestationType"`
	AttestationFormat string     `json:"attestationFormat,omitempty"`
	RevokedAt         *time.Time `json:"revokedAt,omitempty"`
	RevokeReason      string     `json:"revokeReason,omitempty"`
	ProvisionedBy     string     `json:"provisionedBy,omitempty"`
}

// Keys lists keys.
type Keys struct {
	Keys []Key `json:"keys"`
}

// RenameKeyRequest renames a key.
type RenameKeyRequest struct {
	Nickname string `json:"nickname"`
}

// RevokeKeyRequest revokes a key.
type RevokeKeyRequest struct {
	Reason string `json:"reason"`
}

// IssueGrantRequest issues a one-time code for a user.
type IssueGrantRequest struct {
	// Kind is "enrollment" (the default).
	Kind string `json:"kind,omitempty"`
	// TTLSeconds is between 60 and 86400; 3600 by default.
	TTLSeconds int `json:"ttlSeconds,omitempty"`
	// MaxUses is between 1 and 10; 1 by default.
	MaxUses int `json:"maxUses,omitempty"`
}

// Grant is an issued code. Code is shown once, to the issuer.
type Grant struct {
	ID        string    `json:"id"`
	Code      string    `json:"code"`
	Kind      string    `json:"kind"`
	Username  string    `json:"username"`
	ExpiresAt time.Time `json:"expiresAt"`
	MaxUses   int       `json:"maxUses"`
}

// CreateUserRequest creates an account.
type CreateUserRequest struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"displayName,omitempty"`
	Roles       []string `json:"roles,omitempty"`
}

// SetRolesRequest replaces a user's roles ("user" is always kept).
type SetRolesRequest struct {
	Roles []string `json:"roles"`
}

// SetDisabledRequest disables or re-enables an account.
type SetDisabledRequest struct {
	Disabled bool `json:"disabled"`
}

// Users lists accounts.
type Users struct {
	Users []User `json:"users"`
}

// Policy is the RP's registration and sign-in policy.
type Policy struct {
	// AllowedAAGUIDs, when not empty, are the only models that may
	// register; DeniedAAGUIDs may never.
	AllowedAAGUIDs []string `json:"allowedAaguids"`
	DeniedAAGUIDs  []string `json:"deniedAaguids"`
	// Attestation is "none" (not required), "any" (some attestation) or
	// "verified" (chaining to the FIDO Metadata Service).
	Attestation string `json:"attestation"`
	// UserVerification and ResidentKey are WebAuthn's "required",
	// "preferred" or "discouraged".
	UserVerification string `json:"userVerification"`
	ResidentKey      string `json:"residentKey"`
	// RefuseCounterRegression refuses a sign-in whose signature counter
	// went backwards, a sign of a cloned key.
	RefuseCounterRegression bool `json:"refuseCounterRegression"`
}

// Problem is every error's body.
type Problem struct {
	// Error is a stable code for programs ("rate_limited",
	// "step_up_required", "last_key"...).
	Error string `json:"error"`
	// Message says what happened and what to do, for people.
	Message string `json:"message"`
}
