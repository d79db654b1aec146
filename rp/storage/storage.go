// Package storage is the reference RP's persistent state behind one
// interface: users and their roles, WebAuthn credentials, ceremonies in
// flight, sessions, enrollment grants, policy and the hash-chained audit
// log. Implementations (SQLite for the embedded default, PostgreSQL for
// several instances) run the same migrations and pass the same test suite
// (package storagetest), so that any instance can finish what another
// began.
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
	// GrantID is the grant the session came from, if any.
	GrantID string
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
	// DeleteExpired removes ceremonies, sessions and grants past expiry,
	// and rate limit buckets that have refilled.
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
	// ErrNotFound, ErrExpired, or ErrConsumed when no use is left.
	UseGrant(codeHash []byte, now time.Time) (*Grant, error)

	SetPolicy(p Policy) error

	// AppendAudit chains e after the newest entry (audit.Chain.Next) and
	// stores it; concurrent transactions are serialized on the chain's
	// head, so the chain never forks.
	AppendAudit(e audit.Entry) (audit.Entry, error)
}
