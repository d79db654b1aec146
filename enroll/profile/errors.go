package profile

import (
	"errors"
	"fmt"
)

// The kinds of failure callers branch on with errors.Is. Every error this
// package returns for them is an *Error of that Kind, whose message names
// the profile and the specific problem.
var (
	// ErrInvalidName is a profile name that is empty, longer than
	// MaxNameLength or has characters other than letters, digits, '-',
	// '_' and '.'.
	ErrInvalidName = errors.New("invalid profile name")
	// ErrDuplicateName is a profile whose name is already taken by
	// another profile; names compare case-insensitively, because the
	// keyring and people both treat "Work" and "work" as one.
	ErrDuplicateName = errors.New("a profile with this name already exists")
	// ErrNoProfile is a name no profile of the set has.
	ErrNoProfile = errors.New("no such profile")
	// ErrInvalidOrigin is a profile origin that is not a secure web
	// origin (see webauthn.ParseOrigin); the webauthn error is wrapped.
	ErrInvalidOrigin = errors.New("invalid origin")
	// ErrInvalidRPID is an RP ID the profile's origin may not claim (see
	// webauthn.Origin.CheckRPID); the webauthn error is wrapped.
	ErrInvalidRPID = errors.New("invalid RP ID")
	// ErrInvalidAPIURL is an RP API address that is not an absolute
	// https URL (http only on this computer), or that holds a user name
	// or password.
	ErrInvalidAPIURL = errors.New("invalid RP API address")
	// ErrInvalidUsername is a remembered user name that is too long, not
	// UTF-8 or holds control characters.
	ErrInvalidUsername = errors.New("invalid user name")
	// ErrCorruptFile is a profiles file that cannot be read as one: not
	// JSON, written by a newer Keydesk, or holding profiles that do not
	// check out. Load refuses it and leaves it untouched, so nothing
	// overwrites what the user may want to repair.
	ErrCorruptFile = errors.New("the profiles file is damaged")
)

// Error is a refused profile or profiles file. Its message is meant for
// the person in front of the screen: the profile's name, then Detail.
type Error struct {
	// Profile is the name of the profile concerned, as given; "" when
	// the error is about the file as a whole.
	Profile string
	// Kind is one of the Err* sentinels of this package.
	Kind error
	// Detail says what exactly is wrong, in a sentence.
	Detail string
	// Err is the underlying cause, if any, such as a webauthn or JSON
	// error.
	Err error
}

// Error returns `profile "name": detail`, or the detail alone when the
// error concerns no single profile.
func (e *Error) Error() string {
	d := e.Detail
	if d == "" {
		d = e.Kind.Error()
	}
	if e.Profile == "" {
		return d
	}
	return fmt.Sprintf("profile %q: %s", printable(e.Profile), d)
}

// Is matches the error's kind, so errors.Is(err, ErrInvalidRPID) works.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause, so that errors.Is also finds the
// webauthn sentinels (webauthn.ErrRPIDMismatch, ...).
func (e *Error) Unwrap() error { return e.Err }

// printable shortens a user-supplied string for an error message and keeps
// control characters out of it.
func printable(s string) string {
	const maxLen = 80
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	b := []rune(s)
	for i, r := range b {
		if r < ' ' || r == 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}
