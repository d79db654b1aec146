// Package recovery is the desktop's side of account recovery (issue 7):
// the QR handoff to the user's phone (Start, Handoff), recovery codes
// (RedeemCode), and the walk through a recovery session once one is
// granted (Recover): enroll the replacement key, revoke the lost ones. It
// holds the flows; the wire calls are enroll/rpclient's, the key flows
// enroll's, the screens ui/'s. recovery/THREATS.md is its threat model.
//
// # The QR handoff
//
// Start creates a fresh ephemeral ECDSA P-256 key, which never leaves
// memory, and starts a handoff bound to its public half. The desktop shows
// the handoff's QR code (QR, QRText) for URL, whose secret is in the
// fragment, the TypedCode fallback, the two-digit Number the user must
// pick on the phone, and a countdown to Deadline. Wait follows the
// handoff's events (server-sent events, falling back on a long poll) until
// the phone approves, refuses or the handoff expires; Redeem then signs
// the server's nonce with the ephemeral key, forgets the key, and returns
// a recovery session: ten minutes to enroll one key and revoke lost ones,
// which Recover walks through.
package recovery

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/api"
)

// The refusals of a handoff, for errors.Is. They are enroll/rpclient's
// sentinels, so that one test matches the server's refusal and the
// desktop's own conclusion alike.
var (
	// ErrRefused: the handoff was stopped (on the phone: a wrong number,
	// or "This was not me"; or by a redeem signed with another key) and
	// can never be used. Start again.
	ErrRefused = rpclient.ErrRecoveryRefused
	// ErrExpired: the phone did not approve in time, or the desktop did
	// not redeem in time. Start again.
	ErrExpired = rpclient.ErrRecoveryExpired
	// ErrUsed: the approval was redeemed already; each gives one session.
	ErrUsed = rpclient.ErrRecoveryUsed
	// ErrNotApproved: Redeem before the phone approved.
	ErrNotApproved = rpclient.ErrRecoveryNotApproved
	// ErrWrongDesktop: the server refused the desktop's token or its
	// key's signature: this is not the computer that started the handoff.
	ErrWrongDesktop = rpclient.ErrWrongDesktop
	// ErrClosed: the handoff was closed (Close) and its key forgotten.
	ErrClosed = errors.New("the recovery request was cancelled on this computer")
)

// Status is how a handoff ended, as Wait reports it.
type Status string

// The outcomes of Wait.
const (
	// Approved: the phone approved; Redeem now.
	Approved Status = "approved"
	// Refused: the phone stopped the handoff (see Outcome.Reason).
	Refused Status = "refused"
	// Expired: nobody approved within the handoff's lifetime.
	Expired Status = "expired"
)

// Refusal is why the server says a handoff was refused.
type Refusal string

// The refusals the server names (api.RecoveryStatus.Reason).
const (
	// RefusedWrongNumber: on the phone, another number than the one this
	// computer shows was picked.
	RefusedWrongNumber Refusal = api.RefusedWrongNumber
	// RefusedNotMe: on the phone, "This was not me" was tapped.
	RefusedNotMe Refusal = api.RefusedOnPhone
	// RefusedBadSignature: someone redeemed the approval with a key other
	// than this computer's: the handoff's token leaked.
	RefusedBadSignature Refusal = api.RefusedBadSignature
)

// Outcome is the end of a Wait.
type Outcome struct {
	Status Status
	// Refusal is why a refused handoff was refused, when the server said
	// (one that predates reasons does not).
	Refusal Refusal
	// Reason says, for the person at the desktop, why a handoff was
	// refused or expired, and what to do; "" when approved.
	Reason string
	// At is when the desktop learned it, on the local clock.
	At time.Time
}

// Err is nil for an approval, else ErrRefused or ErrExpired with the
// reason.
func (o Outcome) Err() error {
	switch o.Status {
	case Approved:
		return nil
	case Refused:
		return fmt.Errorf("recovery: %w: %s", ErrRefused, o.Reason)
	}
	return fmt.Errorf("recovery: %w: %s", ErrExpired, o.Reason)
}

// The reasons Wait gives.
const (
	reasonWrongNumber = "On the phone, a number other than the one this computer shows was picked, so the request was stopped. " +
		"Start again, and pick the number shown here. If you did not scan the code, someone else may have seen it."
	reasonNotMe        = "On the phone, \"This was not me\" was tapped, so the request was stopped. If that was a slip, start again."
	reasonBadSignature = "Someone tried to use this approval from another computer, so the request was stopped. " +
		"Start again, and do not share the QR code or the code under it."
	// reasonRefused is for a server that does not say why.
	reasonRefused = "The request was stopped on the phone: a number other than the one this computer showed was picked, " +
		"or \"This was not me\" was tapped. If that was not you, someone else may have seen your QR code: start again and check the number."
	reasonExpired = "Nobody approved the request on the phone in time. Start again."
)

// reasonFor is what Wait tells of refusal r.
func reasonFor(r Refusal) string {
	switch r {
	case RefusedWrongNumber:
		return reasonWrongNumber
	case RefusedNotMe:
		return reasonNotMe
	case RefusedBadSignature:
		return reasonBadSignature
	}
	return reasonRefused
}

// expiryGrace is how long past the handoff's deadline (on the local
// clock) Wait keeps listening for the server's word before concluding on
// its own that the handoff expired: clocks differ a little, and the
// server may be slow to tell. (A variable for the tests.)
var expiryGrace = 15 * time.Second

// pollWait is the wait of each status long poll when the events stream is
// unavailable: below MaxRecoveryWait and the usual proxy idle timeouts.
const pollWait = 25 * time.Second

// pollPause is the pause after a failed long poll before the next, and
// the least pause before opening an ended events stream again.
const pollPause = time.Second

// maxReopen is how many times in a row Wait opens again an events stream
// that the server ended early before it long-polls instead.
const maxReopen = 3

// Handoff is a started QR handoff on the desktop. Its URL (with the secret
// in the fragment) and TypedCode are for the screen only; its desktop
// token and ephemeral key never leave it but for the server, and the key
// is forgotten by Redeem and Close. Formatting a Handoff (fmt, log/slog)
// shows its session ID and nothing secret. It is safe for concurrent use,
// though one Wait at a time makes sense.
type Handoff struct {
	api      *rpclient.Client
	start    rpclient.RecoveryHandoff
	deadline time.Time // on the local clock

	mu sync.Mutex
	// key is the ephemeral key: nil once Redeem signed with it, and after
	// Close or a final refusal or expiry.
	key *ecdsa.PrivateKey
	// nonce is the approval's, once Wait or Redeem saw it; sig the
	// redeem's signature, kept so that a redeem whose answer never came
	// can be sent again as it was, without the key.
	nonce, sig []byte
	// status is the last status seen ("" before any).
	status string
	// ended is the error of a handoff that can no longer be redeemed;
	// refusal why the server refused it, if it said.
	ended   error
	refusal Refusal
}

// Start starts a QR handoff for username's account at the service client
// calls, naming this computer desktopName (its host name, say: the phone
// shows it, with this computer's address as the server sees it). A fresh
// ephemeral key is made for it. The service answers the same whether the
// account exists or not; errors are enroll/rpclient's (ErrRateLimited
// after too many starts for the account or from this address).
func Start(ctx context.Context, client *rpclient.Client, username, desktopName string) (*Handoff, error) {
	if client == nil {
		return nil, errors.New("recovery: start: no API client")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("recovery: start: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("recovery: start: %w", err)
	}
	started, err := client.StartRecovery(ctx, username, desktopName, spki)
	if err != nil {
		return nil, fmt.Errorf("recovery: start: %w", err)
	}
	h := &Handoff{api: client, start: *started, key: key}
	h.deadline = localDeadline(started, time.Now())
	return h, nil
}

// maxLifetime bounds the lifetime a handoff's answer may imply, against
// a broken Date header.
const maxLifetime = time.Hour

// localDeadline is the handoff's expiry on the local clock: the lifetime
// the server's answer implies (ExpiresAt against its Date), from now; the
// server's ExpiresAt as it is when the answer had no usable Date.
func localDeadline(s *rpclient.RecoveryHandoff, now time.Time) time.Time {
	if s.ServerTime.IsZero() {
		return s.ExpiresAt
	}
	life := s.ExpiresAt.Sub(s.ServerTime)
	if life <= 0 || life > maxLifetime {
		return s.ExpiresAt
	}
	return now.Add(life)
}

// SessionID names the handoff (not a secret: it is in the URL's path).
func (h *Handoff) SessionID() string { return h.start.SessionID }

// URL is the link the QR code holds, with the handoff's secret in its
// fragment: show it as the QR code, never log it or send it anywhere.
func (h *Handoff) URL() string { return h.start.URL }

// TypedCode is the fallback code the phone page asks for when the
// fragment was lost (XXXX-XXXX): show it under the QR code, never log it.
func (h *Handoff) TypedCode() string { return h.start.TypedCode }

// Number is the two-digit number to show in large type: the user picks
// it among three on the phone.
func (h *Handoff) Number() int { return h.start.Number }

// ExpiresAt is the handoff's expiry on the server's clock.
func (h *Handoff) ExpiresAt() time.Time { return h.start.ExpiresAt }

// Deadline is the handoff's expiry on this computer's clock, for the
// countdown: the lifetime the server gave, counted from its answer.
func (h *Handoff) Deadline() time.Time { return h.deadline }

// Remaining is the countdown at now: the time left until Deadline, never
// negative.
func (h *Handoff) Remaining(now time.Time) time.Duration { return max(h.deadline.Sub(now), 0) }

// String names the handoff without its secrets.
func (h *Handoff) String() string { return "recovery handoff " + h.start.SessionID }

// GoString is String, so that %#v shows no secret either.
func (h *Handoff) GoString() string { return h.String() }

// LogValue is what log/slog records of the handoff.
func (h *Handoff) LogValue() slog.Value { return h.start.LogValue() }

// Wait follows the handoff until the phone approves or refuses it or it
// expires, and says which: as soon as the server knows (its events
// stream pushes each change; when the stream cannot be opened or breaks,
// Wait long-polls the status instead, which answers on the change too).
// An approval's nonce is kept for Redeem. Wait also concludes Expired on
// its own a little after Deadline without word from the server. Its
// errors: ctx's, ErrWrongDesktop, ErrUsed (redeemed already), ErrClosed,
// and a failure to reach the server that persisted (enroll/rpclient's
// errors).
func (h *Handoff) Wait(ctx context.Context) (Outcome, error) {
	if o, done, err := h.current(); done {
		return o, err
	}
	local, cancel := context.WithDeadline(ctx, h.deadline.Add(expiryGrace))
	defer cancel()
	// expired reports the local conclusion when the local deadline, not
	// the caller's, ended the wait.
	expired := func(err error) (Outcome, error) {
		if ctx.Err() == nil && local.Err() != nil {
			o, _, err := h.conclude(api.RecoveryStatus{SessionID: h.start.SessionID, Status: "expired"})
			return o, err
		}
		return Outcome{}, fmt.Errorf("recovery: wait: %w", err)
	}

	// The events stream, while it works.
	for reopened := 0; ; reopened++ {
		events, err := h.api.RecoveryEvents(local, h.start.SessionID, h.start.DesktopToken)
		if err != nil {
			if final(err) {
				return Outcome{}, h.fail(err)
			}
			if local.Err() != nil {
				return expired(err)
			}
			break // long poll instead
		}
		o, done, err := h.follow(events)
		events.Close()
		if done {
			return o, err
		}
		if local.Err() != nil {
			return expired(err)
		}
		if !errors.Is(err, io.EOF) || reopened == maxReopen {
			break // long poll instead
		}
		// The server ended the stream before the end of the handoff
		// (its own deadline, a restart): open it again after the pause
		// it asked for.
		t := time.NewTimer(max(events.Retry(), pollPause))
		select {
		case <-local.Done():
			t.Stop()
			return expired(local.Err())
		case <-t.C:
		}
	}

	// The long poll, answered on the change too.
	for {
		st, err := h.api.RecoveryStatus(local, h.start.SessionID, h.start.DesktopToken, h.lastStatus(), pollWait)
		if err == nil {
			if o, done, err := h.observe(*st); done {
				return o, err
			}
			continue
		}
		switch {
		case final(err):
			return Outcome{}, h.fail(err)
		case local.Err() != nil:
			return expired(err)
		case errors.Is(err, rpclient.ErrBadResponse), errors.Is(err, rpclient.ErrCertificate):
			// Not the API's answer, nor the API's server: asking again
			// would not help. The handoff itself may be fine.
			return Outcome{}, fmt.Errorf("recovery: wait: %w", err)
		}
		t := time.NewTimer(pollPause)
		select {
		case <-local.Done():
			t.Stop()
			return expired(local.Err())
		case <-t.C:
		}
	}
}

// follow reads the stream until a final status, or the stream's end or
// failure (done false, with the stream's error).
func (h *Handoff) follow(events *rpclient.RecoveryEvents) (Outcome, bool, error) {
	for {
		st, err := events.Next()
		if err != nil {
			return Outcome{}, false, err
		}
		if o, done, err := h.observe(st); done {
			return o, true, err
		}
	}
}

// final reports whether err from the server ends the wait: a retry or the
// long poll would get the same answer.
func final(err error) bool {
	return errors.Is(err, ErrWrongDesktop) || errors.Is(err, rpclient.ErrNotFound) ||
		errors.Is(err, rpclient.ErrBadArgument) || errors.Is(err, rpclient.ErrUnauthorized) || errors.Is(err, rpclient.ErrForbidden)
}

// fail records err, which ends the handoff, and returns it wrapped.
func (h *Handoff) fail(err error) error {
	err = fmt.Errorf("recovery: %w", err)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended == nil {
		h.ended = err
	}
	h.forgetLocked()
	return err
}

// current is what the handoff already knows: an approval (not yet
// redeemed) or an end.
func (h *Handoff) current() (Outcome, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.ended != nil:
		return h.outcomeOfEndLocked()
	case h.nonce != nil:
		return Outcome{Status: Approved, At: time.Now()}, true, nil
	}
	return Outcome{}, false, nil
}

// outcomeOfEndLocked turns an end into Wait's answer: a refusal or expiry
// is an Outcome, anything else an error.
func (h *Handoff) outcomeOfEndLocked() (Outcome, bool, error) {
	switch {
	case errors.Is(h.ended, ErrRefused):
		return Outcome{Status: Refused, Refusal: h.refusal, Reason: reasonFor(h.refusal), At: time.Now()}, true, nil
	case errors.Is(h.ended, ErrExpired):
		return Outcome{Status: Expired, Reason: reasonExpired, At: time.Now()}, true, nil
	}
	return Outcome{}, true, h.ended
}

// observe takes in a status from the server; done is set for a final
// one.
func (h *Handoff) observe(st api.RecoveryStatus) (Outcome, bool, error) {
	switch st.Status {
	case "pending":
		h.mu.Lock()
		h.status = st.Status
		h.mu.Unlock()
		return Outcome{}, false, nil
	case "approved":
		nonce, err := base64.RawURLEncoding.DecodeString(st.Nonce)
		if err != nil || len(nonce) == 0 {
			return Outcome{}, true, h.fail(fmt.Errorf("%w: the approval's nonce is not base64url", rpclient.ErrBadResponse))
		}
		h.mu.Lock()
		h.status, h.nonce = st.Status, nonce
		h.mu.Unlock()
		return Outcome{Status: Approved, At: time.Now()}, true, nil
	}
	return h.conclude(st)
}

// conclude records a final status other than an approval.
func (h *Handoff) conclude(st api.RecoveryStatus) (Outcome, bool, error) {
	var end error
	switch st.Status {
	case "refused":
		end = ErrRefused
	case "expired":
		end = ErrExpired
	case "redeemed":
		end = ErrUsed
	default:
		end = fmt.Errorf("%w: unknown status", rpclient.ErrBadResponse)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status = st.Status
	if h.ended == nil {
		h.ended = fmt.Errorf("recovery: %w", end)
		if st.Status == "refused" {
			switch r := Refusal(st.Reason); r {
			case RefusedWrongNumber, RefusedNotMe, RefusedBadSignature:
				h.refusal = r
			}
		}
	}
	h.forgetLocked()
	return h.outcomeOfEndLocked()
}

// lastStatus is the last status seen, for a long poll's since.
func (h *Handoff) lastStatus() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.status == "" {
		return "pending"
	}
	return h.status
}

// Redeem trades the approval for a recovery session: it signs
// api.RecoveryRedeemMessage(session, nonce) with the ephemeral key, which
// it then forgets, and sends the signature once (enroll/rpclient never
// repeats a redeem that may have reached the server). It returns the
// session (without its token) and the token, which the API client also
// uses from then on; Recover takes it from there.
//
// Without an approval seen by Wait it asks the server once. Its errors:
// ErrNotApproved, ErrRefused, ErrExpired, ErrUsed (a second Redeem after a
// success, or a redeem whose answer was lost and whose retry found it
// used), ErrWrongDesktop, ErrClosed, or a failure to reach the server; in
// the last case the same signature may be sent again by calling Redeem
// again.
func (h *Handoff) Redeem(ctx context.Context) (*api.Session, string, error) {
	sig, err := h.signature(ctx)
	if err != nil {
		return nil, "", err
	}
	sess, token, err := h.api.RedeemRecovery(ctx, h.start.SessionID, h.start.DesktopToken, sig)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		h.status = "redeemed"
		h.ended = fmt.Errorf("recovery: redeem: %w", ErrUsed)
		h.forgetLocked()
		return sess, token, nil
	case errors.Is(err, rpclient.ErrNetwork) || errors.Is(err, rpclient.ErrServer) || errors.Is(err, context.Canceled):
		// The answer never came: the same signature may be sent again.
	default:
		if h.ended == nil {
			h.ended = fmt.Errorf("recovery: redeem: %w", err)
		}
		h.forgetLocked()
	}
	return nil, "", fmt.Errorf("recovery: redeem: %w", err)
}

// signature is the redeem's signature: made once with the key, which is
// then forgotten.
func (h *Handoff) signature(ctx context.Context) ([]byte, error) {
	h.mu.Lock()
	ask := h.ended == nil && h.sig == nil && h.nonce == nil
	h.mu.Unlock()
	if ask {
		st, err := h.api.RecoveryStatus(ctx, h.start.SessionID, h.start.DesktopToken, "", 0)
		if err != nil {
			if final(err) {
				return nil, h.fail(err)
			}
			return nil, fmt.Errorf("recovery: redeem: %w", err)
		}
		if _, _, err := h.observe(*st); err != nil {
			return nil, err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.ended != nil:
		return nil, h.ended
	case h.sig != nil:
		return h.sig, nil
	case h.nonce == nil:
		return nil, fmt.Errorf("recovery: redeem: %w", ErrNotApproved)
	case h.key == nil:
		return nil, fmt.Errorf("recovery: redeem: %w", ErrClosed)
	}
	digest := sha256.Sum256(api.RecoveryRedeemMessage(h.start.SessionID, h.nonce))
	sig, err := ecdsa.SignASN1(rand.Reader, h.key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("recovery: redeem: %w", err)
	}
	h.sig, h.key = sig, nil
	return sig, nil
}

// Close forgets the handoff's key and signature: nothing can redeem it
// from this computer any more. The server keeps the handoff until it
// expires (at most RecoveryTTL), useless without the key. Close is safe
// to call more than once, and after Redeem.
func (h *Handoff) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended == nil {
		h.ended = fmt.Errorf("recovery: %w", ErrClosed)
	}
	h.forgetLocked()
}

// forgetLocked drops the key and the signature. Go gives no way to erase
// an ecdsa.PrivateKey's memory; dropping the only reference leaves it to
// the garbage collector, and it was never written anywhere.
func (h *Handoff) forgetLocked() {
	h.key, h.sig = nil, nil
}
