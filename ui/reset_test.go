package ui

import (
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/keydesk/keydesk/platform/softkey"
)

// resetKey is a key with the test PIN, a fingerprint and three passkeys,
// whose clock the test moves (the 10 seconds after power-up in which it
// accepts a reset).
func resetKey(t *testing.T, h *harness, touchTimeout time.Duration) (*testKey, *cord, *clock) {
	clk := newClock()
	k, c := h.newCordedKey(1, softkey.Config{Now: clk.now}, touchTimeout)
	setTestPIN(t, k)
	addFingerprint(t, k, "thumb")
	addPasskey(t, k, testPIN, "example.com", "Example", "alice", "Alice")
	addPasskey(t, k, testPIN, "example.com", "Example", "bob", "Bob")
	addPasskey(t, k, testPIN, "login.example", "", "carol", "Carol")
	return k, c, clk
}

// openReset opens the wizard and confirms it with "erase".
func (h *harness) openReset(d *keyDetail) *resetWizard {
	h.t.Helper()
	var w *resetWizard
	h.ui(func() {
		test.Tap(d.cards.reset.btn)
		w = d.cards.reset.wizard
		if w == nil {
			h.t.Fatal("no reset wizard")
		}
		test.Type(w.word, "erase")
		test.Tap(w.erase)
	})
	return w
}

// TestResetWizardWithReplug: the wizard names what will be lost (the
// passkeys counted when they were listed, the PIN, the fingerprints) and
// wants "erase" typed; then, the key being plugged in long ago, it asks
// for the re-plug, follows the unplug, counts the 10 seconds down once
// the key is back and waits for its touch, and ends with the key empty
// and its page alive again.
func TestResetWizardWithReplug(t *testing.T) {
	h := newHarness(t)
	k, _, clk := resetKey(t, h, 10*time.Second)
	d := h.openKey(k)
	h.ui(func() { test.Tap(d.cards.creds.load) })
	h.answerPIN(d, nil, testPIN)
	h.eventually("the passkeys listed", func() bool { return d.cards.creds.rps != nil && !d.cards.busy })
	clk.advance(11 * time.Second)

	var w *resetWizard
	h.ui(func() {
		test.Tap(d.cards.reset.btn)
		w = d.cards.reset.wizard
		for _, want := range []string{"every passkey on the key (3 passkeys for 2 sites)", "• its PIN", "• its fingerprints"} {
			if !strings.Contains(w.losses.Text, want) {
				t.Errorf("losses %q, want %q", w.losses.Text, want)
			}
		}
		if !w.erase.Disabled() {
			t.Error("erase enabled before the word is typed")
		}
		test.Type(w.word, "eras")
		if !w.erase.Disabled() {
			t.Error("erase enabled with \"eras\"")
		}
		test.Type(w.word, "e")
		if w.erase.Disabled() {
			t.Fatal("erase disabled with \"erase\" typed")
		}
		test.Tap(w.erase)
	})
	h.eventually("the re-plug asked", func() bool {
		return strings.Contains(w.now.Text, "unplug it now") && w.stepsBox.Visible() && w.steps[0].TextStyle.Bold
	})
	h.ui(func() {
		if h.shell.touch.visible() {
			t.Error("the touch sheet hides the wizard")
		}
	})
	h.usb.unplug(k)
	h.eventually("the unplug seen", func() bool {
		return w.now.Text == "Now plug the key back in." && strings.HasSuffix(w.steps[0].Text, "Done.")
	})
	k.engine.PowerCycle()
	h.usb.plug(k)
	h.eventually("the countdown", func() bool {
		return w.countdown.Visible() && strings.HasPrefix(w.now.Text, "Touch the key now: ") && strings.HasSuffix(w.now.Text, "seconds left.") &&
			w.steps[2].TextStyle.Bold
	})
	h.ui(func() {
		if v := w.countdown.Value; v <= 0.5 || v > 1 {
			t.Errorf("countdown at %v just after the re-plug", v)
		}
	})
	h.eventually("the key touched", func() bool { return k.signal.Touch() > 0 })
	h.eventually("the key empty", func() bool { return w.stage == resetEnded && w.succeeded })
	h.ui(func() {
		if !strings.HasPrefix(w.endText.Text, "The key is now empty") || w.close.Text != "Close" || w.again.Visible() {
			t.Errorf("end: %q, close %q, again shown %v", w.endText.Text, w.close.Text, w.again.Visible())
		}
	})
	h.eventually("the page alive again", func() bool {
		return !d.gone && d.info != nil && !d.info.PINSet() && d.fact("PIN") == "Not set yet" && d.cards.creds.setPIN.Visible() &&
			d.cards.creds.rps == nil && d.cards.pin == ""
	})
	h.ui(func() {
		test.Tap(w.close)
		if d.cards.reset.wizard != nil || d.cards.reset.btn.Disabled() {
			t.Error("closing the wizard did not give the page back")
		}
	})
	if i := keyInfo(t, k); i.PINSet() || i.RemainingDiscoverableCredentials != 25 || i.Options["bioEnroll"] {
		t.Errorf("after the reset: PIN %v, room %d, fingerprints %v", i.PINSet(), i.RemainingDiscoverableCredentials, i.Options["bioEnroll"])
	}
}

// TestResetWithinTheWindowAndFailures: a key plugged in just now is reset
// with a touch alone; cancelling, a touch that does not come and a
// re-plug that does not come each erase nothing and say what to do.
func TestResetWithinTheWindowAndFailures(t *testing.T) {
	h := newHarness(t)
	k, _, clk := resetKey(t, h, 300*time.Millisecond)
	d := h.openKey(k)
	d.cards.reset.replugWait = 400 * time.Millisecond

	// No touch in time.
	w := h.openReset(d)
	h.eventually("the touch asked", func() bool { return strings.HasPrefix(w.now.Text, "Touch the key now to confirm") })
	h.eventually("the touch timed out", func() bool { return w.stage == resetEnded })
	h.ui(func() {
		if !strings.HasPrefix(w.endText.Text, "The key was not touched in time, so nothing was erased") || !w.again.Visible() {
			t.Errorf("end: %q, again shown %v", w.endText.Text, w.again.Visible())
		}
		// Cancelled while the key waits.
		test.Tap(w.again)
	})
	h.eventually("the touch asked again", func() bool { return strings.HasPrefix(w.now.Text, "Touch the key now to confirm") })
	h.ui(func() { test.Tap(w.close) })
	h.eventually("cancelled", func() bool { return w.stage == resetEnded })
	h.ui(func() {
		if w.endText.Text != "Cancelled: nothing was erased." || w.again.Visible() {
			t.Errorf("end: %q, again shown %v", w.endText.Text, w.again.Visible())
		}
		test.Tap(w.close)
	})
	if !keyInfo(t, k).PINSet() {
		t.Fatal("the key was erased")
	}

	// The re-plug does not come.
	clk.advance(11 * time.Second)
	w = h.openReset(d)
	h.eventually("the re-plug asked", func() bool { return w.replugAsked })
	h.eventually("given up", func() bool { return w.stage == resetEnded })
	h.ui(func() {
		if !strings.HasPrefix(w.endText.Text, "The key was not plugged back in within") || !w.again.Visible() {
			t.Errorf("end: %q, again shown %v", w.endText.Text, w.again.Visible())
		}
		test.Tap(w.close)
	})

	// Within the window, touched.
	k.engine.PowerCycle()
	w = h.openReset(d)
	h.eventually("the touch asked", func() bool { return strings.HasPrefix(w.now.Text, "Touch the key now to confirm") })
	h.eventually("the key touched", func() bool { return k.signal.Touch() > 0 })
	h.eventually("the key empty", func() bool { return w.stage == resetEnded && w.succeeded })
	if keyInfo(t, k).PINSet() {
		t.Error("the key kept its PIN")
	}
}

// TestResetKeyUnpluggedMidReset: pulling the key out while it waits for
// the touch does not say it was reset: it says contact was lost, and how
// to check; the key keeps everything.
func TestResetKeyUnpluggedMidReset(t *testing.T) {
	h := newHarness(t)
	k, cord, _ := resetKey(t, h, 10*time.Second)
	d := h.openKey(k)
	w := h.openReset(d)
	h.eventually("the touch asked", func() bool { return strings.HasPrefix(w.now.Text, "Touch the key now to confirm") })
	cord.pull()
	h.eventually("the failure told", func() bool { return w.stage == resetEnded })
	h.ui(func() {
		if w.succeeded || !strings.HasPrefix(w.endText.Text, "Keydesk lost contact with the key before the key confirmed the reset") {
			t.Errorf("end: %q (succeeded %v)", w.endText.Text, w.succeeded)
		}
	})
	h.eventually("the page off", func() bool { return d.gone && d.cards.reset.btn.Disabled() })
	if i := keyInfo(t, k); !i.PINSet() || i.RemainingDiscoverableCredentials != 22 {
		t.Errorf("the key: PIN %v, room %d", i.PINSet(), i.RemainingDiscoverableCredentials)
	}
}

// TestGoldenResetConfirm: the wizard's first page, "erase" typed.
func TestGoldenResetConfirm(t *testing.T) {
	h := newHarness(t)
	k, _, _ := resetKey(t, h, 10*time.Second)
	d := h.openKey(k)
	h.ui(func() {
		test.Tap(d.cards.reset.btn)
		test.Type(d.cards.reset.wizard.word, "erase")
	})
	h.assertScreen("reset_confirm.png")
}
