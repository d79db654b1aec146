package softkey

import (
	"bytes"
	"context"

	"github.com/fxamacker/cbor/v2"
)

// bioEnrollment constants of this key's simulated sensor (§6.7).
const (
	bioFingerprintKindTouch = 0x01
	bioSamplesPerEnrollment = 4
	bioMaxTemplates         = 5
	bioMaxFriendlyName      = 64
	bioSampleGood           = 0x00 // CTAP2_ENROLL_FEEDBACK_FP_GOOD
)

// authenticatorBioEnrollmentRequest holds the parameters of
// authenticatorBioEnrollment (0x09, and 0x40 in FIDO_2_1_PRE).
//
// Specification: §6.7. authenticatorBioEnrollment (0x09) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorBioEnrollment)
type authenticatorBioEnrollmentRequest struct {
	Modality          *uint64         `cbor:"1,keyasint"`
	SubCommand        *uint64         `cbor:"2,keyasint"`
	SubCommandParams  cbor.RawMessage `cbor:"3,keyasint"`
	PinUvAuthProtocol *uint64         `cbor:"4,keyasint"`
	PinUvAuthParam    *[]byte         `cbor:"5,keyasint"`
	GetModality       *bool           `cbor:"6,keyasint"`
}

// bioParams are the subCommandParams of biometric enrollment.
type bioParams struct {
	TemplateID           *[]byte `cbor:"1,keyasint"`
	TemplateFriendlyName *string `cbor:"2,keyasint"`
	TimeoutMilliseconds  *uint64 `cbor:"3,keyasint"`
}

// templateInfo describes one enrolled fingerprint.
type templateInfo struct {
	TemplateID           []byte `cbor:"1,keyasint"`
	TemplateFriendlyName string `cbor:"2,keyasint,omitempty"`
}

// authenticatorBioEnrollmentResponse is the response of biometric enrollment.
type authenticatorBioEnrollmentResponse struct {
	Modality                           uint            `cbor:"1,keyasint,omitempty"`
	FingerprintKind                    uint            `cbor:"2,keyasint,omitempty"`
	MaxCaptureSamplesRequiredForEnroll uint            `cbor:"3,keyasint,omitempty"`
	TemplateID                         []byte          `cbor:"4,keyasint,omitempty"`
	LastEnrollSampleStatus             *uint           `cbor:"5,keyasint,omitempty"`
	RemainingSamples                   *uint           `cbor:"6,keyasint,omitempty"`
	TemplateInfos                      *[]templateInfo `cbor:"7,keyasint,omitempty"`
	MaxTemplateFriendlyName            uint            `cbor:"8,keyasint,omitempty"`
}

// bioEnrollment is an enrollment in progress.
type bioEnrollment struct {
	templateID []byte
	remaining  int
}

func (a *Authenticator) bioEnrollment(ctx context.Context, params []byte, keepalive func(byte)) (any, error) {
	var req authenticatorBioEnrollmentRequest
	if err := decodeParams(params, &req); err != nil {
		return nil, err
	}
	if req.GetModality != nil && *req.GetModality {
		return &authenticatorBioEnrollmentResponse{Modality: BioModalityFingerprint}, nil
	}
	if req.SubCommand == nil || req.Modality == nil {
		return nil, ErrMissingParameter
	}
	if *req.Modality != BioModalityFingerprint {
		return nil, ErrInvalidParameter
	}
	sub := *req.SubCommand
	var sp bioParams
	if len(req.SubCommandParams) > 0 {
		if err := unmarshal(req.SubCommandParams, &sp); err != nil {
			return nil, err
		}
	}
	switch sub {
	case BioGetFingerprintSensorInfo:
		return &authenticatorBioEnrollmentResponse{
			FingerprintKind:                    bioFingerprintKindTouch,
			MaxCaptureSamplesRequiredForEnroll: bioSamplesPerEnrollment,
			MaxTemplateFriendlyName:            bioMaxFriendlyName,
		}, nil
	case BioCancelCurrentEnrollment:
		if a.bioEnroll == nil {
			return nil, ErrInvalidParameter
		}
		a.bioEnroll = nil
		return nil, nil
	case BioEnrollBegin, BioEnrollCaptureNextSample, BioEnumerateEnrollments, BioSetFriendlyName, BioRemoveEnrollment:
	default:
		return nil, ErrInvalidSubcommand
	}
	// Every other subcommand needs a token with the be permission over
	// modality || subCommand || subCommandParams.
	msg := append([]byte{BioModalityFingerprint, byte(sub)}, req.SubCommandParams...)
	if _, err := a.checkSubcommandToken(req.PinUvAuthProtocol, req.PinUvAuthParam, msg, PermBioEnrollment); err != nil {
		return nil, err
	}

	switch sub {
	case BioEnrollBegin:
		if len(a.st.Fingerprints) >= bioMaxTemplates {
			return nil, ErrFPDatabaseFull
		}
		a.bioEnroll = &bioEnrollment{templateID: randomBytes(8), remaining: bioSamplesPerEnrollment}
		return a.captureSample(ctx, keepalive, true)
	case BioEnrollCaptureNextSample:
		if sp.TemplateID == nil {
			return nil, ErrMissingParameter
		}
		if a.bioEnroll == nil || !bytes.Equal(*sp.TemplateID, a.bioEnroll.templateID) {
			return nil, ErrInvalidParameter
		}
		return a.captureSample(ctx, keepalive, false)
	case BioEnumerateEnrollments:
		if len(a.st.Fingerprints) == 0 {
			return nil, ErrInvalidOption
		}
		infos := make([]templateInfo, len(a.st.Fingerprints))
		for i, f := range a.st.Fingerprints {
			infos[i] = templateInfo{TemplateID: f.ID, TemplateFriendlyName: f.Name}
		}
		return &authenticatorBioEnrollmentResponse{TemplateInfos: &infos}, nil
	case BioSetFriendlyName, BioRemoveEnrollment:
		if sp.TemplateID == nil || (sub == BioSetFriendlyName && sp.TemplateFriendlyName == nil) {
			return nil, ErrMissingParameter
		}
		for i, f := range a.st.Fingerprints {
			if !bytes.Equal(f.ID, *sp.TemplateID) {
				continue
			}
			if sub == BioRemoveEnrollment {
				a.st.Fingerprints = append(a.st.Fingerprints[:i:i], a.st.Fingerprints[i+1:]...)
			} else {
				if len(*sp.TemplateFriendlyName) > bioMaxFriendlyName {
					return nil, ErrInvalidLength
				}
				f.Name = *sp.TemplateFriendlyName
			}
			a.dirty = true
			return nil, nil
		}
		return nil, ErrInvalidOption
	}
	return nil, ErrInvalidSubcommand
}

// captureSample simulates one touch of the sensor; the presence policy
// stands for the finger. The last good sample stores the template.
func (a *Authenticator) captureSample(ctx context.Context, keepalive func(byte), first bool) (any, error) {
	e := a.bioEnroll
	if err := a.userPresence(ctx, keepalive); err != nil {
		if err == ErrOperationDenied {
			err = ErrUserActionTimeout
		}
		if err == ErrKeepaliveCancel {
			a.bioEnroll = nil
		}
		return nil, err
	}
	e.remaining--
	status, remaining := uint(bioSampleGood), uint(e.remaining)
	resp := &authenticatorBioEnrollmentResponse{LastEnrollSampleStatus: &status, RemainingSamples: &remaining}
	if first {
		resp.TemplateID = e.templateID
	}
	if e.remaining == 0 {
		a.st.Fingerprints = append(a.st.Fingerprints, &fingerprint{ID: e.templateID})
		a.bioEnroll = nil
		a.dirty = true
	}
	return resp, nil
}
