package libfido2

import (
	"context"
	"errors"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform"
)

// authDataHeaderLen is the shortest authenticator data: rpIdHash, flags
// and signCount (WebAuthn L3 §6.1).
const authDataHeaderLen = 32 + 1 + 4

// MakeCredential creates a credential (authenticatorMakeCredential, 0x01,
// through fido_dev_make_cred). libfido2 asks the key for one algorithm:
// the first of req.Algorithms that the key's getInfo lists, else the
// first libfido2 knows (a key that lists none, or none of these, then
// decides; CTAP2_ERR_UNSUPPORTED_ALGORITHM is ErrUnsupported). StageTouch
// is reported before the request; cancelling ctx sends CTAPHID_CANCEL.
func (k *Key) MakeCredential(ctx context.Context, req platform.MakeCredentialRequest) (*platform.Attestation, error) {
	const op = "create credential"
	ctx = deduplicated(ctx)
	if len(req.Algorithms) == 0 {
		return nil, unsupported(op)
	}
	if err := checkIDs(op, req.ExcludeList); err != nil {
		return nil, err
	}
	var att *platform.Attestation
	err := k.session(ctx, op, func(d *device) error {
		ri, code := d.getInfo(false)
		if code != cmCodeOK {
			return platform.FromCode(op, code)
		}
		if err := checkUV(op, ri, req.PIN, req.UserVerification); err != nil {
			return err
		}
		c, code := newCredential()
		if code != cmCodeOK {
			return platform.FromCode(op, code)
		}
		defer c.free()
		if !chooseAlgorithm(c, req.Algorithms, ri.algorithms) {
			return unsupported(op)
		}
		if code := c.set(&req); code != cmCodeOK {
			return platform.FromCode(op, code)
		}
		platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageTouch})
		d.cancellable(ctx, func() { code = c.make(d, req.PIN) })
		if code != cmCodeOK {
			return webAuthnError(ctx, op, code, d)
		}
		att = c.attestation()
		if att.Format == "" || len(att.AttStmt) == 0 || len(att.AuthData) < authDataHeaderLen || len(att.CredentialID) == 0 {
			return &platform.Error{Op: op, Kind: platform.ErrProtocol, RetriesLeft: -1, Err: errors.New("incomplete attestation")}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return att, nil
}

// GetAssertion signs (authenticatorGetAssertion, 0x02, through
// fido_dev_get_assert, which reads every further credential the key
// announces with authenticatorGetNextAssertion, 0x08). StageTouch is reported
// before the request; cancelling ctx sends CTAPHID_CANCEL.
func (k *Key) GetAssertion(ctx context.Context, req platform.GetAssertionRequest) ([]platform.Assertion, error) {
	const op = "sign in"
	ctx = deduplicated(ctx)
	if err := checkIDs(op, req.AllowList); err != nil {
		return nil, err
	}
	if err := platform.CheckSilent(op, req); err != nil {
		return nil, err
	}
	var out []platform.Assertion
	err := k.session(ctx, op, func(d *device) error {
		ri, code := d.getInfo(false)
		if code != cmCodeOK {
			return platform.FromCode(op, code)
		}
		if err := checkUV(op, ri, req.PIN, req.UserVerification); err != nil {
			return err
		}
		a, code := newAssertion()
		if code != cmCodeOK {
			return platform.FromCode(op, code)
		}
		defer a.free()
		if code := a.set(&req); code != cmCodeOK {
			return platform.FromCode(op, code)
		}
		if !req.Silent {
			platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageTouch})
		}
		d.cancellable(ctx, func() { code = a.get(d, req.PIN) })
		if code != cmCodeOK {
			return webAuthnError(ctx, op, code, d)
		}
		raws := a.results()
		if len(raws) == 0 {
			return &platform.Error{Op: op, Kind: platform.ErrProtocol, RetriesLeft: -1, Err: errors.New("no assertion")}
		}
		for _, r := range raws {
			as, err := assertionOf(op, r, req.AllowList)
			if err != nil {
				return err
			}
			out = append(out, as)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// chooseAlgorithm sets c's type to the first of requested that the key
// lists in getInfo (keyAlgs) and libfido2 knows; failing that, to the
// first libfido2 knows, for the key to accept or refuse. It reports
// false when libfido2 knows none of them.
func chooseAlgorithm(c *credential, requested, keyAlgs []int) bool {
	listed := make(map[int]bool, len(keyAlgs))
	for _, a := range keyAlgs {
		listed[a] = true
	}
	for _, a := range requested {
		if listed[a] && c.setType(a) == cmCodeOK {
			return true
		}
	}
	for _, a := range requested {
		if c.setType(a) == cmCodeOK {
			return true
		}
	}
	return false
}

// checkUV fails a request for UV without a PIN to a key without built-in
// UV before the key is asked (which would fail only after a touch), with
// what the user can do about it: give the PIN, or set one first.
func checkUV(op string, ri *rawInfo, pin string, uv bool) error {
	if !uv || pin != "" || ri.options["uv"] {
		return nil
	}
	if ri.options["clientPin"] {
		return &platform.Error{Op: op, Kind: platform.ErrPINRequired, RetriesLeft: -1}
	}
	return &platform.Error{Op: op, Kind: platform.ErrPINNotSet, RetriesLeft: -1}
}

// checkIDs refuses an empty credential ID in an allow or exclude list,
// which libfido2 cannot send (and a key could never have issued).
func checkIDs(op string, ids [][]byte) error {
	for _, id := range ids {
		if len(id) == 0 {
			return &platform.Error{Op: op, Kind: platform.ErrProtocol, RetriesLeft: -1, Err: errors.New("empty credential ID in the request")}
		}
	}
	return nil
}

// unsupported is a request the key, or libfido2, cannot serve.
func unsupported(op string) error {
	return &platform.Error{Op: op, Kind: platform.ErrUnsupported, RetriesLeft: -1}
}

// webAuthnError maps a failed makeCredential or getAssertion: a wrong PIN
// with the attempts left; an ended context as ErrCancelled, whatever the
// key answered to the CTAPHID_CANCEL.
func webAuthnError(ctx context.Context, op string, code int, d *device) error {
	if ctx.Err() != nil {
		return cmCancelled(ctx, op, code)
	}
	return pinCodeError(op, code, d)
}

// assertionOf turns what libfido2 read into an Assertion: the
// authenticator data comes out of its CBOR byte string. A key may leave
// out the credential when the allow list held just one (CTAP 2.1 §6.2.2
// step 12): it is that one.
func assertionOf(op string, r rawAssertion, allow [][]byte) (platform.Assertion, error) {
	a := platform.Assertion{CredentialID: r.id, Signature: r.sig, User: r.user}
	if len(a.CredentialID) == 0 && len(allow) == 1 {
		a.CredentialID = append([]byte(nil), allow[0]...)
	}
	if err := cbor.Unmarshal(r.authDataCBOR, &a.AuthData); err != nil {
		return a, &platform.Error{Op: op, Kind: platform.ErrProtocol, RetriesLeft: -1, Err: err}
	}
	if len(a.CredentialID) == 0 || len(a.AuthData) < authDataHeaderLen || len(a.Signature) == 0 {
		return a, &platform.Error{Op: op, Kind: platform.ErrProtocol, RetriesLeft: -1, Err: errors.New("incomplete assertion")}
	}
	return a, nil
}
