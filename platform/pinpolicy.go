package platform

import (
	"fmt"
	"unicode/utf8"
)

// Limits on PINs every CTAP 2.1 key enforces (§6.5.1): at least 4 Unicode
// code points (or the key's minimum), at most 63 bytes of UTF-8.
const (
	MinPINCodePoints = 4
	MaxPINBytes      = 63
)

// CheckPIN checks a new PIN against the key's policy before it is sent,
// so the user hears what is wrong instead of a bare policy violation.
// minLength is the key's minimum (Info.MinPINLength); 0 means 4.
func CheckPIN(pin string, minLength int) error {
	if minLength < MinPINCodePoints {
		minLength = MinPINCodePoints
	}
	if !utf8.ValidString(pin) {
		return &Error{Op: "check PIN", Kind: ErrPINPolicy, RetriesLeft: -1, Detail: "It contains bytes that are not text."}
	}
	if n := utf8.RuneCountInString(pin); n < minLength {
		return &Error{Op: "check PIN", Kind: ErrPINPolicy, RetriesLeft: -1, Detail: fmt.Sprintf("This key needs at least %d characters; the PIN has %d.", minLength, n)}
	}
	if len(pin) > MaxPINBytes {
		return &Error{Op: "check PIN", Kind: ErrPINPolicy, RetriesLeft: -1, Detail: fmt.Sprintf("A PIN can be at most %d bytes long; this one has %d.", MaxPINBytes, len(pin))}
	}
	return nil
}
