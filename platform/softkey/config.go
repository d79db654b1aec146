package softkey

import (
	"bytes"

	"github.com/fxamacker/cbor/v2"
)

// maxMinPINLength is the largest minimum PIN length setMinPINLength takes (§6.11.4).
const maxMinPINLength = 63

// authenticatorConfigRequest holds the parameters of authenticatorConfig (0x0D).
//
// Specification: §6.11. authenticatorConfig (0x0D) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorConfig)
type authenticatorConfigRequest struct {
	SubCommand        *uint64         `cbor:"1,keyasint"`
	SubCommandParams  cbor.RawMessage `cbor:"2,keyasint"`
	PinUvAuthProtocol *uint64         `cbor:"3,keyasint"`
	PinUvAuthParam    *[]byte         `cbor:"4,keyasint"`
}

// setMinPINLengthParams are the subCommandParams of setMinPINLength.
type setMinPINLengthParams struct {
	NewMinPINLength   *uint64  `cbor:"1,keyasint"`
	MinPinLengthRPIDs []string `cbor:"2,keyasint"`
	ForceChangePin    *bool    `cbor:"3,keyasint"`
}

func (a *Authenticator) config(params []byte) error {
	var req authenticatorConfigRequest
	if err := decodeParams(params, &req); err != nil {
		return err
	}
	if req.SubCommand == nil {
		return ErrMissingParameter
	}
	sub := *req.SubCommand
	// Step 3. A key protected by a PIN or fingerprint, or with alwaysUv,
	// only changes its configuration for an acfg token.
	if a.pinSet() || a.uvConfigured() || a.st.AlwaysUV {
		msg := append(bytes.Repeat([]byte{0xff}, 32), byte(CmdConfig), byte(sub))
		msg = append(msg, req.SubCommandParams...)
		if _, err := a.checkSubcommandToken(req.PinUvAuthProtocol, req.PinUvAuthParam, msg, PermAuthenticatorCfg); err != nil {
			return err
		}
	}
	switch sub {
	case ConfigEnableEnterpriseAttestation:
		if a.cfg.NoEnterpriseAttestation {
			return ErrInvalidParameter
		}
		a.st.EnterpriseAtt = true
	case ConfigToggleAlwaysUv:
		a.st.AlwaysUV = !a.st.AlwaysUV
	case ConfigSetMinPINLength:
		var sp setMinPINLengthParams
		if len(req.SubCommandParams) > 0 {
			if err := unmarshal(req.SubCommandParams, &sp); err != nil {
				return err
			}
		}
		return a.setMinPINLength(&sp)
	default: // including vendorPrototype: this key has no vendor commands

		return ErrInvalidSubcommand
	}
	a.dirty = true
	return nil
}

// setMinPINLength follows §6.11.4: the minimum only grows, and a PIN
// shorter than the new minimum must be changed before its next use.
func (a *Authenticator) setMinPINLength(sp *setMinPINLengthParams) error {
	newMin := a.st.MinPINLength
	if sp.NewMinPINLength != nil {
		if *sp.NewMinPINLength > maxMinPINLength {
			return ErrPINPolicyViolation
		}
		newMin = int(*sp.NewMinPINLength)
	}
	if newMin < a.st.MinPINLength {
		return ErrPINPolicyViolation
	}
	if len(sp.MinPinLengthRPIDs) > maxMinPINLengthRPIDs {
		return ErrKeyStoreFull
	}
	force := sp.ForceChangePin != nil && *sp.ForceChangePin
	if force && !a.pinSet() {
		return ErrPINNotSet
	}
	a.st.MinPINLength = newMin
	if sp.MinPinLengthRPIDs != nil {
		a.st.MinPINRPIDs = append([]string(nil), sp.MinPinLengthRPIDs...)
	}
	if force || (a.pinSet() && a.st.PIN.CodePoints < newMin) {
		a.st.ForcePINChg = true
	}
	a.dirty = true
	return nil
}
