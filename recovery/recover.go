package recovery

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/api"
)

// ErrUnknownKey is a key chosen as lost that is not one of the account's
// usable keys: nothing was changed.
var ErrUnknownKey = errors.New("recovery: the key chosen as lost is not one of the account's usable keys")

// Session is a recovery session at work: what a QR handoff's Redeem, a
// recovery code (RedeemCode) or a helpdesk recovery grant gave. The
// server lets it, for ten minutes, list the account's keys, enroll one
// replacement key and revoke the lost ones; the flows are enroll's, with
// their events. The session is never kept in the token store: it lives in
// memory only, and End ends it at the server.
type Session struct {
	svc   *enroll.Service
	user  api.User
	scope string
}

// Begin starts working with the recovery session of token at the
// service of cfg (its Profile, Origin, RPID, API and UI; cfg.API is only
// a template: the session uses a client of its own for token, and
// cfg.Tokens is ignored). It asks the server who the session is for.
func Begin(ctx context.Context, cfg enroll.Config, token string) (*Session, error) {
	if cfg.API == nil {
		return nil, errors.New("recovery: no API client")
	}
	if token == "" {
		return nil, fmt.Errorf("recovery: %w", enroll.ErrNotSignedIn)
	}
	c, err := cfg.API.WithToken(token)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	cfg.API, cfg.Tokens = c, nil
	svc, err := enroll.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	emit(cfg.UI, enroll.EventContacting, "Opening the recovery session at %s", cfg.Origin)
	me, err := c.Me(ctx)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	return &Session{svc: svc, user: me.User, scope: me.Scope}, nil
}

// User is the account being recovered.
func (s *Session) User() api.User { return s.user }

// Scope is the session's scope: "recovery", unless the token was another
// kind of session (whose rules then apply: a full session's revocations
// need a fresh sign-in).
func (s *Session) Scope() string { return s.scope }

// Keys lists the account's keys, revoked ones included, marking those
// that one of connected holds.
func (s *Session) Keys(ctx context.Context, connected []platform.Authenticator) ([]enroll.Key, error) {
	ks, err := s.svc.Keys(ctx, connected)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	return ks, nil
}

// EnrollReplacement enrolls key, plugged in, as the account's new key
// under nickname: the touch prompts come as the UI's events. A recovery
// session enrolls one key.
func (s *Session) EnrollReplacement(ctx context.Context, key platform.Authenticator, nickname string) (*api.Key, error) {
	k, err := s.svc.Enroll(ctx, key, nickname)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	return k, nil
}

// Revoke revokes the keys ids, for reason ("lost", "stolen"), in order,
// stopping at the first failure; it returns the keys revoked so far.
func (s *Session) Revoke(ctx context.Context, ids []string, reason string) ([]api.Key, error) {
	var out []api.Key
	for _, id := range ids {
		k, err := s.svc.RevokeLost(ctx, id, reason, nil)
		if err != nil {
			return out, fmt.Errorf("recovery: %w", err)
		}
		out = append(out, *k)
	}
	return out, nil
}

// End ends the session at the server; its token is dead afterwards.
func (s *Session) End(ctx context.Context) error {
	if err := s.svc.SignOut(ctx); err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	return nil
}

// Plan is what the person at the desktop chose to do with a recovery
// session.
type Plan struct {
	// Replacement is the new key, plugged in; Nickname names it
	// ("replacement" when empty).
	Replacement platform.Authenticator
	Nickname    string
	// Connected are the keys plugged in, to mark the account's keys they
	// hold when listing them for SelectLost.
	Connected []platform.Authenticator
	// SelectLost is shown the account's usable keys (before the
	// replacement is enrolled) and returns the IDs of the lost ones, to
	// revoke once the replacement is enrolled; nil revokes none.
	SelectLost func(usable []enroll.Key) ([]string, error)
	// Reason is the revocations' reason; "lost" when empty.
	Reason string
}

// Summary is what Recover did.
type Summary struct {
	// User is the account recovered.
	User api.User
	// Keys are the account's keys as they were before, revoked ones
	// included.
	Keys []enroll.Key
	// Enrolled is the replacement key.
	Enrolled *api.Key
	// Revoked are the keys revoked, in the order chosen.
	Revoked []api.Key
}

// Recover walks through a recovery session (the token a handoff's
// Redeem, RedeemCode or a helpdesk grant gave): it lists the account's
// keys, has the user choose the lost ones (plan.SelectLost), enrolls the
// replacement, revokes the lost keys, and ends the session (best effort:
// a session that could not be ended lives in memory only, and expires
// within minutes). Every step reports through cfg.UI's events, as
// enroll's flows do.
//
// The replacement is enrolled before anything is revoked, so that a
// failure never leaves the account with fewer keys than it had. On a
// failure the summary says what was done, and the session is left open
// until it expires (Begin with the same token resumes it).
func Recover(ctx context.Context, cfg enroll.Config, token string, plan Plan) (*Summary, error) {
	if plan.Replacement == nil {
		return nil, errors.New("recovery: no replacement key")
	}
	if plan.Nickname == "" {
		plan.Nickname = "replacement"
	}
	if plan.Reason == "" {
		plan.Reason = "lost"
	}
	s, err := Begin(ctx, cfg, token)
	if err != nil {
		return nil, err
	}
	sum := &Summary{User: s.user}
	if sum.Keys, err = s.Keys(ctx, plan.Connected); err != nil {
		return sum, err
	}
	var usable []enroll.Key
	for _, k := range sum.Keys {
		if k.RevokedAt == nil {
			usable = append(usable, k)
		}
	}
	var lost []string
	if plan.SelectLost != nil {
		if lost, err = plan.SelectLost(slices.Clone(usable)); err != nil {
			return sum, fmt.Errorf("recovery: choose the lost keys: %w", err)
		}
	}
	for i, id := range lost {
		known := slices.ContainsFunc(usable, func(k enroll.Key) bool { return k.ID == id })
		if !known || slices.Contains(lost[:i], id) {
			return sum, ErrUnknownKey
		}
	}
	if sum.Enrolled, err = s.EnrollReplacement(ctx, plan.Replacement, plan.Nickname); err != nil {
		return sum, err
	}
	if sum.Revoked, err = s.Revoke(ctx, lost, plan.Reason); err != nil {
		return sum, err
	}
	// Best effort: the recovery is done, and a session that could not
	// be ended lives only in this process's memory, for minutes.
	_ = s.End(ctx)
	emit(cfg.UI, enroll.EventDone, "Recovered %s: enrolled %q, revoked %d lost key(s)", s.user.Name, sum.Enrolled.Nickname, len(sum.Revoked))
	return sum, nil
}

// emit sends an event to ui.
func emit(ui enroll.UI, kind enroll.EventKind, format string, args ...any) {
	if ui.Event != nil {
		ui.Event(enroll.Event{Kind: kind, Message: fmt.Sprintf(format, args...)})
	}
}
