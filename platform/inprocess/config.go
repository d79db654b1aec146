package inprocess

import (
	"bytes"
	"context"
	"errors"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// config sends one authenticatorConfig subcommand. A key protected by a
// PIN, built-in UV or alwaysUv needs an acfg token, whose pinUvAuthParam
// is authenticate(token, 32×0xff || 0x0d || subCommand || subCommandParams);
// an unprotected key takes the command as it is.
func (k *Key) config(ctx context.Context, op, pin string, sub byte, params any) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	info, err := k.info(ctx, op)
	if err != nil {
		return err
	}
	if !info.HasOption("authnrCfg") {
		return unsupported(op)
	}
	if sub == softkey.ConfigEnableEnterpriseAttestation && info.EnterpriseAttestation() == platform.EnterpriseAttestationUnsupported {
		return unsupported(op)
	}
	var tok *token
	if info.PINSet() || info.HasOption("uv") || info.HasOption("alwaysUv") {
		if tok, err = k.pinToken(ctx, op, info, pin, softkey.PermAuthenticatorCfg, ""); err != nil {
			return err
		}
		defer tok.close()
	}
	prefix := append(bytes.Repeat([]byte{0xff}, 32), byte(softkey.CmdConfig), sub)
	req, err := subcommandRequest(op, tok, map[int]any{1: sub}, prefix, 2, params)
	if err != nil {
		return err
	}
	return k.call(ctx, op, softkey.CmdConfig, req, nil)
}

// retitle names op in an error from a step of it.
func retitle(err error, op string) error {
	var e *platform.Error
	if errors.As(err, &e) {
		c := *e
		c.Op = op
		return &c
	}
	return err
}

// SetMinPINLength raises the minimum PIN length and names the RPs allowed
// to read it (minPinLength extension). length 0 keeps the minimum, to
// change only the RP IDs. A PIN shorter than the new minimum must then be
// changed before it is used again.
func (k *Key) SetMinPINLength(ctx context.Context, pin string, length int, rpIDs []string) error {
	const op = "set minimum PIN length"
	info, err := k.Info(ctx)
	if err != nil {
		return retitle(err, op)
	}
	if err := platform.CheckMinPINLength(op, info.MinPINLength, length); err != nil {
		return err
	}
	params := map[int]any{}
	if length > 0 {
		params[1] = length
	}
	if len(rpIDs) > 0 {
		params[2] = rpIDs
	}
	return platform.TooManyRPIDs(k.config(ctx, op, pin, softkey.ConfigSetMinPINLength, params), len(rpIDs))
}

// ForcePINChange makes the PIN unusable until it is changed
// (setMinPINLength with forceChangePin).
func (k *Key) ForcePINChange(ctx context.Context, pin string) error {
	return k.config(ctx, "force PIN change", pin, softkey.ConfigSetMinPINLength, map[int]any{3: true})
}

// ToggleAlwaysUV flips the alwaysUv setting.
func (k *Key) ToggleAlwaysUV(ctx context.Context, pin string) error {
	return k.config(ctx, "toggle always-UV", pin, softkey.ConfigToggleAlwaysUv, nil)
}

// EnableEnterpriseAttestation turns enterprise attestation on.
func (k *Key) EnableEnterpriseAttestation(ctx context.Context, pin string) error {
	return k.config(ctx, "enable enterprise attestation", pin, softkey.ConfigEnableEnterpriseAttestation, nil)
}
