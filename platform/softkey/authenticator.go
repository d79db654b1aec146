package softkey

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keydesk/keydesk/platform/pinuvauth"
)

// Config describes one software key. The zero value is a usable key that
// lives in memory only and approves every touch.
type Config struct {
	// StatePath is the file that keeps the key's state between runs; empty
	// keeps it in memory only.
	StatePath string
	// StateKey seals the state file (32 bytes). Required with StatePath.
	StateKey []byte
	// Presence answers requests for a touch; nil approves at once.
	Presence Presence
	// Now is the key's clock; nil uses time.Now. Tests move it to check
	// the ten-second reset window and token expiry.
	Now func() time.Time
	// NoneAttestation makes makeCredential return "none" attestation
	// instead of "packed".
	NoneAttestation bool
	// NoBiometrics removes the simulated fingerprint sensor.
	NoBiometrics bool
	// NoEnterpriseAttestation removes enterprise attestation support.
	NoEnterpriseAttestation bool
	// MaxCredentials bounds the discoverable credentials (default 25).
	MaxCredentials int
	// FirmwareVersion is reported by getInfo (default 0x00010000).
	FirmwareVersion uint32
	// AAGUID, when not zero, makes the key another model than the
	// software key's own (AAGUID): for tests of policies that allow or
	// deny models. Its attestation certificate names that model, as a
	// real model's does.
	AAGUID [16]byte
}

// Defaults a key reports unless its state says otherwise.
const (
	defaultMaxCredentials = 25
	defaultFirmware       = 0x00010000
	defaultMinPINLength   = 4
	maxPINRetries         = 8
	maxUVRetries          = 8
	maxPINFailsPerBoot    = 3
	maxUVFailsPerBoot     = 3
	maxMsgSize            = 7609 // the largest CTAPHID message
	maxCredentialIDLength = 128
	maxCredentialsInList  = 8
	maxMinPINLengthRPIDs  = 4
	resetWindow           = 10 * time.Second
	nextAssertionTimeout  = 30 * time.Second
)

// Authenticator is the software key: the CTAP2 command engine and its state.
// Its methods are safe for concurrent use; commands run one at a time, as on
// a real key.
type Authenticator struct {
	cfg      Config
	presence Presence
	now      func() time.Time

	cmdMu sync.Mutex // held for the whole of one command

	mu         sync.Mutex // guards cancelCmd and winks
	cancelCmd  context.CancelFunc
	winks      int
	powerCycle int

	// Guarded by cmdMu.
	st        *state
	store     *store
	att       *attestation
	wrap      cipher.AEAD
	dirty     bool
	booted    time.Time
	pinFails  int // consecutive wrong PINs since power-up
	uvFails   int
	protocols map[int]*pinUvAuthProtocol
	lastCmd   Command
	next      *assertionBatch
	credEnum  *credEnumeration
	bioEnroll *bioEnrollment
	u2fTouch  *u2fTouch // the touch U2F messages wait for, if one was asked
}

// New creates a key, loading its state file or creating a new key when the
// file does not exist yet. A state file that exists but cannot be read is
// an error wrapping ErrStateCorrupt.
func New(cfg Config) (*Authenticator, error) {
	a := &Authenticator{cfg: cfg, presence: cfg.Presence, now: cfg.Now}
	if a.presence == nil {
		a.presence = ApproveAlways
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.cfg.MaxCredentials <= 0 {
		a.cfg.MaxCredentials = defaultMaxCredentials
	}
	if a.cfg.FirmwareVersion == 0 {
		a.cfg.FirmwareVersion = defaultFirmware
	}
	if a.cfg.AAGUID == ([16]byte{}) {
		a.cfg.AAGUID = AAGUID
	}
	st, err := newStore(cfg.StatePath, cfg.StateKey)
	if err != nil {
		return nil, fmt.Errorf("softkey: %w", err)
	}
	a.store = st
	if st != nil {
		loaded, err := st.load()
		switch {
		case err == nil:
			a.st = loaded
		case isNotExist(err):
		default:
			return nil, fmt.Errorf("softkey: %w", err)
		}
	}
	if a.st == nil {
		if err := a.initState(); err != nil {
			return nil, fmt.Errorf("softkey: new key: %w", err)
		}
		if st != nil {
			if err := st.save(a.st); err != nil {
				return nil, fmt.Errorf("softkey: %w", err)
			}
		}
	}
	if err := a.loadKeys(); err != nil {
		return nil, fmt.Errorf("softkey: %w: %v", ErrStateCorrupt, err)
	}
	a.powerUp()
	return a, nil
}

// initState creates the secrets of a brand-new key.
func (a *Authenticator) initState() error {
	att, caKey, err := newAttestation(a.now(), a.cfg.AAGUID)
	if err != nil {
		return err
	}
	caKeyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		return err
	}
	attKeyDER, err := x509.MarshalECPrivateKey(att.key)
	if err != nil {
		return err
	}
	a.st = &state{
		AttCAKey:  caKeyDER,
		AttCACert: att.caDER,
		AttKey:    attKeyDER,
		AttCert:   att.leafDER,
	}
	a.wipe()
	return nil
}

// wipe returns the key to factory state, keeping only its attestation
// identity (§6.6 authenticatorReset).
func (a *Authenticator) wipe() {
	a.st.WrapKey = randomBytes(32)
	a.st.SignCount = 0
	a.st.PIN = nil
	a.st.PINRetries = maxPINRetries
	a.st.UVRetries = maxUVRetries
	a.st.MinPINLength = defaultMinPINLength
	a.st.MinPINRPIDs = nil
	a.st.ForcePINChg = false
	a.st.AlwaysUV = false
	a.st.EnterpriseAtt = false
	a.st.Credentials = nil
	a.st.Fingerprints = nil
	a.wrap = nil
}

// loadKeys prepares the ciphers and attestation key from state.
func (a *Authenticator) loadKeys() error {
	att, err := loadAttestation(a.st)
	if err != nil {
		return err
	}
	a.att = att
	if len(a.st.WrapKey) != 32 {
		return errors.New("credential wrapping key missing")
	}
	block, err := aes.NewCipher(a.st.WrapKey)
	if err != nil {
		return err
	}
	a.wrap, err = cipher.NewGCM(block)
	return err
}

// powerUp resets everything volatile, as plugging the key in does.
func (a *Authenticator) powerUp() {
	a.booted = a.now()
	a.pinFails = 0
	a.uvFails = 0
	a.protocols = map[int]*pinUvAuthProtocol{1: newPinUvAuthProtocol(pinuvauth.One), 2: newPinUvAuthProtocol(pinuvauth.Two)}
	a.lastCmd = 0
	a.next = nil
	a.credEnum = nil
	a.bioEnroll = nil
	a.dropU2FTouch()
}

// PowerCycle simulates unplugging the key and plugging it back in: a
// command in progress is abandoned, the PIN-attempt block of three wrong
// PINs in a row is lifted, and the ten-second reset window opens again.
func (a *Authenticator) PowerCycle() {
	a.mu.Lock()
	if a.cancelCmd != nil {
		a.cancelCmd()
	}
	a.powerCycle++
	a.mu.Unlock()
	a.cmdMu.Lock()
	defer a.cmdMu.Unlock()
	a.powerUp()
}

// Wink records a CTAPHID_WINK; a software key has no light to blink.
func (a *Authenticator) Wink() {
	a.mu.Lock()
	a.winks++
	a.mu.Unlock()
}

// Winks reports how many times the key was asked to wink.
func (a *Authenticator) Winks() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.winks
}

// AttestationCA returns the DER certificate of the key's attestation CA,
// the trust anchor a relying party needs to verify "packed" attestation.
func (a *Authenticator) AttestationCA() []byte {
	a.cmdMu.Lock()
	defer a.cmdMu.Unlock()
	return append([]byte(nil), a.att.caDER...)
}

// CBOR runs one CTAP2 command: req is the command byte followed by its CBOR
// parameters, and the result is the status byte followed by the CBOR
// response. keepalive, which may be nil, is told when the key waits for a
// touch. Cancelling ctx abandons a wait for the user with
// CTAP2_ERR_KEEPALIVE_CANCEL.
func (a *Authenticator) CBOR(ctx context.Context, req []byte, keepalive func(status byte)) []byte {
	if keepalive == nil {
		keepalive = func(byte) {}
	}
	a.cmdMu.Lock()
	defer a.cmdMu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	a.mu.Lock()
	a.cancelCmd = cancel
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.cancelCmd = nil
		a.mu.Unlock()
		cancel()
	}()

	if len(req) == 0 {
		return []byte{byte(ErrInvalidLength)}
	}
	if len(req) > maxMsgSize {
		return []byte{byte(ErrRequestTooLarge)}
	}
	cmd := Command(req[0])
	var (
		resp any
		err  error
	)
	if !a.transact(func() { resp, err = a.dispatch(ctx, cmd, req[1:], keepalive) }) {
		err = ErrOther
	}
	a.lastCmd = cmd
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return []byte{byte(ErrKeepaliveCancel)}
		}
		var s Status
		if errors.As(err, &s) {
			return []byte{byte(s)}
		}
		return []byte{byte(ErrOther)}
	}
	if resp == nil {
		return []byte{byte(StatusOK)}
	}
	return append([]byte{byte(StatusOK)}, marshal(resp)...)
}

// transact runs one command and saves the state when the command changed
// it (a.dirty). It reports false when the write failed: memory then goes
// back to what the disk holds and the command must fail, so that nothing
// the host was told about is lost at the next start.
func (a *Authenticator) transact(run func()) bool {
	var snapshot []byte
	if a.store != nil {
		snapshot = a.snapshot()
	}
	a.dirty = false
	run()
	if a.dirty && a.store != nil {
		if err := a.store.save(a.st); err != nil {
			a.restore(snapshot)
			return false
		}
	}
	return true
}

// dispatch routes a command to its handler.
func (a *Authenticator) dispatch(ctx context.Context, cmd Command, params []byte, keepalive func(byte)) (any, error) {
	switch cmd {
	case CmdGetInfo:
		return a.getInfo(), nil
	case CmdMakeCredential:
		return a.makeCredential(ctx, params, keepalive)
	case CmdGetAssertion:
		return a.getAssertion(ctx, params, keepalive)
	case CmdGetNextAssertion:
		return a.getNextAssertion()
	case CmdClientPIN:
		return a.clientPIN(ctx, params, keepalive)
	case CmdReset:
		return nil, a.reset(ctx, keepalive)
	case CmdCredentialManagement, CmdCredentialMgmtPreview:
		return a.credentialManagement(cmd, params)
	case CmdSelection:
		return nil, a.userPresence(ctx, keepalive)
	case CmdConfig:
		return nil, a.config(params)
	case CmdBioEnrollment, CmdBioEnrollmentPreview:
		if a.cfg.NoBiometrics {
			return nil, ErrInvalidCommand
		}
		return a.bioEnrollment(ctx, params, keepalive)
	}
	return nil, ErrInvalidCommand
}

// userPresence asks for a touch, telling the host it waits (§11.2.9.1.2
// STATUS_UPNEEDED keep-alives). A policy that answers at once (ApproveAlways,
// DenyAlways) is not announced: no person is asked, and the keep-alive
// would only cost the host a wake-up.
func (a *Authenticator) userPresence(ctx context.Context, keepalive func(byte)) error {
	if _, instant := a.presence.(instantPresence); !instant {
		keepalive(statusUPNeeded)
		defer keepalive(statusProcessing)
	}
	err := a.presence.Wait(ctx)
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ErrKeepaliveCancel
	}
	var s Status
	if errors.As(err, &s) {
		return s
	}
	return ErrOperationDenied
}

// CTAPHID keep-alive statuses (§11.2.9.1.2).
const (
	statusProcessing byte = 1
	statusUPNeeded   byte = 2
)

// reset is authenticatorReset (0x07): only within ten seconds of power-up,
// and only with a touch.
func (a *Authenticator) reset(ctx context.Context, keepalive func(byte)) error {
	if a.now().Sub(a.booted) > resetWindow {
		return ErrNotAllowed
	}
	if err := a.userPresence(ctx, keepalive); err != nil {
		return err
	}
	a.wipe()
	if err := a.loadKeys(); err != nil {
		return ErrOther
	}
	// Enumerations, assertion batches and enrollments refer to what was wiped.
	a.next, a.credEnum, a.bioEnroll = nil, nil, nil
	for _, p := range a.protocols {
		p.regenerate()
		p.resetToken()
	}
	a.pinFails, a.uvFails = 0, 0
	a.dirty = true
	return nil
}

// snapshot and restore copy the persistent state so a failed write can be
// undone.
func (a *Authenticator) snapshot() []byte {
	b, err := json.Marshal(a.st)
	if err != nil {
		panic("softkey: snapshot: " + err.Error())
	}
	return b
}

func (a *Authenticator) restore(b []byte) {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		panic("softkey: restore: " + err.Error())
	}
	a.st = &st
	if err := a.loadKeys(); err != nil {
		panic("softkey: restore: " + err.Error())
	}
}

// protocol returns the PIN/UV auth protocol a request names, or the error a
// real key gives for an absent or unknown one.
func (a *Authenticator) protocol(v *uint64) (*pinUvAuthProtocol, error) {
	if v == nil {
		return nil, ErrMissingParameter
	}
	p, ok := a.protocols[int(*v)]
	if !ok || *v > 2 {
		return nil, ErrInvalidParameter
	}
	return p, nil
}

// pinSet reports whether the key has a PIN.
func (a *Authenticator) pinSet() bool { return a.st.PIN != nil }

// uvConfigured reports whether built-in user verification (a fingerprint)
// is available.
func (a *Authenticator) uvConfigured() bool {
	return !a.cfg.NoBiometrics && len(a.st.Fingerprints) > 0
}
