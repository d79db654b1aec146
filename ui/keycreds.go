package ui

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/platform"
)

// credsCard is "Passkeys on this key": the discoverable credentials the
// key holds, grouped by site, read with the PIN; each can be erased after
// a confirmation. The list shown is always the key's own answer: it is
// read again after every erase, never edited in place.
type credsCard struct {
	d    *keyDetail
	card *widget.Card

	intro *widget.Label
	// load reads (or reads again) the list; setPIN is offered instead on
	// a key without a PIN.
	load   *widget.Button
	setPIN *widget.Button
	status *widget.Label
	list   *fyne.Container

	// rps is the key's answer, sorted; nil until read.
	rps []platform.RelyingParty
	// erase are the rows' erase buttons, in list order, for the tests.
	erase []*widget.Button
	// confirm is the erase confirmation on show, and confirmText what
	// it says, for the tests.
	confirm     *dialog.ConfirmDialog
	confirmText *widget.Label
}

func newCredsCard(d *keyDetail) *credsCard {
	c := &credsCard{d: d}
	c.intro = wrapped("")
	c.load = widget.NewButtonWithIcon("Show the passkeys", theme.VisibilityIcon(), c.read)
	c.setPIN = widget.NewButtonWithIcon("Set a PIN", theme.AccountIcon(), d.askPIN)
	c.status = wrapped("")
	c.status.Hide()
	c.list = container.NewVBox()
	c.card = widget.NewCard("Passkeys on this key", "", container.NewVBox(
		c.intro, container.NewHBox(c.load, c.setPIN), c.status, c.list))
	return c
}

// credsSupported reports whether the key can list and erase its
// passkeys (CTAP 2.1 credential management, or its 2.1 preview).
func credsSupported(i *platform.Info) bool {
	return i.HasOption("credMgmt") || i.HasOption("credentialMgmtPreview")
}

// show fills the card from what the page knows (UI goroutine).
func (c *credsCard) show() {
	i := c.d.info
	c.setPIN.Hide()
	c.load.Show()
	switch {
	case i == nil:
		c.intro.SetText("Reading the key…")
		c.load.Disable()
		return
	case !credsSupported(i):
		c.intro.SetText("This key cannot list the passkeys it holds (it does not support credential management).")
		c.load.Hide()
		return
	case !i.PINSet():
		c.intro.SetText("Seeing and erasing the passkeys on a key needs its PIN, and this key has none yet. Set a PIN first.")
		c.load.Hide()
		c.setPIN.Show()
		if c.d.usable() {
			c.setPIN.Enable()
		} else {
			c.setPIN.Disable()
		}
		return
	}
	c.intro.SetText("A passkey on the key signs you in to a site with the key alone, without a password. Seeing them needs the key's PIN.")
	if c.rps != nil {
		c.load.SetText("Read again")
	} else {
		c.load.SetText("Show the passkeys")
	}
	if c.d.usable() {
		c.load.Enable()
	} else {
		c.load.Disable()
	}
	for _, b := range c.erase {
		if c.d.usable() {
			b.Enable()
		} else {
			b.Disable()
		}
	}
}

// setStatus says what happened last; "" hides the line.
func (c *credsCard) setStatus(msg string) { showText(c.status, msg) }

// read lists the passkeys, with the PIN.
func (c *credsCard) read() {
	var rps []platform.RelyingParty
	c.setStatus("Reading the passkeys…")
	c.d.withPIN("see the passkeys on it", func(ctx context.Context, key platform.Authenticator, pin string) error {
		var err error
		rps, err = key.Credentials(ctx, pin)
		return err
	}, func(err error) {
		switch {
		case err == nil:
			c.setStatus("")
			c.fill(rps)
		case cancelled(err):
			c.setStatus("")
		default:
			c.setStatus("The passkeys could not be read: " + c.d.cardErrorText(err))
		}
	})
}

// fill shows the key's answer (UI goroutine).
func (c *credsCard) fill(rps []platform.RelyingParty) {
	rps = slices.Clone(rps)
	slices.SortFunc(rps, func(a, b platform.RelyingParty) int { return strings.Compare(siteName(a), siteName(b)) })
	c.rps = rps
	c.erase = nil
	c.list.Objects = nil
	total := 0
	for _, rp := range rps {
		total += len(rp.Credentials)
	}
	if total == 0 {
		c.list.Add(widget.NewLabel("This key holds no passkeys."))
	}
	for _, rp := range rps {
		if len(rp.Credentials) == 0 {
			continue
		}
		if len(c.list.Objects) > 0 {
			c.list.Add(widget.NewSeparator())
		}
		head := widget.NewLabelWithStyle(fmt.Sprintf("%s · %s", siteName(rp), countPasskeys(len(rp.Credentials))),
			fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		c.list.Add(head)
		for _, cred := range rp.Credentials {
			c.list.Add(c.row(rp, cred))
		}
	}
	c.list.Refresh()
	c.show()
}

// row is one passkey: its account and the button that erases it.
func (c *credsCard) row(rp platform.RelyingParty, cred platform.Credential) fyne.CanvasObject {
	text := accountName(cred.User)
	if u := cred.User; u.DisplayName != "" && u.Name != "" && u.DisplayName != u.Name {
		text += " (" + u.DisplayName + ")"
	}
	if cred.Protection == 3 {
		text += " · always asks for the PIN or a fingerprint"
	}
	// The key does not say when a passkey was made (CTAP keeps no date),
	// so no date is shown.
	label := widget.NewLabel(text)
	label.Truncation = fyne.TextTruncateEllipsis
	erase := widget.NewButtonWithIcon("Erase…", theme.DeleteIcon(), func() { c.askErase(rp, cred) })
	c.erase = append(c.erase, erase)
	return container.NewBorder(nil, nil, widget.NewIcon(theme.AccountIcon()), erase, label)
}

// siteName names a relying party: its ID (the site's domain), with its
// name when it gives another.
func siteName(rp platform.RelyingParty) string {
	if rp.Name != "" && rp.Name != rp.ID {
		return fmt.Sprintf("%s (%s)", rp.ID, rp.Name)
	}
	return rp.ID
}

// accountName names a passkey's account: its user name, else its display
// name.
func accountName(u platform.User) string {
	switch {
	case u.Name != "":
		return u.Name
	case u.DisplayName != "":
		return u.DisplayName
	}
	return "an account without a name"
}

// countPasskeys is "1 passkey" or "N passkeys".
func countPasskeys(n int) string {
	if n == 1 {
		return "1 passkey"
	}
	return fmt.Sprintf("%d passkeys", n)
}

// askErase confirms an erase, naming the site and the account.
func (c *credsCard) askErase(rp platform.RelyingParty, cred platform.Credential) {
	if !c.d.usable() {
		return
	}
	msg := widget.NewLabel(fmt.Sprintf("This passkey will be erased from the key; you will not be able to sign in to %s as %s with it. "+
		"This cannot be undone.", rp.ID, accountName(cred.User)))
	msg.Wrapping = fyne.TextWrapWord
	c.confirmText = msg
	c.confirm = dialog.NewCustomConfirm("Erase this passkey?", "Erase", "Cancel", msg, func(ok bool) {
		c.confirm = nil
		if ok {
			c.eraseCred(rp, cred)
		}
	}, c.d.s.win)
	c.confirm.SetConfirmImportance(widget.DangerImportance)
	c.confirm.Resize(fyne.NewSize(440, 0))
	c.confirm.Show()
}

// eraseCred erases a passkey, then reads the list again from the key.
func (c *credsCard) eraseCred(rp platform.RelyingParty, cred platform.Credential) {
	who := fmt.Sprintf("%s at %s", accountName(cred.User), rp.ID)
	c.setStatus("Erasing the passkey of " + who + "…")
	var rps []platform.RelyingParty
	erased := false
	c.d.withPIN("erase a passkey", func(ctx context.Context, key platform.Authenticator, pin string) error {
		if err := key.DeleteCredential(ctx, pin, cred.ID); err != nil {
			return err
		}
		erased = true
		var err error
		rps, err = key.Credentials(ctx, pin)
		return err
	}, func(err error) {
		switch {
		case err == nil:
			c.setStatus("The passkey of " + who + " was erased.")
			c.fill(rps)
			c.d.read()
		case erased:
			// Erased, but the list could not be read again: what is
			// shown is out of date, so it goes.
			c.setStatus("The passkey of " + who + " was erased, but the list could not be read again: " + c.d.cardErrorText(err))
			c.clear()
		case cancelled(err):
			c.setStatus("Cancelled: the passkey was not erased.")
		default:
			c.setStatus("The passkey of " + who + " was not erased: " + c.d.cardErrorText(err))
		}
	})
}

// clear forgets the list shown (after a reset, or when it is out of date).
func (c *credsCard) clear() {
	c.rps = nil
	c.erase = nil
	c.list.Objects = nil
	c.list.Refresh()
	c.show()
}

// counts says what the page knows of the passkeys on the key, for the
// reset wizard: how many, for how many sites; known is false when they
// were not read.
func (c *credsCard) counts() (n, sites int, known bool) {
	if c.rps == nil {
		return 0, 0, false
	}
	for _, rp := range c.rps {
		if len(rp.Credentials) > 0 {
			n += len(rp.Credentials)
			sites++
		}
	}
	return n, sites, true
}
