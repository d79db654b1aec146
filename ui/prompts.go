package ui

import (
	"context"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/platform"
)

// enrollUI is how enroll's flows reach the person: events to the status
// line, and the PIN and account questions as dialogs. The questions are
// asked from the flow's goroutine, which waits for the answer (or for its
// context to end, which takes the dialog down).
func (s *Shell) enrollUI() enroll.UI {
	return enroll.UI{
		Event: func(ev enroll.Event) {
			s.do(func() {
				s.touchDoneAfter(ev)
				if s.account != nil {
					s.account.setStatus(ev.Message)
				}
			})
		},
		PIN:           s.askKeyPIN,
		ChooseAccount: s.chooseAccount,
	}
}

// touchDoneAfter takes the touch sheet down once a flow has moved past the
// key (it is talking to the service again, or done), so that the sheet
// goes when the key is touched, not when the service answers (UI
// goroutine). A later touch puts it up again.
func (s *Shell) touchDoneAfter(ev enroll.Event) {
	switch ev.Kind {
	case enroll.EventContacting, enroll.EventDone:
		s.touch.hide()
	}
}

// answer is what a question dialog gives back to the flow waiting on it.
type answer[T any] struct {
	v   T
	err error
}

// ask shows a question with show (UI goroutine), which must call reply
// once, and waits for the reply or for ctx; hide takes the question down
// if ctx ends first.
func ask[T any](ctx context.Context, s *Shell, show func(reply func(T, error)) (hide func())) (T, error) {
	ch := make(chan answer[T], 1)
	var hide func()
	s.do(func() {
		hide = show(func(v T, err error) {
			select {
			case ch <- answer[T]{v, err}:
			default:
			}
		})
	})
	select {
	case a := <-ch:
		return a.v, a.err
	case <-ctx.Done():
		s.do(func() {
			if hide != nil {
				hide()
			}
		})
		var zero T
		return zero, ctx.Err()
	}
}

// askKeyPIN asks for the key's PIN during a flow; retriesLeft is -1 on
// the first ask.
func (s *Shell) askKeyPIN(ctx context.Context, retriesLeft int) (string, error) {
	return ask(ctx, s, func(reply func(string, error)) func() {
		p := newPINPrompt(s, retriesLeft, reply)
		s.pinPrompt = p
		return p.hide
	})
}

// pinPrompt is the "Enter your key's PIN" dialog of a flow.
type pinPrompt struct {
	s     *Shell
	text  *widget.Label
	entry *widget.Entry
	ok    *widget.Button
	dlg   dialog.Dialog
	reply func(string, error)
	done  bool
}

func newPINPrompt(s *Shell, retriesLeft int, reply func(string, error)) *pinPrompt {
	p := &pinPrompt{s: s, reply: reply}
	p.entry = widget.NewPasswordEntry()
	p.entry.SetPlaceHolder("PIN")
	msg := "Your security key asks for its PIN."
	if retriesLeft >= 0 {
		msg = fmt.Sprintf("That PIN was wrong. %d tries are left before the key locks.", retriesLeft)
	}
	text := wrapped(msg)
	p.text = text
	p.ok = widget.NewButton("OK", p.submit)
	p.ok.Importance = widget.HighImportance
	cancel := widget.NewButton("Cancel", func() { p.finish("", &platform.Error{Op: "PIN", Kind: platform.ErrCancelled, RetriesLeft: -1}) })
	p.entry.OnSubmitted = func(string) { p.submit() }
	p.dlg = dialog.NewCustomWithoutButtons("Security key PIN", container.NewVBox(text, p.entry, container.NewHBox(cancel, p.ok)), s.win)
	p.dlg.Resize(fyne.NewSize(380, 0))
	p.dlg.Show()
	s.win.Canvas().Focus(p.entry)
	return p
}

// dlgText is what the dialog says.
func (p *pinPrompt) dlgText() string { return p.text.Text }

func (p *pinPrompt) submit() {
	if p.entry.Text == "" {
		return
	}
	p.finish(p.entry.Text, nil)
}

// finish answers once and clears the field.
func (p *pinPrompt) finish(pin string, err error) {
	if p.done {
		return
	}
	p.done = true
	p.entry.SetText("")
	p.dlg.Hide()
	if p.s.pinPrompt == p {
		p.s.pinPrompt = nil
	}
	p.reply(pin, err)
}

// hide takes the dialog down unanswered.
func (p *pinPrompt) hide() {
	p.done = true
	p.entry.SetText("")
	p.dlg.Hide()
	if p.s.pinPrompt == p {
		p.s.pinPrompt = nil
	}
}

// chooseAccount lets the person pick among the accounts a key holds for
// the service.
func (s *Shell) chooseAccount(as []platform.Assertion) (int, error) {
	return ask(s.ctx, s, func(reply func(int, error)) func() {
		names := make([]string, len(as))
		for i, a := range as {
			switch {
			case a.User.Name != "" && a.User.DisplayName != "":
				names[i] = fmt.Sprintf("%s (%s)", a.User.DisplayName, a.User.Name)
			case a.User.Name != "":
				names[i] = a.User.Name
			default:
				names[i] = fmt.Sprintf("Account %d (the key does not say whose)", i+1)
			}
		}
		choice := widget.NewRadioGroup(names, nil)
		choice.SetSelected(names[0])
		var dlg dialog.Dialog
		answered := false
		dlg = dialog.NewCustomConfirm("Which account?", "Sign in", "Cancel",
			container.NewVBox(widget.NewLabel("Your key holds several accounts for this service."), choice),
			func(ok bool) {
				if answered {
					return
				}
				answered = true
				if !ok {
					reply(0, &platform.Error{Op: "choose account", Kind: platform.ErrCancelled, RetriesLeft: -1})
					return
				}
				for i, n := range names {
					if n == choice.Selected {
						reply(i, nil)
						return
					}
				}
				reply(0, nil)
			}, s.win)
		dlg.Show()
		return func() { answered = true; dlg.Hide() }
	})
}

// nameForm is a one-field form dialog asking for a new name, which Enter
// submits as the button does (Fyne's form dialogs only take the button),
// shown with the focus in its field. done gets the name trimmed, or ok
// false when the dialog was cancelled.
func nameForm(title, current, placeholder string, win fyne.Window, done func(name string, ok bool)) (*dialog.FormDialog, *widget.Entry) {
	entry := widget.NewEntry()
	entry.SetText(current)
	if placeholder != "" {
		entry.SetPlaceHolder(placeholder)
	}
	d := dialog.NewForm(title, "Rename", "Cancel", []*widget.FormItem{widget.NewFormItem("New name", entry)}, func(ok bool) {
		done(strings.TrimSpace(entry.Text), ok)
	}, win)
	entry.OnSubmitted = func(string) { d.Submit() }
	d.Resize(fyne.NewSize(400, 0))
	d.Show()
	win.Canvas().Focus(entry)
	return d, entry
}
