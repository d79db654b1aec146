package softkey

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Presence decides how the simulated user answers a request for user
// presence (a touch). Wait blocks until the user acts and returns nil for a
// touch, ErrOperationDenied for a refusal, ErrUserActionTimeout when nobody
// acts in time, or ctx's error when the request is cancelled.
type Presence interface {
	Wait(ctx context.Context) error
}

// presenceTimeout is how long a key waits for a touch before giving up,
// as hardware keys do (about 30 seconds).
const presenceTimeout = 30 * time.Second

// PresenceFunc adapts a function to Presence.
type PresenceFunc func(ctx context.Context) error

// Wait calls f.
func (f PresenceFunc) Wait(ctx context.Context) error { return f(ctx) }

// instantPresence is a policy that answers without waiting.
type instantPresence struct{ err error }

// Wait returns the fixed answer.
func (p instantPresence) Wait(context.Context) error { return p.err }

// ApproveAlways touches the key at once.
var ApproveAlways Presence = instantPresence{}

// DenyAlways refuses every request, as a user who presses "no" would.
var DenyAlways Presence = instantPresence{err: ErrOperationDenied}

// ApproveAfter touches the key after d, unless the request is cancelled first.
func ApproveAfter(d time.Duration) Presence {
	return PresenceFunc(func(ctx context.Context) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// Signal is a presence policy that waits for an explicit Touch or Deny, as
// a test driving the key step by step needs. A touch made while nothing is
// waiting is not remembered: a real key only counts a touch while it blinks.
type Signal struct {
	mu      sync.Mutex
	waiters []chan error
	waiting chan struct{} // closed and replaced whenever a waiter arrives
	timeout time.Duration
}

// NewSignal returns a Signal whose waits time out after timeout (30 s when zero).
func NewSignal(timeout time.Duration) *Signal {
	if timeout <= 0 {
		timeout = presenceTimeout
	}
	return &Signal{waiting: make(chan struct{}), timeout: timeout}
}

// Wait blocks until Touch, Deny, the timeout or ctx.
func (s *Signal) Wait(ctx context.Context) error {
	ch := make(chan error, 1)
	s.mu.Lock()
	s.waiters = append(s.waiters, ch)
	close(s.waiting)
	s.waiting = make(chan struct{})
	s.mu.Unlock()
	defer s.remove(ch)

	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-t.C:
		return ErrUserActionTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Signal) remove(ch chan error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range s.waiters {
		if w == ch {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			return
		}
	}
}

// Touch approves every pending wait and reports how many there were.
func (s *Signal) Touch() int { return s.answer(nil) }

// Deny refuses every pending wait and reports how many there were.
func (s *Signal) Deny() int { return s.answer(ErrOperationDenied) }

func (s *Signal) answer(err error) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.waiters)
	for _, w := range s.waiters {
		w <- err
	}
	s.waiters = nil
	return n
}

// Waiting returns a channel closed when the next wait begins, so a test can
// touch exactly when the key asks.
func (s *Signal) Waiting() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// ErrBadPresence is returned by ParsePresence for an unknown policy.
var ErrBadPresence = errors.New("presence policy must be auto, deny, delay=DURATION or signal")

// ParsePresence parses the --presence flag of cmd/softkey: "auto", "deny",
// "delay=DUR" or "signal". For "signal" the returned *Signal is non-nil.
func ParsePresence(s string) (Presence, *Signal, error) {
	switch {
	case s == "auto" || s == "":
		return ApproveAlways, nil, nil
	case s == "deny":
		return DenyAlways, nil, nil
	case s == "signal":
		sig := NewSignal(0)
		return sig, sig, nil
	case strings.HasPrefix(s, "delay="):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "delay="))
		if err != nil || d < 0 {
			return nil, nil, fmt.Errorf("%w: %q", ErrBadPresence, s)
		}
		return ApproveAfter(d), nil, nil
	}
	return nil, nil, fmt.Errorf("%w: %q", ErrBadPresence, s)
}
