// Package provision enrolls security keys on behalf of users, as
// enterprise IT does before handing keys out: for each key it checks the
// model against the service's policy before touching it, resets a used
// key (once confirmed for the batch), sets a random PIN, enrolls the key
// for the user through the service's admin provisioning ceremony, proves
// it with a real sign-in as the user, and then sets the minimum PIN
// length and forces the user to choose their own PIN on first use.
//
// A Job is one user's provisioning. It keeps what was done across
// attempts, so that a key pulled out mid-way, or a service that stopped
// answering, continues where it stopped once the key is back (the same
// key: a Job recognises it) or the service answers again. Batch runs Jobs
// for a list of users, one key after another, with a journal for
// resuming a stopped run (batch.go).
package provision

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/api"
)

// Errors a caller branches on. Each comes wrapped with what happened.
var (
	// ErrKeyNotAllowed: the service's policy refuses this key's model;
	// the key was not changed. Use another key.
	ErrKeyNotAllowed = errors.New("the service's policy does not allow this key model")
	// ErrKeyUnsupported: the key lacks what provisioning needs (a PIN,
	// CTAP 2.1's minimum PIN length and forced PIN change, credential
	// management); the key was not changed. Use another key.
	ErrKeyUnsupported = errors.New("this key cannot be provisioned")
	// ErrResetDeclined: the key holds credentials or a PIN and the
	// operator chose not to reset keys; the key was not changed.
	ErrResetDeclined = errors.New("the key is in use and resetting keys was declined")
	// ErrReplugToReset: a key resets only in its first seconds after
	// being plugged in. Unplug it, plug it back in and try again at once.
	ErrReplugToReset = errors.New("unplug the key and plug it back in to reset it")
	// ErrWrongKey: the key plugged in is not the one this user's
	// provisioning started on; it was not changed.
	ErrWrongKey = errors.New("this is not the key that was being provisioned")
)

// User is one person to provision a key for.
type User struct {
	// Name is the account's name at the service.
	Name string
	// Nickname names the key at the service; "" lets Config.Nickname
	// name it.
	Nickname string
}

// Step is a stage of one key's provisioning.
type Step string

// The steps, in order. Reset and enterprise attestation are skipped
// where not needed.
const (
	StepCheck                 Step = "check"                  // read the key; apply the policy
	StepReset                 Step = "reset"                  // erase a used key
	StepPIN                   Step = "pin"                    // set the random PIN
	StepEnterpriseAttestation Step = "enterprise-attestation" // enable it on the key
	StepEnroll                Step = "enroll"                 // register the key for the user
	StepVerify                Step = "verify"                 // sign in as the user with it
	StepPINRules              Step = "pin-rules"              // minimum PIN length, forced PIN change
)

// steps are every step in order, for a progress bar's length.
var steps = []Step{StepCheck, StepReset, StepPIN, StepEnterpriseAttestation, StepEnroll, StepVerify, StepPINRules}

// Progress is a step starting.
type Progress struct {
	User string
	Step Step
	// Index counts from 1 to Total.
	Index, Total int
	// Message says it in plain words.
	Message string
	// Touch: the key waits for a touch now.
	Touch bool
}

// KeyFacts describe a key to the operator, for the reset confirmation.
type KeyFacts struct {
	Path   string
	Model  string
	AAGUID string
	// PINSet and Credentials say why the key counts as in use
	// (Credentials is -1 when unknown).
	PINSet      bool
	Credentials int
}

// Config configures a Provisioner.
type Config struct {
	// API reaches the service, signed in as an admin.
	API *rpclient.Client
	// Origin is the service's origin; RPID its RP ID, "" for the
	// origin's host.
	Origin webauthn.Origin
	RPID   string
	// Batch names the run: the service keeps it with each key and in
	// its audit log.
	Batch string
	// Nickname names keys whose User has none ("" lets the service
	// choose).
	Nickname string
	// PINLength (default 8) and PINAlphabet (default Digits) shape the
	// random PIN. A key whose minimum PIN length is longer gets a PIN of
	// that length.
	PINLength   int
	PINAlphabet Alphabet
	// MinPINLength is set on the key for the PIN its user will choose
	// (default 6; a key's minimum only ever grows).
	MinPINLength int
	// EnterpriseAttestation enables enterprise attestation on keys that
	// support it.
	EnterpriseAttestation bool
	// ConfirmReset is asked once, before the first key of the batch that
	// needs a reset (it holds credentials or a PIN): true resets that
	// key and every later one without asking again. nil declines.
	ConfirmReset func(ctx context.Context, k KeyFacts) (bool, error)
	// Progress receives each step as it starts; nil for none. It must
	// not block.
	Progress func(Progress)
}

// Provisioner provisions keys under one Config. Keys are provisioned one
// at a time.
type Provisioner struct {
	cfg    Config
	wa     webauthn.Client
	policy *api.Policy
	// resetOK records the operator's answer to ConfirmReset.
	resetAsked, resetOK bool
}

// New checks cfg and reads the service's policy (which needs the admin
// session), so that keys outside it are refused before they are changed.
func New(ctx context.Context, cfg Config) (*Provisioner, error) {
	if cfg.API == nil {
		return nil, errors.New("provision: no API client")
	}
	if cfg.Origin.EffectiveDomain() == "" {
		return nil, errors.New("provision: no origin")
	}
	if cfg.RPID == "" {
		cfg.RPID = cfg.Origin.EffectiveDomain()
	} else if err := cfg.Origin.CheckRPID(cfg.RPID); err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	if cfg.PINLength == 0 {
		cfg.PINLength = 8
	}
	if cfg.PINAlphabet == "" {
		cfg.PINAlphabet = Digits
	}
	if cfg.MinPINLength == 0 {
		cfg.MinPINLength = 6
	}
	if cfg.PINLength < 4 || cfg.PINLength > 63 || cfg.MinPINLength < 4 || cfg.MinPINLength > 63 {
		return nil, errors.New("provision: PIN lengths are 4 to 63")
	}
	pol, err := cfg.API.Policy(ctx)
	if err != nil {
		return nil, fmt.Errorf("provision: read the service's policy (an admin's session is needed): %w", err)
	}
	return &Provisioner{cfg: cfg, policy: pol}, nil
}

// Job is one user's provisioning. Its zero state has touched no key; it
// keeps the key's PIN in memory until Done hands it over.
type Job struct {
	User User
	// Enrolled, if set, is called as soon as the service has stored the
	// key, before the test sign-in: from then on the user has a key at
	// the service, which a journal must know of should the process die.
	// An error stops the provisioning (the enrollment stays; Key has it).
	Enrolled func(*api.Key) error
	// What was done, so that another attempt continues from there.
	pin      *PIN
	aaguid   [16]byte
	model    string
	pinSet   bool
	clean    bool // holds no credential from before
	epDone   bool
	key      *api.Key
	verified bool
	rules    bool
	// minPIN is the minimum PIN length the key ends with.
	minPIN int
}

// NewJob starts u's provisioning.
func NewJob(u User) *Job { return &Job{User: u} }

// Touched reports whether the Job changed a key: from then on only that
// key continues it.
func (j *Job) Touched() bool { return j.pinSet }

// Key is the key as the service stored it, once enrolled.
func (j *Job) Key() *api.Key { return j.key }

// Model is the key's model name ("" when unknown).
func (j *Job) Model() string { return j.model }

// AAGUID is the key's model identifier, dashed.
func (j *Job) AAGUID() string { return assets.FormatAAGUID(j.aaguid) }

// MinPINLength is the minimum PIN length the key now requires.
func (j *Job) MinPINLength() int { return j.minPIN }

// Done reports whether every step is done.
func (j *Job) Done() bool { return j.rules }

// PIN is the key's PIN, nil before it was set or after Wipe. The caller
// writes the handover page, then wipes it (Wipe).
func (j *Job) PIN() *PIN { return j.pin }

// Wipe forgets the PIN.
func (j *Job) Wipe() { j.pin.Wipe() }

// Provision runs j's remaining steps on key. On error j keeps what was
// done: call again with the same key (plugged back in) to continue.
func (p *Provisioner) Provision(ctx context.Context, j *Job, key platform.Authenticator) error {
	if err := p.provision(ctx, j, key); err != nil {
		return fmt.Errorf("provision a key for %s: %w", j.User.Name, err)
	}
	return nil
}

func (p *Provisioner) provision(ctx context.Context, j *Job, key platform.Authenticator) error {
	report := func(s Step, touch bool, format string, args ...any) {
		if p.cfg.Progress != nil {
			p.cfg.Progress(Progress{User: j.User.Name, Step: s, Index: slices.Index(steps, s) + 1, Total: len(steps),
				Touch: touch, Message: fmt.Sprintf(format, args...)})
		}
	}
	report(StepCheck, false, "Reading the key")
	info, err := key.Describe(ctx)
	if err != nil {
		return err
	}
	if j.Touched() {
		if err := p.sameKey(ctx, j, key, info); err != nil {
			return err
		}
	} else {
		if err := p.check(info); err != nil {
			return err
		}
		if info.PINSet() {
			// A PIN means someone used the key: only a reset clears
			// it, and with it whatever the key holds.
			report(StepReset, true, "Resetting the key: touch it when it blinks")
			if info, err = p.reset(ctx, key, KeyFacts{PINSet: true, Credentials: -1}, info); err != nil {
				return err
			}
		}
		j.aaguid, j.model = info.AAGUID, info.Model
		if j.pin == nil {
			if j.pin, err = NewPIN(max(p.cfg.PINLength, info.MinPINLength), p.cfg.PINAlphabet); err != nil {
				return err
			}
		}
		report(StepPIN, false, "Setting a random PIN")
		if err := key.SetPIN(ctx, j.pin.reveal()); err != nil {
			return fmt.Errorf("set the PIN: %w", err)
		}
		j.pinSet = true
	}
	if !j.clean {
		// A key without a PIN can still hold credentials made without
		// one; only credential management tells, and it needs the PIN.
		meta, err := key.CredentialsMetadata(ctx, j.pin.reveal())
		if err != nil {
			return fmt.Errorf("count the credentials on the key: %w", err)
		}
		if meta.Existing > 0 {
			report(StepReset, true, "The key holds %d credentials: resetting it, touch it when it blinks", meta.Existing)
			if info, err = p.reset(ctx, key, KeyFacts{Credentials: meta.Existing}, info); err != nil {
				return err
			}
			j.pinSet = false
			report(StepPIN, false, "Setting a random PIN")
			if err := key.SetPIN(ctx, j.pin.reveal()); err != nil {
				return fmt.Errorf("set the PIN: %w", err)
			}
			j.pinSet = true
		}
		j.clean = true
	}
	pin := j.pin.reveal()
	if p.cfg.EnterpriseAttestation && !j.epDone {
		report(StepEnterpriseAttestation, false, "Enabling enterprise attestation")
		// check refused keys without it before they were changed.
		if info.EnterpriseAttestation() == platform.EnterpriseAttestationDisabled {
			if err := key.EnableEnterpriseAttestation(ctx, pin); err != nil {
				return fmt.Errorf("enable enterprise attestation: %w", err)
			}
		}
		j.epDone = true
	}
	opts := webauthn.CeremonyOptions{PIN: j.pinPrompt, Capabilities: webauthn.CapabilitiesOf(info, key.Device())}
	if j.key == nil {
		report(StepEnroll, true, "Enrolling the key for %s: touch it when it blinks", j.User.Name)
		if err := p.enroll(ctx, j, key, opts); err != nil {
			return err
		}
	}
	if !j.verified {
		report(StepVerify, true, "Signing in as %s with the key: touch it when it blinks", j.User.Name)
		if err := p.verify(ctx, j, key, opts); err != nil {
			return err
		}
	}
	j.minPIN = max(info.MinPINLength, p.cfg.MinPINLength)
	report(StepPINRules, false, "Setting the PIN rules: at least %d characters, changed on first use", j.minPIN)
	if p.cfg.MinPINLength > info.MinPINLength {
		if err := key.SetMinPINLength(ctx, pin, p.cfg.MinPINLength, nil); err != nil {
			return fmt.Errorf("set the minimum PIN length: %w", err)
		}
	}
	// Last: from here on the PIN gives no token until the user chooses
	// their own.
	if err := key.ForcePINChange(ctx, pin); err != nil {
		return fmt.Errorf("force a PIN change: %w", err)
	}
	j.rules = true
	return nil
}

// pinPrompt answers the WebAuthn client's PIN request with the Job's PIN.
// A second request means the key refused it: not this Job's key.
func (j *Job) pinPrompt(_ context.Context, retriesLeft int) (string, error) {
	if retriesLeft >= 0 || j.pin.Wiped() {
		return "", fmt.Errorf("%w: it refused the PIN it was given", ErrWrongKey)
	}
	return j.pin.reveal(), nil
}

// check applies the policy's model lists and provisioning's needs, before
// anything on the key changes.
func (p *Provisioner) check(info *platform.Info) error {
	aaguid := assets.FormatAAGUID(info.AAGUID)
	name := info.Model
	if name == "" {
		name = "model " + aaguid
	}
	for _, d := range p.policy.DeniedAAGUIDs {
		if strings.EqualFold(d, aaguid) {
			return fmt.Errorf("%w: %s is on the service's deny list", ErrKeyNotAllowed, name)
		}
	}
	if len(p.policy.AllowedAAGUIDs) > 0 {
		allowed := false
		for _, a := range p.policy.AllowedAAGUIDs {
			allowed = allowed || strings.EqualFold(a, aaguid)
		}
		if !allowed {
			return fmt.Errorf("%w: %s is not on the service's list of allowed keys", ErrKeyNotAllowed, name)
		}
	}
	_, hasPIN := info.Options["clientPin"]
	switch {
	case !hasPIN:
		return fmt.Errorf("%w: %s has no PIN", ErrKeyUnsupported, name)
	case !info.HasOption("setMinPINLength"):
		return fmt.Errorf("%w: %s cannot force a PIN change on first use (it lacks CTAP 2.1's setMinPINLength)", ErrKeyUnsupported, name)
	case !info.HasOption("credMgmt") && !info.HasOption("credentialMgmtPreview"):
		return fmt.Errorf("%w: %s cannot list the credentials it holds", ErrKeyUnsupported, name)
	case p.cfg.EnterpriseAttestation && info.EnterpriseAttestation() == platform.EnterpriseAttestationUnsupported:
		return fmt.Errorf("%w: %s has no enterprise attestation, which this batch enables", ErrKeyUnsupported, name)
	}
	return nil
}

// reset erases key, once the operator agreed for the batch, and returns
// its info afterwards.
func (p *Provisioner) reset(ctx context.Context, key platform.Authenticator, facts KeyFacts, info *platform.Info) (*platform.Info, error) {
	facts.Path, facts.Model, facts.AAGUID = key.Device().Path, info.Model, assets.FormatAAGUID(info.AAGUID)
	if !p.resetAsked {
		ok := false
		if p.cfg.ConfirmReset != nil {
			var err error
			if ok, err = p.cfg.ConfirmReset(ctx, facts); err != nil {
				return nil, err
			}
		}
		p.resetAsked, p.resetOK = true, ok
	}
	if !p.resetOK {
		return nil, ErrResetDeclined
	}
	if err := key.Reset(ctx); err != nil {
		if errors.Is(err, platform.ErrNotAllowed) {
			return nil, fmt.Errorf("%w (%w)", ErrReplugToReset, err)
		}
		return nil, fmt.Errorf("reset the key: %w", err)
	}
	return key.Describe(ctx)
}

// sameKey checks that key is the one j started on, without changing it:
// the model, then the credential it was enrolled with, or else the PIN it
// was given.
func (p *Provisioner) sameKey(ctx context.Context, j *Job, key platform.Authenticator, info *platform.Info) error {
	if info.AAGUID != j.aaguid || !info.PINSet() {
		return ErrWrongKey
	}
	if j.key != nil {
		id, err := base64.RawURLEncoding.DecodeString(j.key.ID)
		if err != nil {
			return err
		}
		held, err := enroll.Holds(ctx, key, p.cfg.RPID, [][]byte{id})
		if err != nil {
			return err
		}
		if len(held) == 0 {
			return ErrWrongKey
		}
		return nil
	}
	// A wrong guess costs that key one of its PIN retries, which its
	// owner's next right PIN restores.
	if _, err := key.CredentialsMetadata(ctx, j.pin.reveal()); err != nil {
		if errors.Is(err, platform.ErrPINInvalid) {
			return ErrWrongKey
		}
		return err
	}
	return nil
}

// enroll registers key for j's user through the admin provisioning
// ceremony.
func (p *Provisioner) enroll(ctx context.Context, j *Job, key platform.Authenticator, opts webauthn.CeremonyOptions) error {
	nickname := j.User.Nickname
	if nickname == "" {
		nickname = p.cfg.Nickname
	}
	id, options, _, err := p.cfg.API.ProvisionBegin(ctx, j.User.Name, nickname)
	if err != nil {
		return fmt.Errorf("begin the enrollment: %w", err)
	}
	cred, err := p.wa.Create(ctx, key, p.cfg.Origin, options, opts)
	if err != nil {
		return fmt.Errorf("make the credential: %w", err)
	}
	k, err := p.cfg.API.ProvisionFinish(ctx, j.User.Name, id, cred, nickname, p.cfg.Batch)
	if err != nil {
		return fmt.Errorf("finish the enrollment: %w", err)
	}
	j.key = k
	if j.Enrolled != nil {
		return j.Enrolled(k)
	}
	return nil
}

// verify signs in as j's user with key, as the user will, then signs that
// session out: the key works at the service before it is handed over.
func (p *Provisioner) verify(ctx context.Context, j *Job, key platform.Authenticator, opts webauthn.CeremonyOptions) error {
	c, err := p.cfg.API.WithToken("")
	if err != nil {
		return err
	}
	id, options, _, err := c.LoginBegin(ctx, j.User.Name)
	if err != nil {
		return fmt.Errorf("begin the test sign-in: %w", err)
	}
	cred, err := p.wa.Get(ctx, key, p.cfg.Origin, options, opts)
	if err != nil {
		return fmt.Errorf("test sign-in: %w", err)
	}
	sess, _, err := c.LoginFinish(ctx, id, cred)
	if err != nil {
		return fmt.Errorf("finish the test sign-in: %w", err)
	}
	// Best effort: the session expires anyway.
	defer c.Logout(context.WithoutCancel(ctx))
	if sess.User.Name != j.User.Name {
		return fmt.Errorf("the test sign-in signed in as %q, not %q", sess.User.Name, j.User.Name)
	}
	j.verified = true
	return nil
}
