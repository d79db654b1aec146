package ui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/enroll/provision"
	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/rp/api"
)

// The Provisioning tab against the reference RP of the helpdesk tests
// (root the admin, hd1 and hd2 the helpdesk, alice and bob users), with
// the batch's keys plugged in as in-process software keys that wait for
// their touches: the run watches the harness's USB port as the app
// watches the real one.

// withProvisioning gives the window a Provisioning tab on withHelpdesk's
// client (after withHelpdesk), its batches' folders under base.
func withProvisioning(env *hdEnv, base string) harnessOption {
	return func(h *harness, d *Deps) {
		origin, err := webauthn.ParseOrigin("https://localhost")
		if err != nil {
			h.t.Fatal(err)
		}
		d.Provisioning = func() provision.Config {
			return provision.Config{API: env.api, Origin: origin, RPID: "localhost"}
		}
		d.ProvisioningDir = filepath.Join(base, "provisioning")
	}
}

// newProvisioningHarness is a window on a staffed organization, with the
// users to provision created, and the Provisioning tab's paths shown
// under base as ~.
func newProvisioningHarness(t *testing.T, users ...string) (*harness, *hdEnv, string) {
	t.Helper()
	env := &hdEnv{keys: map[string]*testKey{}}
	base := t.TempDir()
	h := newHarness(t, withHelpdesk(env), withProvisioning(env, base))
	env.staff(t)
	for _, u := range users {
		if _, err := env.root.CreateUser(t.Context(), api.CreateUserRequest{Name: u}); err != nil {
			t.Fatal(err)
		}
	}
	h.ui(func() { h.shell.provisioning.home = base })
	return h, env, base
}

// newTestKeyWith is newTestKey made as cfg says (another model...).
func newTestKeyWith(t *testing.T, n int, cfg softkey.Config) *testKey {
	t.Helper()
	sig := softkey.NewSignal(10 * time.Second)
	cfg.Presence = sig
	a, err := softkey.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dev := platform.Device{Path: fmt.Sprintf("/dev/hidraw%d", n), Transport: platform.TransportUSB,
		Manufacturer: "Keydesk", Product: fmt.Sprintf("Test key %d", n)}
	return &testKey{engine: a, signal: sig, key: pluggedKey{inprocess.New(a), dev}, dev: dev}
}

// openProvisioning signs root in and shows the Provisioning tab with the
// CSV loaded.
func (h *harness) openProvisioning(env *hdEnv, csvName, csvText string) *provisioningScreen {
	h.t.Helper()
	h.signInAs(env, "root")
	p := h.shell.provisioning
	h.eventually("the Provisioning tab", func() bool { return slices.Contains(h.shell.tabs.Items, p.tab) })
	h.ui(func() {
		h.shell.tabs.Select(p.tab)
		p.load(csvName, strings.NewReader(csvText))
	})
	return p
}

// row is user's row.
func (p *provisioningScreen) row(user string) provRow {
	if i, ok := p.model.index[user]; ok {
		return p.model.rows[i]
	}
	return provRow{}
}

// asked waits for the run page to ask for the n-th key, user's.
func (h *harness) asked(p *provisioningScreen, user string, n, total int) {
	h.t.Helper()
	want := fmt.Sprintf("Insert a key for %s (%d of %d).", user, n, total)
	h.eventually("asked for "+user+"'s key", func() bool { return p.said.Text == want })
}

// touchUntil touches k each time the run page says to, until cond (UI
// goroutine) holds.
func (h *harness) touchUntil(p *provisioningScreen, k *testKey, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var done, touch bool
		h.ui(func() { done, touch = cond(), p.touch.Text != "" })
		if done {
			return
		}
		if touch {
			k.signal.Touch()
		}
		if time.Now().After(deadline) {
			var said string
			h.ui(func() { said = p.said.Text + " / " + p.before.Text })
			h.t.Fatalf("timed out waiting for %s; the screen says: %s", what, said)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// feed gives the run k when it asks for user's key, the n-th of total,
// touches it when the screen says to until user is enrolled, and then
// takes it out, as the operator does.
func (h *harness) feed(p *provisioningScreen, k *testKey, user string, n, total int) {
	h.t.Helper()
	h.asked(p, user, n, total)
	h.usb.plug(k)
	h.touchUntil(p, k, user+" enrolled", func() bool { return p.row(user).state == provEnrolled })
	h.usb.unplug(k)
}

// ended waits for the run to end.
func (h *harness) ended(p *provisioningScreen) {
	h.t.Helper()
	h.eventually("the run ended", func() bool { return p.model.onRunPage && !p.model.active })
}

// usableKeys are user's keys at the service that are not revoked.
func (env *hdEnv) usableKeys(t *testing.T, user string) []api.Key {
	t.Helper()
	keys, err := env.root.UserKeys(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(keys, func(k api.Key) bool { return k.RevokedAt != nil })
}

// TestProvisioningOnlyForAdmins: the tab is there only while an admin is
// signed in with a key, after the Helpdesk tab: not signed out, not for a
// user, not for a helpdesk member.
func TestProvisioningOnlyForAdmins(t *testing.T) {
	h, env, _ := newProvisioningHarness(t)
	signedOut := []string{"Keys", "Account", "Settings"}
	h.ui(func() {
		if got := h.tabNames(); !slices.Equal(got, signedOut) {
			t.Errorf("signed out, the tabs are %q", got)
		}
	})
	for _, who := range []struct {
		name string
		tabs []string
	}{
		{"alice", signedOut},
		{"hd1", []string{"Keys", "Account", "Helpdesk", "Settings"}},
		{"root", []string{"Keys", "Account", "Helpdesk", "Provisioning", "Settings"}},
	} {
		h.signInAs(env, who.name)
		h.eventually(who.name+"'s tabs", func() bool { return slices.Equal(h.tabNames(), who.tabs) })
		// Signing out from the last tab shown for the session goes
		// back to the Account tab.
		h.ui(func() { h.shell.tabs.SelectIndex(len(who.tabs) - 2) })
		h.signOut(env, who.name)
		h.eventually("the tabs after "+who.name+" signed out", func() bool { return slices.Equal(h.tabNames(), signedOut) })
		h.ui(func() {
			if got := h.shell.tabs.Selected().Text; len(who.tabs) > 3 && got != "Account" {
				t.Errorf("after %s signed out, %q is shown", who.name, got)
			}
		})
	}
}

// TestProvisioningABatchOfThree: root loads a CSV of three users, starts,
// and plugs a key for each as the screen asks, touching it when told;
// each user ends enrolled with one key at the service, a PIN page and a
// line in the results, which open and export; root's own key, plugged in
// before the start, is left alone.
func TestProvisioningABatchOfThree(t *testing.T) {
	users := []string{"user01", "user02", "user03"}
	h, env, base := newProvisioningHarness(t, users...)
	p := h.openProvisioning(env, "laptops.csv", "user\nuser01\nuser02,Laptop key\nuser03\n")
	dir := filepath.Join(base, "provisioning", "laptops")
	h.ui(func() {
		if want := "3 users read from laptops.csv: user01, user02, user03."; p.usersNote.Text != want {
			t.Errorf("users: %q", p.usersNote.Text)
		}
		if p.batch.Text != "laptops" || p.dirLabel.Text != filepath.Join("~", "provisioning", "laptops") || p.startBtn.Disabled() {
			t.Errorf("batch %q, folder %q, Start disabled %v", p.batch.Text, p.dirLabel.Text, p.startBtn.Disabled())
		}
		test.Tap(p.startBtn)
	})
	h.eventually("root's key said left alone", func() bool {
		return strings.HasPrefix(p.before.Text, "1 key is plugged in already: it is left alone.")
	})
	for i, u := range users {
		h.feed(p, newTestKey(t, i+1), u, i+1, 3)
	}
	h.ended(p)
	h.ui(func() {
		if p.summary.Text != "3 enrolled, 0 failed, 0 pending" || p.outcome.Text != "Finished." {
			t.Errorf("summary %q, outcome %q", p.summary.Text, p.outcome.Text)
		}
		for _, u := range users {
			if r := p.row(u); r.status() != "enrolled" || r.model != "Keydesk Software Key (virtual)" {
				t.Errorf("%s: %q, %q", u, r.status(), r.model)
			}
		}
		if !strings.Contains(p.where.Text, "print them, hand them over, then delete the files") ||
			!strings.Contains(p.where.Text, filepath.Join("~", "provisioning", "laptops", "pins")) {
			t.Errorf("where: %q", p.where.Text)
		}
		if p.stopBtn.Visible() || p.resumeBtn.Visible() || p.retryBtn.Visible() || !p.openBtn.Visible() || !p.exportBtn.Visible() {
			t.Error("the buttons of a finished batch are wrong")
		}
	})
	if _, err := os.Stat(filepath.Join(dir, provision.ResultsFile)); err != nil {
		t.Error(err)
	}
	for _, u := range users {
		if _, err := os.Stat(filepath.Join(dir, "pins", u+".pdf")); err != nil {
			t.Error(err)
		}
		keys := env.usableKeys(t, u)
		if len(keys) != 1 || keys[0].Batch != "laptops" || keys[0].ProvisionedBy != "root" {
			t.Errorf("%s's keys at the service: %+v", u, keys)
		}
	}
	if keys := env.usableKeys(t, "user02"); len(keys) == 1 && keys[0].Nickname != "Laptop key" {
		t.Errorf("user02's key is named %q, not as the CSV says", keys[0].Nickname)
	}
	if info, err := env.keys["root"].key.Info(t.Context()); err != nil || info.PINSet() {
		t.Errorf("root's own key was changed (PIN set), or cannot be read: %v", err)
	}

	// Open the folder, export the results.
	var opened *url.URL
	h.ui(func() {
		p.openURL = func(u *url.URL) error { opened = u; return nil }
		test.Tap(p.openBtn)
	})
	if opened == nil || opened.Scheme != "file" || filepath.Clean(filepath.FromSlash(opened.Path)) != dir {
		t.Errorf("opened %v, want the folder %s", opened, dir)
	}
	var out bytes.Buffer
	h.ui(func() { p.export(nopCloser{&out}, filepath.Join(base, "export.csv")) })
	h.eventually("exported", func() bool { return strings.HasPrefix(p.outcome.Text, "The results are exported to ~") })
	want, err := os.ReadFile(filepath.Join(dir, provision.ResultsFile))
	if err != nil || !bytes.Equal(out.Bytes(), want) || !strings.Contains(out.String(), "user03") {
		t.Errorf("exported %q, want results.csv (%v)", out.String(), err)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// otherModel is a key model the tests' policy denies.
var otherModel = [16]byte{0xee, 0x88, 0x28, 0x79, 0x72, 0x1c, 0x49, 0x13, 0x97, 0x75, 0x3d, 0xfc, 0xce, 0x97, 0x07, 0x2a}

// TestProvisioningRefusedKeyFailureAndRetry: a key of a model the policy
// denies is refused untouched, said on screen, and a good key takes its
// place; a user the service does not know fails, and once created, Retry
// failed users enrolls them with a new key, skipping those done.
func TestProvisioningRefusedKeyFailureAndRetry(t *testing.T) {
	h, env, _ := newProvisioningHarness(t, "user01")
	if _, err := env.root.SetPolicy(t.Context(), api.Policy{DeniedAAGUIDs: []string{assets.FormatAAGUID(otherModel)}}); err != nil {
		t.Fatal(err)
	}
	p := h.openProvisioning(env, "two.csv", "user01\nuser02\n")
	h.ui(func() { test.Tap(p.startBtn) })
	h.asked(p, "user01", 1, 2)
	denied := newTestKeyWith(t, 5, softkey.Config{AAGUID: otherModel})
	h.usb.plug(denied)
	h.eventually("the denied key refused", func() bool {
		return strings.HasPrefix(p.before.Text, "This key cannot be used and was not changed") ||
			strings.HasPrefix(p.said.Text, "This key cannot be used and was not changed")
	})
	h.usb.unplug(denied)
	h.feed(p, newTestKey(t, 1), "user01", 1, 2)
	h.asked(p, "user02", 2, 2)
	h.usb.plug(newTestKey(t, 2))
	h.ended(p)
	h.ui(func() {
		if p.summary.Text != "1 enrolled, 1 failed, 0 pending" || !p.retryBtn.Visible() || p.resumeBtn.Visible() {
			t.Errorf("summary %q, retry shown %v, start shown %v", p.summary.Text, p.retryBtn.Visible(), p.resumeBtn.Visible())
		}
		if r := p.row("user02"); !strings.HasPrefix(r.status(), "failed: ") {
			t.Errorf("user02: %q", r.status())
		}
	})
	if info, err := denied.key.Info(t.Context()); err != nil || info.PINSet() {
		t.Fatalf("the denied key was changed: %v", err)
	}

	if _, err := env.root.CreateUser(t.Context(), api.CreateUserRequest{Name: "user02"}); err != nil {
		t.Fatal(err)
	}
	h.ui(func() { test.Tap(p.retryBtn) })
	h.feed(p, newTestKey(t, 3), "user02", 2, 2)
	h.ended(p)
	h.ui(func() {
		if p.summary.Text != "2 enrolled, 0 failed, 0 pending" || p.outcome.Text != "Finished." {
			t.Errorf("after the retry: %q, %q", p.summary.Text, p.outcome.Text)
		}
	})
	for _, u := range []string{"user01", "user02"} {
		if keys := env.usableKeys(t, u); len(keys) != 1 {
			t.Errorf("%s has %d usable keys, want 1", u, len(keys))
		}
	}
}

// TestProvisioningStopAndResume: Stop while a key is being tested after
// its enrollment stops the run, said so; Start resumes it: the stopped
// attempt's key is revoked, the user enrolled again on a new key, and
// nobody ends with two usable keys.
func TestProvisioningStopAndResume(t *testing.T) {
	users := []string{"user01", "user02", "user03"}
	h, env, _ := newProvisioningHarness(t, users...)
	p := h.openProvisioning(env, "three.csv", strings.Join(users, "\n"))
	h.ui(func() { test.Tap(p.startBtn) })
	h.feed(p, newTestKey(t, 1), "user01", 1, 3)
	h.asked(p, "user02", 2, 3)
	k2 := newTestKey(t, 2)
	h.usb.plug(k2)
	step := func(s provision.Step) func() bool {
		return func() bool {
			return p.model.step != nil && p.model.step.User == "user02" && p.model.step.Step == s && p.touch.Text != ""
		}
	}
	h.eventually("user02's enrollment waits for the touch", step(provision.StepEnroll))
	h.eventually("k2 touched", func() bool { return k2.signal.Touch() > 0 })
	h.eventually("user02's test sign-in waits for the touch", step(provision.StepVerify))
	h.ui(func() { test.Tap(p.stopBtn) })
	h.ended(p)
	h.ui(func() {
		if p.outcome.Text != "Stopped — Start resumes where it stopped." || !p.resumeBtn.Visible() || p.retryBtn.Visible() {
			t.Errorf("stopped: %q, Start shown %v, Retry shown %v", p.outcome.Text, p.resumeBtn.Visible(), p.retryBtn.Visible())
		}
		if p.summary.Text != "1 enrolled, 0 failed, 2 pending" {
			t.Errorf("summary %q", p.summary.Text)
		}
	})
	h.usb.unplug(k2)

	h.ui(func() { test.Tap(p.resumeBtn) })
	h.feed(p, newTestKey(t, 4), "user02", 2, 3)
	h.feed(p, newTestKey(t, 3), "user03", 3, 3)
	h.ended(p)
	h.ui(func() {
		if p.summary.Text != "3 enrolled, 0 failed, 0 pending; 1 key of interrupted attempts revoked" {
			t.Errorf("summary %q", p.summary.Text)
		}
	})
	for _, u := range users {
		if keys := env.usableKeys(t, u); len(keys) != 1 {
			t.Errorf("%s has %d usable keys, want 1", u, len(keys))
		}
	}
	all, err := env.root.UserKeys(t.Context(), "user02")
	if err != nil || len(all) != 2 {
		t.Fatalf("user02's keys: %+v, %v", all, err)
	}
}

// TestProvisioningAsksBeforeResettingAUsedKey: a key with a PIN is reset
// only once the operator agrees in a dialog; then it is provisioned.
func TestProvisioningAsksBeforeResettingAUsedKey(t *testing.T) {
	h, env, _ := newProvisioningHarness(t, "user01")
	p := h.openProvisioning(env, "one.csv", "user01\n")
	h.ui(func() { test.Tap(p.startBtn) })
	h.asked(p, "user01", 1, 1)
	used := newTestKey(t, 1)
	if err := used.key.SetPIN(t.Context(), testPIN); err != nil {
		t.Fatal(err)
	}
	h.usb.plug(used)
	h.eventually("the reset question", func() bool { return p.resetDlg != nil && h.windowShows("Reset it and every later key") })
	h.ui(func() {
		want := "This key (Keydesk Software Key (virtual)) is in use (has a PIN). Reset it and every later key of this batch that is in use? Everything on them is erased."
		if p.resetMsg != want {
			t.Errorf("the question: %q", p.resetMsg)
		}
		p.resetDlg.Confirm()
	})
	h.touchUntil(p, used, "user01 enrolled", func() bool { return p.row("user01").state == provEnrolled })
	h.ended(p)
	if keys := env.usableKeys(t, "user01"); len(keys) != 1 {
		t.Errorf("user01 has %d usable keys", len(keys))
	}
	if err := used.key.ChangePIN(t.Context(), testPIN, "654321"); err == nil {
		t.Error("the old PIN still opens the key: it was not reset")
	}
}

// TestProvisioningSetUp: a CSV that cannot be used is said so and keeps
// Start off; the batch takes the CSV's name unless one was typed, and
// the results folder follows it unless one was chosen.
func TestProvisioningSetUp(t *testing.T) {
	h, env, base := newProvisioningHarness(t)
	p := h.openProvisioning(env, "bad.csv", "alice\nbob\nALICE\n")
	h.ui(func() {
		if want := `bad.csv cannot be used: users CSV line 3: "ALICE" is already on line 1. Correct the file and load it again.`; p.usersNote.Text != want {
			t.Errorf("bad CSV: %q", p.usersNote.Text)
		}
		if !p.startBtn.Disabled() || p.setupNote.Text != "Load the users to start." {
			t.Errorf("Start enabled %v, note %q", !p.startBtn.Disabled(), p.setupNote.Text)
		}
		p.load("march.csv", strings.NewReader("alice\n"))
		if p.batch.Text != "march" || p.usersNote.Text != "1 user read from march.csv: alice." || p.startBtn.Disabled() {
			t.Errorf("good CSV: batch %q, note %q", p.batch.Text, p.usersNote.Text)
		}
		p.batch.SetText("march/2")
		if p.dirLabel.Text != filepath.Join("~", "provisioning", "march_2") {
			t.Errorf("the folder does not follow the batch: %q", p.dirLabel.Text)
		}
		p.load("april.csv", strings.NewReader("bob\n"))
		if p.batch.Text != "march/2" {
			t.Errorf("a typed batch name was replaced by %q", p.batch.Text)
		}
		p.chooseDir(filepath.Join(base, "elsewhere"))
		p.batch.SetText("other")
		if p.dirLabel.Text != filepath.Join("~", "elsewhere") {
			t.Errorf("the chosen folder is not kept: %q", p.dirLabel.Text)
		}
		p.batch.SetText("")
		if !p.startBtn.Disabled() || p.setupNote.Text != "Give the batch a name to start." {
			t.Errorf("no batch name: Start enabled %v, note %q", !p.startBtn.Disabled(), p.setupNote.Text)
		}
	})
}

// pullableKey is a test key that can be pulled out in the middle of its
// enrollment: then it fails as a key gone from the USB port does.
type pullableKey struct {
	pluggedKey
	pulled *atomic.Bool
}

func (k pullableKey) MakeCredential(ctx context.Context, req platform.MakeCredentialRequest) (*platform.Attestation, error) {
	if k.pulled.Load() {
		return nil, &platform.Error{Op: "make credential", Kind: platform.ErrDeviceRemoved, RetriesLeft: -1}
	}
	return k.pluggedKey.MakeCredential(ctx, req)
}

// TestProvisioningAsksAboutAnotherKey: a key pulled out after its PIN
// was set is waited for; another key plugged in instead is not changed
// unless the operator says to start the user over on it.
func TestProvisioningAsksAboutAnotherKey(t *testing.T) {
	h, env, _ := newProvisioningHarness(t, "user01")
	p := h.openProvisioning(env, "one.csv", "user01\n")
	h.ui(func() { test.Tap(p.startBtn) })
	h.asked(p, "user01", 1, 1)
	first := newTestKey(t, 1)
	var pulled atomic.Bool
	pulled.Store(true)
	first.key = pullableKey{first.key.(pluggedKey), &pulled}
	h.usb.plug(first)
	h.eventually("asked to plug the first key back in", func() bool {
		return p.said.Text == "Plug user01's key back in to continue (1 of 1)."
	})
	h.usb.unplug(first)
	want := "This is not the key user01's provisioning started on. Start user01 over on this key (the first key's enrollment is revoked)?"
	other := newTestKey(t, 2)
	h.usb.plug(other)
	h.eventually("the question", func() bool { return p.wrongDlg != nil && h.windowShows("over on this key") })
	h.ui(func() {
		if p.wrongMsg != want {
			t.Errorf("the question: %q", p.wrongMsg)
		}
		p.wrongDlg.Dismiss()
	})
	h.eventually("told to plug the first key", func() bool {
		return strings.HasPrefix(p.before.Text, "This is not the key user01's provisioning started on; it was not changed.")
	})
	if info, err := other.key.Info(t.Context()); err != nil || info.PINSet() {
		t.Fatalf("the other key was changed: %v", err)
	}
	h.usb.unplug(other)
	third := newTestKey(t, 3)
	h.ui(func() { p.wrongDlg = nil })
	h.usb.plug(third)
	h.eventually("asked again", func() bool { return p.wrongDlg != nil && h.windowShows("over on this key") })
	h.ui(func() { p.wrongDlg.Confirm() })
	h.touchUntil(p, third, "user01 enrolled on the third key", func() bool { return p.row("user01").state == provEnrolled })
	h.ended(p)
	if keys := env.usableKeys(t, "user01"); len(keys) != 1 {
		t.Errorf("user01 has %d usable keys", len(keys))
	}
}

// TestProvisioningByKeyboard: Tab reaches every action of the set-up
// page and, once started, Stop.
func TestProvisioningByKeyboard(t *testing.T) {
	h, env, _ := newProvisioningHarness(t, "user01")
	p := h.openProvisioning(env, "one.csv", "user01\n")
	h.ui(func() {
		h.tabTo(p.loadBtn)
		h.tabTo(p.chooseBtn)
		h.tabTo(p.startBtn)
		h.press(fyne.KeySpace)
	})
	h.asked(p, "user01", 1, 1)
	h.ui(func() {
		h.tabTo(p.stopBtn)
		h.press(fyne.KeySpace)
	})
	h.ended(p)
	h.ui(func() {
		h.tabTo(p.resumeBtn)
		h.tabTo(p.setupBtn)
	})
}

// TestProvisioningNeverTakesTheVirtualKey: the batch's keys are the
// hardware ones; the virtual key the app lists when none is plugged in
// is never one of them.
func TestProvisioningNeverTakesTheVirtualKey(t *testing.T) {
	a, err := softkey.New(softkey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	usb := &usbPort{}
	keys := hardwareKeys{inprocess.WithFallback(usb, inprocess.New(a))}
	if devs, err := keys.Devices(t.Context()); err != nil || len(devs) != 0 {
		t.Fatalf("with no key plugged in: %v, %v", devs, err)
	}
	k := newTestKey(t, 1)
	usb.plug(k)
	if devs, err := keys.Devices(t.Context()); err != nil || len(devs) != 1 || devs[0].Path != k.dev.Path {
		t.Fatalf("with a key plugged in: %v, %v", devs, err)
	}
}

// TestProvisioningReadsEarlierResults: the results an earlier run wrote
// mark its users done, names a spreadsheet would run included.
func TestProvisioningReadsEarlierResults(t *testing.T) {
	dir := t.TempDir()
	if got := readEarlierResults(dir); got != nil {
		t.Fatalf("no results: %v", got)
	}
	var buf bytes.Buffer
	if err := provision.WriteResults(&buf, []provision.Result{
		{User: "=cmd", Model: "Key X", Status: provision.StatusEnrolled},
		{User: "bob", Status: provision.StatusFailed, Error: "broken"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, provision.ResultsFile), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got := readEarlierResults(dir)
	if r := got["=cmd"]; r.Status != provision.StatusEnrolled || r.Model != "Key X" {
		t.Errorf("=cmd: %+v", r)
	}
	if r := got["bob"]; r.Status != provision.StatusFailed || r.Error != "broken" {
		t.Errorf("bob: %+v", r)
	}
}

// TestFolderName: a batch name becomes a folder name on every system.
func TestFolderName(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"ShouldKeepAPlainName", "2026-11 laptops", "2026-11 laptops"},
		{"ShouldReplaceSeparators", "a/b\\c:d", "a_b_c_d"},
		{"ShouldNotStartWithADot", "..hidden.", "hidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := folderName(tt.in); got != tt.want {
				t.Errorf("folderName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestGoldenProvisioning: the set-up page with a CSV loaded, and the run
// page with the first user enrolled and the second's key waiting for its
// touch.
func TestGoldenProvisioning(t *testing.T) {
	users := []string{"user01", "user02", "user03"}
	h, env, _ := newProvisioningHarness(t, users...)
	p := h.openProvisioning(env, "2026-11 laptops.csv", "user\nuser01\nuser02\nuser03\n")
	h.assertScreen("provisioning_setup.png")
	h.ui(func() { test.Tap(p.startBtn) })
	h.feed(p, newTestKey(t, 1), "user01", 1, 3)
	h.asked(p, "user02", 2, 3)
	h.usb.plug(newTestKey(t, 2))
	h.eventually("user02's key waits for its touch", func() bool {
		return p.model.step != nil && p.model.step.Step == provision.StepEnroll && p.touch.Text != ""
	})
	h.assertScreen("provisioning_running.png")
}
