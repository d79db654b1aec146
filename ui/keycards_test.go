package ui

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/softkey"
)

// The cards below a key's PIN card (passkeys, fingerprints, security
// settings, reset) are tested on software keys plugged in through a cord
// the test can pull in the middle of an operation: the key leaves the USB
// port, its engine loses power (a command under way is abandoned), and
// every call from then on fails as a transport would, with
// ErrDeviceRemoved.

// cord stands between the screens and a software key: it can hold an
// operation at its start, and be pulled.
type cord struct {
	h *harness
	k *testKey

	mu     sync.Mutex
	pulled bool
	// holdAt names the operation to hold at its start; paused is closed
	// when it arrives, and it goes on once resume is closed.
	holdAt         string
	paused, resume chan struct{}
}

// newCordedKey makes a software key from cfg whose touches wait for the
// test (a Signal that gives up after touchTimeout), plugged through a
// cord. It is not plugged in yet.
func (h *harness) newCordedKey(n int, cfg softkey.Config, touchTimeout time.Duration) (*testKey, *cord) {
	h.t.Helper()
	sig := softkey.NewSignal(touchTimeout)
	cfg.Presence = sig
	a, err := softkey.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	dev := platform.Device{Path: fmt.Sprintf("/dev/hidraw%d", n), Transport: platform.TransportUSB,
		Manufacturer: "Keydesk", Product: fmt.Sprintf("Test key %d", n)}
	k := &testKey{engine: a, signal: sig, dev: dev}
	c := &cord{h: h, k: k}
	k.key = cordedKey{pluggedKey{inprocess.New(a), dev}, c}
	return k, c
}

// hold makes the next call of op wait at its start until release.
func (c *cord) hold(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holdAt, c.paused, c.resume = op, make(chan struct{}), make(chan struct{})
}

// waitHeld waits for the held operation to arrive.
func (c *cord) waitHeld() {
	c.h.t.Helper()
	c.mu.Lock()
	paused := c.paused
	c.mu.Unlock()
	select {
	case <-paused:
	case <-time.After(10 * time.Second):
		c.h.t.Fatal("the held operation never came")
	}
}

// release lets the held operation go on.
func (c *cord) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.resume)
}

// pull unplugs the key in the middle of whatever it does.
func (c *cord) pull() {
	c.mu.Lock()
	c.pulled = true
	c.mu.Unlock()
	c.h.usb.unplug(c.k)
	c.k.engine.PowerCycle()
}

// enter starts op: held if asked, refused once the cord is pulled.
func (c *cord) enter(op string) error {
	c.mu.Lock()
	held := c.holdAt == op
	paused, resume := c.paused, c.resume
	if held {
		c.holdAt = ""
	}
	c.mu.Unlock()
	if held {
		close(paused)
		<-resume
	}
	return c.leave(op, nil)
}

// leave ends op with err, or with a lost contact if the cord was pulled
// meanwhile: whatever the engine answered never reached the computer.
func (c *cord) leave(op string, err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pulled {
		return &platform.Error{Op: op, Kind: platform.ErrDeviceRemoved, RetriesLeft: -1}
	}
	return err
}

// cordedKey is a plugged key behind a cord.
type cordedKey struct {
	pluggedKey
	c *cord
}

func (k cordedKey) Info(ctx context.Context) (*platform.Info, error) {
	if err := k.c.enter("Info"); err != nil {
		return nil, err
	}
	i, err := k.pluggedKey.Info(ctx)
	return i, k.c.leave("Info", err)
}

func (k cordedKey) Credentials(ctx context.Context, pin string) ([]platform.RelyingParty, error) {
	if err := k.c.enter("Credentials"); err != nil {
		return nil, err
	}
	r, err := k.pluggedKey.Credentials(ctx, pin)
	return r, k.c.leave("Credentials", err)
}

func (k cordedKey) DeleteCredential(ctx context.Context, pin string, id []byte) error {
	if err := k.c.enter("DeleteCredential"); err != nil {
		return err
	}
	return k.c.leave("DeleteCredential", k.pluggedKey.DeleteCredential(ctx, pin, id))
}

func (k cordedKey) Fingerprints(ctx context.Context, pin string) ([]platform.Fingerprint, error) {
	if err := k.c.enter("Fingerprints"); err != nil {
		return nil, err
	}
	r, err := k.pluggedKey.Fingerprints(ctx, pin)
	return r, k.c.leave("Fingerprints", err)
}

func (k cordedKey) EnrollFingerprint(ctx context.Context, pin, name string) (platform.Fingerprint, error) {
	if err := k.c.enter("EnrollFingerprint"); err != nil {
		return platform.Fingerprint{}, err
	}
	f, err := k.pluggedKey.EnrollFingerprint(ctx, pin, name)
	return f, k.c.leave("EnrollFingerprint", err)
}

func (k cordedKey) RenameFingerprint(ctx context.Context, pin string, id []byte, name string) error {
	if err := k.c.enter("RenameFingerprint"); err != nil {
		return err
	}
	return k.c.leave("RenameFingerprint", k.pluggedKey.RenameFingerprint(ctx, pin, id, name))
}

func (k cordedKey) DeleteFingerprint(ctx context.Context, pin string, id []byte) error {
	if err := k.c.enter("DeleteFingerprint"); err != nil {
		return err
	}
	return k.c.leave("DeleteFingerprint", k.pluggedKey.DeleteFingerprint(ctx, pin, id))
}

func (k cordedKey) SetMinPINLength(ctx context.Context, pin string, n int, rpIDs []string) error {
	if err := k.c.enter("SetMinPINLength"); err != nil {
		return err
	}
	return k.c.leave("SetMinPINLength", k.pluggedKey.SetMinPINLength(ctx, pin, n, rpIDs))
}

func (k cordedKey) ForcePINChange(ctx context.Context, pin string) error {
	if err := k.c.enter("ForcePINChange"); err != nil {
		return err
	}
	return k.c.leave("ForcePINChange", k.pluggedKey.ForcePINChange(ctx, pin))
}

func (k cordedKey) ToggleAlwaysUV(ctx context.Context, pin string) error {
	if err := k.c.enter("ToggleAlwaysUV"); err != nil {
		return err
	}
	return k.c.leave("ToggleAlwaysUV", k.pluggedKey.ToggleAlwaysUV(ctx, pin))
}

func (k cordedKey) Reset(ctx context.Context) error {
	if err := k.c.enter("Reset"); err != nil {
		return err
	}
	return k.c.leave("Reset", k.pluggedKey.Reset(ctx))
}

// direct is the key's engine reached without the cord or the screens,
// to set a key up and to check what it holds.
func direct(k *testKey) *inprocess.Key { return inprocess.New(k.engine) }

// touchUntil touches k whenever it waits until done reports, and returns
// what done reported.
func touchUntil(k *testKey, done <-chan error) error {
	for {
		k.signal.Touch()
		select {
		case err := <-done:
			return err
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// addPasskey makes a discoverable credential for user at rpID on k, as a
// browser would, with pin ("" for none).
func addPasskey(t *testing.T, k *testKey, pin, rpID, rpName, user, display string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		cdh := sha256.Sum256([]byte("client data " + rpID + user))
		_, err := direct(k).MakeCredential(t.Context(), platform.MakeCredentialRequest{
			ClientDataHash:   cdh[:],
			RP:               platform.RPEntity{ID: rpID, Name: rpName},
			User:             platform.User{ID: []byte("id-" + user), Name: user, DisplayName: display},
			Algorithms:       []int{platform.COSEAlgES256},
			ResidentKey:      true,
			UserVerification: pin != "",
			PIN:              pin,
		})
		done <- err
	}()
	if err := touchUntil(k, done); err != nil {
		t.Fatalf("passkey for %s at %s: %v", user, rpID, err)
	}
}

// addFingerprint enrolls a fingerprint named name on k.
func addFingerprint(t *testing.T, k *testKey, name string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := direct(k).EnrollFingerprint(t.Context(), testPIN, name)
		done <- err
	}()
	if err := touchUntil(k, done); err != nil {
		t.Fatalf("fingerprint %s: %v", name, err)
	}
}

// setTestPIN gives k the test PIN.
func setTestPIN(t *testing.T, k *testKey) {
	t.Helper()
	if err := direct(k).SetPIN(t.Context(), testPIN); err != nil {
		t.Fatal(err)
	}
}

// keyInfo is what k says of itself now.
func keyInfo(t *testing.T, k *testKey) *platform.Info {
	t.Helper()
	i, err := direct(k).Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// answerPIN waits for a PIN dialog of the page other than after (nil
// for any), types pin in it and submits it; it returns the dialog.
func (h *harness) answerPIN(d *keyDetail, after *pinAsk, pin string) *pinAsk {
	h.t.Helper()
	var a *pinAsk
	h.eventually("the PIN dialog", func() bool {
		a = d.cards.ask
		return a != nil && a != after
	})
	h.ui(func() {
		test.Type(a.entry, pin)
		test.Tap(a.ok)
		if a.entry.Text != "" {
			h.t.Error("the PIN stays in the closed dialog's field")
		}
	})
	return a
}

// clock is a key's clock that the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
