// Package storage is the reference RP's persistent state behind one
// interface: users and their roles, WebAuthn credentials, ceremonies in
// flight, sessions, enrollment and recovery grants, recovery sessions and
// recovery codes, policy and the hash-chained audit log. Implementations
// (SQLite for the embedded default, PostgreSQL for several instances) run
// the same migrations and pass the same test suite (package storagetest),
// so that any instance can finish what another began.
package storage

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/keydesk/keydesk/rp/audit"
)

// Errors that callers branch on. Implementations wrap them with context.
var (
	// ErrNotFound is a missing user, credential, ceremony, session or grant.
	ErrNotFound = errors.New("not found")
	// ErrConflict is a unique value taken (a user name, a credential ID) or
	// a record changed by someone else first.
	ErrConflict = errors.New("conflict")
	// ErrConsumed is a ceremony or grant use that another request (on this
	// instance or another) already took: exactly one wins.
	ErrConsumed = errors.New("already used")
	// ErrExpired is a ceremony, session or grant past its expiry.
	ErrExpired = errors.New("expired")
	// ErrPending is a grant that waits for a second helpdesk member's
	// approval (four eyes) and cannot be redeemed yet.
	ErrPending = errors.New("pending approval")
)

// Role is what a user may do at the RP.
type Role string

// The roles. Every user has RoleUser; the others add to it.
const (
	RoleUser     Role = "user"     // manage their own keys
	RoleHelpdesk Role = "helpdesk" // look up users, issue grants, revoke keys
	RoleAdmin    Role = "admin"    // users, roles and policy
)

// Known reports whether r is one of the roles above.
func (r Role) Known() bool { return r == RoleUser || r == RoleHelpdesk || r == RoleAdmin }

// User is an account at the RP.
type User struct {
	// ID is the WebAuthn user handle: random, at most 64 bytes, never
	// shown to people and never reused.
	ID []byte
	// Name is the unique, case-folded user name people type.
	Name        string
	DisplayName string
	Roles       []Role
	Disabled    bool
	CreatedAt   time.Time
}

// HasRole reports whether u holds r.
func (u *User) HasRole(r Role) bool {
	for _, have := range u.Roles {
		if have == r {
			return true
		}
	}
	return false
}

// Credential is a registered security key (a WebAuthn public key
// credential source as the RP keeps it).
type Credential struct {
	// ID is the credential ID the authenticator chose.
	ID     []byte
	UserID []byte
	// Nickname is the user's name for the key ("blue YubiKey").
	Nickname string
	// WebAuthn is go-webauthn's webauthn.Credential as JSON, without its
	// Attestation: public key, flags, transports, what every sign-in
	// reads. The fields below repeat what queries and atomic updates need.
	WebAuthn []byte
	// Attestation is the credential's webauthn.CredentialAttestation as
	// JSON (the attestation object, certificates included), kept apart
	// so that sign-ins do not read it.
	Attestation []byte
	AAGUID      []byte
	// SignCount is the last signature counter seen (UpdateSignCount).
	SignCount       uint32
	AttestationType string
	CreatedAt       time.Time
	LastUsedAt      time.Time // zero when never used to sign in
	// RevokedAt is set once the key is revoked; revoked keys stay for
	// the audit trail and are never usable again.
	RevokedAt    time.Time
	RevokeReason string
	// Provisioning records a registration made on the user's behalf.
	ProvisionedBy string
	Batch         string
}

// Revoked reports whether c was revoked.
func (c *Credential) Revoked() bool { return !c.RevokedAt.IsZero() }

// CeremonyKind is what a ceremony will finish into.
type CeremonyKind string

// The ceremonies.
const (
	CeremonyRegistration CeremonyKind = "registration"
	CeremonyLogin        CeremonyKind = "login"
	// CeremonyRecovery is the assertion that approves a recovery session
	// from the user's phone: it finishes into an approval, never into a
	// session, so that it cannot be finished at the sign-in endpoint.
	CeremonyRecovery CeremonyKind = "recovery"
	// CeremonyProvisioning registers a key on behalf of UserID, begun by
	// an admin's session (SessionHash): it finishes only at the admin
	// provisioning endpoint, never at the user's own registration.
	CeremonyProvisioning CeremonyKind = "provisioning"
)

// Ceremony is a begun registration or login, with the challenge the RP
// sent: go-webauthn's SessionData as JSON. Single use and short-lived.
type Ceremony struct {
	// ID is random and names the ceremony to the client.
	ID   string
	Kind CeremonyKind
	// UserID is the user registering, or signing in username-first; nil
	// for a discoverable login.
	UserID []byte
	// SessionHash is the hash of the session that began a registration,
	// which must be the one that finishes it.
	SessionHash []byte
	Session     []byte
	Nickname    string
	ExpiresAt   time.Time
}

// CeremonyResult is what a finished ceremony answered, kept so that a
// finish retried after a network failure gets the same answer instead of
// a second credential or a refusal.
type CeremonyResult struct {
	CeremonyID string
	// RequestHash identifies the finish request's body: a retry must
	// carry the same one.
	RequestHash []byte
	// Result is the response body, without secrets: a login's session
	// token is derived again from the ceremony, never stored.
	Result    []byte
	CreatedAt time.Time
}

// Scope limits what a session may do.
type Scope string

// The session scopes.
const (
	ScopeFull     Scope = "full"     // signed in with a key
	ScopeRegister Scope = "register" // from an enrollment grant: register keys only
	ScopeRecovery Scope = "recovery" // from a recovery grant: register one key, revoke the lost ones
)

// Session is a signed-in client. Only the hash of its bearer token is
// stored.
type Session struct {
	TokenHash []byte
	UserID    []byte
	Scope     Scope
	CreatedAt time.Time
	ExpiresAt time.Time
	// AuthTime is when the user last proved possession of a key in this
	// session: the step-up freshness that revocation requires.
	AuthTime time.Time
	// GrantID is the grant the session came from, if any (for a session
	// from a recovery handoff, the recovery session's ID).
	GrantID string
	// KeyRegisteredAt is when a recovery-scoped session used its one
	// registration (UseSessionRegistration), and RegisteredKey the
	// credential it registered; zero and nil until then.
	KeyRegisteredAt time.Time
	RegisteredKey   []byte
}

// GrantKind is what redeeming a grant allows.
type GrantKind string

// The grant kinds.
const (
	GrantEnrollment GrantKind = "enrollment"
	GrantRecovery   GrantKind = "recovery"
)

// Grant is a one-time code issued for a user (like a Temporary Access
// Pass). Only a keyed hash of the code is stored.
type Grant struct {
	ID        string
	UserID    []byte
	Kind      GrantKind
	CodeHash  []byte
	IssuedBy  string
	CreatedAt time.Time
	ExpiresAt time.Time
	MaxUses   int
	Uses      int
	RevokedAt time.Time
	// Verification lists the identity checks (checklist item IDs) the
	// issuer of a recovery grant confirmed, and Note what they wrote.
	Verification []string
	Note         string
	// NeedsApproval is a grant issued under the four-eyes policy: it can
	// be redeemed only once a second helpdesk member, not the issuer,
	// approved it (ApprovedBy, ApprovedAt).
	NeedsApproval bool
	ApprovedBy    string
	ApprovedAt    time.Time
}

// Pending reports whether g still waits for its four-eyes approval.
func (g *Grant) Pending() bool { return g.NeedsApproval && g.ApprovedAt.IsZero() }

// RecoveryStatus is where a recovery session is in its life:
//
//	pending --approve--> approved --redeem--> redeemed
//	   |                    |
//	   +--refuse------------+--> refused
//	   +--expire------------+--> expired
//
// Only pending and approved sessions change; every change is one
// conditional statement, so that of instances racing on a session
// exactly one moves it.
type RecoveryStatus string

// The recovery statuses.
const (
	RecoveryPending  RecoveryStatus = "pending"
	RecoveryApproved RecoveryStatus = "approved"
	RecoveryRefused  RecoveryStatus = "refused"
	RecoveryRedeemed RecoveryStatus = "redeemed"
	RecoveryExpired  RecoveryStatus = "expired"
)

// Terminal reports whether a session in status s can no longer change.
func (s RecoveryStatus) Terminal() bool {
	return s == RecoveryRefused || s == RecoveryRedeemed || s == RecoveryExpired
}

// RefusalReason is why a recovery session was refused.
type RefusalReason string

// The refusal reasons.
const (
	// RefusedWrongNumber: the phone picked a number other than the
	// desktop's.
	RefusedWrongNumber RefusalReason = "wrong_number"
	// RefusedOnPhone: the phone's user said "This was not me".
	RefusedOnPhone RefusalReason = "denied_on_phone"
	// RefusedBadSignature: a redeem was signed by another key than the
	// desktop's that asked.
	RefusedBadSignature RefusalReason = "bad_desktop_signature"
)

// Valid reports whether r is one of the refusal reasons.
func (r RefusalReason) Valid() bool {
	return r == RefusedWrongNumber || r == RefusedOnPhone || r == RefusedBadSignature
}

// RecoverySession is a QR handoff: a desktop asking for a recovery
// grant that the user approves on their phone. Only keyed hashes of its
// secrets are stored.
type RecoverySession struct {
	ID string
	// UserID is the user being recovered; nil for a decoy (a request
	// naming no usable account), which can never be approved.
	UserID []byte
	// Username is the name the request gave, case-folded.
	Username string
	// SecretHash, CodeHash and DesktopTokenHash are keyed hashes of the
	// QR secret, the typed fallback code and the desktop's bearer token.
	SecretHash, CodeHash, DesktopTokenHash []byte
	// Number is the two-digit number the desktop shows; Candidates are
	// it and two decoys in the order the phone shows them, fixed at
	// creation so that asking again teaches nothing.
	Number     int
	Candidates []int
	// DesktopName, DesktopKey (an ECDSA P-256 public key, SPKI DER) and
	// DesktopIP describe the desktop that asked.
	DesktopName string
	DesktopKey  []byte
	DesktopIP   string
	CreatedAt   time.Time
	// ExpiresAt ends the session: at first creation plus its TTL; an
	// approval moves it to the end of the redeem window.
	ExpiresAt time.Time
	Status    RecoveryStatus
	// StatusAt is when Status last changed.
	StatusAt time.Time
	// RefusalReason is why a refused session was refused; empty otherwise.
	RefusalReason RefusalReason
	// CeremonyID is the approval ceremony begun last, if any.
	CeremonyID string
	// CredentialID is the key that approved, and Nonce what the desktop
	// signs to redeem; both set by the approval.
	CredentialID []byte
	Nonce        []byte
}

// RecoveryCode is one of a user's one-time recovery codes. The code
// itself is never stored: Hash is its argon2id hash (with its salt and
// parameters, PHC string format) and Lookup a short keyed hash that finds
// the row to verify without trying every code.
type RecoveryCode struct {
	ID        string
	UserID    []byte
	Lookup    []byte
	Hash      string
	CreatedAt time.Time
	UsedAt    time.Time // zero while unused
}

// Policy is the RP's registration and login policy, stored as one JSON
// document so that it can grow without a migration.
type Policy struct {
	AllowedAAGUIDs []string `json:"allowedAaguids,omitempty"`
	DeniedAAGUIDs  []string `json:"deniedAaguids,omitempty"`
	// Attestation is "none", "any" or "verified" (against the metadata).
	Attestation      string `json:"attestation"`
	UserVerification string `json:"userVerification"`
	ResidentKey      string `json:"residentKey"`
	// RefuseCounterRegression refuses a sign-in whose signature counter
	// went backwards (it is audited either way).
	RefuseCounterRegression bool `json:"refuseCounterRegression"`
	// RecoveryFourEyes makes a helpdesk recovery grant wait for a second
	// helpdesk member's approval before it can be redeemed.
	RecoveryFourEyes bool `json:"recoveryFourEyes,omitempty"`
}

// Store is the RP's database. Reads run outside transactions; every state
// change runs in Tx together with its audit entry, so that a change is
// never stored without its record nor recorded without being stored.
// A function run by Tx reads through its Tx, never through the Store:
// the Store's connection pool is bounded, and a transaction waiting for a
// second connection could wait for itself.
type Store interface {
	// Tx runs f in a transaction, committed when f returns nil. It may
	// run f again on a serialization failure, so f must not have effects
	// outside tx.
	Tx(ctx context.Context, f func(tx Tx) error) error

	UserByName(ctx context.Context, name string) (*User, error)
	UserByID(ctx context.Context, id []byte) (*User, error)
	// SearchUsers lists users whose name or display name contains q.
	SearchUsers(ctx context.Context, q string, limit int) ([]User, error)
	CountUsers(ctx context.Context) (int, error)

	Credential(ctx context.Context, id []byte) (*Credential, error)
	// CredentialWithUser reads a credential and its owner at once.
	CredentialWithUser(ctx context.Context, id []byte) (*Credential, *User, error)
	// Credentials lists a user's keys, revoked ones included, oldest first.
	Credentials(ctx context.Context, userID []byte) ([]Credential, error)
	// UserWithCredentials is UserByName and Credentials in one read, as a
	// username-first sign-in begins.
	UserWithCredentials(ctx context.Context, name string) (*User, []Credential, error)

	// CreateCeremony stores a begun ceremony. It is the one change made
	// outside Tx: nothing is audited for it, and a begin is the busiest
	// write there is. ErrConflict if the ID exists, ErrNotFound if its
	// user does not.
	CreateCeremony(ctx context.Context, c Ceremony) error
	// Ceremony reads a ceremony that can still be finished, without
	// consuming it, so that a finish verifies its response before the
	// transaction that consumes it: ErrNotFound, ErrConsumed, ErrExpired.
	Ceremony(ctx context.Context, id string, now time.Time) (*Ceremony, error)
	CeremonyResult(ctx context.Context, ceremonyID string) (*CeremonyResult, error)
	// Session finds an unexpired session by its token hash.
	Session(ctx context.Context, tokenHash []byte, now time.Time) (*Session, error)
	Policy(ctx context.Context) (Policy, error)

	// RecoverySession reads a recovery session as stored, whatever its
	// status or expiry: the desktop's events stream polls it, so that a
	// change made on another instance reaches it.
	RecoverySession(ctx context.Context, id string) (*RecoverySession, error)
	// RecoveryCodes lists a user's recovery codes, used ones included,
	// oldest first.
	RecoveryCodes(ctx context.Context, userID []byte) ([]RecoveryCode, error)

	// Audit lists entries from seq (inclusive), at most limit, in order.
	Audit(ctx context.Context, fromSeq uint64, limit int) ([]audit.Entry, error)
	// AuditForUser lists the newest entries about a user, newest first.
	AuditForUser(ctx context.Context, name string, limit int) ([]audit.Entry, error)

	// Ping checks that the database answers (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// AllAudit iterates over the whole audit log in order, reading it a page
// at a time. A read error ends the iteration and is left in *failed.
func AllAudit(ctx context.Context, s Store, failed *error) iter.Seq[audit.Entry] {
	const page = 1000
	return func(yield func(audit.Entry) bool) {
		for from := uint64(1); ; {
			batch, err := s.Audit(ctx, from, page)
			if err != nil {
				*failed = err
				return
			}
			for _, e := range batch {
				if !yield(e) {
					return
				}
				from = e.Seq + 1
			}
			if len(batch) < page {
				return
			}
		}
	}
}

// Tx is a transaction: every change, and the audit entry recording it.
type Tx interface {
	CreateUser(u User) error
	// UserByName reads a user and locks the row for the transaction.
	UserByName(name string) (*User, error)
	// UserByID reads a user without locking.
	UserByID(id []byte) (*User, error)
	SetUserRoles(userID []byte, roles []Role) error
	SetUserDisabled(userID []byte, disabled bool) error

	// CreateCredential stores a new key: ErrConflict if its ID exists.
	CreateCredential(c Credential) error
	Credential(id []byte) (*Credential, error)
	// Credentials lists a user's keys as Store.Credentials does, inside
	// the transaction: a check such as "not the last usable key" must
	// see what a racing revocation changes.
	Credentials(userID []byte) ([]Credential, error)
	RenameCredential(id []byte, nickname string) error
	RevokeCredential(id []byte, at time.Time, reason string) error
	// UpdateSignCount records a sign-in: the counter moves only from old
	// to new, so that of two racing sign-ins one sees ErrConflict.
	UpdateSignCount(id []byte, old, new uint32, usedAt time.Time) error

	CreateCeremony(c Ceremony) error
	// ConsumeCeremony deletes and returns an unexpired ceremony:
	// ErrConsumed when another request took it first, ErrExpired when
	// it timed out.
	ConsumeCeremony(id string, now time.Time) (*Ceremony, error)
	SaveCeremonyResult(r CeremonyResult) error
	// FinishCeremony is ConsumeCeremony(r.CeremonyID, r.CreatedAt) and
	// SaveCeremonyResult(r) in one step, for a finish that needs nothing
	// from the stored ceremony (it read it before the transaction).
	FinishCeremony(r CeremonyResult) error
	// DeleteExpired removes ceremonies, sessions and grants past expiry,
	// recovery sessions an hour past theirs (so that a late desktop is
	// told "expired" rather than "unknown"), and rate limit buckets that
	// have refilled.
	DeleteExpired(now time.Time) (int, error)
	// RateLimit reads a rate limit key's theoretical arrival time (the
	// zero time for a key never limited, or swept) and holds the key
	// until the transaction ends, so that instances sharing the database
	// take from one bucket in turn.
	RateLimit(key string) (time.Time, error)
	// SetRateLimit stores a key's theoretical arrival time.
	SetRateLimit(key string, tat time.Time) error

	CreateSession(s Session) error
	DeleteSession(tokenHash []byte) error

	CreateGrant(g Grant) error
	// UseGrant counts one use of the grant with this code hash:
	// ErrNotFound, ErrExpired, ErrPending while it waits for its
	// four-eyes approval, or ErrConsumed when no use is left.
	UseGrant(codeHash []byte, now time.Time) (*Grant, error)
	// Grant reads a grant by ID and locks it for the transaction.
	Grant(id string) (*Grant, error)
	// ApproveGrant records the four-eyes approval of a grant by another
	// helpdesk member than its issuer: ErrNotFound, ErrExpired,
	// ErrConflict when by issued it (or it needs no approval), ErrConsumed
	// when it was approved already or revoked. Of racing approvals one
	// wins.
	ApproveGrant(id, by string, now time.Time) (*Grant, error)

	// UseSessionRegistration spends a recovery-scoped session's one
	// registration on credentialID: ErrNotFound, ErrExpired, or
	// ErrConsumed when it was spent already (by this instance or another).
	UseSessionRegistration(tokenHash, credentialID []byte, now time.Time) error

	// CreateRecoverySession stores a new, pending recovery session:
	// ErrConflict if its ID exists, ErrNotFound if it names an unknown
	// user.
	CreateRecoverySession(rs RecoverySession) error
	// BeginRecoveryApproval records the approval ceremony of a pending,
	// unexpired session (a later one replaces it): ErrNotFound,
	// ErrExpired, or ErrConsumed when it is no longer pending.
	BeginRecoveryApproval(id, ceremonyID string, now time.Time) error
	// ApproveRecovery moves a pending, unexpired session whose approval
	// ceremony is ceremonyID to approved, with the key that approved and
	// the nonce to redeem with, until redeemBy: ErrNotFound, ErrExpired,
	// ErrConsumed when it is no longer pending, ErrConflict when another
	// ceremony was begun since.
	ApproveRecovery(id, ceremonyID string, credentialID, nonce []byte, now, redeemBy time.Time) error
	// RefuseRecovery ends a pending or approved, unexpired session as
	// refused for reason: ErrNotFound, ErrExpired, or ErrConsumed when it
	// had ended.
	RefuseRecovery(id string, now time.Time, reason RefusalReason) error
	// RedeemRecovery moves an approved, unexpired session to redeemed,
	// once, and returns it: ErrNotFound, ErrExpired, ErrConsumed when it
	// had ended, ErrConflict when it is still pending.
	RedeemRecovery(id string, now time.Time) (*RecoverySession, error)
	// ExpireRecovery records that a pending or approved session reached
	// its expiry, once, so that its expiry is audited once: ErrNotFound,
	// ErrConsumed when it had ended, ErrConflict when it has not expired.
	ExpireRecovery(id string, now time.Time) error

	// ReplaceRecoveryCodes deletes a user's recovery codes and stores
	// codes instead: a new set invalidates the old one.
	ReplaceRecoveryCodes(userID []byte, codes []RecoveryCode) error
	// UseRecoveryCode marks an unused code used, once: ErrNotFound, or
	// ErrConsumed when it was used (by this request's racer or before).
	UseRecoveryCode(userID []byte, id string, now time.Time) error

	SetPolicy(p Policy) error

	// AppendAudit chains e after the newest entry (audit.Chain.Next) and
	// stores it; concurrent transactions are serialized on the chain's
	// head, so the chain never forks.
	AppendAudit(e audit.Entry) (audit.Entry, error)
}
