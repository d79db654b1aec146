package ui

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/models"
	"github.com/keydesk/keydesk/enroll/profile"
	"github.com/keydesk/keydesk/enroll/provision"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/rp/rptest"
)

// withService gives the window an Account tab on a reference RP started
// for the test (root bootstrapped, its enrollment code the demo's).
func withService(srv **rptest.Server) harnessOption {
	return func(h *harness, d *Deps) {
		s := rptest.StartServer(h.t, rptest.ServerOptions{})
		*srv = s
		withServiceAt(h, d, s)
	}
}

// withServiceAt is withService on a server the test started.
func withServiceAt(h *harness, d *Deps, s *rptest.Server) {
	d.Service = Service{Name: "Test service", Origin: "https://localhost", DemoUser: "root", DemoCode: s.Code}
	api, err := rpclient.New(rpclient.Config{BaseURL: s.URL, RetryBackoff: 5 * time.Millisecond})
	if err != nil {
		h.t.Fatal(err)
	}
	h.api = api
	d.Models = models.New(api, 0).Model
	d.NewAccount = func(ui enroll.UI) (Account, error) {
		o, err := webauthn.ParseOrigin("https://localhost")
		if err != nil {
			return nil, err
		}
		return enroll.New(enroll.Config{Profile: "test", Origin: o, RPID: "localhost", API: api, Tokens: &profile.Memory{}, UI: ui})
	}
}

// account is the Account tab, shown.
func (h *harness) account() *accountScreen {
	h.t.Helper()
	if h.shell.account == nil {
		h.t.Fatal("no Account tab")
	}
	return h.shell.account
}

// touchWhenAsked touches k as soon as it waits, from the test's side.
func (h *harness) touchWhenAsked(k *testKey) {
	h.t.Helper()
	h.eventually("the touch sheet for "+k.dev.Product, func() bool { return h.shell.touch.visible() })
	h.eventually(k.dev.Product+" touched", func() bool { return k.signal.Touch() > 0 })
	h.eventually("the touch sheet gone", func() bool { return !h.shell.touch.visible() })
}

// accountKeys are the account's keys as the list shows them.
func (a *accountScreen) rows() []string {
	var out []string
	for _, k := range a.model.keys {
		out = append(out, keyTitle(k))
	}
	return out
}

// key is the account's key named nickname (keys enrolled in the same
// instant of the server's clock come in no fixed order).
func (a *accountScreen) key(nickname string) enroll.Key {
	for _, k := range a.model.keys {
		if k.Nickname == nickname {
			return k
		}
	}
	panic("no key " + nickname)
}

// TestAccountJourney: the demo account enrolls its first key with its
// code (wizard, touch), signs in with it, enrolls a second, renames one
// and revokes the other; the last key cannot be revoked; the keys
// plugged in are marked.
func TestAccountJourney(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv))
	blue, green := newTestKey(t, 1), newTestKey(t, 2)
	h.usb.plug(blue)
	h.eventually("blue read", func() bool { return len(h.rows()) == 1 && h.keys().model.entries[0].info != nil })
	a := h.account()
	h.ui(func() {
		if a.model.me != nil || a.demoBtn == nil {
			t.Fatal("signed in at start, or no demo card")
		}
		test.Tap(a.demoBtn)
	})
	h.eventually("the wizard, signed in with the code", func() bool {
		return a.enroll != nil && a.model.me != nil && a.model.me.Scope == "register"
	})
	w := a.enroll
	h.ui(func() {
		if w.nickname.Text != "Keydesk Software Key (virtual)" || w.keySel.SelectedIndex() != 0 {
			t.Errorf("wizard defaults: name %q, key %d", w.nickname.Text, w.keySel.SelectedIndex())
		}
		w.nickname.SetText("")
		test.Tap(w.enrollBtn)
		if !w.problem.Visible() || !strings.Contains(w.problem.Text, "name") {
			t.Errorf("no name: problem %q", w.problem.Text)
		}
		w.nickname.SetText("blue")
		test.Tap(w.enrollBtn)
	})
	h.touchWhenAsked(blue)
	h.eventually("blue enrolled", func() bool { return w.enrolled != nil && w.doneBox.Visible() })
	h.ui(func() {
		if !strings.Contains(w.doneText.Text, `"blue" is enrolled`) || !w.signIn.Visible() {
			t.Errorf("done: %q, sign-in offered %v", w.doneText.Text, w.signIn.Visible())
		}
		test.Tap(w.signIn)
	})
	h.touchWhenAsked(blue)
	h.eventually("signed in with blue, its keys listed", func() bool {
		return a.model.me != nil && a.model.me.Scope == "full" && len(a.model.keys) == 1 && !a.model.busy
	})
	h.ui(func() {
		if got := a.rows(); got[0] != "blue  • plugged in now" {
			t.Errorf("keys: %q", got)
		}
	})

	// A second key, chosen in the wizard among two.
	h.usb.plug(green)
	h.eventually("green read", func() bool { return len(h.rows()) == 2 && h.keys().model.entries[1].info != nil })
	h.ui(func() {
		test.Tap(a.enrollBtn)
		w = a.enroll
		w.keySel.SetSelectedIndex(1)
		w.nickname.SetText("green")
		test.Tap(w.enrollBtn)
	})
	h.touchWhenAsked(green)
	h.eventually("green enrolled and listed", func() bool { return w.enrolled != nil && len(a.model.keys) == 2 && !a.model.busy })
	h.ui(func() {
		if w.signIn.Visible() {
			t.Error("a full session is offered to sign in again")
		}
		test.Tap(w.close)
	})

	// Rename green.
	h.ui(func() {
		a.askRename(a.key("green"))
		a.renameEntry.SetText("green key")
		a.renameDlg.Submit()
	})
	h.eventually("green renamed", func() bool {
		r := a.rows()
		return !a.model.busy && len(r) == 2 && slices.Contains(r, "green key  • plugged in now")
	})

	// Revoke blue (lost), once unplugged.
	h.usb.unplug(blue)
	h.eventually("blue unplugged", func() bool { return len(h.rows()) == 1 })
	h.ui(func() {
		a.askRevoke(a.key("blue"))
		a.revokeReason.SetSelected("stolen")
		a.revokeDlg.Confirm()
	})
	h.eventually("blue revoked", func() bool {
		r := a.rows()
		return !a.model.busy && len(r) == 2 && slices.Contains(r, "blue  (revoked)")
	})
	h.ui(func() {
		if got := keyDetailLine(a.key("blue")); !strings.Contains(got, "revoked: stolen") {
			t.Errorf("blue's line: %q", got)
		}
		// The last usable key is guarded by the service: said plainly.
		a.askRevoke(a.key("green key"))
		a.revokeDlg.Confirm()
	})
	h.eventually("the last key refused", func() bool {
		return !a.model.busy && strings.Contains(a.status.Text, "last usable key")
	})

	// Sign out, then the service out of reach.
	h.ui(func() { a.signOut() })
	h.eventually("signed out", func() bool { return !a.model.busy && a.model.me == nil })
	srv.HTTP.Close()
	h.ui(func() {
		a.user.SetText("root")
		test.Tap(a.signInKey)
	})
	h.eventually("the service unreachable", func() bool {
		return !a.model.busy && strings.Contains(a.status.Text, "could not reach")
	})
}

// enrollDemoKey plugs k in and enrolls it in the demo account with the
// Account tab's wizard (its first key: no sign-in yet).
func (h *harness) enrollDemoKey(k *testKey) *accountScreen {
	h.t.Helper()
	h.usb.plug(k)
	h.eventually("the key read", func() bool { return len(h.rows()) == 1 && h.keys().model.entries[0].info != nil })
	a := h.account()
	h.ui(func() { test.Tap(a.demoBtn) })
	h.eventually("the wizard", func() bool { return a.enroll != nil })
	h.ui(func() { test.Tap(a.enroll.enrollBtn) })
	h.touchWhenAsked(k)
	h.eventually("enrolled", func() bool { return a.enroll.enrolled != nil })
	return a
}

// pinSignIn enrolls a key in the demo account, gives it the PIN 123456
// and signs in with it from the wizard, up to the PIN dialog.
func pinSignIn(t *testing.T) (*harness, *accountScreen, *testKey) {
	t.Helper()
	var srv *rptest.Server
	h := newHarness(t, withService(&srv))
	k := newTestKey(t, 1)
	a := h.enrollDemoKey(k)
	if err := k.key.SetPIN(t.Context(), "123456"); err != nil {
		t.Fatal(err)
	}
	h.ui(func() { test.Tap(a.enroll.signIn) })
	h.eventually("the PIN asked", func() bool { return h.shell.pinPrompt != nil })
	return h, a, k
}

// TestAccountSignInAsksForThePIN: a key with a PIN is asked for it in a
// dialog; a wrong PIN asks again with the tries left; Cancel stops.
func TestAccountSignInAsksForThePIN(t *testing.T) {
	h, a, k := pinSignIn(t)
	h.ui(func() {
		test.Type(h.shell.pinPrompt.entry, "000000")
		test.Tap(h.shell.pinPrompt.ok)
	})
	var again *pinPrompt
	h.eventually("asked again after a wrong PIN", func() bool {
		again = h.shell.pinPrompt
		return again != nil && again.entry.Text == ""
	})
	h.ui(func() {
		if !strings.Contains(again.dlgText(), "7 tries are left") {
			t.Errorf("second ask says %q", again.dlgText())
		}
		test.Type(again.entry, "123456")
		test.Tap(again.ok)
	})
	h.touchWhenAsked(k)
	h.eventually("signed in", func() bool { return a.model.me != nil && a.model.me.Scope == "full" && !a.model.busy })
}

// withHelpdeskTab gives the window a Helpdesk tab on withService's
// client, as cmd/keydesk does (after withService).
func withHelpdeskTab() harnessOption {
	return func(h *harness, d *Deps) {
		if h.api == nil {
			h.t.Fatal("withHelpdeskTab needs withService first")
		}
		d.Helpdesk = func() Helpdesk { return h.api }
	}
}

// withProvisioningTab gives the window a Provisioning tab on
// withService's client, as cmd/keydesk does (after withService).
func withProvisioningTab() harnessOption {
	return func(h *harness, d *Deps) {
		if h.api == nil {
			h.t.Fatal("withProvisioningTab needs withService first")
		}
		origin, err := webauthn.ParseOrigin("https://localhost")
		if err != nil {
			h.t.Fatal(err)
		}
		d.Provisioning = func() provision.Config { return provision.Config{API: h.api, Origin: origin, RPID: "localhost"} }
		d.ProvisioningDir = filepath.Join(h.t.TempDir(), "provisioning")
	}
}

// TestAccountShowsTheServicesNotice: a notice about the service (no
// keyring: sessions end with the window) is on the Account tab from the
// start; without one, nothing takes its room.
func TestAccountShowsTheServicesNotice(t *testing.T) {
	var srv *rptest.Server
	const notice = "No keyring is available: you will have to sign in again next time Keydesk starts."
	h := newHarness(t, withService(&srv), func(_ *harness, d *Deps) { d.Service.Notice = notice })
	h.ui(func() {
		if a := h.account(); !a.notice.Visible() || a.notice.Text != notice {
			t.Errorf("notice %q (shown %v)", a.notice.Text, a.notice.Visible())
		}
	})
	h2 := newHarness(t, withService(&srv))
	h2.ui(func() {
		if h2.account().notice.Visible() {
			t.Error("an empty notice is shown")
		}
	})
}

// TestTouchSheetGoesAtTheTouch: with a slow service, the touch sheet goes
// as soon as the key is touched, while the flow still waits for the
// service, not when the service answers.
func TestTouchSheetGoesAtTheTouch(t *testing.T) {
	release := make(chan struct{})
	slow := func(h *harness, d *Deps) {
		s := rptest.StartServer(h.t, rptest.ServerOptions{Wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/registration/finish") {
					<-release
				}
				next.ServeHTTP(w, r)
			})
		}})
		withServiceAt(h, d, s)
	}
	h := newHarness(t, slow)
	defer close(release)
	k := newTestKey(t, 1)
	h.usb.plug(k)
	h.eventually("the key read", func() bool { return len(h.rows()) == 1 && h.keys().model.entries[0].info != nil })
	a := h.account()
	h.ui(func() { test.Tap(a.demoBtn) })
	h.eventually("the wizard", func() bool { return a.enroll != nil && !a.model.busy })
	h.ui(func() { test.Tap(a.enroll.enrollBtn) })
	h.eventually("the touch sheet", func() bool { return h.shell.touch.visible() })
	h.eventually("key touched", func() bool { return k.signal.Touch() > 0 })
	h.eventually("the sheet gone while the service is still asked", func() bool {
		return !h.shell.touch.visible() && a.enroll.busy
	})
}
