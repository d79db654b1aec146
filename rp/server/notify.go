package server

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"
)

// NotificationKind is the recovery step a Notification tells of.
type NotificationKind string

// The recovery steps the user is told of.
const (
	// NotifyRecoveryRequested: a desktop started a QR handoff for the
	// account.
	NotifyRecoveryRequested NotificationKind = "recovery_requested"
	// NotifyRecoveryApproved: the user's key approved it on the phone.
	NotifyRecoveryApproved NotificationKind = "recovery_approved"
	// NotifyRecoveryRefused: it was refused (wrong number, "not me", a
	// redeem the desktop's key did not sign).
	NotifyRecoveryRefused NotificationKind = "recovery_refused"
	// NotifyRecoveryRedeemed: a desktop received a recovery session,
	// from a handoff or a helpdesk grant.
	NotifyRecoveryRedeemed NotificationKind = "recovery_redeemed"
	// NotifyRecoveryExpired: a handoff expired unredeemed.
	NotifyRecoveryExpired NotificationKind = "recovery_expired"
	// NotifyRecoveryCodeUsed: a recovery code was redeemed.
	NotifyRecoveryCodeUsed NotificationKind = "recovery_code_used"
	// NotifyRecoveryCodesGenerated: a new set of codes replaced the old.
	NotifyRecoveryCodesGenerated NotificationKind = "recovery_codes_generated"
	// NotifyRecoveryGrantIssued: a helpdesk member issued a recovery
	// grant for the account.
	NotifyRecoveryGrantIssued NotificationKind = "recovery_grant_issued"
	// NotifyRecoveryGrantApproved: a second helpdesk member approved it.
	NotifyRecoveryGrantApproved NotificationKind = "recovery_grant_approved"
)

// Notification is a recovery step an RP may want to tell the account's
// owner about out of band (e-mail, SMS). It holds no secret: no code,
// token, nonce or signature.
type Notification struct {
	// User is the account's user name.
	User string
	Kind NotificationKind
	// DesktopName is the name the asking desktop gave, for handoffs.
	DesktopName string
	// IP is the address of the request that made the step.
	IP   string
	Time time.Time
}

// logNotification is the default Config.Notify: a log line per step.
func logNotification(l *slog.Logger) func(context.Context, Notification) {
	return func(ctx context.Context, n Notification) {
		l.InfoContext(ctx, "recovery notification", "user", n.User, "kind", string(n.Kind),
			"desktop", n.DesktopName, "ip", n.IP, "time", n.Time)
	}
}

// notify hands n to Config.Notify on a goroutine of its own: the step is
// committed already, and the caller must not wait for, or be timed by, a
// mailer. A panicking hook is logged, never fatal.
func (s *Server) notify(r *http.Request, user string, kind NotificationKind, desktopName string) {
	n := Notification{User: user, Kind: kind, DesktopName: desktopName,
		IP: clientAddr(r, s.cfg.TrustedProxies), Time: s.cfg.Now().UTC()}
	ctx := context.WithoutCancel(r.Context())
	go func() {
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Logger.ErrorContext(ctx, "recovery notification hook panicked", "kind", string(kind))
			}
		}()
		s.cfg.Notify(ctx, n)
	}()
}

// watchers wake the events streams of this instance that watch a
// recovery session when this instance changes it, so that the desktop
// hears of an approval at once; a change made on another instance is
// found by the streams' polling.
type watchers struct {
	mu sync.Mutex
	m  map[string]map[chan struct{}]struct{}
}

func newWatchers() *watchers { return &watchers{m: map[string]map[chan struct{}]struct{}{}} }

// watch returns a channel that receives when session id changes here,
// and the function that stops watching.
func (w *watchers) watch(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.m[id] == nil {
		w.m[id] = map[chan struct{}]struct{}{}
	}
	w.m[id][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.m[id], ch)
		if len(w.m[id]) == 0 {
			delete(w.m, id)
		}
		w.mu.Unlock()
	}
}

// changed wakes the watchers of session id; a watcher already woken
// stays woken once.
func (w *watchers) changed(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.m[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// checklistItem is the form of a checklist item ID.
var checklistItem = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// checkChecklist checks Config.RecoveryChecklist.
func checkChecklist(items []string) error {
	if len(items) == 0 || len(items) > 20 {
		return ErrBadChecklist
	}
	seen := map[string]bool{}
	for _, it := range items {
		if !checklistItem.MatchString(it) || seen[it] {
			return ErrBadChecklist
		}
		seen[it] = true
	}
	return nil
}
