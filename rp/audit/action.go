package audit

// Action names the kind of state change an entry records. The values are
// stable strings ("noun.verb") because they are stored and exported;
// renaming one would make old entries unknown to [Verify].
type Action string

// The state changes the relying party records. Each is written after the
// change is committed, by whoever made it.
const (
	// ActionUserCreated: an admin (or bootstrap) created a user account.
	ActionUserCreated Action = "user.created"
	// ActionUserDisabled: an admin disabled a user account.
	ActionUserDisabled Action = "user.disabled"
	// ActionRoleChanged: an admin changed a user's role; Details carry the
	// old and new role.
	ActionRoleChanged Action = "role.changed"
	// ActionPolicyChanged: an admin changed the registration policy
	// (AAGUID lists, attestation, user verification, resident keys).
	ActionPolicyChanged Action = "policy.changed"
	// ActionCredentialRegistered: a registration ceremony finished and a
	// credential was stored.
	ActionCredentialRegistered Action = "credential.registered"
	// ActionCredentialProvisioned: an admin registered a key on a user's
	// behalf (enterprise provisioning); the actor is the admin, the
	// subject the user, and Details name the batch.
	ActionCredentialProvisioned Action = "credential.provisioned"
	// ActionCredentialRenamed: a credential's nickname changed.
	ActionCredentialRenamed Action = "credential.renamed"
	// ActionCredentialRevoked: a credential was revoked, by its owner or by
	// helpdesk, with a reason.
	ActionCredentialRevoked Action = "credential.revoked"
	// ActionCounterRegressed: an assertion's signature counter went
	// backwards, a sign of a cloned authenticator.
	ActionCounterRegressed Action = "credential.counter_regressed"
	// ActionLoginSucceeded: a login ceremony finished and a session began.
	ActionLoginSucceeded Action = "login.succeeded"
	// ActionLoginFailed: a login ceremony was refused.
	ActionLoginFailed Action = "login.failed"
	// ActionGrantIssued: helpdesk or an admin issued an enrollment grant
	// for a user. The grant itself is never recorded.
	ActionGrantIssued Action = "grant.issued"
	// ActionGrantRedeemed: an enrollment grant was redeemed for a
	// registration-only session.
	ActionGrantRedeemed Action = "grant.redeemed"
	// ActionRecoveryRequested: a desktop started account recovery (a QR
	// handoff session); Details name the desktop, and say whether the
	// account is real (a request for no usable account gets a decoy).
	ActionRecoveryRequested Action = "recovery.requested"
	// ActionRecoveryApproved: the recovery step-up succeeded (the user's
	// key approved the handoff on their phone), or a second helpdesk
	// member approved an assisted recovery grant (four eyes).
	ActionRecoveryApproved Action = "recovery.approved"
	// ActionRecoveryRedeemed: an approved handoff, a recovery code or a
	// recovery grant was traded for a recovery-scoped session (enroll one
	// replacement key, revoke the lost ones).
	ActionRecoveryRedeemed Action = "recovery.redeemed"
	// ActionRecoveryFailed: a recovery attempt was refused without ending
	// its session: a wrong secret or code, a key that did not verify.
	ActionRecoveryFailed Action = "recovery.failed"
	// ActionRecoveryRefused: a handoff was ended: the phone picked the
	// wrong number or said "this was not me", or a redeem carried a
	// signature the desktop's key did not make.
	ActionRecoveryRefused Action = "recovery.refused"
	// ActionRecoveryExpired: a handoff reached its expiry unredeemed;
	// recorded once, by whichever instance saw it first.
	ActionRecoveryExpired Action = "recovery.expired"
	// ActionRecoveryCodesGenerated: a user generated a new set of
	// one-time recovery codes, invalidating the old set. The codes are
	// never recorded.
	ActionRecoveryCodesGenerated Action = "recovery.codes_generated"
)

var actions = []Action{
	ActionUserCreated,
	ActionUserDisabled,
	ActionRoleChanged,
	ActionPolicyChanged,
	ActionCredentialRegistered,
	ActionCredentialProvisioned,
	ActionCredentialRenamed,
	ActionCredentialRevoked,
	ActionCounterRegressed,
	ActionLoginSucceeded,
	ActionLoginFailed,
	ActionGrantIssued,
	ActionGrantRedeemed,
	ActionRecoveryRequested,
	ActionRecoveryApproved,
	ActionRecoveryRedeemed,
	ActionRecoveryFailed,
	ActionRecoveryRefused,
	ActionRecoveryExpired,
	ActionRecoveryCodesGenerated,
}

// Actions returns every known Action, so that metrics and UIs can list
// them without repeating the constants. The slice is the caller's.
func Actions() []Action {
	return append([]Action(nil), actions...)
}

// Known reports whether a is one of the Action constants; [Chain.Next]
// and [Verify] refuse any other.
func (a Action) Known() bool {
	for _, k := range actions {
		if a == k {
			return true
		}
	}
	return false
}

// Role says in which capacity the actor acted, so that a reader can tell
// a user's own change from one made for them.
type Role string

// The roles an actor can act in.
const (
	// RoleUser: a signed-in user acting on their own account.
	RoleUser Role = "user"
	// RoleHelpdesk: helpdesk staff acting for a user.
	RoleHelpdesk Role = "helpdesk"
	// RoleAdmin: an administrator.
	RoleAdmin Role = "admin"
	// RoleSystem: the server itself, such as bootstrap-admin or an expiry.
	RoleSystem Role = "system"
	// RoleAnonymous: a caller not signed in, such as a failed login or a
	// recovery request; Actor is then the claimed user name, or
	// "anonymous" when there is none.
	RoleAnonymous Role = "anonymous"
)

// Known reports whether r is one of the Role constants; [Chain.Next] and
// [Verify] refuse any other.
func (r Role) Known() bool {
	switch r {
	case RoleUser, RoleHelpdesk, RoleAdmin, RoleSystem, RoleAnonymous:
		return true
	}
	return false
}
