package recovery

import "time"

// DesktopToken exposes the handoff's desktop token to the tests, which
// play a thief who stole it.
func (h *Handoff) DesktopToken() string { return h.start.DesktopToken }

// Secret exposes the handoff's QR secret to the tests, which look for it
// where it must never be.
func (h *Handoff) Secret() string { return h.start.Secret }

// SetExpiryGrace shortens the time Wait listens past the deadline, until
// the returned func restores it.
func SetExpiryGrace(d time.Duration) (restore func()) {
	old := expiryGrace
	expiryGrace = d
	return func() { expiryGrace = old }
}
