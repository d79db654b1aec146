package inprocess

import (
	"context"
	"errors"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// bioResponse is the response of authenticatorBioEnrollment.
//
// Specification: CTAP 2.1 §6.7. authenticatorBioEnrollment (0x09) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorBioEnrollment)
type bioResponse struct {
	TemplateID             []byte         `cbor:"4,keyasint"`
	LastEnrollSampleStatus *uint64        `cbor:"5,keyasint"`
	RemainingSamples       *uint64        `cbor:"6,keyasint"`
	TemplateInfos          []templateInfo `cbor:"7,keyasint"`
}

// templateInfo describes one enrolled fingerprint.
//
// Specification: CTAP 2.1 §6.7.5. Enumerating enrollments (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#enumerateEnrollments)
type templateInfo struct {
	TemplateID           []byte `cbor:"1,keyasint"`
	TemplateFriendlyName string `cbor:"2,keyasint"`
}

// bio sends one fingerprint subcommand. With a token its pinUvAuthParam
// is authenticate(token, modality || subCommand || subCommandParams).
// touch reports StageTouch first, for the subcommands that take a sample.
func (k *Key) bio(ctx context.Context, op string, tok *token, sub byte, params any, out *bioResponse, touch bool) error {
	req, err := subcommandRequest(op, tok, map[int]any{1: softkey.BioModalityFingerprint, 2: sub},
		[]byte{softkey.BioModalityFingerprint, sub}, 3, params)
	if err != nil {
		return err
	}
	var o any
	if out != nil {
		o = out
	}
	return k.send(ctx, op, softkey.CmdBioEnrollment, req, o, touch)
}

// beToken reads the key's information and gets a token with the be
// permission, for operation op.
func (k *Key) beToken(ctx context.Context, op, pin string) (*token, error) {
	info, err := k.info(ctx, op)
	if err != nil {
		return nil, err
	}
	if _, ok := info.Options["bioEnroll"]; !ok {
		return nil, unsupported(op)
	}
	return k.pinToken(ctx, op, info, pin, softkey.PermBioEnrollment, "")
}

// Fingerprints lists the enrolled fingerprints; a key with none gives an
// empty slice (the key answers INVALID_OPTION to the enumeration).
func (k *Key) Fingerprints(ctx context.Context, pin string) ([]platform.Fingerprint, error) {
	const op = "list fingerprints"
	k.mu.Lock()
	defer k.mu.Unlock()
	tok, err := k.beToken(ctx, op, pin)
	if err != nil {
		return nil, err
	}
	defer tok.close()
	var r bioResponse
	err = k.bio(ctx, op, tok, softkey.BioEnumerateEnrollments, nil, &r, false)
	var e *platform.Error
	if errors.As(err, &e) && e.Code == int(softkey.ErrInvalidOption) {
		return []platform.Fingerprint{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]platform.Fingerprint, 0, len(r.TemplateInfos))
	for _, t := range r.TemplateInfos {
		out = append(out, platform.Fingerprint{ID: t.TemplateID, Name: t.TemplateFriendlyName})
	}
	return out, nil
}

// EnrollFingerprint enrolls a fingerprint sample by sample, reporting
// StageTouch before each and StageSample with the samples remaining
// after, then names it. A failed or cancelled enrollment is abandoned on
// the key so that the next one can start.
func (k *Key) EnrollFingerprint(ctx context.Context, pin, name string) (platform.Fingerprint, error) {
	const op = "enroll fingerprint"
	k.mu.Lock()
	defer k.mu.Unlock()
	tok, err := k.beToken(ctx, op, pin)
	if err != nil {
		return platform.Fingerprint{}, err
	}
	defer tok.close()
	var r bioResponse
	if err := k.bio(ctx, op, tok, softkey.BioEnrollBegin, nil, &r, true); err != nil {
		k.abandonEnrollment(ctx)
		return platform.Fingerprint{}, err
	}
	id := r.TemplateID
	if len(id) == 0 {
		return platform.Fingerprint{}, protocolError(op, errors.New("enrollBegin without a template ID"))
	}
	for {
		if r.RemainingSamples == nil {
			k.abandonEnrollment(ctx)
			return platform.Fingerprint{}, protocolError(op, errors.New("sample without remaining count"))
		}
		remaining := int(*r.RemainingSamples)
		platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageSample, Remaining: remaining})
		if remaining == 0 {
			break
		}
		r = bioResponse{}
		if err := k.bio(ctx, op, tok, softkey.BioEnrollCaptureNextSample, map[int]any{1: id}, &r, true); err != nil {
			k.abandonEnrollment(ctx)
			return platform.Fingerprint{}, err
		}
	}
	if name != "" {
		if err := k.bio(ctx, op, tok, softkey.BioSetFriendlyName, map[int]any{1: id, 2: name}, nil, false); err != nil {
			return platform.Fingerprint{ID: id}, err
		}
	}
	return platform.Fingerprint{ID: id, Name: name}, nil
}

// abandonEnrollment cancels an enrollment in progress; the key may have
// dropped it already, so the answer does not matter.
func (k *Key) abandonEnrollment(ctx context.Context) {
	_ = k.bio(context.WithoutCancel(ctx), "enroll fingerprint", nil, softkey.BioCancelCurrentEnrollment, nil, nil, false)
}

// bioUnknown turns the INVALID_OPTION with which the key answers an
// unknown template ID (CTAP 2.1 §6.7.7, §6.7.8) into ErrNoCredentials,
// the nearest kind, as the libfido2 implementation does.
func bioUnknown(err error) error {
	var e *platform.Error
	if errors.As(err, &e) && e.Code == int(softkey.ErrInvalidOption) {
		c := *e
		c.Kind = platform.ErrNoCredentials
		c.Detail = "No enrolled fingerprint has that ID."
		return &c
	}
	return err
}

// RenameFingerprint sets a fingerprint's friendly name.
func (k *Key) RenameFingerprint(ctx context.Context, pin string, id []byte, name string) error {
	const op = "rename fingerprint"
	k.mu.Lock()
	defer k.mu.Unlock()
	tok, err := k.beToken(ctx, op, pin)
	if err != nil {
		return err
	}
	defer tok.close()
	return bioUnknown(k.bio(ctx, op, tok, softkey.BioSetFriendlyName, map[int]any{1: id, 2: name}, nil, false))
}

// DeleteFingerprint removes a fingerprint.
func (k *Key) DeleteFingerprint(ctx context.Context, pin string, id []byte) error {
	const op = "delete fingerprint"
	k.mu.Lock()
	defer k.mu.Unlock()
	tok, err := k.beToken(ctx, op, pin)
	if err != nil {
		return err
	}
	defer tok.close()
	return bioUnknown(k.bio(ctx, op, tok, softkey.BioRemoveEnrollment, map[int]any{1: id}, nil, false))
}
