package libfido2

import (
	"context"
	"errors"

	"github.com/keydesk/keydesk/platform"
)

// CTAP statuses this package tells apart (libfido2 returns them as its
// own error codes, with the same numbers).
const (
	ctapNotAllowed     = 0x30 // CTAP2_ERR_NOT_ALLOWED
	ctapPINInvalid     = 0x31 // CTAP2_ERR_PIN_INVALID
	ctapPINBlocked     = 0x32 // CTAP2_ERR_PIN_BLOCKED
	ctapPINAuthBlocked = 0x34 // CTAP2_ERR_PIN_AUTH_BLOCKED
)

// SetPIN sets the key's first PIN, after checking it against the key's
// minimum length and the CTAP limits.
func (k *Key) SetPIN(ctx context.Context, pin string) error {
	const op = "set PIN"
	return k.session(ctx, op, func(d *device) error {
		ri, code := d.info()
		if code != 0 {
			return platform.FromCode(op, code)
		}
		if ri.options["clientPin"] {
			return alreadyHasPIN(op, 0)
		}
		if err := checkPIN(op, pin, ri.minPINLen); err != nil {
			return err
		}
		d.cancellable(ctx, func() { code = d.setPIN(pin, "") })
		if code == ctapNotAllowed { // a PIN was set meanwhile
			return alreadyHasPIN(op, code)
		}
		return pinCodeError(op, code, d)
	})
}

// ChangePIN changes the PIN. A wrong old PIN fails with ErrPINInvalid and
// the attempts left, read from the key after the failure.
func (k *Key) ChangePIN(ctx context.Context, oldPIN, newPIN string) error {
	const op = "change PIN"
	return k.session(ctx, op, func(d *device) error {
		ri, code := d.info()
		if code != 0 {
			return platform.FromCode(op, code)
		}
		if !ri.options["clientPin"] {
			return &platform.Error{Op: op, Kind: platform.ErrPINNotSet, RetriesLeft: -1}
		}
		if err := checkPIN(op, newPIN, ri.minPINLen); err != nil {
			return err
		}
		if ri.forcePINChange && oldPIN == newPIN {
			return &platform.Error{Op: op, Kind: platform.ErrPINPolicy, RetriesLeft: -1,
				Detail: "The key requires a new PIN: choose one different from the current PIN."}
		}
		if oldPIN == "" {
			return &platform.Error{Op: op, Kind: platform.ErrPINRequired, RetriesLeft: -1}
		}
		d.cancellable(ctx, func() { code = d.setPIN(newPIN, oldPIN) })
		return pinCodeError(op, code, d)
	})
}

// checkPIN is platform.CheckPIN with the error naming op.
func checkPIN(op, pin string, minLength int) error {
	err := platform.CheckPIN(pin, minLength)
	var e *platform.Error
	if errors.As(err, &e) {
		c := *e
		c.Op = op
		return &c
	}
	return err
}

func alreadyHasPIN(op string, code int) error {
	return &platform.Error{Op: op, Kind: platform.ErrNotAllowed, RetriesLeft: -1, Code: code,
		Detail: "The key already has a PIN; change it instead."}
}

// pinCodeError maps a libfido2 result of an operation that checked a PIN:
// after a wrong PIN (or the third wrong one in a row) it reads the
// attempts left from the key, on the same handle, so the message can say
// how many remain; a blocked PIN has none. It returns nil for FIDO_OK.
func pinCodeError(op string, code int, d *device) error {
	err := platform.FromCode(op, code)
	switch code {
	case ctapPINInvalid, ctapPINAuthBlocked:
		if n := d.retries(); n >= 0 {
			err = platform.WithRetries(err, n)
		}
	case ctapPINBlocked:
		err = platform.WithRetries(err, 0)
	}
	return err
}
