// Package softkey is a pure-Go FIDO2 authenticator that speaks CTAP 2.1.
//
// It exists so that Keydesk can be built and tested without hardware: the
// authenticator is served over CTAPHID (package ctaphid) and reached through
// the real libfido2, which must not be able to tell it from a physical key.
package softkey

import "fmt"

// Command is a CTAP2 authenticator command byte, the first byte of a
// CTAPHID_CBOR message.
//
// Specification: §6. Authenticator API (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticator-api)
type Command byte

// The authenticator commands this key implements. The preview numbers are
// what libfido2 1.12 still sends for credential management and biometric
// enrollment, so real keys answer both.
const (
	CmdMakeCredential        Command = 0x01 // authenticatorMakeCredential
	CmdGetAssertion          Command = 0x02 // authenticatorGetAssertion
	CmdGetInfo               Command = 0x04 // authenticatorGetInfo
	CmdClientPIN             Command = 0x06 // authenticatorClientPIN
	CmdReset                 Command = 0x07 // authenticatorReset
	CmdGetNextAssertion      Command = 0x08 // authenticatorGetNextAssertion
	CmdBioEnrollment         Command = 0x09 // authenticatorBioEnrollment
	CmdCredentialManagement  Command = 0x0A // authenticatorCredentialManagement
	CmdSelection             Command = 0x0B // authenticatorSelection
	CmdConfig                Command = 0x0D // authenticatorConfig
	CmdBioEnrollmentPreview  Command = 0x40 // authenticatorBioEnrollment (FIDO_2_1_PRE)
	CmdCredentialMgmtPreview Command = 0x41 // authenticatorCredentialManagement (FIDO_2_1_PRE)
)

// The subCommand numbers of the commands that have them, and the
// permissions of a pinUvAuthToken: in one place for the key, which
// answers them, and its clients, which send them.
const (
	// authenticatorClientPIN (0x06), §6.5.5.
	ClientPINGetPINRetries                      = 0x01 // getPINRetries
	ClientPINGetKeyAgreement                    = 0x02 // getKeyAgreement
	ClientPINSetPIN                             = 0x03 // setPIN
	ClientPINChangePIN                          = 0x04 // changePIN
	ClientPINGetPinToken                        = 0x05 // getPinToken
	ClientPINGetPinUvAuthTokenUsingUvWithPerms  = 0x06 // getPinUvAuthTokenUsingUvWithPermissions
	ClientPINGetUVRetries                       = 0x07 // getUVRetries
	ClientPINGetPinUvAuthTokenUsingPinWithPerms = 0x09 // getPinUvAuthTokenUsingPinWithPermissions

	// authenticatorBioEnrollment (0x09), §6.7.
	BioEnrollBegin              = 0x01 // enrollBegin
	BioEnrollCaptureNextSample  = 0x02 // enrollCaptureNextSample
	BioCancelCurrentEnrollment  = 0x03 // cancelCurrentEnrollment
	BioEnumerateEnrollments     = 0x04 // enumerateEnrollments
	BioSetFriendlyName          = 0x05 // setFriendlyName
	BioRemoveEnrollment         = 0x06 // removeEnrollment
	BioGetFingerprintSensorInfo = 0x07 // getFingerprintSensorInfo
	BioModalityFingerprint      = 0x01 // modality: fingerprint

	// authenticatorCredentialManagement (0x0A), §6.8.
	CredMgmtGetCredsMetadata                      = 0x01 // getCredsMetadata
	CredMgmtEnumerateRPsBegin                     = 0x02 // enumerateRPsBegin
	CredMgmtEnumerateRPsGetNextRP                 = 0x03 // enumerateRPsGetNextRP
	CredMgmtEnumerateCredentialsBegin             = 0x04 // enumerateCredentialsBegin
	CredMgmtEnumerateCredentialsGetNextCredential = 0x05 // enumerateCredentialsGetNextCredential
	CredMgmtDeleteCredential                      = 0x06 // deleteCredential
	CredMgmtUpdateUserInformation                 = 0x07 // updateUserInformation

	// authenticatorConfig (0x0D), §6.11.
	ConfigEnableEnterpriseAttestation = 0x01 // enableEnterpriseAttestation
	ConfigToggleAlwaysUv              = 0x02 // toggleAlwaysUv
	ConfigSetMinPINLength             = 0x03 // setMinPINLength

	// pinUvAuthToken permissions, §6.5.5.7.
	PermMakeCredential   byte = 0x01 // mc
	PermGetAssertion     byte = 0x02 // ga
	PermCredentialMgmt   byte = 0x04 // cm
	PermBioEnrollment    byte = 0x08 // be
	PermLargeBlobWrite   byte = 0x10 // lbw
	PermAuthenticatorCfg byte = 0x20 // acfg
)

// Status is a CTAP status code, the first byte of every CTAP2 response. The
// non-zero values are also Go errors so that command handlers can return
// them directly.
//
// Specification: §8.2. Status codes (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#error-responses)
type Status byte

// CTAP status codes, named as in the specification.
const (
	StatusOK                  Status = 0x00 // CTAP1_ERR_SUCCESS
	ErrInvalidCommand         Status = 0x01 // CTAP1_ERR_INVALID_COMMAND
	ErrInvalidParameter       Status = 0x02 // CTAP1_ERR_INVALID_PARAMETER
	ErrInvalidLength          Status = 0x03 // CTAP1_ERR_INVALID_LENGTH
	ErrCBORUnexpectedType     Status = 0x11 // CTAP2_ERR_CBOR_UNEXPECTED_TYPE
	ErrInvalidCBOR            Status = 0x12 // CTAP2_ERR_INVALID_CBOR
	ErrMissingParameter       Status = 0x14 // CTAP2_ERR_MISSING_PARAMETER
	ErrLimitExceeded          Status = 0x15 // CTAP2_ERR_LIMIT_EXCEEDED
	ErrFPDatabaseFull         Status = 0x17 // CTAP2_ERR_FP_DATABASE_FULL
	ErrCredentialExcluded     Status = 0x19 // CTAP2_ERR_CREDENTIAL_EXCLUDED
	ErrProcessing             Status = 0x21 // CTAP2_ERR_PROCESSING
	ErrInvalidCredential      Status = 0x22 // CTAP2_ERR_INVALID_CREDENTIAL
	ErrUnsupportedAlgorithm   Status = 0x26 // CTAP2_ERR_UNSUPPORTED_ALGORITHM
	ErrOperationDenied        Status = 0x27 // CTAP2_ERR_OPERATION_DENIED
	ErrKeyStoreFull           Status = 0x28 // CTAP2_ERR_KEY_STORE_FULL
	ErrUnsupportedOption      Status = 0x2B // CTAP2_ERR_UNSUPPORTED_OPTION
	ErrInvalidOption          Status = 0x2C // CTAP2_ERR_INVALID_OPTION
	ErrKeepaliveCancel        Status = 0x2D // CTAP2_ERR_KEEPALIVE_CANCEL
	ErrNoCredentials          Status = 0x2E // CTAP2_ERR_NO_CREDENTIALS
	ErrUserActionTimeout      Status = 0x2F // CTAP2_ERR_USER_ACTION_TIMEOUT
	ErrNotAllowed             Status = 0x30 // CTAP2_ERR_NOT_ALLOWED
	ErrPINInvalid             Status = 0x31 // CTAP2_ERR_PIN_INVALID
	ErrPINBlocked             Status = 0x32 // CTAP2_ERR_PIN_BLOCKED
	ErrPINAuthInvalid         Status = 0x33 // CTAP2_ERR_PIN_AUTH_INVALID
	ErrPINAuthBlocked         Status = 0x34 // CTAP2_ERR_PIN_AUTH_BLOCKED
	ErrPINNotSet              Status = 0x35 // CTAP2_ERR_PIN_NOT_SET
	ErrPUATRequired           Status = 0x36 // CTAP2_ERR_PUAT_REQUIRED
	ErrPINPolicyViolation     Status = 0x37 // CTAP2_ERR_PIN_POLICY_VIOLATION
	ErrRequestTooLarge        Status = 0x39 // CTAP2_ERR_REQUEST_TOO_LARGE
	ErrActionTimeout          Status = 0x3A // CTAP2_ERR_ACTION_TIMEOUT
	ErrUPRequired             Status = 0x3B // CTAP2_ERR_UP_REQUIRED
	ErrUVBlocked              Status = 0x3C // CTAP2_ERR_UV_BLOCKED
	ErrIntegrityFailure       Status = 0x3D // CTAP2_ERR_INTEGRITY_FAILURE
	ErrInvalidSubcommand      Status = 0x3E // CTAP2_ERR_INVALID_SUBCOMMAND
	ErrUVInvalid              Status = 0x3F // CTAP2_ERR_UV_INVALID
	ErrUnauthorizedPermission Status = 0x40 // CTAP2_ERR_UNAUTHORIZED_PERMISSION
	ErrOther                  Status = 0x7F // CTAP1_ERR_OTHER
)

var statusNames = map[Status]string{
	StatusOK:                  "CTAP1_ERR_SUCCESS",
	ErrInvalidCommand:         "CTAP1_ERR_INVALID_COMMAND",
	ErrInvalidParameter:       "CTAP1_ERR_INVALID_PARAMETER",
	ErrInvalidLength:          "CTAP1_ERR_INVALID_LENGTH",
	ErrCBORUnexpectedType:     "CTAP2_ERR_CBOR_UNEXPECTED_TYPE",
	ErrInvalidCBOR:            "CTAP2_ERR_INVALID_CBOR",
	ErrMissingParameter:       "CTAP2_ERR_MISSING_PARAMETER",
	ErrLimitExceeded:          "CTAP2_ERR_LIMIT_EXCEEDED",
	ErrFPDatabaseFull:         "CTAP2_ERR_FP_DATABASE_FULL",
	ErrCredentialExcluded:     "CTAP2_ERR_CREDENTIAL_EXCLUDED",
	ErrProcessing:             "CTAP2_ERR_PROCESSING",
	ErrInvalidCredential:      "CTAP2_ERR_INVALID_CREDENTIAL",
	ErrUnsupportedAlgorithm:   "CTAP2_ERR_UNSUPPORTED_ALGORITHM",
	ErrOperationDenied:        "CTAP2_ERR_OPERATION_DENIED",
	ErrKeyStoreFull:           "CTAP2_ERR_KEY_STORE_FULL",
	ErrUnsupportedOption:      "CTAP2_ERR_UNSUPPORTED_OPTION",
	ErrInvalidOption:          "CTAP2_ERR_INVALID_OPTION",
	ErrKeepaliveCancel:        "CTAP2_ERR_KEEPALIVE_CANCEL",
	ErrNoCredentials:          "CTAP2_ERR_NO_CREDENTIALS",
	ErrUserActionTimeout:      "CTAP2_ERR_USER_ACTION_TIMEOUT",
	ErrNotAllowed:             "CTAP2_ERR_NOT_ALLOWED",
	ErrPINInvalid:             "CTAP2_ERR_PIN_INVALID",
	ErrPINBlocked:             "CTAP2_ERR_PIN_BLOCKED",
	ErrPINAuthInvalid:         "CTAP2_ERR_PIN_AUTH_INVALID",
	ErrPINAuthBlocked:         "CTAP2_ERR_PIN_AUTH_BLOCKED",
	ErrPINNotSet:              "CTAP2_ERR_PIN_NOT_SET",
	ErrPUATRequired:           "CTAP2_ERR_PUAT_REQUIRED",
	ErrPINPolicyViolation:     "CTAP2_ERR_PIN_POLICY_VIOLATION",
	ErrRequestTooLarge:        "CTAP2_ERR_REQUEST_TOO_LARGE",
	ErrActionTimeout:          "CTAP2_ERR_ACTION_TIMEOUT",
	ErrUPRequired:             "CTAP2_ERR_UP_REQUIRED",
	ErrUVBlocked:              "CTAP2_ERR_UV_BLOCKED",
	ErrIntegrityFailure:       "CTAP2_ERR_INTEGRITY_FAILURE",
	ErrInvalidSubcommand:      "CTAP2_ERR_INVALID_SUBCOMMAND",
	ErrUVInvalid:              "CTAP2_ERR_UV_INVALID",
	ErrUnauthorizedPermission: "CTAP2_ERR_UNAUTHORIZED_PERMISSION",
	ErrOther:                  "CTAP1_ERR_OTHER",
}

// Error returns the specification's name for the status and its number.
func (s Status) Error() string {
	if n, ok := statusNames[s]; ok {
		return fmt.Sprintf("%s (0x%02x)", n, byte(s))
	}
	return fmt.Sprintf("CTAP status 0x%02x", byte(s))
}
