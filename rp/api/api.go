// Package api is Keydesk's relying-party API: the OpenAPI document that an
// organization's identity service can implement (openapi.yaml, embedded
// here and served at /openapi.yaml), and the request and response bodies
// as Go types shared by the reference server (rp/server) and the desktop
// client (enroll/). WebAuthn options and credentials travel in the
// WebAuthn Level 3 toJSON() shapes, unchanged.
//
// Account recovery (issue 7): a user who lost their key proves who they
// are on their phone, with a passkey for this RP. The desktop starts a
// handoff (RecoveryStartRequest) and shows a QR code of
// https://ORIGIN/r/SESSION#SECRET with a two-digit number; the phone page
// describes the request, the user picks the number and approves with
// their passkey (user verification required); the desktop, watching the
// session's events, redeems the approval with a signature of its
// ephemeral key over the nonce it was given (RecoveryRedeemMessage) and
// receives a session of scope "recovery": enroll one replacement key,
// list and revoke the user's keys, for ten minutes. Recovery codes and
// helpdesk recovery grants lead to the same kind of session.
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

// ProvisionBeginRequest begins registering a key on behalf of the user
// the path names (enterprise provisioning; admins only).
type ProvisionBeginRequest struct {
	// Nickname names the key; it can also be given when finishing.
	Nickname string `json:"nickname,omitempty"`
}

// ProvisionFinishRequest finishes a registration on a user's behalf.
type ProvisionFinishRequest struct {
	CeremonyID string `json:"ceremonyId"`
	Nickname   string `json:"nickname,omitempty"`
	// Batch names the provisioning run the key belongs to (at most 64
	// bytes, no control characters); the key and the audit log keep it.
	Batch string `json:"batch,omitempty"`
	// Credential is RegistrationResponseJSON, as for a registration.
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
	// ProvisionedBy is the admin who registered the key on the user's
	// behalf, in Batch, at CreatedAt; empty for a key its user enrolled.
	ProvisionedBy string `json:"provisionedBy,omitempty"`
	Batch         string `json:"batch,omitempty"`
	// RecoveryCodesAdvised is set only in the answer to a registration
	// that gave the user their first usable key while they have no
	// unused recovery codes: the client should offer to generate them
	// (POST /v1/me/recovery-codes, after signing in with the key).
	RecoveryCodesAdvised bool `json:"recoveryCodesAdvised,omitempty"`
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
	// RecoveryFourEyes makes a helpdesk recovery grant wait for a second,
	// different helpdesk member's approval before it can be redeemed.
	RecoveryFourEyes bool `json:"recoveryFourEyes"`
}

// Problem is every error's body.
type Problem struct {
	// Error is a stable code for programs ("rate_limited",
	// "step_up_required", "last_key"...).
	Error string `json:"error"`
	// Message says what happened and what to do, for people.
	Message string `json:"message"`
}

// RecoveryStartRequest starts a QR handoff recovery for an account.
type RecoveryStartRequest struct {
	Username string `json:"username"`
	// DesktopName is how the phone page names the asking computer (1 to
	// 64 bytes, no control characters), e.g. its host name.
	DesktopName string `json:"desktopName"`
	// DesktopPublicKey is the desktop's ephemeral ECDSA P-256 public key
	// as an X.509 SubjectPublicKeyInfo (DER), base64url without padding:
	// the key whose signature redeems the approval. Generate one per
	// recovery and forget it afterwards.
	DesktopPublicKey string `json:"desktopPublicKey"`
}

// RecoveryStart is a new handoff session. Its secrets are shown once;
// the server keeps only keyed hashes of them. It looks the same whether
// the account exists or not.
type RecoveryStart struct {
	SessionID string `json:"sessionId"`
	// Secret (256 bits, base64url) goes in the QR code's URL fragment,
	// which browsers never send to a server: URL is the whole link.
	Secret string `json:"secret"`
	URL    string `json:"url"`
	// TypedCode is the fallback when the fragment is lost (some QR
	// readers drop it): the phone page asks for it. Eight Crockford
	// base32 symbols, shown as XXXX-XXXX.
	TypedCode string `json:"typedCode"`
	// DesktopToken authenticates the desktop's events, status and redeem
	// requests (Authorization: Bearer). It never leaves the desktop, so
	// someone who photographed the QR code cannot follow the session.
	DesktopToken string `json:"desktopToken"`
	// Number (10 to 99) is shown by the desktop; the user picks it among
	// three on the phone.
	Number    int       `json:"number"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// RecoveryProof is how the phone page shows it read the QR code: the
// URL fragment's secret, or else the typed code. Exactly one is sent.
type RecoveryProof struct {
	Secret string `json:"secret,omitempty"`
	Code   string `json:"code,omitempty"`
}

// RecoveryDescription tells the phone what is asking to be let in, so
// that the user can refuse what they did not start.
type RecoveryDescription struct {
	Username    string `json:"username"`
	DesktopName string `json:"desktopName"`
	// DesktopIP is the address the server saw the request come from.
	DesktopIP string    `json:"desktopIp"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Candidates are three numbers, one of them the desktop's, in the
	// order to show them; the same on every call.
	Candidates []int `json:"candidates"`
}

// RecoveryApproveBeginRequest picks the number the desktop shows. A wrong
// number ends the session.
type RecoveryApproveBeginRequest struct {
	RecoveryProof
	Number int `json:"number"`
}

// RecoveryApproveFinishRequest approves the session with the user's key.
type RecoveryApproveFinishRequest struct {
	RecoveryProof
	// CeremonyID, when given, is the approve/begin being answered: a
	// finish for a begin that a later one replaced is refused (409
	// approval_superseded) without spending the later one.
	CeremonyID string `json:"ceremonyId,omitempty"`
	// Credential is AuthenticationResponseJSON (WebAuthn L3 §5.1.4) for
	// the options approve/begin answered.
	Credential json.RawMessage `json:"credential"`
}

// RecoveryStatus is a handoff session's state, as the desktop sees it.
type RecoveryStatus struct {
	SessionID string `json:"sessionId"`
	// Status is "pending", "approved", "refused", "redeemed" or
	// "expired".
	Status    string    `json:"status"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Nonce (base64url) is set once approved: the desktop signs
	// RecoveryRedeemMessage(SessionID, nonce) to redeem.
	Nonce string `json:"nonce,omitempty"`
	// Reason is set once refused: RefusedWrongNumber, RefusedOnPhone or
	// RefusedBadSignature.
	Reason string `json:"reason,omitempty"`
}

// The reasons a handoff is refused for (RecoveryStatus.Reason).
const (
	// RefusedWrongNumber: the phone picked another number than the one
	// the desktop shows.
	RefusedWrongNumber = "wrong_number"
	// RefusedOnPhone: the phone's user tapped "This was not me".
	RefusedOnPhone = "denied_on_phone"
	// RefusedBadSignature: a redeem was signed with a key other than the
	// one the desktop began with.
	RefusedBadSignature = "bad_desktop_signature"
)

// RecoveryRedeemRequest redeems an approved handoff.
type RecoveryRedeemRequest struct {
	// Signature is ECDSA P-256 with SHA-256 over RecoveryRedeemMessage,
	// ASN.1 DER (as crypto/ecdsa.SignASN1 and WebCrypto-then-DER make
	// it), base64url.
	Signature string `json:"signature"`
}

// recoveryRedeemLabel separates what a desktop signs to redeem from
// anything else its key could be made to sign.
const recoveryRedeemLabel = "keydesk-recovery-redeem-v1"

// RecoveryRedeemMessage is what the desktop signs to redeem an approved
// handoff, exactly:
//
//	"keydesk-recovery-redeem-v1" || 0x00 || sessionId (ASCII) || 0x00 || nonce (raw bytes)
//
// The label and the session ID bind the signature to this use and this
// session; the nonce, which the server draws at approval, makes each
// signature good for one redeem.
func RecoveryRedeemMessage(sessionID string, nonce []byte) []byte {
	m := make([]byte, 0, len(recoveryRedeemLabel)+2+len(sessionID)+len(nonce))
	m = append(m, recoveryRedeemLabel...)
	m = append(m, 0)
	m = append(m, sessionID...)
	m = append(m, 0)
	return append(m, nonce...)
}

// RecoveryCodes is a new set of one-time recovery codes, shown once: the
// server keeps only argon2id hashes of them, and the set replaces any
// older one.
type RecoveryCodes struct {
	// Codes are ten codes of four groups of five Crockford base32
	// symbols (100 bits each); case, spaces and dashes do not matter.
	Codes       []string  `json:"codes"`
	GeneratedAt time.Time `json:"generatedAt"`
}

// RecoveryCodesStatus says how many of the user's codes are left.
type RecoveryCodesStatus struct {
	Remaining   int        `json:"remaining"`
	Total       int        `json:"total"`
	GeneratedAt *time.Time `json:"generatedAt,omitempty"`
}

// RecoveryCodeRedeemRequest trades a recovery code for a recovery
// session.
type RecoveryCodeRedeemRequest struct {
	Username string `json:"username"`
	Code     string `json:"code"`
}

// IssueRecoveryGrantRequest is a helpdesk member vouching for a locked
// out user.
type IssueRecoveryGrantRequest struct {
	// Verification lists the checklist items (GET
	// /v1/recovery/checklist) the helpdesk member checked: all of them
	// are required.
	Verification []string `json:"verification"`
	// Note says how, for the audit log (at most 500 bytes).
	Note string `json:"note,omitempty"`
	// TTLSeconds is between 60 and 86400; 3600 by default.
	TTLSeconds int `json:"ttlSeconds,omitempty"`
}

// RecoveryGrant is a helpdesk recovery grant. Code is set only when it
// is issued, to the issuer.
type RecoveryGrant struct {
	ID           string    `json:"id"`
	Code         string    `json:"code,omitempty"`
	Username     string    `json:"username"`
	ExpiresAt    time.Time `json:"expiresAt"`
	IssuedBy     string    `json:"issuedBy"`
	Verification []string  `json:"verification"`
	Note         string    `json:"note,omitempty"`
	// Pending is a grant waiting for a second helpdesk member's approval
	// (policy recoveryFourEyes); it cannot be redeemed yet.
	Pending    bool   `json:"pending"`
	ApprovedBy string `json:"approvedBy,omitempty"`
}

// RecoveryChecklist is what a helpdesk member must check before issuing
// a recovery grant.
type RecoveryChecklist struct {
	Items []string `json:"items"`
	// FourEyes says whether grants need a second member's approval.
	FourEyes bool `json:"fourEyes"`
}
