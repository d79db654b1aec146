package platform

import (
	"errors"
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

// CheckMinPINLength checks a new minimum PIN length against the key's
// current one before it is sent: CTAP only lets the minimum grow, and no
// PIN can be longer than 63 bytes. length 0 means "keep the current one".
func CheckMinPINLength(op string, current, length int) error {
	current = max(current, MinPINCodePoints)
	switch {
	case length != 0 && length < current:
		return &Error{Op: op, Kind: ErrPINPolicy, RetriesLeft: -1,
			Detail: fmt.Sprintf("The minimum PIN length can only be raised; it is %d now.", current)}
	case length > MaxPINBytes:
		return &Error{Op: op, Kind: ErrPINPolicy, RetriesLeft: -1,
			Detail: fmt.Sprintf("The minimum PIN length can be at most %d.", MaxPINBytes)}
	}
	return nil
}

// TooManyRPIDs explains a key's KEY_STORE_FULL answer to a list of RP IDs
// allowed to read the minimum PIN length.
func TooManyRPIDs(err error, n int) error {
	var e *Error
	if errors.As(err, &e) && e.Kind == ErrKeyStoreFull {
		c := *e
		c.Detail = fmt.Sprintf("The key cannot keep %d RP IDs for the minimum PIN length.", n)
		return &c
	}
	return err
}
