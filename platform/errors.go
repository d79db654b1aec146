package platform

import (
	"errors"
	"fmt"
)

// The kinds of failure callers branch on with errors.Is. Each error
// returned by an Authenticator wraps one of them in an *Error, which adds
// the operation, the retries left and the key's own status code.
var (
	ErrNoDevice           = errors.New("no security key found")
	ErrDeviceRemoved      = errors.New("lost contact with the security key")
	ErrDeviceBusy         = errors.New("the security key is busy")
	ErrNotFIDO2           = errors.New("the security key speaks only U2F, not FIDO2")
	ErrPermission         = errors.New("no permission to open the security key")
	ErrPINInvalid         = errors.New("wrong PIN")
	ErrPINBlocked         = errors.New("PIN blocked")
	ErrPINAuthBlocked     = errors.New("too many wrong PINs in a row")
	ErrPINNotSet          = errors.New("the security key has no PIN")
	ErrPINRequired        = errors.New("the security key's PIN is needed")
	ErrPINPolicy          = errors.New("the PIN does not meet the key's rules")
	ErrUVInvalid          = errors.New("fingerprint not recognised")
	ErrUVBlocked          = errors.New("fingerprint check blocked")
	ErrOperationDenied    = errors.New("refused on the security key")
	ErrTimeout            = errors.New("the security key was not touched in time")
	ErrCancelled          = errors.New("cancelled")
	ErrNoCredentials      = errors.New("no matching credential on the security key")
	ErrCredentialExcluded = errors.New("the security key is already registered here")
	ErrKeyStoreFull       = errors.New("the security key is full")
	ErrNotAllowed         = errors.New("the security key does not allow this now")
	ErrUnsupported        = errors.New("the security key does not support this")
	ErrProtocol           = errors.New("unexpected answer from the security key")
)

// Error is a failed key operation. Its message is written for the person
// in front of the key and says what to do next; Code and Err keep what a
// developer needs, for logs.
type Error struct {
	// Op names the operation, such as "set PIN".
	Op string
	// Kind is one of the Err* sentinels.
	Kind error
	// RetriesLeft is the PIN (or fingerprint) attempts left after a wrong
	// one, or -1 when unknown.
	RetriesLeft int
	// Code is the CTAP status (positive) or libfido2 error (negative)
	// behind the failure; 0 when there is none.
	Code int
	// Detail, when set, is a user-facing specific appended to the
	// message, such as the minimum PIN length that was not met.
	Detail string
	// Err is the underlying cause, if any.
	Err error
}

// Error returns the operation and the plain-language message.
func (e *Error) Error() string {
	if e.Op == "" {
		return e.Message()
	}
	return e.Op + ": " + e.Message()
}

// Is matches the error's kind, so errors.Is(err, ErrPINInvalid) works.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Message says what happened and what to do about it.
func (e *Error) Message() string {
	if e.Detail != "" {
		return e.message() + " " + e.Detail
	}
	return e.message()
}

func (e *Error) message() string {
	switch e.Kind {
	case ErrPINInvalid:
		switch {
		case e.RetriesLeft == 1:
			return "Wrong PIN. 1 attempt left before the PIN is blocked."
		case e.RetriesLeft > 1:
			return fmt.Sprintf("Wrong PIN. %d attempts left before the PIN is blocked.", e.RetriesLeft)
		}
		return "Wrong PIN."
	case ErrPINAuthBlocked:
		return "Too many wrong PINs in a row. Unplug the security key, plug it back in, and try again."
	case ErrPINBlocked:
		return "The PIN is blocked after too many wrong attempts. Only a reset, which erases everything on the key, makes it usable again."
	case ErrPINNotSet:
		return "The security key has no PIN yet. Set one first."
	case ErrPINRequired:
		return "This needs the security key's PIN."
	case ErrPINPolicy:
		return "The PIN does not meet the security key's rules (too short, too long, or the same as before)."
	case ErrUVInvalid:
		if e.RetriesLeft > 0 {
			return fmt.Sprintf("Fingerprint not recognised. %d attempts left.", e.RetriesLeft)
		}
		return "Fingerprint not recognised."
	case ErrUVBlocked:
		return "The fingerprint check is blocked after too many failures. Use the PIN instead."
	case ErrOperationDenied:
		return "The request was refused on the security key."
	case ErrTimeout:
		return "The security key was not touched in time. Try again, and touch the key when it blinks."
	case ErrCancelled:
		return "Cancelled."
	case ErrDeviceRemoved:
		return "Lost contact with the security key. Was it unplugged? Plug it in and try again."
	case ErrDeviceBusy:
		return "The security key is busy with another program. Close it, or wait, and try again."
	case ErrNoDevice:
		return "No security key found. Plug one in."
	case ErrPermission:
		return "The security key is there, but this account may not open it."
	case ErrNotFIDO2:
		return "This security key speaks only U2F (FIDO 1); this needs a FIDO2 key."
	case ErrNoCredentials:
		return "The security key holds no matching credential."
	case ErrCredentialExcluded:
		return "This security key is already registered here."
	case ErrKeyStoreFull:
		return "The security key has no room left. Delete something from it first."
	case ErrNotAllowed:
		return "The security key does not allow this right now."
	case ErrUnsupported:
		return "The security key does not support this."
	}
	return "Unexpected answer from the security key. Try again; if it keeps happening, unplug and re-plug the key."
}

// FromCode turns a CTAP status (positive, CTAP 2.1 §8.2) or a libfido2
// error (negative, fido/err.h) into an *Error for op. libfido2 returns
// CTAP statuses with their own numbers, so both implementations share
// this table. Code 0 is not an error and returns nil.
func FromCode(op string, code int) error {
	if code == 0 {
		return nil
	}
	kind, ok := codeKinds[code]
	if !ok {
		kind = ErrProtocol
	}
	return &Error{Op: op, Kind: kind, RetriesLeft: -1, Code: code, Err: codeError(code)}
}

// codeError keeps the raw code for logs and errors.As.
type codeError int

func (c codeError) Error() string {
	if c < 0 {
		return fmt.Sprintf("libfido2 error %d", int(c))
	}
	return fmt.Sprintf("CTAP status 0x%02x", int(c))
}

// codeKinds maps what keys and libfido2 answer to the kinds above.
var codeKinds = map[int]error{
	// libfido2 (fido/err.h)
	-1: ErrDeviceRemoved, // FIDO_ERR_TX
	-2: ErrDeviceRemoved, // FIDO_ERR_RX
	-8: ErrTimeout,       // FIDO_ERR_USER_PRESENCE_REQUIRED (a U2F key saw no touch)
	// CTAP 2.1 §8.2
	0x01: ErrUnsupported,        // CTAP1_ERR_INVALID_COMMAND
	0x06: ErrDeviceBusy,         // CTAP1_ERR_CHANNEL_BUSY
	0x17: ErrKeyStoreFull,       // CTAP2_ERR_FP_DATABASE_FULL
	0x19: ErrCredentialExcluded, // CTAP2_ERR_CREDENTIAL_EXCLUDED
	0x26: ErrUnsupported,        // CTAP2_ERR_UNSUPPORTED_ALGORITHM
	0x27: ErrOperationDenied,    // CTAP2_ERR_OPERATION_DENIED
	0x28: ErrKeyStoreFull,       // CTAP2_ERR_KEY_STORE_FULL
	0x2B: ErrUnsupported,        // CTAP2_ERR_UNSUPPORTED_OPTION
	0x2D: ErrCancelled,          // CTAP2_ERR_KEEPALIVE_CANCEL
	0x2E: ErrNoCredentials,      // CTAP2_ERR_NO_CREDENTIALS
	0x2F: ErrTimeout,            // CTAP2_ERR_USER_ACTION_TIMEOUT
	0x30: ErrNotAllowed,         // CTAP2_ERR_NOT_ALLOWED
	0x31: ErrPINInvalid,         // CTAP2_ERR_PIN_INVALID
	0x32: ErrPINBlocked,         // CTAP2_ERR_PIN_BLOCKED
	0x34: ErrPINAuthBlocked,     // CTAP2_ERR_PIN_AUTH_BLOCKED
	0x35: ErrPINNotSet,          // CTAP2_ERR_PIN_NOT_SET
	0x36: ErrPINRequired,        // CTAP2_ERR_PUAT_REQUIRED
	0x37: ErrPINPolicy,          // CTAP2_ERR_PIN_POLICY_VIOLATION
	0x3A: ErrTimeout,            // CTAP2_ERR_ACTION_TIMEOUT
	0x3C: ErrUVBlocked,          // CTAP2_ERR_UV_BLOCKED
	0x3F: ErrUVInvalid,          // CTAP2_ERR_UV_INVALID
}

// WithRetries returns err with the attempts left set, for a wrong PIN or
// fingerprint, so the message can say how many remain.
func WithRetries(err error, retries int) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.RetriesLeft = retries
		return &c
	}
	return err
}
