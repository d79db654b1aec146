package ui

import (
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/rp/rptest"
)

// press sends a key to whatever has the focus.
func (h *harness) press(name fyne.KeyName) {
	h.t.Helper()
	f := h.shell.win.Canvas().Focused()
	if f == nil {
		h.t.Fatalf("nothing has the focus to press %s", name)
	}
	f.TypedKey(&fyne.KeyEvent{Name: name})
}

// tabTo moves the focus forward until it is on o (at most 50 steps).
func (h *harness) tabTo(o fyne.Focusable) {
	h.t.Helper()
	c := h.shell.win.Canvas()
	for range 50 {
		if c.Focused() == o {
			return
		}
		test.FocusNext(c)
	}
	h.t.Fatalf("Tab never reaches %T %v", o, describeFocusable(o))
}

func describeFocusable(o fyne.Focusable) string {
	if b, ok := o.(*widget.Button); ok {
		return b.Text
	}
	return ""
}

// TestKeyboardSetsAPIN: with the keyboard alone, a key's page is opened
// from the list, its PIN dialog opened, the PIN typed twice (the dialog
// focuses the first field) and submitted with Enter.
func TestKeyboardSetsAPIN(t *testing.T) {
	h := newHarness(t)
	k := newTestKey(t, 1)
	h.usb.plug(k)
	h.eventually("the key read", func() bool { return len(h.rows()) == 1 && h.keys().model.entries[0].info != nil })
	h.ui(func() {
		h.tabTo(h.keys().rows[0].open)
		h.press(fyne.KeySpace)
	})
	var d *keyDetail
	h.eventually("the key's page read", func() bool {
		d = h.keys().detail
		return d != nil && d.info != nil && d.info.PINRetries != 0 && !d.pinBtn.Disabled()
	})
	h.ui(func() {
		h.tabTo(d.pinBtn)
		h.press(fyne.KeySpace)
		if d.pin == nil || h.shell.win.Canvas().Focused() != d.pin.next {
			t.Fatal("the PIN dialog is not open with the new PIN focused")
		}
		test.Type(h.shell.win.Canvas().Focused(), "246810")
		test.FocusNext(h.shell.win.Canvas())
		if h.shell.win.Canvas().Focused() != d.pin.again {
			t.Fatal("Tab does not go to the second field")
		}
		test.Type(h.shell.win.Canvas().Focused(), "246810")
		h.press(fyne.KeyReturn)
	})
	h.eventually("the PIN set", func() bool { return d.pin == nil && strings.HasPrefix(d.fact("PIN"), "Set") })
	if err := k.key.ChangePIN(t.Context(), "246810", "135790"); err != nil {
		t.Errorf("the PIN typed on the keyboard is not the key's: %v", err)
	}
}

// TestKeyboardReachesEveryTab: each tab's main action can be reached with
// Tab from the tab's start.
func TestKeyboardReachesEveryTab(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv), withRecovery(&srv), withProfiles(filepath.Join(t.TempDir(), "profiles.json")))
	h.ui(func() {
		a := h.account()
		h.shell.selectTab("Account")
		h.tabTo(a.demoBtn)
		h.tabTo(a.signInKey)
		h.tabTo(a.signInCode)
		r := h.shell.recovery
		h.shell.selectTab("Recovery")
		h.tabTo(r.user)
		h.tabTo(r.phoneBtn)
		h.tabTo(r.code)
		h.tabTo(r.codeBtn)
		h.tabTo(r.grant)
		h.tabTo(r.grantBtn)
		h.shell.selectTab("Settings")
		h.tabTo(h.shell.settings.profiles.name)
		h.tabTo(h.shell.settings.profiles.add)
	})
}

// TestKeyboardReachesTheHelpdesk: a helpdesk member reaches the search,
// a user's page and its actions with Tab alone, and opens a user with the
// keyboard.
func TestKeyboardReachesTheHelpdesk(t *testing.T) {
	h, env := newHelpdeskHarness(t)
	h.signInAs(env, "hd1")
	hd := h.openHelpdesk()
	h.ui(func() {
		h.tabTo(hd.query)
		test.Type(hd.query, "alice")
		h.tabTo(hd.searchBtn)
		h.press(fyne.KeySpace)
	})
	h.eventually("results", func() bool { return !hd.model.busy && hd.model.searched && len(hd.rows) > 0 })
	h.ui(func() {
		h.tabTo(hd.rows[0].open)
		h.press(fyne.KeySpace)
	})
	h.eventually("alice's page", func() bool { return hd.model.user != nil && !hd.model.busy })
	h.ui(func() {
		h.tabTo(hd.enrollBtn)
		h.tabTo(hd.recoveryBtn)
	})
}

// TestKeyboardAnswersThePINAndRenames: the PIN a sign-in asks for is
// typed where the dialog puts the focus and sent with Enter; a key is
// renamed by typing its new name and pressing Enter.
func TestKeyboardAnswersThePINAndRenames(t *testing.T) {
	h, a, k := pinSignIn(t)
	h.ui(func() {
		p := h.shell.pinPrompt
		if h.shell.win.Canvas().Focused() != p.entry {
			t.Fatal("the PIN dialog does not put the focus on its entry")
		}
		test.Type(p.entry, "123456")
		h.press(fyne.KeyReturn)
	})
	h.touchWhenAsked(k)
	h.eventually("signed in", func() bool {
		return a.model.me != nil && a.model.me.Scope == "full" && len(a.model.keys) == 1 && !a.model.busy
	})

	h.ui(func() {
		a.askRename(a.model.keys[0])
		c := h.shell.win.Canvas()
		c.Focus(a.renameEntry)
		a.renameEntry.SetText("")
		test.Type(a.renameEntry, "desk key")
		h.press(fyne.KeyReturn)
	})
	h.eventually("renamed with Enter", func() bool {
		return !a.model.busy && len(a.model.keys) == 1 && a.model.keys[0].Nickname == "desk key"
	})
}
