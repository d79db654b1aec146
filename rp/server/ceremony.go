package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/mds"
	"github.com/keydesk/keydesk/rp/metrics"
	"github.com/keydesk/keydesk/rp/storage"
)

// waUser is a storage.User as go-webauthn sees it: with its usable
// (unrevoked) credentials only, so that a revoked key cannot sign in.
type waUser struct {
	u     *storage.User
	creds []webauthn.Credential
	// all are every credential, revoked ones too.
	all []storage.Credential
}

func (w *waUser) WebAuthnID() []byte                         { return w.u.ID }
func (w *waUser) WebAuthnName() string                       { return w.u.Name }
func (w *waUser) WebAuthnDisplayName() string                { return w.u.DisplayName }
func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// loadUser reads u's credentials into a waUser, as descriptors (ID and
// transports): what beginning a ceremony lists. A sign-in's finish
// decodes the one credential it verifies (withCredential).
func (s *Server) loadUser(ctx context.Context, u *storage.User) (*waUser, error) {
	all, err := s.cfg.Store.Credentials(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return newWAUser(u, all)
}

// newWAUser is u, whose credentials are all, as go-webauthn sees it.
func newWAUser(u *storage.User, all []storage.Credential) (*waUser, error) {
	w := &waUser{u: u, all: all}
	for _, c := range all {
		if c.Revoked() {
			continue
		}
		var d struct {
			ID        []byte                            `json:"id"`
			Transport []protocol.AuthenticatorTransport `json:"transport"`
		}
		if err := json.Unmarshal(c.WebAuthn, &d); err != nil {
			return nil, err
		}
		w.creds = append(w.creds, webauthn.Credential{ID: d.ID, Transport: d.Transport})
	}
	return w, nil
}

// withCredential is u as go-webauthn verifies a sign-in with c: c in
// full, and the other credentials the ceremony allowed (which begin listed
// from u's) as IDs, which is all go-webauthn reads of them.
func withCredential(u *storage.User, c *storage.Credential, allowed [][]byte) (*waUser, error) {
	var wc webauthn.Credential
	if err := json.Unmarshal(c.WebAuthn, &wc); err != nil {
		return nil, err
	}
	// The stored JSON is as registered; the counter moves in its column.
	wc.Authenticator.SignCount = c.SignCount
	w := &waUser{u: u, creds: []webauthn.Credential{wc}, all: []storage.Credential{*c}}
	for _, id := range allowed {
		if !bytes.Equal(id, c.ID) {
			w.creds = append(w.creds, webauthn.Credential{ID: id})
		}
	}
	return w, nil
}

// newID returns a random identifier: 16 bytes, base64url.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return b64(b)
}

// newCeremonyID returns a ceremony's identifier: the time in
// milliseconds (6 bytes, big-endian), then 16 random bytes, base64url.
// Ceremonies are created at every sign-in's start; with identifiers in
// creation order the ceremonies index grows at its end, so one group
// commit writes one index page for all the ceremonies it begins, not a
// random page each. The random part keeps the identifier unguessable.
func newCeremonyID(now time.Time) string {
	b := make([]byte, 6+16)
	ms := uint64(now.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	rand.Read(b[6:])
	return b64(b)
}

// sessionToken derives the bearer token of the session a login ceremony
// created: the same on every instance and on a retried finish, so the
// store keeps only its hash and a retry still gets the token.
func (s *Server) sessionToken(ceremonyID string) string {
	m := hmac.New(sha256.New, s.cfg.Secret)
	m.Write([]byte("keydesk session token\x00" + ceremonyID))
	return b64(m.Sum(nil))
}

// record appends an audit entry in tx.
func (s *Server) record(tx storage.Tx, r *http.Request, actor string, role audit.Role, action audit.Action, subject string, credID []byte, details map[string]string) error {
	e := audit.Entry{Actor: actor, ActorRole: role, Action: action, Subject: subject, Details: details,
		RemoteAddr: clientAddr(r, s.cfg.TrustedProxies)}
	if credID != nil {
		e.CredentialID = b64(credID)
	}
	_, err := tx.AppendAudit(e)
	return err
}

// callerRole is the audit role of c: its highest.
func callerRole(u *storage.User) audit.Role {
	switch {
	case u.HasRole(storage.RoleAdmin):
		return audit.RoleAdmin
	case u.HasRole(storage.RoleHelpdesk):
		return audit.RoleHelpdesk
	}
	return audit.RoleUser
}

// registrationBegin answers creation options for the caller.
func (s *Server) registrationBegin(w http.ResponseWriter, r *http.Request, c *caller) error {
	defer s.timeCeremony(metrics.CeremonyRegistrationBegin)()
	var req api.RegistrationBeginRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	if err := checkNickname(req.Nickname); err != nil {
		return err
	}
	if c.session.Scope == storage.ScopeRecovery && !c.session.KeyRegisteredAt.IsZero() {
		return errRecoveryKeyRegistered
	}
	pol, err := s.policy(r.Context())
	if err != nil {
		return err
	}
	wu, err := s.loadUser(r.Context(), c.user)
	if err != nil {
		return err
	}
	creation, sd, err := s.creationOptions(wu, pol)
	if err != nil {
		return err
	}
	return s.beginCeremony(w, r, storage.Ceremony{
		Kind: storage.CeremonyRegistration, UserID: c.user.ID,
		SessionHash: c.session.TokenHash, Nickname: req.Nickname,
	}, sd, creation.Response)
}

// creationOptions are the options of a registration for wu under pol.
func (s *Server) creationOptions(wu *waUser, pol storage.Policy) (*protocol.CredentialCreation, *webauthn.SessionData, error) {
	// Every key the user ever registered is excluded: a revoked key may
	// not come back under a new registration.
	var exclude []protocol.CredentialDescriptor
	for _, cr := range wu.all {
		exclude = append(exclude, protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: cr.ID})
	}
	return s.wa.BeginRegistration(wu,
		webauthn.WithExclusions(exclude),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirement(orDefault(pol.ResidentKey, "preferred")),
			UserVerification: protocol.UserVerificationRequirement(orDefault(pol.UserVerification, "preferred")),
		}),
		webauthn.WithConveyancePreference(conveyance(pol)),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()),
	)
}

func conveyance(p storage.Policy) protocol.ConveyancePreference {
	if p.Attestation == "any" || p.Attestation == "verified" {
		return protocol.PreferDirectAttestation
	}
	return protocol.PreferNoAttestation
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// beginCeremony stores the ceremony and answers its options.
func (s *Server) beginCeremony(w http.ResponseWriter, r *http.Request, cer storage.Ceremony, sd *webauthn.SessionData, options any) error {
	sessionJSON, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	optionsJSON, err := json.Marshal(options)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	cer.ID = newCeremonyID(now)
	cer.Session = sessionJSON
	cer.ExpiresAt = now.Add(s.cfg.CeremonyTTL).UTC().Truncate(time.Microsecond)
	if err := s.cfg.Store.CreateCeremony(r.Context(), cer); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.CeremonyBegin{CeremonyID: cer.ID, PublicKey: optionsJSON, ExpiresAt: cer.ExpiresAt})
	return nil
}

// errRecoveryKeyRegistered is a second registration in one recovery:
// it allows exactly one replacement key.
var errRecoveryKeyRegistered = problem(http.StatusConflict, "recovery_key_registered",
	"This recovery session has enrolled its replacement key already: sign in with that key to enroll more.")

// errCeremonyUsed is a finish of a ceremony another finish took.
var errCeremonyUsed = problem(http.StatusConflict, "ceremony_used", "This ceremony was already finished: begin a new one.")

// replay answers a finish that was already answered: the same answer
// for the same request (a retry after a network failure), a conflict for
// another one. ok is false when the ceremony has no answer yet.
func (s *Server) replay(ctx context.Context, ceremonyID string, reqHash []byte) (result []byte, ok bool, err error) {
	res, err := s.cfg.Store.CeremonyResult(ctx, ceremonyID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if !hmac.Equal(res.RequestHash, reqHash) {
		return nil, false, errCeremonyUsed
	}
	return res.Result, true, nil
}

// consumeError maps a failed ConsumeCeremony to the answer.
func consumeError(err error) error {
	switch {
	case errors.Is(err, storage.ErrExpired):
		return errCeremonyExpired
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrConsumed):
		return errCeremonyUsed
	}
	return err
}

// errCeremonyExpired is a finish after the ceremony's expiry.
var errCeremonyExpired = problem(http.StatusGone, "ceremony_expired", "This ceremony timed out: begin again.")

// peekCeremony reads a ceremony that can still be finished, checking its
// kind, without consuming it.
func (s *Server) peekCeremony(ctx context.Context, id string, kind storage.CeremonyKind, now time.Time) (*storage.Ceremony, *webauthn.SessionData, error) {
	cer, err := s.cfg.Store.Ceremony(ctx, id, now)
	if err != nil {
		return nil, nil, consumeError(err)
	}
	if cer.Kind != kind {
		return nil, nil, problem(http.StatusBadRequest, "wrong_ceremony", "This ceremony is not a %s.", kind)
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(cer.Session, &sd); err != nil {
		return nil, nil, err
	}
	return cer, &sd, nil
}

func requestHash(body []byte) []byte {
	h := sha256.Sum256(body)
	return h[:]
}

// registrationFinish verifies the new credential and stores it.
func (s *Server) registrationFinish(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req api.RegistrationFinishRequest
	body, err := s.readJSON(w, r, &req)
	if err != nil {
		return err
	}
	if err := checkNickname(req.Nickname); err != nil {
		return err
	}
	return s.finishRegistration(w, r, registrationFinish{
		reg:        registrant{kind: storage.CeremonyRegistration, user: c.user, sessionHash: c.session.TokenHash},
		ceremonyID: req.CeremonyID, nickname: req.Nickname, credential: req.Credential, reqHash: requestHash(body),
		keyEvent: metrics.KeyRegistered,
		answer: func(ctx context.Context, wu *waUser, stored *storage.Credential) (api.Key, error) {
			// A user's first usable key is when to offer recovery codes.
			key := keyOf(*stored)
			if len(wu.creds) == 0 {
				codes, err := s.cfg.Store.RecoveryCodes(ctx, c.user.ID)
				if err != nil {
					return key, err
				}
				key.RecoveryCodesAdvised = !slices.ContainsFunc(codes, func(rc storage.RecoveryCode) bool { return rc.UsedAt.IsZero() })
			}
			return key, nil
		},
		inTx: func(tx storage.Tx, stored storage.Credential, now time.Time) error {
			if c.session.Scope != storage.ScopeRecovery {
				return nil
			}
			// The one key a recovery allows: of racing finishes (on any
			// instance) one spends it.
			switch err := tx.UseSessionRegistration(c.session.TokenHash, stored.ID, now); {
			case errors.Is(err, storage.ErrConsumed):
				return errRecoveryKeyRegistered
			case errors.Is(err, storage.ErrExpired), errors.Is(err, storage.ErrNotFound):
				return problem(http.StatusUnauthorized, "session_expired", "Your session has ended: sign in again.")
			default:
				return err
			}
		},
		audit: func(tx storage.Tx, stored storage.Credential) error {
			return s.record(tx, r, c.user.Name, callerRole(c.user), audit.ActionCredentialRegistered, c.user.Name, stored.ID,
				map[string]string{"aaguid": formatAAGUID(stored.AAGUID), "attestation": stored.AttestationType, "scope": string(c.session.Scope)})
		},
	})
}

// registrationFinish is what differs between the finishes of a user's
// own registration and of an admin's provisioning; finishRegistration
// does the rest.
type registrationFinish struct {
	reg                  registrant
	ceremonyID, nickname string
	credential           json.RawMessage
	// reqHash is the request's hash, which a retry must repeat to get
	// the first answer.
	reqHash  []byte
	keyEvent metrics.KeyEvent
	// check, if set, runs once the key verified (a retry's answer goes
	// first): a refusal of the account, say.
	check func() error
	// answer is the finish's answer for the key to store, which it may
	// change.
	answer func(ctx context.Context, wu *waUser, stored *storage.Credential) (api.Key, error)
	// inTx, if set, runs in the transaction once the ceremony is
	// consumed, before the key is stored.
	inTx func(tx storage.Tx, stored storage.Credential, now time.Time) error
	// audit records the registration in the transaction.
	audit func(tx storage.Tx, stored storage.Credential) error
}

// finishRegistration verifies a registration response against its
// ceremony and the policy (outside any transaction), then, in one
// transaction, consumes the ceremony with its answer and stores the key.
// A retry of a finished ceremony, or one racing its first attempt, gets
// the first answer (replay), which costs nothing on the usual path.
func (s *Server) finishRegistration(w http.ResponseWriter, r *http.Request, f registrationFinish) error {
	defer s.timeCeremony(metrics.CeremonyRegistrationFinish)()
	parsed, err := protocol.ParseCredentialCreationResponseBytes(f.credential)
	if err != nil {
		s.cfg.Metrics.Registration(metrics.ResultFailure)
		s.cfg.Metrics.AttestationFailed(metrics.AttestationReasonMalformed)
		return problem(http.StatusBadRequest, "bad_credential", "The credential is not a registration response: %s.", protocolReason(err))
	}
	ctx := r.Context()
	wu, err := s.loadUser(ctx, f.reg.user)
	if err != nil {
		return err
	}
	pol, err := s.policy(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	stored, err := s.verifyRegistration(ctx, f.reg, wu, parsed, pol, f.ceremonyID, f.nickname, now)
	if errors.Is(err, errCeremonyUsed) {
		if res, ok, rerr := s.replay(ctx, f.ceremonyID, f.reqHash); ok || rerr != nil {
			return writeRaw(w, res, rerr)
		}
	}
	if err == nil && f.check != nil {
		err = f.check()
	}
	if err != nil {
		s.cfg.Metrics.Registration(metrics.ResultFailure)
		return err
	}
	key, err := f.answer(ctx, wu, &stored)
	if err != nil {
		return err
	}
	result, err := json.Marshal(key)
	if err != nil {
		return err
	}
	err = s.cfg.Store.Tx(ctx, func(tx storage.Tx) error {
		if err := tx.FinishCeremony(storage.CeremonyResult{CeremonyID: f.ceremonyID, RequestHash: f.reqHash, Result: result, CreatedAt: now}); err != nil {
			return consumeError(err)
		}
		if f.inTx != nil {
			if err := f.inTx(tx, stored, now); err != nil {
				return err
			}
		}
		if err := tx.CreateCredential(stored); errors.Is(err, storage.ErrConflict) {
			return problem(http.StatusConflict, "already_registered", "This key is already registered.")
		} else if err != nil {
			return err
		}
		return f.audit(tx, stored)
	})
	if errors.Is(err, errCeremonyUsed) {
		// Another finish took it: a retry racing its first attempt gets
		// the first answer.
		if res, ok, rerr := s.replay(ctx, f.ceremonyID, f.reqHash); ok || rerr != nil {
			return writeRaw(w, res, rerr)
		}
	}
	if err != nil {
		s.cfg.Metrics.Registration(metrics.ResultFailure)
		return err
	}
	s.cfg.Metrics.Registration(metrics.ResultSuccess)
	s.cfg.Metrics.KeyEvent(f.keyEvent)
	return writeRaw(w, result, nil)
}

// timeCeremony starts timing a ceremony step; call the result when done.
func (s *Server) timeCeremony(c metrics.Ceremony) func() {
	start := time.Now()
	return func() { s.cfg.Metrics.ObserveCeremony(c, time.Since(start)) }
}

// registrant is whose registration a finish completes: the ceremony's
// kind, the user the key is for, and the session that began it.
type registrant struct {
	kind        storage.CeremonyKind
	user        *storage.User
	sessionHash []byte
}

// verifyRegistration checks a registration response against its
// ceremony, the session that began it and the policy, outside any
// transaction, and returns the credential to store for reg.user.
func (s *Server) verifyRegistration(ctx context.Context, reg registrant, wu *waUser, parsed *protocol.ParsedCredentialCreationData,
	pol storage.Policy, ceremonyID, nickname string, now time.Time) (storage.Credential, error) {
	cer, sd, err := s.peekCeremony(ctx, ceremonyID, reg.kind, now)
	if err != nil {
		return storage.Credential{}, err
	}
	if !bytes.Equal(cer.UserID, reg.user.ID) || !hmac.Equal(cer.SessionHash, reg.sessionHash) {
		return storage.Credential{}, problem(http.StatusForbidden, "wrong_session", "This ceremony was begun by another session, or for another user.")
	}
	wa, verified := s.wa, pol.Attestation == "verified"
	if verified {
		m := s.mds.Load()
		if m == nil {
			return storage.Credential{}, problem(http.StatusServiceUnavailable, "mds_not_configured",
				"The policy requires verified attestation, but this server has no FIDO metadata: ask an administrator.")
		}
		wa = m.wa
	}
	cred, err := wa.CreateCredential(wu, *sd, parsed)
	if err != nil {
		if verified {
			s.cfg.Metrics.AttestationFailed(metrics.AttestationReasonMetadataStatus)
			return storage.Credential{}, problem(http.StatusForbidden, "attestation_not_verified",
				"This key's model could not be verified against the FIDO metadata (unknown, revoked or not genuine): %s.", protocolReason(err))
		}
		return storage.Credential{}, problem(http.StatusBadRequest, "registration_failed", "The key's registration did not verify: %s.", protocolReason(err))
	}
	if verified {
		if err := mds.CheckAttested(cred); err != nil {
			s.cfg.Metrics.AttestationFailed(metrics.AttestationReasonMetadataMissing)
			return storage.Credential{}, problem(http.StatusForbidden, "attestation_not_verified",
				"This service requires keys whose model is verified by its attestation; this key sent none.")
		}
	}
	if err := checkPolicy(pol, cred); err != nil {
		s.cfg.Metrics.AttestationFailed(err.reason)
		return storage.Credential{}, err
	}
	return StoredCredential(reg.user.ID, orDefault(nickname, cer.Nickname), cred, now)
}

// writeRaw answers a stored JSON result.
func writeRaw(w http.ResponseWriter, result []byte, err error) error {
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(result)
	return err
}

// protocolReason is the user-safe part of a go-webauthn error.
func protocolReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		if pe.Details != "" {
			return pe.Details
		}
		return pe.Type
	}
	return "malformed"
}

func checkNickname(n string) error {
	if len(n) > 64 || strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return problem(http.StatusBadRequest, "bad_nickname", "A nickname is at most 64 bytes, without control characters.")
	}
	return nil
}

// policyError is a registration the policy refuses.
type policyError struct {
	*httpError
	reason metrics.AttestationReason
}

func (p *policyError) Unwrap() error { return p.httpError }

// checkPolicy applies the AAGUID lists and the attestation requirement.
func checkPolicy(p storage.Policy, cred *webauthn.Credential) *policyError {
	aaguid := formatAAGUID(cred.Authenticator.AAGUID)
	for _, d := range p.DeniedAAGUIDs {
		if strings.EqualFold(d, aaguid) {
			return &policyError{problem(http.StatusForbidden, "model_denied", "This key model may not be registered here."), metrics.AttestationReasonAAGUIDDenied}
		}
	}
	if len(p.AllowedAAGUIDs) > 0 {
		allowed := false
		for _, a := range p.AllowedAAGUIDs {
			allowed = allowed || strings.EqualFold(a, aaguid)
		}
		if !allowed {
			return &policyError{problem(http.StatusForbidden, "model_not_allowed", "This key model is not on the list of allowed keys."), metrics.AttestationReasonAAGUIDDenied}
		}
	}
	if (p.Attestation == "any" || p.Attestation == "verified") && (cred.AttestationType == "none" || cred.AttestationType == "") {
		return &policyError{problem(http.StatusForbidden, "attestation_required", "This service requires keys that attest their model; this one did not."), metrics.AttestationReasonRequired}
	}
	return nil
}

// StoredCredential is how the server stores a credential go-webauthn
// verified: the attestation apart from what sign-ins read.
func StoredCredential(userID []byte, nickname string, cred *webauthn.Credential, now time.Time) (storage.Credential, error) {
	att, err := json.Marshal(cred.Attestation)
	if err != nil {
		return storage.Credential{}, err
	}
	slim := *cred
	slim.Attestation = webauthn.CredentialAttestation{}
	raw, err := json.Marshal(slim)
	if err != nil {
		return storage.Credential{}, err
	}
	return storage.Credential{
		ID: cred.ID, UserID: userID, Nickname: nickname, WebAuthn: raw, Attestation: att,
		AAGUID: cred.Authenticator.AAGUID, SignCount: cred.Authenticator.SignCount,
		AttestationType: cred.AttestationType, CreatedAt: now.UTC().Truncate(time.Microsecond),
	}, nil
}
