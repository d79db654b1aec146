package ui

import (
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/rptest"
)

// The dialogs' flows with the keyboard alone: Tab (h.tabTo) moves the
// focus, Space presses the button that has it, Return submits the field
// that has it, and text goes to the focused field. Only the hardware
// (plugging, unplugging, touching a key) is the harness's. Fyne's dialogs
// do not close on Escape: their Cancel is reached with Tab.

// focused is what has the focus, the top dialog's or the window's (UI
// goroutine).
func (h *harness) focused() fyne.Focusable {
	h.t.Helper()
	f := h.shell.win.Canvas().Focused()
	if f == nil {
		h.t.Fatal("nothing has the focus to type into")
	}
	return f
}

// typeText types s where the focus is, as a person does (UI goroutine).
func (h *harness) typeText(s string) { test.Type(h.focused(), s) }

// eachShown calls f on o and on everything shown inside it, widgets'
// insides included.
func eachShown(o fyne.CanvasObject, f func(fyne.CanvasObject)) {
	if o == nil || !o.Visible() {
		return
	}
	f(o)
	switch w := o.(type) {
	case *fyne.Container:
		for _, c := range w.Objects {
			eachShown(c, f)
		}
	case fyne.Widget:
		for _, c := range test.WidgetRenderer(w).Objects() {
			eachShown(c, f)
		}
	}
}

// dialogButton is the button labelled text in the dialog on top (UI
// goroutine): for the buttons Fyne's dialogs make themselves.
func (h *harness) dialogButton(text string) *widget.Button {
	h.t.Helper()
	var found *widget.Button
	eachShown(h.shell.win.Canvas().Overlays().Top(), func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == text && found == nil {
			found = b
		}
	})
	if found == nil {
		h.t.Fatalf("no %q button in the dialog on top", text)
	}
	return found
}

// revokeButton is the Revoke… button of the key nickname's row in the
// account's list (UI goroutine).
func (a *accountScreen) revokeButton(t *testing.T, nickname string) *widget.Button {
	t.Helper()
	title := keyTitle(a.key(nickname))
	var found *widget.Button
	eachShown(a.list, func(o fyne.CanvasObject) {
		// A row is a border: its texts, then its picture and buttons.
		row, ok := o.(*fyne.Container)
		if !ok || len(row.Objects) != 3 {
			return
		}
		texts, ok1 := row.Objects[0].(*fyne.Container)
		buttons, ok2 := row.Objects[2].(*fyne.Container)
		if !ok1 || !ok2 || len(texts.Objects) != 2 || len(buttons.Objects) != 2 || !buttons.Visible() {
			return
		}
		if l, ok := texts.Objects[0].(*widget.Label); ok && l.Text == title {
			found, _ = buttons.Objects[1].(*widget.Button)
		}
	})
	if found == nil || found.Text != "Revoke…" {
		t.Fatalf("no Revoke… button shown for %s", nickname)
	}
	return found
}

// enrollAnother enrolls k, plugged in now, in the signed-in account under
// nickname with the Account tab's wizard.
func (h *harness) enrollAnother(a *accountScreen, k *testKey, nickname string) {
	h.t.Helper()
	h.plugAndRead(k)
	var w *enrollWizard
	h.ui(func() {
		test.Tap(a.enrollBtn)
		w = a.enroll
		w.keySel.SetSelectedIndex(slices.IndexFunc(w.devs, func(d platform.Device) bool { return d.Path == k.dev.Path }))
		w.nickname.SetText(nickname)
		test.Tap(w.enrollBtn)
	})
	h.touchWhenAsked(k)
	h.eventually(nickname+" enrolled and listed", func() bool {
		return w.enrolled != nil && !a.model.busy && slices.ContainsFunc(a.model.keys, func(e enroll.Key) bool { return e.Nickname == nickname })
	})
	h.ui(func() { test.Tap(w.close) })
}

// TestKeyboardRevokesALostKey: with the keyboard alone, the Revoke…
// button of a lost key's row is reached and pressed; in its dialog Cancel
// revokes nothing; the reason is changed with the arrow keys and Revoke
// pressed; the service wanting a fresh sign-in, the other key is touched;
// the key is revoked at the service, with that reason, and shown revoked.
// The last usable key, revoked the same way, is refused and said so.
func TestKeyboardRevokesALostKey(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv))
	blue, green := newTestKey(t, 1), newTestKey(t, 2)
	a := h.signedInWithKey(blue)
	var lost string // blue's name, the wizard's default
	h.ui(func() { lost = a.model.keys[0].Nickname })
	h.enrollAnother(a, green, "green")
	h.usb.unplug(blue)
	h.eventually("blue unplugged", func() bool { return len(h.rows()) == 1 })
	// Some time later: revoking needs a fresh sign-in.
	srv.Clock.Advance(10 * time.Minute)

	h.ui(func() {
		h.shell.selectTab("Account")
		h.tabTo(a.revokeButton(t, lost))
		h.press(fyne.KeySpace)
		if a.revokeDlg == nil {
			t.Fatal("Space on Revoke… opened no dialog")
		}
		h.tabTo(h.dialogButton("Cancel"))
		h.press(fyne.KeySpace)
		if h.shell.win.Canvas().Overlays().Top() != nil {
			t.Fatal("Cancel left the dialog up")
		}
	})
	h.ui(func() {
		if a.model.busy || a.key(lost).RevokedAt != nil {
			t.Fatal("Cancel revoked the key")
		}
		h.tabTo(a.revokeButton(t, lost))
		h.press(fyne.KeySpace)
		h.tabTo(a.revokeReason)
		h.press(fyne.KeyRight)
		if a.revokeReason.Selected != "stolen" {
			t.Fatalf("the arrow key chose %q", a.revokeReason.Selected)
		}
		h.tabTo(h.dialogButton("Revoke"))
		h.press(fyne.KeySpace)
	})
	h.touchWhenAsked(green) // the fresh sign-in
	h.eventually("blue shown revoked", func() bool {
		return !a.model.busy && slices.Contains(a.rows(), lost+"  (revoked)")
	})
	if ks := rootKeys(t, srv, green); ks[lost].RevokedAt == nil || ks[lost].RevokeReason != "stolen" || ks["green"].RevokedAt != nil {
		t.Errorf("at the service: blue revoked %v (%q), green revoked %v", ks[lost].RevokedAt != nil, ks[lost].RevokeReason, ks["green"].RevokedAt != nil)
	}

	// The last usable key is guarded.
	h.ui(func() {
		h.tabTo(a.revokeButton(t, "green"))
		h.press(fyne.KeySpace)
		h.tabTo(h.dialogButton("Revoke"))
		h.press(fyne.KeySpace)
	})
	h.eventually("the last key refused", func() bool {
		return !a.model.busy && strings.Contains(a.status.Text, "last usable key")
	})
	if ks := rootKeys(t, srv, green); ks["green"].RevokedAt != nil {
		t.Error("the last usable key was revoked")
	}
}

// TestKeyboardResetsAKey: with the keyboard alone, the reset wizard is
// opened from the key's page with its field focused; Return with a word
// other than "erase" does nothing, and Cancel closes it; "erase" and
// Return start the reset with the focus on Cancel, which Space presses to
// stop it; then, the key plugged in long ago, the reset is started again,
// the key unplugged, plugged back in and touched: it is empty (its PIN
// gone), Return on the last page does not start another reset, and Space
// closes the wizard.
func TestKeyboardResetsAKey(t *testing.T) {
	h := newHarness(t)
	k, _, clk := resetKey(t, h, 10*time.Second)
	d := h.openKey(k)

	// open opens the wizard with the keyboard, "erase" typed as word.
	open := func(word string) *resetWizard {
		t.Helper()
		var w *resetWizard
		h.ui(func() {
			h.tabTo(d.cards.reset.btn)
			h.press(fyne.KeySpace)
			if w = d.cards.reset.wizard; w == nil {
				t.Fatal("Space on the reset button opened no wizard")
			}
			if h.focused() != w.word {
				t.Fatal("the wizard does not put the focus in its field")
			}
			h.typeText(word)
			h.press(fyne.KeyReturn)
		})
		return w
	}

	w := open("eras")
	h.ui(func() {
		if w.stage != resetConfirming || !w.erase.Disabled() {
			t.Fatal("Return started the reset without the word")
		}
		h.tabTo(w.close)
		h.press(fyne.KeySpace)
		if d.cards.reset.wizard != nil {
			t.Fatal("Cancel did not close the wizard")
		}
	})

	w = open("erase")
	h.eventually("the touch asked", func() bool { return strings.HasPrefix(w.now.Text, "Touch the key now to confirm") })
	h.ui(func() {
		if h.focused() != w.close || w.close.Text != "Cancel" {
			t.Fatal("the running reset does not put the focus on Cancel")
		}
		h.press(fyne.KeySpace)
	})
	h.eventually("cancelled", func() bool { return w.stage == resetEnded })
	h.ui(func() {
		if w.endText.Text != "Cancelled: nothing was erased." || h.focused() != w.close {
			t.Fatalf("after Cancel: %q, the focus on Close %v", w.endText.Text, h.focused() == w.close)
		}
		h.press(fyne.KeySpace)
		if d.cards.reset.wizard != nil {
			t.Fatal("Close did not close the wizard")
		}
	})
	if !keyInfo(t, k).PINSet() {
		t.Fatal("a cancelled reset erased the key")
	}

	clk.advance(11 * time.Second)
	w = open("erase")
	h.eventually("the re-plug asked", func() bool { return w.replugAsked && w.stepsBox.Visible() })
	h.usb.unplug(k)
	h.eventually("the unplug seen", func() bool { return w.unplugged })
	k.engine.PowerCycle()
	h.usb.plug(k)
	h.eventually("the countdown", func() bool { return w.countdown.Visible() })
	h.eventually("the key touched", func() bool { return k.signal.Touch() > 0 })
	h.eventually("the key empty", func() bool { return w.stage == resetEnded && w.succeeded })
	h.ui(func() {
		if h.focused() != w.close || w.close.Text != "Close" {
			t.Fatal("the last page does not put the focus on Close")
		}
		h.press(fyne.KeyReturn)
		if w.stage != resetEnded || d.cards.reset.wizard != w {
			t.Fatal("Return on the last page started another reset, or closed the wizard")
		}
		h.press(fyne.KeySpace)
		if d.cards.reset.wizard != nil {
			t.Fatal("Close did not close the wizard")
		}
	})
	h.eventually("the page shows no PIN", func() bool { return d.info != nil && d.fact("PIN") == "Not set yet" })
	if keyInfo(t, k).PINSet() {
		t.Error("the key kept its PIN")
	}
}

// TestKeyboardMakesAndUsesRecoveryCodes: with the keyboard alone, the
// recovery codes dialog is opened, a set made, copied (the focus is on
// Copy once they show) and closed; a new set, some minutes later, is
// confirmed with Yes and a fresh sign-in (a touch); then, the key lost,
// one of the new codes is typed on the Recovery tab and sent with Return,
// the new key named in the field that has the focus, the lost key ticked
// with Space, and the recovery run and closed: the lost key is revoked at
// the service, the new one enrolled, and the code used up.
func TestKeyboardMakesAndUsesRecoveryCodes(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv), withRecovery(&srv))
	blue, green := newTestKey(t, 1), newTestKey(t, 2)
	a := h.signedInWithKey(blue)
	var lost string // blue's name, the wizard's default
	h.ui(func() { lost = a.model.keys[0].Nickname })

	// makeCodes opens the dialog, makes a set (confirming a replacement
	// with Yes when asked, touching blue when the service wants a fresh
	// sign-in), copies it and closes the dialog; it returns the codes.
	makeCodes := func(replace bool) []string {
		t.Helper()
		h.ui(func() {
			h.shell.selectTab("Account")
			h.tabTo(a.codesBtn)
			h.press(fyne.KeySpace)
		})
		h.eventually("the codes' status", func() bool { return a.codes != nil && !a.codes.make.Disabled() })
		c := a.codes
		h.ui(func() {
			h.tabTo(c.make)
			h.press(fyne.KeySpace)
			if replace {
				if a.codesConfirm == nil {
					t.Fatal("replacing working codes asks nothing")
				}
				h.tabTo(h.dialogButton("Yes"))
				h.press(fyne.KeySpace)
			}
		})
		if replace {
			h.touchWhenAsked(blue)
		}
		h.eventually("the codes shown", func() bool { return c.codes.Visible() })
		var codes []string
		h.ui(func() {
			codes = strings.Split(c.codes.Text, "\n")
			if h.focused() != c.copyAll {
				t.Fatal("the codes shown, the focus is not on Copy")
			}
			h.press(fyne.KeySpace)
			if h.app.Clipboard().Content() != c.codes.Text {
				t.Error("Space on Copy did not copy the codes")
			}
			h.tabTo(c.done)
			h.press(fyne.KeySpace)
			if a.codes != nil || c.codes.Text != "" {
				t.Error("the dialog did not close and forget the codes")
			}
		})
		if len(codes) != 10 {
			t.Fatalf("%d codes shown", len(codes))
		}
		return codes
	}
	makeCodes(false)
	srv.Clock.Advance(10 * time.Minute)
	codes := makeCodes(true)

	// Blue is lost; green replaces it.
	h.usb.unplug(blue)
	h.plugAndRead(green)
	r := h.shell.recovery
	h.ui(func() {
		h.shell.selectTab("Recovery")
		h.tabTo(r.code)
		h.typeText(codes[3])
		h.press(fyne.KeyReturn)
	})
	h.eventually("the replacement page with green", func() bool {
		i := r.keySel.SelectedIndex()
		return r.page() == r.replacePage && i >= 0 && i < len(r.model.devs) && r.model.devs[i].Path == green.dev.Path
	})
	h.ui(func() {
		if h.focused() != r.nickname {
			t.Fatal("the replacement page does not put the focus on the name")
		}
		h.focused().(fyne.Shortcutable).TypedShortcut(&fyne.ShortcutSelectAll{})
		h.typeText("green")
		h.press(fyne.KeyReturn)
	})
	h.eventually("the lost keys asked", func() bool { return r.page() == r.lostPage })
	h.ui(func() {
		if !slices.Equal(r.lostTitles(), []string{lost}) || h.focused() != r.lostChecks[0] {
			t.Fatalf("lost keys %q, the focus on the first %v", r.lostTitles(), h.focused() == r.lostChecks[0])
		}
		h.typeText(" ") // Space ticks a check
		if !r.lostChecks[0].Checked {
			t.Fatal("Space did not tick blue")
		}
		h.tabTo(r.lostOK)
		h.press(fyne.KeySpace)
	})
	h.touchWhenAsked(green)
	h.eventually("the summary", func() bool { return r.page() == r.donePage })
	h.ui(func() {
		if r.doneHead.Text != "Your account is recovered" || h.focused() != r.doneBtn {
			t.Fatalf("summary %q, the focus on Done %v", r.doneHead.Text, h.focused() == r.doneBtn)
		}
		h.press(fyne.KeySpace)
		if r.page() != r.startScroll {
			t.Error("Done did not go back to the first page")
		}
	})
	if ks := rootKeys(t, srv, green); ks[lost].RevokedAt == nil || ks["green"].ID == "" || ks["green"].RevokedAt != nil {
		t.Errorf("at the service: blue revoked %v, green enrolled %v", ks[lost].RevokedAt != nil, ks["green"].ID != "")
	}
	if redeems(t, srv, codes[3]) {
		t.Error("the code typed still works")
	}
}
