package ui

import (
	"context"
	"errors"
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/platform"
)

// keyCards are the parts of a key's page below its PIN card: its
// passkeys, its fingerprints, its security settings and its reset. They
// share the page's key, its information and the PIN: asked once per
// visit of the page, kept in memory while it is open (never in a widget,
// never logged) and forgotten when it closes, when the key goes, and
// when the PIN changes.
type keyCards struct {
	creds    *credsCard
	fps      *fingerprintsCard
	security *securityCard
	reset    *resetCard

	// pin is the PIN typed on this page and accepted by the key, "" when
	// none yet.
	pin string
	// ask is the PIN dialog on show, and asks counts those shown, for
	// the tests.
	ask  *pinAsk
	asks int
	// busy is set while an operation of the cards runs: one at a time,
	// as the key serves them anyway.
	busy bool
}

// newCards builds the cards of d, in the order the page shows them.
func (d *keyDetail) newCards() []fyne.CanvasObject {
	d.cards.creds = newCredsCard(d)
	d.cards.fps = newFingerprintsCard(d)
	d.cards.security = newSecurityCard(d)
	d.cards.reset = newResetCard(d)
	return []fyne.CanvasObject{d.cards.creds.card, d.cards.fps.card, d.cards.security.card, d.cards.reset.card}
}

// showCards fills the cards from what the page knows (UI goroutine).
func (d *keyDetail) showCards() {
	if d.cards.creds == nil {
		return // the page is being built
	}
	d.cards.creds.show()
	d.cards.fps.show()
	d.cards.security.show()
	d.cards.reset.show()
}

// cardsKeyGone turns the cards off when the key is unplugged (UI
// goroutine). The reset wizard carries on: unplugging is one of its steps.
func (d *keyDetail) cardsKeyGone() {
	d.forgetPIN()
	if d.cards.ask != nil {
		d.cards.ask.keyGone()
	}
	d.cards.reset.keyGone()
	d.showCards()
}

// forgetPIN drops the PIN kept for the page.
func (d *keyDetail) forgetPIN() { d.cards.pin = "" }

// closePage forgets what the page kept, as it closes.
func (d *keyDetail) closePage() {
	d.forgetPIN()
	if d.cards.ask != nil {
		d.cards.ask.finish("", false)
	}
}

// usable reports whether the cards may start an operation now.
func (d *keyDetail) usable() bool { return d.info != nil && !d.gone && !d.cards.busy }

// keyOp is an operation of a card on the page's key, opened for it, with
// its PIN ("" for a key without one).
type keyOp func(ctx context.Context, key platform.Authenticator, pin string) error

// withPIN runs op on the key off the UI goroutine, with the PIN kept for
// the page, or else the one the person types in a dialog; a wrong PIN
// asks again with the tries left, and the right one is kept. A key
// without a PIN runs op with none. done hears op's error (or the
// cancelled dialog's) on the UI goroutine.
func (d *keyDetail) withPIN(what string, op keyOp, done func(err error)) {
	if d.gone {
		done(&platform.Error{Op: what, Kind: platform.ErrDeviceRemoved, RetriesLeft: -1})
		return
	}
	d.cards.busy = true
	d.showCards()
	finish := func(err error) {
		d.cards.busy = false
		done(err)
		d.showCards()
	}
	if d.info != nil && !d.info.PINSet() {
		d.runOnKey("", op, finish)
		return
	}
	var try func(pin string)
	ask := func(retries int) {
		d.cards.asks++
		d.cards.ask = newPINAsk(d, what, retries, func(pin string, ok bool) {
			d.cards.ask = nil
			if !ok {
				finish(&platform.Error{Op: what, Kind: platform.ErrCancelled, RetriesLeft: -1})
				return
			}
			try(pin)
		})
	}
	try = func(pin string) {
		d.runOnKey(pin, op, func(err error) {
			if errors.Is(err, platform.ErrPINInvalid) {
				// A kept PIN refused was changed elsewhere: ask for it
				// as if for the first time.
				d.forgetPIN()
				retries := -1
				if pe, ok := errors.AsType[*platform.Error](err); ok {
					retries = max(pe.RetriesLeft, 0)
				}
				if !d.gone {
					ask(retries)
					return
				}
			}
			if err == nil && !d.gone {
				d.cards.pin = pin
			}
			finish(err)
		})
	}
	if d.cards.pin != "" {
		try(d.cards.pin)
		return
	}
	ask(-1)
}

// runOnKey opens the page's key and runs op on it with pin, through
// Shell.operate (the touch sheet while the key waits).
func (d *keyDetail) runOnKey(pin string, op keyOp, done func(err error)) {
	dev := d.dev
	d.s.operate(dev, func(ctx context.Context) error {
		key, err := d.s.deps.Keys.Open(ctx, dev)
		if err != nil {
			return err
		}
		defer key.Close()
		return op(ctx, key, pin)
	}, done)
}

// cardErrorText is a failed operation of a card as the person reads it.
func (d *keyDetail) cardErrorText(err error) string {
	switch {
	case errors.Is(err, platform.ErrPINPolicy) && d.info != nil && d.info.ForcePINChange:
		return "The key's PIN must be changed before it can be used again: change it in the PIN card above, then try again."
	case errors.Is(err, platform.ErrDeviceRemoved):
		return "Keydesk lost contact with the key, so this was not done. Plug the key back in, open its page again and try again."
	}
	return errorText(err)
}

// linked is ctx, also cancelled when other ends: an operation that a
// dialog's own Cancel button stops.
func linked(ctx, other context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(other, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// pinAsk is the dialog that asks for the key's PIN before an operation of
// the page, and again after a wrong one, with the tries left.
type pinAsk struct {
	d        *keyDetail
	text     *widget.Label
	problem  *widget.Label
	entry    *widget.Entry
	ok       *widget.Button
	cancel   *widget.Button
	dlg      dialog.Dialog
	reply    func(pin string, ok bool)
	answered bool
}

// newPINAsk shows the dialog for what (such as "list the passkeys");
// retries is the tries left after a wrong PIN, -1 on a first ask.
func newPINAsk(d *keyDetail, what string, retries int, reply func(pin string, ok bool)) *pinAsk {
	p := &pinAsk{d: d, reply: reply}
	msg := fmt.Sprintf("Type the PIN of %s to %s.", deviceName(d.dev, d.info), what)
	switch {
	case retries == 1:
		msg = "That PIN was wrong. 1 try is left before the key locks: type it carefully."
	case retries >= 0:
		msg = fmt.Sprintf("That PIN was wrong. %d tries are left before the key locks.", retries)
	case d.info != nil && d.info.PINRetries >= 0 && d.info.PINRetries <= 3:
		msg += fmt.Sprintf(" Only %d tries are left before the key locks.", d.info.PINRetries)
	}
	p.text = wrapped(msg)
	p.problem = wrapped("")
	p.problem.Importance = widget.DangerImportance
	p.problem.Hide()
	p.entry = widget.NewPasswordEntry()
	p.entry.SetPlaceHolder("PIN")
	p.entry.OnSubmitted = func(string) { p.submit() }
	p.ok = widget.NewButton("OK", p.submit)
	p.ok.Importance = widget.HighImportance
	p.cancel = widget.NewButton("Cancel", func() { p.finish("", false) })
	p.dlg = dialog.NewCustomWithoutButtons("PIN of "+deviceName(d.dev, d.info),
		container.NewVBox(p.text, p.entry, p.problem, container.NewHBox(p.cancel, p.ok)), d.s.win)
	p.dlg.Resize(fyne.NewSize(400, 0))
	p.dlg.Show()
	d.s.win.Canvas().Focus(p.entry)
	return p
}

// submit answers with the PIN typed.
func (p *pinAsk) submit() {
	if p.entry.Text == "" || p.ok.Disabled() {
		return
	}
	p.finish(p.entry.Text, true)
}

// finish answers once, clears the field and takes the dialog down.
func (p *pinAsk) finish(pin string, ok bool) {
	if p.answered {
		return
	}
	p.answered = true
	p.entry.SetText("")
	p.dlg.Hide()
	p.reply(pin, ok)
}

// keyGone tells the dialog its key was unplugged.
func (p *pinAsk) keyGone() {
	p.problem.SetText("The key was unplugged: plug it back in and open its page again.")
	p.problem.Show()
	p.ok.Disable()
}

// showText shows msg in l, or hides l for "" (so that an empty line takes
// no room).
func showText(l *widget.Label, msg string) {
	l.SetText(msg)
	if msg == "" {
		l.Hide()
	} else {
		l.Show()
	}
}

// wrapped is a label whose text wraps at word boundaries, as every
// sentence on Keydesk's screens does.
func wrapped(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	return l
}
