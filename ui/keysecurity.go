package ui

import (
	"context"
	"fmt"
	"strconv"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/platform"
)

// securityCard is "Security settings" (CTAP 2.1 authenticatorConfig):
// the minimum PIN length, which can only be raised; forcing a new PIN;
// and always-verify (alwaysUv). Each needs the PIN when the key has one.
// A setting the key does not offer is left out, with a note saying why.
type securityCard struct {
	d    *keyDetail
	card *widget.Card

	note   *widget.Label
	status *widget.Label

	minBox   *fyne.Container
	minNow   *widget.Label
	minSel   *widget.Select
	minRaise *widget.Button

	forceBox *fyne.Container
	forceTxt *widget.Label
	force    *widget.Button

	uvBox    *fyne.Container
	uvNow    *widget.Label
	uvToggle *widget.Button

	// confirm is the force-PIN-change confirmation on show, for the tests.
	confirm *dialog.ConfirmDialog
}

func newSecurityCard(d *keyDetail) *securityCard {
	c := &securityCard{d: d}
	c.note = wrapped("")
	c.note.Hide()
	c.status = wrapped("")
	c.status.Hide()

	c.minNow = wrapped("")
	c.minSel = widget.NewSelect(nil, func(string) { c.show() })
	c.minSel.PlaceHolder = "New minimum"
	c.minRaise = widget.NewButton("Raise the minimum", c.raiseMin)
	c.minBox = container.NewVBox(bold("Minimum PIN length"), c.minNow, container.NewHBox(c.minSel, c.minRaise))

	c.forceTxt = wrapped("")
	c.force = widget.NewButton("Require a new PIN…", c.askForce)
	c.forceBox = container.NewVBox(bold("Require a new PIN"), c.forceTxt, container.NewHBox(c.force))

	c.uvNow = wrapped("")
	c.uvToggle = widget.NewButton("", c.toggleUV)
	c.uvBox = container.NewVBox(bold("Always verify"), c.uvNow, container.NewHBox(c.uvToggle))

	c.card = widget.NewCard("Security settings", "", container.NewVBox(c.note, c.status, c.minBox, c.forceBox, c.uvBox))
	return c
}

// bold is a heading inside a card.
func bold(text string) *widget.Label {
	return widget.NewLabelWithStyle(text, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
}

// maxMinOffered is the largest minimum PIN length offered: more would
// only lock people out.
const maxMinOffered = 16

// show fills the card from what the page knows (UI goroutine).
func (c *securityCard) show() {
	i := c.d.info
	if i == nil {
		c.card.Hide()
		return
	}
	c.card.Show()
	hideAll := func(note string) {
		c.note.SetText(note)
		c.note.Show()
		c.minBox.Hide()
		c.forceBox.Hide()
		c.uvBox.Hide()
	}
	switch {
	case !i.SupportsFIDO21():
		hideAll("This key speaks an older version of FIDO2 (2.0): its security settings cannot be changed from Keydesk.")
		return
	case !i.HasOption("authnrCfg"):
		hideAll("This key does not let its security settings be changed.")
		return
	}
	c.note.Hide()
	ok := c.d.usable()

	// Minimum PIN length.
	if i.HasOption("setMinPINLength") {
		c.minBox.Show()
		cur := max(i.MinPINLength, platform.MinPINCodePoints)
		c.minNow.SetText(fmt.Sprintf("A PIN must have at least %d characters now. The minimum can only be raised: "+
			"lowering it again takes a reset, which erases the key. A PIN shorter than the new minimum must then be changed.", cur))
		var opts []string
		for n := cur + 1; n <= max(maxMinOffered, cur+1) && n <= platform.MaxPINBytes; n++ {
			opts = append(opts, strconv.Itoa(n))
		}
		if !equalStrings(c.minSel.Options, opts) {
			c.minSel.SetOptions(opts)
			c.minSel.ClearSelected()
		}
		if ok && len(opts) > 0 {
			c.minSel.Enable()
		} else {
			c.minSel.Disable()
		}
		setEnabled(c.minRaise, ok && c.minSel.Selected != "")
	} else {
		c.minBox.Hide()
	}

	// Force a PIN change: setMinPINLength's forceChangePin.
	if i.HasOption("setMinPINLength") {
		c.forceBox.Show()
		switch {
		case !i.PINSet():
			c.forceTxt.SetText("The key has no PIN yet, so there is none to replace.")
			c.force.Disable()
		case i.ForcePINChange:
			c.forceTxt.SetText("A new PIN is already required: the key refuses its PIN until it is changed.")
			c.force.Disable()
		default:
			c.forceTxt.SetText("The key will refuse its PIN until a new one is chosen: for a key handed on to someone else, or a PIN that others may have seen.")
			setEnabled(c.force, ok)
		}
	} else {
		c.forceBox.Hide()
	}

	// Always verify.
	if _, known := i.Options["alwaysUv"]; known {
		c.uvBox.Show()
		if i.Options["alwaysUv"] {
			c.uvNow.SetText("On: the key asks for its PIN (or a fingerprint) every time it is used, even where a site does not ask for it.")
			c.uvToggle.SetText("Turn it off")
		} else {
			c.uvNow.SetText("Off: where a site does not ask for the PIN, a touch of the key is enough. Turn it on to have the key ask for its PIN (or a fingerprint) every time.")
			c.uvToggle.SetText("Turn it on")
		}
		setEnabled(c.uvToggle, ok)
	} else {
		c.uvBox.Hide()
	}
}

// equalStrings reports whether a and b hold the same strings in order.
func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// setStatus says what happened last; "" hides the line.
func (c *securityCard) setStatus(msg string) { showText(c.status, msg) }

// run changes a setting with op, then reads the key again; success says
// ok(), a failure failed followed by why. forget, when it says so after
// op, drops the PIN kept for the page: the key refuses it until it is
// changed.
func (c *securityCard) run(what string, op keyOp, ok func() string, forget func() bool, failed string) {
	c.d.withPIN(what, op, func(err error) {
		switch {
		case err == nil:
			c.setStatus(ok())
			if forget() {
				c.d.forgetPIN()
			}
			c.d.read()
		case cancelled(err):
			c.setStatus("Cancelled: nothing was changed.")
		default:
			c.setStatus(failed + c.d.cardErrorText(err))
		}
	})
}

// raiseMin raises the minimum PIN length to the one chosen.
func (c *securityCard) raiseMin() {
	n, err := strconv.Atoi(c.minSel.Selected)
	if err != nil || !c.d.usable() {
		return
	}
	if err := platform.CheckMinPINLength("set minimum PIN length", c.d.info.MinPINLength, n); err != nil {
		c.setStatus(errorText(err))
		return
	}
	shorter := false
	c.run("raise the minimum PIN length", func(ctx context.Context, key platform.Authenticator, pin string) error {
		shorter = pin != "" && utf8.RuneCountInString(pin) < n
		return key.SetMinPINLength(ctx, pin, n, nil)
	}, func() string {
		msg := fmt.Sprintf("A PIN must now have at least %d characters.", n)
		if shorter {
			msg += " The key's PIN is shorter: change it (PIN card above) before using the key again."
		}
		return msg
	}, func() bool { return shorter }, "The minimum PIN length was not changed: ")
}

// askForce confirms forcing a new PIN.
func (c *securityCard) askForce() {
	if !c.d.usable() {
		return
	}
	msg := widget.NewLabel("The key will refuse its current PIN until a new one is set: nobody can sign in with it before then. " +
		"Whoever has the key needs the current PIN to choose the new one.")
	msg.Wrapping = fyne.TextWrapWord
	c.confirm = dialog.NewCustomConfirm("Require a new PIN?", "Require a new PIN", "Cancel", msg, func(ok bool) {
		c.confirm = nil
		if !ok {
			return
		}
		c.run("require a new PIN", func(ctx context.Context, key platform.Authenticator, pin string) error {
			return key.ForcePINChange(ctx, pin)
		}, func() string {
			return "Done: the key now refuses its PIN until a new one is set (PIN card above)."
		}, func() bool { return true }, "A new PIN is not required: ")
	}, c.d.s.win)
	c.confirm.Resize(fyne.NewSize(440, 0))
	c.confirm.Show()
}

// toggleUV turns always-verify on or off. The key only toggles, so the
// operation reads the setting first: a page out of date does not turn it
// the wrong way.
func (c *securityCard) toggleUV() {
	if !c.d.usable() {
		return
	}
	on := !c.d.info.Options["alwaysUv"]
	what := "turn always-verify off"
	if on {
		what = "turn always-verify on"
	}
	c.run(what, func(ctx context.Context, key platform.Authenticator, pin string) error {
		info, err := key.Info(ctx)
		if err != nil {
			return err
		}
		if info.Options["alwaysUv"] == on {
			return nil
		}
		return key.ToggleAlwaysUV(ctx, pin)
	}, func() string {
		if on {
			return "Always-verify is on."
		}
		return "Always-verify is off."
	}, func() bool { return false }, "Always-verify was not changed: ")
}
