package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/metrics"
	"github.com/keydesk/keydesk/rp/storage"
)

// The QR handoff (issue 7). A desktop starts a session for a user name
// and gets: a secret for the QR code's URL fragment, a typed fallback
// code, a desktop token for itself, and a two-digit number to show. The
// phone page proves it read the code (secret or typed code) to describe
// the session, picks the number among three, and approves with one of the
// user's keys, user verification required; the desktop, watching the
// session, redeems the approval with a signature of its ephemeral key
// over the approval's nonce, and gets a session of scope "recovery".
// Every step is audited, and the state lives in the database, so that any
// instance serves any step.

// typedCodeLength is 8 Crockford base32 symbols: 40 bits, against the
// few dozen guesses the rate limits allow in a session's three minutes.
const typedCodeLength = 8

// recoveryHash is what the store keeps of a handoff's secret, typed code
// or desktop token: keyed with the server's secret, so that a stolen
// database allows no offline search (the typed code is short), and bound
// to the session and the kind of secret.
func (s *Server) recoveryHash(kind, sessionID, value string) []byte {
	m := hmac.New(sha256.New, s.cfg.Secret)
	m.Write([]byte("keydesk recovery " + kind + "\x00" + sessionID + "\x00" + value))
	return m.Sum(nil)
}

// randomSecret returns 32 random bytes, base64url: 256 bits.
func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return b64(b)
}

// newTypedCode returns a fallback code, e.g. "7K3M-Q9XD".
func newTypedCode() string {
	b := make([]byte, typedCodeLength)
	rand.Read(b)
	var sb strings.Builder
	for i, v := range b {
		if i == typedCodeLength/2 {
			sb.WriteByte('-')
		}
		sb.WriteByte(codeAlphabet[v&31]) // 256 is a multiple of 32: uniform
	}
	return sb.String()
}

// randomInt returns a uniform random integer in [0, n).
func randomInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return int(v.Int64())
}

// newNumbers draws the desktop's number (10 to 99) and the three the
// phone offers: it and two other numbers, in random order.
func newNumbers() (number int, candidates []int) {
	number = 10 + randomInt(90)
	candidates = []int{number}
	for len(candidates) < 3 {
		c := 10 + randomInt(90)
		if !slices.Contains(candidates, c) {
			candidates = append(candidates, c)
		}
	}
	for i := len(candidates) - 1; i > 0; i-- {
		j := randomInt(i + 1)
		candidates[i], candidates[j] = candidates[j], candidates[i]
	}
	return number, candidates
}

// parseDesktopKey reads a desktop's public key: an ECDSA P-256 key as an
// X.509 SubjectPublicKeyInfo, DER, base64url.
func parseDesktopKey(s string) (*ecdsa.PublicKey, []byte, error) {
	der, ok := unb64(s)
	if !ok {
		return nil, nil, errBadDesktopKey
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, nil, errBadDesktopKey
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, nil, errBadDesktopKey
	}
	return ec, der, nil
}

// The answers of the handoff's routes.
var (
	errBadDesktopKey = problem(http.StatusBadRequest, "bad_desktop_key",
		"desktopPublicKey is an ECDSA P-256 public key as a SubjectPublicKeyInfo, DER, base64url.")
	errRecoveryNotFound = problem(http.StatusNotFound, "recovery_not_found",
		"There is no such recovery request: start again on the computer.")
	errRecoveryExpired = problem(http.StatusGone, "recovery_expired",
		"This recovery request has expired: start again on the computer.")
	errRecoveryRefused = problem(http.StatusConflict, "recovery_refused",
		"This recovery request was refused and cannot be used any more: start again on the computer.")
	errRecoveryApproved = problem(http.StatusConflict, "recovery_approved",
		"This recovery request was already approved: go back to the computer.")
	errRecoveryUsed = problem(http.StatusConflict, "recovery_used",
		"This recovery request was already used: start again on the computer if you need to.")
	errRecoveryNotApproved = problem(http.StatusConflict, "recovery_not_approved",
		"This recovery request has not been approved on the phone yet.")
	errBadRecoverySecret = problem(http.StatusUnauthorized, "bad_recovery_secret",
		"That does not match this recovery request: check the code shown on the computer, or scan its QR code again.")
	errWrongNumber = problem(http.StatusForbidden, "wrong_number",
		"That is not the number the computer shows, so this recovery request was stopped. If it was you, start again on the computer.")
	errApprovalFailed = problem(http.StatusUnauthorized, "approval_failed",
		"That key's approval did not verify for this account. Use a passkey or security key registered to this account, and try again.")
	errApprovalSuperseded = problem(http.StatusConflict, "approval_superseded",
		"A newer approval was begun for this request: finish that one.")
	errBadDesktopToken = problem(http.StatusUnauthorized, "bad_desktop_token",
		"This needs the desktop token the recovery request was started with (Authorization: Bearer ...).")
	errBadRedeemSignature = problem(http.StatusUnauthorized, "bad_signature",
		"The signature is not the desktop key's over this approval: the recovery request was stopped. Start again.")
)

// recoveryLimited is the message of a 429 for answering a handoff.
const recoveryLimited = "Too many recovery attempts: wait and try again."

// errForStatus is the answer to a request that needs a pending session
// but found st.
func errForStatus(st storage.RecoveryStatus) error {
	switch st {
	case storage.RecoveryPending:
		return nil
	case storage.RecoveryApproved:
		return errRecoveryApproved
	case storage.RecoveryRefused:
		return errRecoveryRefused
	case storage.RecoveryRedeemed:
		return errRecoveryUsed
	}
	return errRecoveryExpired
}

// recoveryTransitionError maps a refused conditional transition to the
// answer, reading what the session became.
func (s *Server) recoveryTransitionError(ctx context.Context, id string, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errRecoveryNotFound
	case errors.Is(err, storage.ErrExpired):
		return errRecoveryExpired
	case errors.Is(err, storage.ErrConsumed), errors.Is(err, storage.ErrConflict):
		rs, rerr := s.cfg.Store.RecoverySession(ctx, id)
		if rerr != nil {
			return rerr
		}
		if e := errForStatus(s.effectiveStatus(rs)); e != nil {
			return e
		}
		return problem(http.StatusConflict, "recovery_changed", "This recovery request changed meanwhile: reload and try again.")
	}
	return err
}

// effectiveStatus is a session's status now: a pending or approved
// session past its expiry is expired, whether or not that was recorded.
func (s *Server) effectiveStatus(rs *storage.RecoverySession) storage.RecoveryStatus {
	if !rs.Status.Terminal() && !s.cfg.Now().Before(rs.ExpiresAt) {
		return storage.RecoveryExpired
	}
	return rs.Status
}

// recoveryAudit appends an audit entry about handoff rs in tx: by its
// user (or the name asked, for a decoy), details never holding a secret.
func (s *Server) recoveryAudit(tx storage.Tx, r *http.Request, rs *storage.RecoverySession, role audit.Role, action audit.Action,
	credID []byte, details map[string]string) error {
	actor, subject := rs.Username, ""
	if checkName(actor) != nil {
		actor = "anonymous"
	}
	if rs.UserID != nil {
		subject = rs.Username
	}
	d := map[string]string{"id": rs.ID, "method": "qr", "desktopName": rs.DesktopName}
	for k, v := range details {
		d[k] = v
	}
	return s.record(tx, r, actor, role, action, subject, credID, d)
}

// auditRecovery records one entry about rs in its own transaction, for
// failures that change nothing else.
func (s *Server) auditRecovery(r *http.Request, rs *storage.RecoverySession, action audit.Action, details map[string]string) {
	err := s.cfg.Store.Tx(context.WithoutCancel(r.Context()), func(tx storage.Tx) error {
		return s.recoveryAudit(tx, r, rs, audit.RoleAnonymous, action, nil, details)
	})
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "audit recovery", "action", string(action), "err", err)
	}
}

// notifyRecovery tells a real account's owner of a step of rs.
func (s *Server) notifyRecovery(r *http.Request, rs *storage.RecoverySession, kind NotificationKind) {
	if rs.UserID != nil {
		s.notify(r, rs.Username, kind, rs.DesktopName)
	}
}

// startRecovery creates a handoff session. A name with no usable account
// (unknown or disabled) gets a decoy that answers like a real session in
// every step but the approval, which no key can give, so that this route
// does not tell who has an account: the same answer, the same database
// work, the same rate limits.
func (s *Server) startRecovery(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var req api.RecoveryStartRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	name := normalizeName(req.Username)
	if err := checkName(name); err != nil {
		return err
	}
	desktop := strings.TrimSpace(req.DesktopName)
	if desktop == "" || len(desktop) > 64 || !utf8.ValidString(desktop) ||
		strings.ContainsFunc(desktop, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return problem(http.StatusBadRequest, "bad_desktop_name", "desktopName is 1 to 64 bytes of text, without control characters.")
	}
	_, der, err := parseDesktopKey(req.DesktopPublicKey)
	if err != nil {
		return err
	}
	ip := clientAddr(r, s.cfg.TrustedProxies)
	ipKey := ""
	if ip != "" {
		ipKey = limitKey("recovery-ip", ip)
	}
	if err := s.limit(r.Context(), s.perRecovery, "Too many recovery requests for this account or from this address: wait and try again.",
		limitKey("recovery-user", name), ipKey); err != nil {
		return err
	}
	u, err := s.cfg.Store.UserByName(r.Context(), name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	account := "known"
	switch {
	case err != nil:
		account, u = "unknown", nil
	case u.Disabled:
		account, u = "disabled", nil
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	id, secret, code, token := newID(), randomSecret(), newTypedCode(), randomSecret()
	number, candidates := newNumbers()
	rs := storage.RecoverySession{
		ID: id, Username: name, SecretHash: s.recoveryHash("secret", id, secret),
		CodeHash: s.recoveryHash("code", id, normalizeCode(code)), DesktopTokenHash: s.recoveryHash("desktop token", id, token),
		Number: number, Candidates: candidates, DesktopName: desktop, DesktopKey: der, DesktopIP: ip,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.RecoveryTTL), Status: storage.RecoveryPending, StatusAt: now,
	}
	if u != nil {
		rs.UserID = u.ID
	}
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		if err := tx.CreateRecoverySession(rs); err != nil {
			return err
		}
		return s.recoveryAudit(tx, r, &rs, audit.RoleAnonymous, audit.ActionRecoveryRequested, nil, map[string]string{"account": account})
	})
	if err != nil {
		return err
	}
	s.notifyRecovery(r, &rs, NotifyRecoveryRequested)
	writeJSON(w, http.StatusCreated, api.RecoveryStart{
		SessionID: id, Secret: secret, URL: s.cfg.Origins[0] + "/r/" + id + "#" + secret,
		TypedCode: code, DesktopToken: token, Number: number, ExpiresAt: rs.ExpiresAt,
	})
	return nil
}

// phoneSession loads the session the path names for a request from the
// phone, after checking its proof (the QR secret, or the typed code) and
// spending the account's and the address's attempt budgets. A wrong
// proof is audited; the session lives on.
func (s *Server) phoneSession(r *http.Request, proof api.RecoveryProof) (*storage.RecoverySession, error) {
	id := r.PathValue("id")
	ip := clientAddr(r, s.cfg.TrustedProxies)
	ipKey := ""
	if ip != "" {
		ipKey = limitKey("recovery-try-ip", ip)
	}
	if len(id) > 64 {
		return nil, errRecoveryNotFound
	}
	rs, err := s.cfg.Store.RecoverySession(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		if err := s.limit(r.Context(), s.perAccount, recoveryLimited, ipKey); err != nil {
			return nil, err
		}
		return nil, errRecoveryNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := s.limit(r.Context(), s.perAccount, recoveryLimited, limitKey("recovery-try-user", rs.Username), ipKey); err != nil {
		return nil, err
	}
	var ok bool
	switch {
	case proof.Secret != "" && proof.Code == "" && len(proof.Secret) <= 128:
		ok = hmac.Equal(s.recoveryHash("secret", rs.ID, proof.Secret), rs.SecretHash)
	case proof.Code != "" && proof.Secret == "" && len(proof.Code) <= 64:
		ok = hmac.Equal(s.recoveryHash("code", rs.ID, normalizeCode(proof.Code)), rs.CodeHash)
	}
	if !ok {
		reason := "wrong_secret"
		if proof.Code != "" {
			reason = "wrong_typed_value"
		}
		s.auditRecovery(r, rs, audit.ActionRecoveryFailed, map[string]string{"reason": reason})
		s.cfg.Metrics.Recovery(metrics.RecoveryInvalid)
		return nil, errBadRecoverySecret
	}
	return rs, nil
}

// pendingPhoneSession is phoneSession for a step that needs the session
// pending: an expired one has its expiry recorded.
func (s *Server) pendingPhoneSession(r *http.Request, proof api.RecoveryProof) (*storage.RecoverySession, error) {
	rs, err := s.phoneSession(r, proof)
	if err != nil {
		return nil, err
	}
	st := s.effectiveStatus(rs)
	if st == storage.RecoveryExpired {
		s.expireRecovery(r, rs)
	}
	if err := errForStatus(st); err != nil {
		return nil, err
	}
	return rs, nil
}

// describeRecovery tells the phone what asks to be let in.
func (s *Server) describeRecovery(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var req api.RecoveryProof
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	rs, err := s.pendingPhoneSession(r, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.RecoveryDescription{
		Username: rs.Username, DesktopName: rs.DesktopName, DesktopIP: rs.DesktopIP,
		CreatedAt: rs.CreatedAt, ExpiresAt: rs.ExpiresAt, Candidates: rs.Candidates,
	})
	return nil
}

// refuse ends rs as refused for reason, audited, told to its watchers
// and its owner.
func (s *Server) refuse(r *http.Request, rs *storage.RecoverySession, reason storage.RefusalReason) error {
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	err := s.cfg.Store.Tx(context.WithoutCancel(r.Context()), func(tx storage.Tx) error {
		if err := tx.RefuseRecovery(rs.ID, now, reason); err != nil {
			return err
		}
		return s.recoveryAudit(tx, r, rs, audit.RoleAnonymous, audit.ActionRecoveryRefused, nil, map[string]string{"reason": string(reason)})
	})
	if err != nil {
		return s.recoveryTransitionError(r.Context(), rs.ID, err)
	}
	s.recoveryWatch.changed(rs.ID)
	s.cfg.Metrics.Recovery(metrics.RecoveryDenied)
	s.notifyRecovery(r, rs, NotifyRecoveryRefused)
	return nil
}

// refuseRecovery is the phone's "this was not me": the session ends.
func (s *Server) refuseRecovery(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var req api.RecoveryProof
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	rs, err := s.pendingPhoneSession(r, req)
	if err != nil {
		return err
	}
	if err := s.refuse(r, rs, storage.RefusedOnPhone); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.RecoveryStatus{SessionID: rs.ID, Status: string(storage.RecoveryRefused), ExpiresAt: rs.ExpiresAt,
		Reason: string(storage.RefusedOnPhone)})
	return nil
}

// approveRecoveryBegin checks the number the user picked and answers
// request options for their key. A wrong number ends the session: it is
// what a user tricked into approving someone else's request would pick.
// The options are discoverable (no allowCredentials): listing the user's
// credential IDs would tell whoever started a session for a name whether
// it has an account, and which keys.
func (s *Server) approveRecoveryBegin(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var req api.RecoveryApproveBeginRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	rs, err := s.pendingPhoneSession(r, req.RecoveryProof)
	if err != nil {
		return err
	}
	if req.Number != rs.Number {
		if err := s.refuse(r, rs, storage.RefusedWrongNumber); err != nil {
			return err
		}
		return errWrongNumber
	}
	assertion, sd, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return err
	}
	sessionJSON, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	optionsJSON, err := json.Marshal(assertion.Response)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	cer := storage.Ceremony{ID: newCeremonyID(now), Kind: storage.CeremonyRecovery, Session: sessionJSON,
		ExpiresAt: minTime(now.Add(s.cfg.CeremonyTTL), rs.ExpiresAt)}
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		if err := tx.CreateCeremony(cer); err != nil {
			return err
		}
		return tx.BeginRecoveryApproval(rs.ID, cer.ID, now)
	})
	if err != nil {
		return s.recoveryTransitionError(r.Context(), rs.ID, err)
	}
	writeJSON(w, http.StatusOK, api.CeremonyBegin{CeremonyID: cer.ID, PublicKey: optionsJSON, ExpiresAt: cer.ExpiresAt})
	return nil
}

// approveRecoveryFinish verifies the phone's assertion (user verified,
// by an unrevoked key of the session's user) and approves the session.
// A failed assertion uses up its ceremony and is audited, but the
// session lives on: the user may have picked another account's passkey.
func (s *Server) approveRecoveryFinish(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var req api.RecoveryApproveFinishRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	rs, err := s.pendingPhoneSession(r, req.RecoveryProof)
	if err != nil {
		return err
	}
	if rs.CeremonyID == "" {
		return problem(http.StatusConflict, "approval_not_begun", "Pick the number first (approve/begin).")
	}
	if req.CeremonyID != "" && req.CeremonyID != rs.CeremonyID {
		return errApprovalSuperseded
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(req.Credential)
	if err != nil {
		return problem(http.StatusBadRequest, "bad_credential", "The credential is not an authentication response: %s.", protocolReason(err))
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	cer, sd, err := s.peekCeremony(r.Context(), rs.CeremonyID, storage.CeremonyRecovery, now)
	if err != nil {
		return err
	}
	pol, err := s.policy(r.Context())
	if err != nil {
		return err
	}
	v, err := s.verifyLogin(r.Context(), cer, sd, parsed, pol)
	if err != nil {
		return err
	}
	if v.failure == "" && (rs.UserID == nil || !bytes.Equal(v.owner.u.ID, rs.UserID)) {
		// A decoy's approval always ends here: it has no user.
		v.failure, v.refused = "not_this_accounts_key", errApprovalFailed
	}
	if v.failure != "" {
		reason := v.failure
		if len(reason) > 200 {
			reason = reason[:200]
		}
		var credID []byte
		if v.stored != nil && v.owner != nil && rs.UserID != nil && bytes.Equal(v.owner.u.ID, rs.UserID) {
			credID = v.stored.ID
		}
		err := s.cfg.Store.Tx(context.WithoutCancel(r.Context()), func(tx storage.Tx) error {
			if _, err := tx.ConsumeCeremony(cer.ID, now); err != nil {
				return consumeError(err)
			}
			return s.recoveryAudit(tx, r, rs, audit.RoleAnonymous, audit.ActionRecoveryFailed, credID, map[string]string{"reason": reason})
		})
		if err != nil {
			return err
		}
		s.cfg.Metrics.Recovery(metrics.RecoveryDenied)
		if errors.Is(v.refused, errLoginFailed) {
			return errApprovalFailed
		}
		return v.refused
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	// transition is ApproveRecovery's refusal, mapped to an answer once
	// the transaction is over (the mapping reads the store).
	var transition error
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		transition = nil
		if _, err := tx.ConsumeCeremony(cer.ID, now); err != nil {
			return consumeError(err)
		}
		newCount := v.cred.Authenticator.SignCount
		if v.clone {
			newCount = v.stored.SignCount
		}
		if err := tx.UpdateSignCount(v.stored.ID, v.stored.SignCount, newCount, now); errors.Is(err, storage.ErrConflict) {
			return problem(http.StatusConflict, "concurrent_login", "Another sign-in with this key happened at the same moment: try again.")
		} else if err != nil {
			return err
		}
		if v.clone {
			if err := s.record(tx, r, rs.Username, audit.RoleUser, audit.ActionCounterRegressed, rs.Username, v.stored.ID,
				map[string]string{"refused": "false"}); err != nil {
				return err
			}
		}
		if err := tx.ApproveRecovery(rs.ID, cer.ID, v.stored.ID, nonce, now, now.Add(s.cfg.RecoveryRedeemWindow)); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return errApprovalSuperseded
			}
			transition = err
			return err
		}
		return s.recoveryAudit(tx, r, rs, audit.RoleUser, audit.ActionRecoveryApproved, v.stored.ID, nil)
	})
	if transition != nil {
		return s.recoveryTransitionError(r.Context(), rs.ID, transition)
	}
	if err != nil {
		return err
	}
	s.recoveryWatch.changed(rs.ID)
	s.notifyRecovery(r, rs, NotifyRecoveryApproved)
	writeJSON(w, http.StatusOK, api.RecoveryStatus{SessionID: rs.ID, Status: string(storage.RecoveryApproved),
		ExpiresAt: now.Add(s.cfg.RecoveryRedeemWindow)})
	return nil
}

// expireRecovery records that rs reached its expiry: once, whichever
// instance sees it first, audited and told to its owner.
func (s *Server) expireRecovery(r *http.Request, rs *storage.RecoverySession) {
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	err := s.cfg.Store.Tx(context.WithoutCancel(r.Context()), func(tx storage.Tx) error {
		if err := tx.ExpireRecovery(rs.ID, now); err != nil {
			return err
		}
		return s.recoveryAudit(tx, r, rs, audit.RoleSystem, audit.ActionRecoveryExpired, nil,
			map[string]string{"was": string(rs.Status)})
	})
	switch {
	case err == nil:
		s.recoveryWatch.changed(rs.ID)
		s.cfg.Metrics.Recovery(metrics.RecoveryExpired)
		s.notifyRecovery(r, rs, NotifyRecoveryExpired)
	case errors.Is(err, storage.ErrConsumed), errors.Is(err, storage.ErrConflict), errors.Is(err, storage.ErrNotFound):
		// Recorded already, or ended otherwise meanwhile.
	default:
		s.cfg.Logger.ErrorContext(r.Context(), "record recovery expiry", "err", err)
	}
}

// desktopSession loads the session the path names for a request from
// the desktop, which must carry its desktop token.
func (s *Server) desktopSession(r *http.Request) (*storage.RecoverySession, error) {
	id := r.PathValue("id")
	if len(id) > 64 {
		return nil, errRecoveryNotFound
	}
	token, ok := bearer(r)
	if !ok {
		return nil, errBadDesktopToken
	}
	rs, err := s.cfg.Store.RecoverySession(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errRecoveryNotFound
	}
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(s.recoveryHash("desktop token", rs.ID, token), rs.DesktopTokenHash) {
		return nil, errBadDesktopToken
	}
	return rs, nil
}

// statusOf is what the desktop is told of rs; an expiry not yet recorded
// is recorded.
func (s *Server) statusOf(r *http.Request, rs *storage.RecoverySession) api.RecoveryStatus {
	st := s.effectiveStatus(rs)
	if st == storage.RecoveryExpired && rs.Status != storage.RecoveryExpired {
		s.expireRecovery(r, rs)
	}
	out := api.RecoveryStatus{SessionID: rs.ID, Status: string(st), ExpiresAt: rs.ExpiresAt}
	switch st {
	case storage.RecoveryApproved:
		out.Nonce = b64(rs.Nonce)
	case storage.RecoveryRefused:
		out.Reason = string(rs.RefusalReason)
	}
	return out
}

// redeemRecovery trades an approval for a recovery session, once: the
// desktop proves it holds the key it started with by signing the nonce
// (api.RecoveryRedeemMessage). A wrong signature with the right desktop
// token means the token leaked: the session ends (fail closed), and the
// user starts again.
func (s *Server) redeemRecovery(w http.ResponseWriter, r *http.Request, _ *caller) error {
	rs, err := s.desktopSession(r)
	if err != nil {
		return err
	}
	var req api.RecoveryRedeemRequest
	if _, err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	sig, ok := unb64(req.Signature)
	if !ok {
		return problem(http.StatusBadRequest, "bad_signature_encoding", "signature is an ASN.1 DER ECDSA signature, base64url.")
	}
	switch st := s.effectiveStatus(rs); st {
	case storage.RecoveryApproved:
	case storage.RecoveryPending:
		s.auditRecovery(r, rs, audit.ActionRecoveryFailed, map[string]string{"reason": "redeem_before_approval"})
		return errRecoveryNotApproved
	case storage.RecoveryRedeemed:
		s.auditRecovery(r, rs, audit.ActionRecoveryFailed, map[string]string{"reason": "redeem_replayed"})
		s.cfg.Metrics.Recovery(metrics.RecoveryInvalid)
		return errRecoveryUsed
	case storage.RecoveryExpired:
		s.expireRecovery(r, rs)
		s.auditRecovery(r, rs, audit.ActionRecoveryFailed, map[string]string{"reason": "redeem_after_expiry"})
		return errRecoveryExpired
	default:
		s.auditRecovery(r, rs, audit.ActionRecoveryFailed, map[string]string{"reason": "redeem_of_" + string(st)})
		return errForStatus(st)
	}
	pub, _, err := parseDesktopKey(b64(rs.DesktopKey))
	if err != nil {
		return err
	}
	digest := sha256.Sum256(api.RecoveryRedeemMessage(rs.ID, rs.Nonce))
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		if err := s.refuse(r, rs, storage.RefusedBadSignature); err != nil {
			return err
		}
		return errBadRedeemSignature
	}
	u, err := s.cfg.Store.UserByID(r.Context(), rs.UserID)
	if err != nil {
		return err
	}
	if u.Disabled {
		return problem(http.StatusForbidden, "user_disabled", "This account is disabled: ask your helpdesk.")
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	token := newID() + newID()
	sess := storage.Session{TokenHash: hashToken(token), UserID: u.ID, Scope: storage.ScopeRecovery, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.RecoverySessionTTL), GrantID: rs.ID}
	var transition error
	err = s.cfg.Store.Tx(r.Context(), func(tx storage.Tx) error {
		transition = nil
		if _, err := tx.RedeemRecovery(rs.ID, now); err != nil {
			transition = err
			return err
		}
		if err := tx.CreateSession(sess); err != nil {
			return err
		}
		return s.recoveryAudit(tx, r, rs, audit.RoleUser, audit.ActionRecoveryRedeemed, nil,
			map[string]string{"expires": sess.ExpiresAt.Format(time.RFC3339)})
	})
	if transition != nil {
		// A racing redeem won (a replay), or the redeem window closed
		// since the status was read.
		reason := "redeem_replayed"
		if errors.Is(transition, storage.ErrExpired) {
			reason = "redeem_after_expiry"
		}
		s.auditRecovery(r, rs, audit.ActionRecoveryFailed, map[string]string{"reason": reason})
		return s.recoveryTransitionError(r.Context(), rs.ID, transition)
	}
	if err != nil {
		return err
	}
	s.recoveryWatch.changed(rs.ID)
	s.cfg.Metrics.Recovery(metrics.RecoveryGranted)
	s.notifyRecovery(r, rs, NotifyRecoveryRedeemed)
	writeJSON(w, http.StatusOK, api.Session{Token: token, ExpiresAt: sess.ExpiresAt, Scope: string(sess.Scope), User: userOf(u)})
	return nil
}
