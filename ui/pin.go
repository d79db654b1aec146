package ui

import (
	"context"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/platform"
)

// pinDialog sets a key's first PIN or changes it. It checks the new PIN
// against the key's rules as it is typed, and keeps the dialog open on a
// wrong current PIN, saying how many tries are left.
type pinDialog struct {
	s    *Shell
	dev  platform.Device
	info *platform.Info
	// change is set when the key has a PIN already.
	change bool

	current, next, again *widget.Entry
	rules, hint, problem *widget.Label
	save, cancel         *widget.Button
	dlg                  dialog.Dialog
	done                 func(changed bool)
	busy                 bool
	// gone is set once the key was unplugged.
	gone bool
}

func newPINDialog(s *Shell, dev platform.Device, info *platform.Info, done func(changed bool)) *pinDialog {
	p := &pinDialog{s: s, dev: dev, info: info, change: info.PINSet(), done: done}
	p.current = widget.NewPasswordEntry()
	p.current.SetPlaceHolder("Current PIN")
	p.next = widget.NewPasswordEntry()
	p.next.SetPlaceHolder("New PIN")
	p.again = widget.NewPasswordEntry()
	p.again.SetPlaceHolder("New PIN again")
	p.rules = wrapped(pinRules(info))
	p.hint = wrapped("")
	p.problem = wrapped("")
	p.problem.Importance = widget.DangerImportance
	p.problem.Hide()
	p.save = widget.NewButton("Set the PIN", p.submit)
	if p.change {
		p.save.SetText("Change the PIN")
	}
	p.save.Importance = widget.HighImportance
	p.cancel = widget.NewButton("Cancel", func() { p.close(false) })
	p.next.OnChanged = func(string) { p.validate() }
	p.again.OnChanged = func(string) { p.validate() }
	p.current.OnChanged = func(string) { p.validate() }
	p.again.OnSubmitted = func(string) { p.submit() }

	items := []fyne.CanvasObject{p.rules}
	if p.change {
		if info.PINRetries >= 0 {
			items = append(items, widget.NewLabel(fmt.Sprintf("%d wrong tries of the current PIN are left before the key locks.", info.PINRetries)))
		}
		items = append(items, p.current)
	}
	items = append(items, p.next, p.again, p.hint, p.problem, container.NewHBox(p.cancel, p.save))
	title := "Set a PIN for " + deviceName(dev, info)
	if p.change {
		title = "Change the PIN of " + deviceName(dev, info)
	}
	p.dlg = dialog.NewCustomWithoutButtons(title, container.NewVBox(items...), s.win)
	p.dlg.Resize(fyne.NewSize(440, 0))
	p.validate()
	p.dlg.Show()
	if p.change {
		s.win.Canvas().Focus(p.current)
	} else {
		s.win.Canvas().Focus(p.next)
	}
	return p
}

// pinRules says what a PIN must be on this key.
func pinRules(info *platform.Info) string {
	min := info.MinPINLength
	if min < platform.MinPINCodePoints {
		min = platform.MinPINCodePoints
	}
	return fmt.Sprintf("A PIN is %d to %d characters: digits, letters or symbols. The key locks itself after "+
		"8 wrong PINs in a row, so a short PIN is safe if nobody can guess it.", min, platform.MaxPINBytes)
}

// pinStrength hints how guessable a PIN is; "" for nothing typed yet.
func pinStrength(pin string) string {
	n := utf8.RuneCountInString(pin)
	if n == 0 {
		return ""
	}
	digits, same, seq := true, true, true
	runes := []rune(pin)
	for i, r := range runes {
		if !unicode.IsDigit(r) {
			digits = false
		}
		if i > 0 {
			same = same && r == runes[0]
			seq = seq && r == runes[i-1]+1
		}
	}
	switch {
	case n > 1 && (same || seq):
		return "Easy to guess: avoid repeated or consecutive characters."
	case digits && n < 6:
		return "Fair: a PIN of 6 or more digits, or with letters, is harder to guess."
	case n >= 8 && !digits:
		return "Strong."
	}
	return "Good."
}

// validate checks the fields as they are typed (UI goroutine).
func (p *pinDialog) validate() {
	p.hint.SetText(pinStrength(p.next.Text))
	err := platform.CheckPIN(p.next.Text, p.info.MinPINLength)
	ok := p.next.Text != "" && err == nil && p.again.Text == p.next.Text && (!p.change || p.current.Text != "")
	switch {
	case p.next.Text != "" && err != nil:
		p.showProblem(errorText(err))
	case p.again.Text != "" && p.again.Text != p.next.Text:
		p.showProblem("The two new PINs differ.")
	default:
		p.problem.Hide()
	}
	if p.gone {
		p.showProblem("The key was unplugged: plug it back in and try again from its page.")
	}
	if ok && !p.busy && !p.gone {
		p.save.Enable()
	} else {
		p.save.Disable()
	}
}

func (p *pinDialog) showProblem(msg string) {
	p.problem.SetText(msg)
	p.problem.Show()
}

// submit sends the PIN to the key, off the UI goroutine.
func (p *pinDialog) submit() {
	if p.busy || p.save.Disabled() {
		return
	}
	p.busy = true
	p.save.Disable()
	current, next := p.current.Text, p.next.Text
	change := p.change
	p.s.operate(p.dev, func(ctx context.Context) error {
		key, err := p.s.deps.Keys.Open(ctx, p.dev)
		if err != nil {
			return err
		}
		defer key.Close()
		if change {
			return key.ChangePIN(ctx, current, next)
		}
		return key.SetPIN(ctx, next)
	}, func(err error) {
		p.busy = false
		switch {
		case err == nil:
			p.close(true)
			return
		case cancelled(err):
		case errors.Is(err, platform.ErrPINInvalid):
			p.current.SetText("")
			p.s.win.Canvas().Focus(p.current)
			p.showProblem(errorText(err))
		default:
			p.showProblem(errorText(err))
		}
		p.validate()
		if !p.problem.Visible() && err != nil && !cancelled(err) {
			p.showProblem(errorText(err))
		}
	})
}

// keyGone tells the dialog its key was unplugged (UI goroutine).
func (p *pinDialog) keyGone() {
	p.gone = true
	p.validate()
}

// close ends the dialog; the entries are cleared so that no PIN stays in
// a widget.
func (p *pinDialog) close(changed bool) {
	p.current.SetText("")
	p.next.SetText("")
	p.again.SetText("")
	p.dlg.Hide()
	p.done(changed)
}
