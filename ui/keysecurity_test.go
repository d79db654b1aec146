package ui

import (
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// TestSecuritySettings: always-verify shows its state and turns on; the
// minimum PIN length says it can only be raised and is raised, offering
// only higher values; forcing a new PIN asks first, then the key refuses
// its PIN until it is changed. The PIN is asked once for the first two.
func TestSecuritySettings(t *testing.T) {
	h := newHarness(t)
	k, _ := h.newCordedKey(1, softkey.Config{}, 10*time.Second)
	setTestPIN(t, k)
	d := h.openKey(k)
	c := d.cards.security
	h.ui(func() {
		if !c.card.Visible() || c.note.Visible() || !c.minBox.Visible() || !c.forceBox.Visible() || !c.uvBox.Visible() {
			t.Fatal("a CTAP 2.1 key does not show every setting")
		}
		if !strings.HasPrefix(c.uvNow.Text, "Off") || c.uvToggle.Text != "Turn it on" {
			t.Errorf("always-verify: %q, button %q", c.uvNow.Text, c.uvToggle.Text)
		}
		test.Tap(c.uvToggle)
	})
	h.answerPIN(d, nil, testPIN)
	h.eventually("always-verify on", func() bool {
		return !d.cards.busy && d.info.Options["alwaysUv"] && c.uvToggle.Text == "Turn it off" && c.status.Text == "Always-verify is on."
	})
	if !keyInfo(t, k).Options["alwaysUv"] {
		t.Error("the key's alwaysUv is off")
	}
	h.ui(func() {
		if !strings.Contains(c.minNow.Text, "at least 4 characters") || !strings.Contains(c.minNow.Text, "can only be raised") {
			t.Errorf("minimum: %q", c.minNow.Text)
		}
		if c.minSel.Options[0] != "5" || !c.minRaise.Disabled() {
			t.Errorf("options %q, raise disabled %v before a choice", c.minSel.Options, c.minRaise.Disabled())
		}
		c.minSel.SetSelected("6")
		test.Tap(c.minRaise)
	})
	h.eventually("the minimum raised", func() bool {
		return !d.cards.busy && d.info.MinPINLength == 6 && strings.Contains(c.minNow.Text, "at least 6")
	})
	h.ui(func() {
		if c.minSel.Options[0] != "7" || c.minSel.Selected != "" {
			t.Errorf("after raising: options %q, selected %q", c.minSel.Options, c.minSel.Selected)
		}
		if d.cards.asks != 1 {
			t.Errorf("the PIN was asked %d times, want once", d.cards.asks)
		}
		test.Tap(c.force)
		c.confirm.Confirm()
	})
	h.eventually("a new PIN required", func() bool {
		return !d.cards.busy && d.info.ForcePINChange && c.force.Disabled() && strings.Contains(c.forceTxt.Text, "already required")
	})
	h.ui(func() {
		if d.cards.pin != "" {
			t.Error("the page keeps a PIN the key now refuses")
		}
		if got := d.fact("PIN"); !strings.Contains(got, "must be changed") {
			t.Errorf("PIN row %q", got)
		}
	})
	if i := keyInfo(t, k); i.MinPINLength != 6 || !i.ForcePINChange {
		t.Errorf("the key: minimum %d, force change %v", i.MinPINLength, i.ForcePINChange)
	}
}

// TestSecurityWrongPINAndCancel: a wrong PIN asks again with the tries
// left; cancelling changes nothing; so does dismissing the confirmation
// of a forced PIN change.
func TestSecurityWrongPINAndCancel(t *testing.T) {
	h := newHarness(t)
	k, _ := h.newCordedKey(1, softkey.Config{}, 10*time.Second)
	setTestPIN(t, k)
	d := h.openKey(k)
	c := d.cards.security
	h.ui(func() { test.Tap(c.uvToggle) })
	first := h.answerPIN(d, nil, "654321")
	var again *pinAsk
	h.eventually("asked again", func() bool { again = d.cards.ask; return again != nil && again != first })
	h.ui(func() {
		if !strings.Contains(again.text.Text, "That PIN was wrong. 7 tries are left") {
			t.Errorf("second ask says %q", again.text.Text)
		}
		test.Tap(again.cancel)
	})
	h.eventually("cancelled", func() bool { return !d.cards.busy && c.status.Text == "Cancelled: nothing was changed." })
	h.ui(func() {
		test.Tap(c.force)
		c.confirm.Dismiss()
		if d.cards.busy || d.cards.ask != nil {
			t.Error("a dismissed confirmation went on")
		}
	})
	if i := keyInfo(t, k); i.Options["alwaysUv"] || i.ForcePINChange {
		t.Errorf("the key changed: alwaysUv %v, force change %v", i.Options["alwaysUv"], i.ForcePINChange)
	}
}

// TestSecurityKeyUnpluggedMidChange: pulling the key out as a setting is
// changed says it was not changed and why, and turns the card off.
func TestSecurityKeyUnpluggedMidChange(t *testing.T) {
	h := newHarness(t)
	k, cord := h.newCordedKey(1, softkey.Config{}, 10*time.Second)
	setTestPIN(t, k)
	d := h.openKey(k)
	c := d.cards.security
	cord.hold("ToggleAlwaysUV")
	h.ui(func() { test.Tap(c.uvToggle) })
	h.answerPIN(d, nil, testPIN)
	cord.waitHeld()
	cord.pull()
	cord.release()
	h.eventually("the failure told", func() bool {
		return !d.cards.busy && strings.HasPrefix(c.status.Text, "Always-verify was not changed: Keydesk lost contact")
	})
	h.eventually("the card off", func() bool { return d.gone && c.uvToggle.Disabled() && c.force.Disabled() })
	h.ui(func() {
		if c.uvToggle.Text != "Turn it on" {
			t.Errorf("the button says %q: shown as done", c.uvToggle.Text)
		}
	})
	if keyInfo(t, k).Options["alwaysUv"] {
		t.Error("the key's alwaysUv is on")
	}
}

// TestSecurityHidesWhatTheKeyLacks: a FIDO 2.0 key, or one without
// authenticatorConfig, shows a note instead of the settings; a key
// without alwaysUv shows the rest.
func TestSecurityHidesWhatTheKeyLacks(t *testing.T) {
	h := newHarness(t)
	d := h.openKey(newTestKey(t, 1))
	c := d.cards.security
	h.ui(func() {
		d.info = &platform.Info{Versions: []string{"U2F_V2", "FIDO_2_0"}, Options: map[string]bool{"clientPin": true}, PINRetries: 8}
		d.show()
		if !c.note.Visible() || !strings.Contains(c.note.Text, "2.0") || c.minBox.Visible() || c.uvBox.Visible() || c.forceBox.Visible() {
			t.Errorf("FIDO 2.0: note %q shown %v; settings shown %v %v %v", c.note.Text, c.note.Visible(), c.minBox.Visible(), c.uvBox.Visible(), c.forceBox.Visible())
		}
		d.info = &platform.Info{Versions: []string{"FIDO_2_1"}, Options: map[string]bool{"clientPin": true}, PINRetries: 8}
		d.show()
		if !c.note.Visible() || c.minBox.Visible() {
			t.Errorf("no authnrCfg: note %q, minimum shown %v", c.note.Text, c.minBox.Visible())
		}
		d.info = &platform.Info{Versions: []string{"FIDO_2_1"}, Options: map[string]bool{"clientPin": true, "authnrCfg": true, "setMinPINLength": true}, PINRetries: 8}
		d.show()
		if c.note.Visible() || !c.minBox.Visible() || !c.forceBox.Visible() || c.uvBox.Visible() {
			t.Errorf("no alwaysUv: note %v, minimum %v, force %v, always-verify %v", c.note.Visible(), c.minBox.Visible(), c.forceBox.Visible(), c.uvBox.Visible())
		}
	})
}

// TestSecurityWithoutAPIN: a key without a PIN takes a higher minimum
// PIN length without asking for one; forcing a new PIN is off, as there
// is none.
func TestSecurityWithoutAPIN(t *testing.T) {
	h := newHarness(t)
	k := newTestKey(t, 1)
	d := h.openKey(k)
	c := d.cards.security
	h.ui(func() {
		if !c.force.Disabled() || !strings.Contains(c.forceTxt.Text, "no PIN yet") {
			t.Errorf("force: disabled %v, %q", c.force.Disabled(), c.forceTxt.Text)
		}
		c.minSel.SetSelected("8")
		test.Tap(c.minRaise)
	})
	h.eventually("the minimum raised", func() bool { return !d.cards.busy && d.info.MinPINLength == 8 })
	h.ui(func() {
		if d.cards.asks != 0 {
			t.Errorf("a PIN was asked %d times of a key without one", d.cards.asks)
		}
	})
	if got := keyInfo(t, k).MinPINLength; got != 8 {
		t.Errorf("the key's minimum is %d", got)
	}
}
