// Package platform is Keydesk's one API to security keys: it finds them,
// describes them and runs their management operations, whichever way a key
// is reached (libfido2 for USB and NFC keys, or the in-process software
// key). The GUI, the headless commands and enroll/ depend on this package,
// never on cgo.
package platform

import (
	"context"
	"strings"
)

// Transport is how a key is attached.
type Transport string

// The transports Keydesk tells apart.
const (
	TransportUSB     Transport = "usb"
	TransportNFC     Transport = "nfc"
	TransportVirtual Transport = "virtual" // the in-process software key
)

// TransportOf infers the transport from a libfido2 device path: libfido2
// names NFC readers "nfc:..." (Linux) or "pcsc://..." and everything else
// is HID over USB.
func TransportOf(path string) Transport {
	if strings.HasPrefix(path, "nfc:") || strings.HasPrefix(path, "pcsc:") {
		return TransportNFC
	}
	return TransportUSB
}

// Device is a key found by enumeration, before it is opened.
type Device struct {
	// Path is what opens the key: a hidraw node, an NFC reader, or a
	// configured extra path such as a virtual device of the vhid shim.
	Path string `json:"path"`
	// Transport is inferred from the path.
	Transport Transport `json:"transport"`
	// Manufacturer and Product are the USB strings, when known.
	Manufacturer string `json:"manufacturer,omitempty"`
	Product      string `json:"product,omitempty"`
	// VendorID and ProductID are the USB IDs, when known.
	VendorID  uint16 `json:"vendorId,omitempty"`
	ProductID uint16 `json:"productId,omitempty"`
	// Configured is set for paths from configuration rather than from the
	// operating system's device list.
	Configured bool `json:"configured,omitempty"`
}

// Info is what a key reports about itself: authenticatorGetInfo and the
// PIN and UV retry counters.
//
// Specification: CTAP 2.1 §6.4. authenticatorGetInfo (0x04) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorGetInfo)
type Info struct {
	// AAGUID identifies the key's model.
	AAGUID [16]byte `json:"-"`
	// Model is the model's name from the AAGUID list, or "" when unknown.
	Model      string          `json:"model,omitempty"`
	Versions   []string        `json:"versions"`
	Extensions []string        `json:"extensions,omitempty"`
	Options    map[string]bool `json:"options"`
	// Algorithms are COSE algorithm identifiers, in the key's order.
	Algorithms      []int  `json:"algorithms,omitempty"`
	FirmwareVersion uint64 `json:"firmwareVersion,omitempty"`
	MaxMsgSize      int    `json:"maxMsgSize,omitempty"`
	PINProtocols    []int  `json:"pinProtocols,omitempty"`
	// PINRetries and UVRetries are -1 when the key does not say.
	PINRetries int `json:"pinRetries"`
	UVRetries  int `json:"uvRetries"`
	// RemainingDiscoverableCredentials is -1 when the key does not say.
	RemainingDiscoverableCredentials int  `json:"remainingDiscoverableCredentials"`
	MinPINLength                     int  `json:"minPinLength,omitempty"`
	ForcePINChange                   bool `json:"forcePinChange"`
}

// HasOption reports whether the key lists option name as true.
func (i *Info) HasOption(name string) bool { return i.Options[name] }

// PINSet reports whether the key has a PIN (the clientPin option is true).
func (i *Info) PINSet() bool { return i.Options["clientPin"] }

// SupportsFIDO21 reports whether the key speaks CTAP 2.1.
func (i *Info) SupportsFIDO21() bool {
	for _, v := range i.Versions {
		if v == "FIDO_2_1" {
			return true
		}
	}
	return false
}

// EnterpriseAttestation is the key's enterprise attestation state.
type EnterpriseAttestation string

// The enterprise attestation states of the "ep" option.
const (
	EnterpriseAttestationUnsupported EnterpriseAttestation = "unsupported"
	EnterpriseAttestationDisabled    EnterpriseAttestation = "disabled"
	EnterpriseAttestationEnabled     EnterpriseAttestation = "enabled"
)

// EnterpriseAttestation reads the "ep" option: absent means unsupported.
func (i *Info) EnterpriseAttestation() EnterpriseAttestation {
	v, ok := i.Options["ep"]
	switch {
	case !ok:
		return EnterpriseAttestationUnsupported
	case v:
		return EnterpriseAttestationEnabled
	}
	return EnterpriseAttestationDisabled
}

// Authenticator is one key, opened. Every operation takes a context:
// cancelling it abandons a wait for the user (CTAPHID_CANCEL). Operations
// that wait for the user report it through the Progress in the context
// (see WithProgress). PINs are passed as strings and never logged.
type Authenticator interface {
	WebAuthnAuthenticator
	// Device is the key's enumeration record.
	Device() Device
	// Info reads authenticatorGetInfo and the retry counters.
	Info(ctx context.Context) (*Info, error)
	// Describe reads authenticatorGetInfo only, what a list of keys
	// shows: PINRetries and UVRetries are -1. It asks the key half as
	// many questions as Info.
	Describe(ctx context.Context) (*Info, error)

	// SetPIN sets the first PIN, after checking it against the key's
	// policy (CheckPIN).
	SetPIN(ctx context.Context, pin string) error
	// ChangePIN changes the PIN; a wrong old PIN fails with
	// ErrPINInvalid and the attempts left.
	ChangePIN(ctx context.Context, oldPIN, newPIN string) error

	// CredentialsMetadata counts discoverable credentials.
	CredentialsMetadata(ctx context.Context, pin string) (CredentialsMetadata, error)
	// Credentials lists the discoverable credentials, grouped by RP.
	Credentials(ctx context.Context, pin string) ([]RelyingParty, error)
	// DeleteCredential deletes a discoverable credential.
	DeleteCredential(ctx context.Context, pin string, credentialID []byte) error
	// UpdateUser changes the user name and display name stored with a
	// credential (the user ID stays).
	UpdateUser(ctx context.Context, pin string, credentialID []byte, user User) error

	// Fingerprints lists the enrolled fingerprints.
	Fingerprints(ctx context.Context, pin string) ([]Fingerprint, error)
	// EnrollFingerprint enrolls one, reporting each sample through the
	// context's Progress, and returns it.
	EnrollFingerprint(ctx context.Context, pin, name string) (Fingerprint, error)
	// RenameFingerprint and DeleteFingerprint manage one by ID.
	RenameFingerprint(ctx context.Context, pin string, id []byte, name string) error
	DeleteFingerprint(ctx context.Context, pin string, id []byte) error

	// SetMinPINLength raises the minimum PIN length, optionally naming RP
	// IDs allowed to read it (minPinLength extension).
	SetMinPINLength(ctx context.Context, pin string, length int, rpIDs []string) error
	// ForcePINChange makes the PIN unusable until it is changed.
	ForcePINChange(ctx context.Context, pin string) error
	// ToggleAlwaysUV flips the alwaysUv setting.
	ToggleAlwaysUV(ctx context.Context, pin string) error
	// EnableEnterpriseAttestation turns enterprise attestation on.
	EnableEnterpriseAttestation(ctx context.Context, pin string) error

	// Reset erases the key. CTAP allows it only within 10 seconds of
	// plugging the key in, and only with a touch: the context's Progress
	// hears StageReinsert and StageTouch so a UI can guide the user.
	Reset(ctx context.Context) error
	// Select waits for a touch on this key (authenticatorSelection), for
	// choosing among several keys.
	Select(ctx context.Context) error

	// Close releases the key.
	Close() error
}

// CredentialsMetadata is authenticatorCredentialManagement's getCredsMetadata.
type CredentialsMetadata struct {
	Existing  int `json:"existing"`
	Remaining int `json:"remaining"`
}

// RelyingParty groups the discoverable credentials of one RP.
type RelyingParty struct {
	ID          string       `json:"id"`
	Name        string       `json:"name,omitempty"`
	Credentials []Credential `json:"credentials"`
}

// User is the user entity stored with a discoverable credential.
type User struct {
	ID          []byte `json:"id"`
	Name        string `json:"name,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

// Credential is one discoverable credential.
type Credential struct {
	ID   []byte `json:"id"`
	User User   `json:"user"`
	// Protection is the credProtect level: 1 UV optional, 2 UV optional
	// with credential ID list, 3 UV required; 0 when the key did not say.
	Protection int `json:"protection"`
}

// Fingerprint is one enrolled template.
type Fingerprint struct {
	ID   []byte `json:"id"`
	Name string `json:"name,omitempty"`
}

// Stage is a step of a long operation, for the UI to show.
type Stage string

// The stages operations report.
const (
	StageTouch      Stage = "touch"      // touch the key now
	StageProcessing Stage = "processing" // the key is working
	StageSample     Stage = "sample"     // a fingerprint sample was taken (Remaining says how many more)
	StageReinsert   Stage = "reinsert"   // unplug the key and plug it back in
)

// ProgressEvent is reported by long operations.
type ProgressEvent struct {
	Stage Stage
	// Remaining counts fingerprint samples still needed (StageSample).
	Remaining int
}

// Progress receives ProgressEvents; it must not block.
type Progress func(ProgressEvent)

type progressKey struct{}

// WithProgress returns a context whose operations report to p.
func WithProgress(ctx context.Context, p Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// Report sends ev to the context's Progress, if any.
func Report(ctx context.Context, ev ProgressEvent) {
	if p, ok := ctx.Value(progressKey{}).(Progress); ok && p != nil {
		p(ev)
	}
}

// Enumerator finds keys and opens them.
type Enumerator interface {
	// Devices lists the keys present now.
	Devices(ctx context.Context) ([]Device, error)
	// Open opens one of them.
	Open(ctx context.Context, d Device) (Authenticator, error)
}
