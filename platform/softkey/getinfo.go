package softkey

import "github.com/keydesk/keydesk/platform/softkey/identity"

// authenticatorGetInfoResponse is the response of authenticatorGetInfo (0x04).
//
// Specification: §6.4. authenticatorGetInfo (0x04) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorGetInfo)
type authenticatorGetInfoResponse struct {
	Versions                         []string             `cbor:"1,keyasint"`
	Extensions                       []string             `cbor:"2,keyasint,omitempty"`
	AAGUID                           []byte               `cbor:"3,keyasint"`
	Options                          map[string]bool      `cbor:"4,keyasint,omitempty"`
	MaxMsgSize                       uint                 `cbor:"5,keyasint,omitempty"`
	PinUvAuthProtocols               []uint               `cbor:"6,keyasint,omitempty"`
	MaxCredentialCountInList         uint                 `cbor:"7,keyasint,omitempty"`
	MaxCredentialIDLength            uint                 `cbor:"8,keyasint,omitempty"`
	Transports                       []string             `cbor:"9,keyasint,omitempty"`
	Algorithms                       []publicKeyCredParam `cbor:"10,keyasint,omitempty"`
	ForcePINChange                   bool                 `cbor:"12,keyasint"`
	MinPINLength                     uint                 `cbor:"13,keyasint"`
	FirmwareVersion                  uint32               `cbor:"14,keyasint,omitempty"`
	MaxRPIDsForSetMinPINLength       uint                 `cbor:"16,keyasint,omitempty"`
	PreferredPlatformUvAttempts      uint                 `cbor:"17,keyasint,omitempty"`
	UvModality                       uint                 `cbor:"18,keyasint,omitempty"`
	RemainingDiscoverableCredentials *uint                `cbor:"20,keyasint,omitempty"`
}

// publicKeyCredParam is a PublicKeyCredentialParameters entry.
//
// Specification: WebAuthn §5.3. Parameters for Credential Generation (https://www.w3.org/TR/webauthn-3/#dictionary-credential-params)
type publicKeyCredParam struct {
	Type string        `cbor:"type"`
	Alg  COSEAlgorithm `cbor:"alg"`
}

// uvModality values from the FIDO Registry of Predefined Values §3.1.
const (
	userVerifyFingerprintInternal = 0x02
	userVerifyPasscodeInternal    = 0x04
)

func (a *Authenticator) getInfo() *authenticatorGetInfoResponse {
	opts := map[string]bool{
		"rk":                    true,
		"up":                    true,
		"plat":                  false,
		"clientPin":             a.pinSet(),
		"pinUvAuthToken":        true,
		"credMgmt":              true,
		"credentialMgmtPreview": true,
		"authnrCfg":             true,
		"setMinPINLength":       true,
		"makeCredUvNotRqd":      !a.st.AlwaysUV, // §6.11.2: alwaysUv turns it off
		"alwaysUv":              a.st.AlwaysUV,
	}
	if !a.cfg.NoEnterpriseAttestation {
		opts["ep"] = a.st.EnterpriseAtt
	}
	modality := uint(userVerifyPasscodeInternal)
	if !a.cfg.NoBiometrics {
		opts["uv"] = a.uvConfigured()
		opts["bioEnroll"] = len(a.st.Fingerprints) > 0
		opts["userVerificationMgmtPreview"] = len(a.st.Fingerprints) > 0
		modality = userVerifyFingerprintInternal
	}
	algs := make([]publicKeyCredParam, len(supportedAlgorithms))
	for i, alg := range supportedAlgorithms {
		algs[i] = publicKeyCredParam{Type: coseKeyTypePublic, Alg: alg}
	}
	remaining := uint(max(a.cfg.MaxCredentials-len(a.st.Credentials), 0))
	return &authenticatorGetInfoResponse{
		Versions:                         append([]string(nil), identity.Versions...),
		Extensions:                       []string{"credProtect", "hmac-secret", "minPinLength"},
		AAGUID:                           a.cfg.AAGUID[:],
		Options:                          opts,
		MaxMsgSize:                       maxMsgSize,
		PinUvAuthProtocols:               []uint{2, 1},
		MaxCredentialCountInList:         maxCredentialsInList,
		MaxCredentialIDLength:            maxCredentialIDLength,
		Transports:                       []string{"usb"},
		Algorithms:                       algs,
		ForcePINChange:                   a.st.ForcePINChg,
		MinPINLength:                     uint(a.st.MinPINLength),
		FirmwareVersion:                  a.cfg.FirmwareVersion,
		MaxRPIDsForSetMinPINLength:       maxMinPINLengthRPIDs,
		PreferredPlatformUvAttempts:      1,
		UvModality:                       modality,
		RemainingDiscoverableCredentials: &remaining,
	}
}
