package mds

import (
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// ErrNotAttested means a registration carried no attestation the
// metadata could vouch for; see [CheckAttested].
var ErrNotAttested = errors.New("credential has no attestation verified against metadata")

// CheckAttested refuses a credential that webauthn.CreateCredential
// accepted with an MDS provider but whose attestation never met the
// metadata's trust anchors. go-webauthn lets two such cases through by
// design: the "none" format, for which it skips the metadata entirely
// (a client may strip attestation, or a key may claim any AAGUID), and
// self attestation (basic_surrogate), which has no certificate to chain.
// A verified-attestation policy calls it after CreateCredential.
func CheckAttested(cred *webauthn.Credential) error {
	if cred.AttestationFormat != string(protocol.AttestationFormatNone) {
		switch metadata.AuthenticatorAttestationType(cred.AttestationType) {
		case metadata.BasicFull, metadata.AttCA, metadata.AnonCA:
			return nil
		}
	}
	return fmt.Errorf("%w: format %q, attestation type %q", ErrNotAttested, cred.AttestationFormat, cred.AttestationType)
}
