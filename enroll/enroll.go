// Package enroll is what end users and helpdesk staff do with Keydesk at
// their organization's relying party: sign in with a key or an enrollment
// code, enroll a key, list their keys (saying which is plugged in), rename
// one, revoke a lost one after signing in with another, and sign out. It
// ties the WebAuthn client (enroll/webauthn), the RP API client
// (enroll/rpclient) and the keys (platform) together, and reports touch
// prompts, PIN requests and progress as Events a GUI or a terminal
// renders. It holds no protocol logic of its own and no cgo.
package enroll

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/api"
)

// EventKind names what a flow is doing, for the UI to show.
type EventKind string

// The events flows report.
const (
	// EventContacting: a request to the service is under way.
	EventContacting EventKind = "contacting"
	// EventTouch: touch the key now.
	EventTouch EventKind = "touch"
	// EventProcessing: the key is working.
	EventProcessing EventKind = "processing"
	// EventDone: the step named in the message is finished.
	EventDone EventKind = "done"
)

// Event is one step of a flow.
type Event struct {
	Kind EventKind
	// Message says it in plain words, such as "Signing in to Example".
	Message string
}

// UI is how a flow reaches the person in front of the computer. Every
// field may be nil: no events, no PIN (a key that needs one fails with
// platform.ErrPINRequired), the most recent account of several.
type UI struct {
	// Event receives the flow's steps; it must not block.
	Event func(Event)
	// PIN asks for the key's PIN (retriesLeft is -1 on the first ask).
	PIN webauthn.PINPrompt
	// ChooseAccount picks among several accounts a key holds for the
	// service.
	ChooseAccount webauthn.AccountChooser
}

// TokenStore keeps a profile's session token between runs (the OS
// keyring, or memory where there is none). enroll/profile provides both.
type TokenStore interface {
	Get(profile string) (string, error)
	Set(profile, token string) error
	Delete(profile string) error
}

// Config configures a Service for one profile.
type Config struct {
	// Profile names the session's slot in Tokens.
	Profile string
	// Origin is the profile's web origin; the RP IDs the service asks
	// for are checked against it.
	Origin webauthn.Origin
	// RPID is the service's RP ID, which the keys file credentials
	// under (asked when telling which key is plugged in); "" means the
	// origin's host.
	RPID string
	// API talks to the service's API.
	API *rpclient.Client
	// Tokens keeps the session token; nil keeps it in the API client
	// only.
	Tokens TokenStore
	// UI reaches the user.
	UI UI
}

// Service runs the flows of one profile. It is safe for concurrent use,
// though a person runs one flow at a time.
type Service struct {
	cfg Config
	wa  webauthn.Client
	mu  sync.Mutex // orders token changes
}

// ErrNotSignedIn is a flow that needs a session run without one.
var ErrNotSignedIn = errors.New("not signed in: sign in with your security key or an enrollment code first")

// New returns the Service for cfg, resuming the session kept in
// cfg.Tokens, if any.
func New(cfg Config) (*Service, error) {
	if cfg.API == nil {
		return nil, errors.New("enroll: no API client")
	}
	if cfg.Origin.EffectiveDomain() == "" {
		return nil, errors.New("enroll: no origin")
	}
	if cfg.RPID == "" {
		cfg.RPID = cfg.Origin.EffectiveDomain()
	} else if err := cfg.Origin.CheckRPID(cfg.RPID); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	s := &Service{cfg: cfg}
	if cfg.Tokens != nil && cfg.API.Token() == "" {
		tok, err := cfg.Tokens.Get(cfg.Profile)
		if err == nil && tok != "" {
			if err := cfg.API.SetToken(tok); err != nil {
				// A stored token the client cannot send is dropped.
				cfg.Tokens.Delete(cfg.Profile)
			}
		}
	}
	return s, nil
}

// SignedIn reports whether the service holds a session token (which the
// server may still have ended: Me tells).
func (s *Service) SignedIn() bool { return s.cfg.API.Token() != "" }

// emit sends an event to the UI.
func (s *Service) emit(kind EventKind, format string, args ...any) {
	if s.cfg.UI.Event != nil {
		s.cfg.UI.Event(Event{Kind: kind, Message: fmt.Sprintf(format, args...)})
	}
}

// withProgress turns the key's progress into events, and passes it on to
// whoever watched ctx's progress before (a GUI's touch prompt, which
// also knows how to cancel the operation).
func (s *Service) withProgress(ctx context.Context) context.Context {
	parent := ctx
	return platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
		switch ev.Stage {
		case platform.StageTouch:
			s.emit(EventTouch, "Touch your security key")
		case platform.StageProcessing:
			s.emit(EventProcessing, "Your security key is working")
		}
		platform.Report(parent, ev)
	})
}

// ceremonyOptions are the WebAuthn client's options for key.
func (s *Service) ceremonyOptions(ctx context.Context, key platform.Authenticator) (webauthn.CeremonyOptions, error) {
	info, err := key.Describe(ctx)
	if err != nil {
		return webauthn.CeremonyOptions{}, err
	}
	return webauthn.CeremonyOptions{
		PIN: s.cfg.UI.PIN, ChooseAccount: s.cfg.UI.ChooseAccount,
		Capabilities: webauthn.CapabilitiesOf(info, key.Device()),
	}, nil
}

// keep stores the API client's new session token.
func (s *Service) keep(token string) error {
	if s.cfg.Tokens == nil {
		return nil
	}
	if err := s.cfg.Tokens.Set(s.cfg.Profile, token); err != nil {
		return fmt.Errorf("keep the session: %w", err)
	}
	return nil
}

// endSession ends at the server the session a new one (token) replaced,
// so that no forgotten session stays valid until it expires. It is best
// effort: the old token is gone from the store either way.
func (s *Service) endSession(ctx context.Context, old, token string) {
	if old == "" || old == token {
		return
	}
	if c, err := s.cfg.API.WithToken(old); err == nil {
		c.Logout(ctx)
	}
}

// SignIn signs in with key: username names the account (the key is
// asked for that account's credentials), or "" lets the key offer its
// accounts for the service (a passkey sign-in; UI.ChooseAccount picks
// among several).
func (s *Service) SignIn(ctx context.Context, key platform.Authenticator, username string) (*api.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx = s.withProgress(ctx)
	opts, err := s.ceremonyOptions(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	s.emit(EventContacting, "Asking %s for a sign-in", s.cfg.Origin)
	id, options, _, err := s.cfg.API.LoginBegin(ctx, username)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	cred, err := s.wa.Get(ctx, key, s.cfg.Origin, options, opts)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	s.emit(EventContacting, "Checking the sign-in with %s", s.cfg.Origin)
	old := s.cfg.API.Token()
	sess, token, err := s.cfg.API.LoginFinish(ctx, id, cred)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	if err := s.keep(token); err != nil {
		return sess, err
	}
	s.endSession(ctx, old, token)
	s.emit(EventDone, "Signed in as %s", sess.User.Name)
	return sess, nil
}

// SignInWithCode redeems an enrollment code a helpdesk or administrator
// issued: the session it gives may only enroll keys.
func (s *Service) SignInWithCode(ctx context.Context, username, code string) (*api.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emit(EventContacting, "Checking the code with %s", s.cfg.Origin)
	old := s.cfg.API.Token()
	sess, token, err := s.cfg.API.RedeemGrant(ctx, username, code)
	if err != nil {
		return nil, fmt.Errorf("sign in with a code: %w", err)
	}
	if err := s.keep(token); err != nil {
		return sess, err
	}
	s.endSession(ctx, old, token)
	s.emit(EventDone, "Signed in as %s to enroll a key", sess.User.Name)
	return sess, nil
}

// Enroll registers key with the signed-in account under nickname.
func (s *Service) Enroll(ctx context.Context, key platform.Authenticator, nickname string) (*api.Key, error) {
	if !s.SignedIn() {
		return nil, fmt.Errorf("enroll: %w", ErrNotSignedIn)
	}
	ctx = s.withProgress(ctx)
	opts, err := s.ceremonyOptions(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	s.emit(EventContacting, "Asking %s to enroll a key", s.cfg.Origin)
	id, options, _, err := s.cfg.API.RegistrationBegin(ctx, nickname)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	cred, err := s.wa.Create(ctx, key, s.cfg.Origin, options, opts)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	s.emit(EventContacting, "Sending the new key to %s", s.cfg.Origin)
	k, err := s.cfg.API.RegistrationFinish(ctx, id, cred, nickname)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	s.emit(EventDone, "Enrolled %q", k.Nickname)
	return k, nil
}

// Key is one of the account's keys, with where it is now.
type Key struct {
	api.Key
	// PluggedIn is set when one of the connected keys holds this
	// credential; Device is that key.
	PluggedIn bool
	Device    platform.Device
}

// silentBatch is how many credential IDs one silent request names: the
// maxCredentialCountInList of common keys (8 on YubiKey 5 and on
// Keydesk's software key); a key that takes fewer refuses, and the key is
// then left unmarked.
const silentBatch = 8

// Keys lists the account's keys, marking those held by one of the
// connected keys, which are asked silently (no touch, no PIN).
func (s *Service) Keys(ctx context.Context, connected []platform.Authenticator) ([]Key, error) {
	if !s.SignedIn() {
		return nil, fmt.Errorf("list keys: %w", ErrNotSignedIn)
	}
	ks, err := s.cfg.API.MyKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]Key, len(ks))
	var ids [][]byte
	index := map[string]int{}
	for i, k := range ks {
		out[i] = Key{Key: k}
		if k.RevokedAt != nil {
			continue
		}
		id, err := base64.RawURLEncoding.DecodeString(k.ID)
		if err != nil || len(id) == 0 {
			continue
		}
		index[string(id)] = i
		ids = append(ids, id)
	}
	rpID := s.cfg.RPID
	for _, key := range connected {
		for start := 0; start < len(ids); start += silentBatch {
			batch := ids[start:min(start+silentBatch, len(ids))]
			found, err := Holds(ctx, key, rpID, batch)
			if err != nil {
				break // this key cannot tell; it stays unmarked
			}
			for _, id := range found {
				if i, ok := index[string(id)]; ok {
					out[i].PluggedIn, out[i].Device = true, key.Device()
				}
			}
		}
	}
	return out, nil
}

// Holds asks key silently which of ids (credentials for rpID) it holds.
// A key holding none answers platform.ErrNoCredentials, which is not an
// error here.
func Holds(ctx context.Context, key platform.WebAuthnAuthenticator, rpID string, ids [][]byte) ([][]byte, error) {
	// The hash signs nothing anyone checks: a silent assertion's UP flag
	// is clear and no RP accepts it.
	var cdh [32]byte
	as, err := key.GetAssertion(ctx, platform.GetAssertionRequest{RPID: rpID, ClientDataHash: cdh[:], AllowList: ids, Silent: true})
	if errors.Is(err, platform.ErrNoCredentials) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var found [][]byte
	for _, a := range as {
		found = append(found, a.CredentialID)
	}
	return found, nil
}

// Rename gives one of the account's keys a new nickname.
func (s *Service) Rename(ctx context.Context, id, nickname string) (*api.Key, error) {
	k, err := s.cfg.API.RenameKey(ctx, id, nickname)
	if err != nil {
		return nil, fmt.Errorf("rename key: %w", err)
	}
	return k, nil
}

// RevokeLost revokes a lost key: the server wants a sign-in with a key
// in the last five minutes, so the person first signs in with another of
// their keys (withKey), as the account's user; then the lost one is
// revoked with reason.
func (s *Service) RevokeLost(ctx context.Context, id, reason string, withKey platform.Authenticator) (*api.Key, error) {
	me, err := s.cfg.API.Me(ctx)
	if err != nil {
		return nil, fmt.Errorf("revoke key: %w", err)
	}
	if withKey != nil {
		if id, err := base64.RawURLEncoding.DecodeString(id); err == nil {
			// Signing in with the key being revoked would prove nothing
			// about having lost it: refuse before a touch.
			if found, _ := Holds(ctx, withKey, s.cfg.RPID, [][]byte{id}); len(found) > 0 {
				return nil, errors.New("revoke key: this is the key being revoked: sign in with another of your keys")
			}
		}
		if _, err := s.SignIn(ctx, withKey, me.User.Name); err != nil {
			return nil, fmt.Errorf("revoke key: %w", err)
		}
	}
	s.emit(EventContacting, "Revoking the key at %s", s.cfg.Origin)
	k, err := s.cfg.API.RevokeKey(ctx, id, reason)
	if err != nil {
		return nil, fmt.Errorf("revoke key: %w", err)
	}
	s.emit(EventDone, "Revoked %q", k.Nickname)
	return k, nil
}

// Me asks the service whose session this is, and how fresh: an ended
// session fails with rpclient.ErrUnauthorized.
func (s *Service) Me(ctx context.Context) (*api.Me, error) {
	me, err := s.cfg.API.Me(ctx)
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	return me, nil
}

// RecoveryCodesStatus says how many of the account's recovery codes are
// left (a full session).
func (s *Service) RecoveryCodesStatus(ctx context.Context) (*api.RecoveryCodesStatus, error) {
	st, err := s.cfg.API.RecoveryCodesStatus(ctx)
	if err != nil {
		return nil, fmt.Errorf("recovery codes: %w", err)
	}
	return st, nil
}

// GenerateRecoveryCodes makes the account's new set of recovery codes,
// which replaces the old one: to be shown once, never kept. It needs a
// recent sign-in (rpclient.ErrStepUpRequired).
func (s *Service) GenerateRecoveryCodes(ctx context.Context) (*api.RecoveryCodes, error) {
	codes, err := s.cfg.API.GenerateRecoveryCodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("new recovery codes: %w", err)
	}
	return codes, nil
}

// SignOut ends the session at the service and forgets its token, even
// when the service cannot be reached (the token is forgotten anyway).
func (s *Service) SignOut(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.cfg.API.Logout(ctx)
	if s.cfg.Tokens != nil {
		if derr := s.cfg.Tokens.Delete(s.cfg.Profile); derr != nil && err == nil {
			err = derr
		}
	}
	if err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	return nil
}
