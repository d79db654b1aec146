package libfido2

import (
	"context"

	"github.com/keydesk/keydesk/platform"
)

// More CTAP statuses (see pin.go). A key also answers
// PIN_POLICY_VIOLATION for a PIN token while a PIN change is forced.
const ctapPINPolicy = 0x37 // CTAP2_ERR_PIN_POLICY_VIOLATION

// SetMinPINLength raises the minimum PIN length and, when rpIDs is not
// empty, replaces the list of RP IDs allowed to read it (minPinLength
// extension). length 0 keeps the current minimum. A minimum above the
// current PIN's length makes the key force a PIN change.
//
// libfido2 sends the two as separate setMinPINLength requests, each with
// its own PIN token: the RP IDs go first, since a raised minimum can force
// a PIN change, after which the key grants no token until the PIN is
// changed.
func (k *Key) SetMinPINLength(ctx context.Context, pin string, length int, rpIDs []string) error {
	const op = "set minimum PIN length"
	return k.configure(ctx, op, "setMinPINLength", func(d *device, ri *rawInfo) error {
		if err := platform.CheckMinPINLength(op, ri.minPINLen, length); err != nil {
			return err
		}
		if length == 0 {
			length = max(ri.minPINLen, platform.MinPINCodePoints)
		}
		var code int
		if len(rpIDs) > 0 {
			d.cancellable(ctx, func() { code = d.setPINMinLenRPIDs(rpIDs, pin) })
			if err := configCodeError(op, code, d, ri); err != nil {
				return platform.TooManyRPIDs(err, len(rpIDs))
			}
			if length == ri.minPINLen {
				return nil
			}
		}
		d.cancellable(ctx, func() { code = d.setPINMinLen(length, pin) })
		return configCodeError(op, code, d, ri)
	})
}

// ForcePINChange makes the key refuse its PIN until the PIN is changed.
func (k *Key) ForcePINChange(ctx context.Context, pin string) error {
	const op = "force PIN change"
	return k.configure(ctx, op, "setMinPINLength", func(d *device, ri *rawInfo) error {
		if !ri.options["clientPin"] {
			return &platform.Error{Op: op, Kind: platform.ErrPINNotSet, RetriesLeft: -1}
		}
		var code int
		d.cancellable(ctx, func() { code = d.forcePINChange(pin) })
		return configCodeError(op, code, d, ri)
	})
}

// ToggleAlwaysUV flips the alwaysUv setting.
func (k *Key) ToggleAlwaysUV(ctx context.Context, pin string) error {
	const op = "toggle always-UV"
	return k.configure(ctx, op, "alwaysUv", func(d *device, ri *rawInfo) error {
		var code int
		d.cancellable(ctx, func() { code = d.toggleAlwaysUV(pin) })
		return configCodeError(op, code, d, ri)
	})
}

// EnableEnterpriseAttestation turns enterprise attestation on.
func (k *Key) EnableEnterpriseAttestation(ctx context.Context, pin string) error {
	const op = "enable enterprise attestation"
	return k.configure(ctx, op, "ep", func(d *device, ri *rawInfo) error {
		var code int
		d.cancellable(ctx, func() { code = d.enableEntAttest(pin) })
		return configCodeError(op, code, d, ri)
	})
}

// configure runs an authenticatorConfig operation: it reads getInfo on
// the same handle and refuses keys without authenticatorConfig or without
// option (listed at all, true or false).
func (k *Key) configure(ctx context.Context, op, option string, f func(d *device, ri *rawInfo) error) error {
	return k.session(ctx, op, func(d *device) error {
		ri, code := d.info()
		if code != 0 {
			return platform.FromCode(op, code)
		}
		_, hasOption := ri.options[option]
		if !ri.options["authnrCfg"] || !hasOption {
			return &platform.Error{Op: op, Kind: platform.ErrUnsupported, RetriesLeft: -1}
		}
		return f(d, ri)
	})
}

// configCodeError is pinCodeError, and explains a policy violation that
// comes from a forced PIN change rather than from the request.
func configCodeError(op string, code int, d *device, ri *rawInfo) error {
	err := pinCodeError(op, code, d)
	if code == ctapPINPolicy && ri.forcePINChange {
		e := err.(*platform.Error)
		e.Detail = "The key requires a new PIN first: change the PIN, then try again."
	}
	return err
}
