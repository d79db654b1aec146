package ui

import (
	"context"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/api"
)

// enrollWizard enrolls a connected key in the account: choose the key and
// its name, then the key asks for its PIN and a touch (the PIN dialog and
// the touch sheet), then it is done. A failure keeps the wizard open with
// what went wrong, to try again.
type enrollWizard struct {
	a    *accountScreen
	devs []platform.Device

	dlg       dialog.Dialog
	keySel    *widget.Select
	nickname  *widget.Entry
	problem   *widget.Label
	enrollBtn *widget.Button
	close     *widget.Button
	form      *fyne.Container
	doneBox   *fyne.Container
	doneText  *widget.Label
	signIn    *widget.Button

	busy     bool
	enrolled *api.Key
}

func (a *accountScreen) openEnroll() {
	w := &enrollWizard{a: a, devs: a.s.connectedDevices()}
	names := make([]string, len(w.devs))
	for i, d := range w.devs {
		names[i] = fmt.Sprintf("%d. %s", i+1, a.s.keys.entryTitle(d))
	}
	w.keySel = widget.NewSelect(names, nil)
	if len(names) > 0 {
		w.keySel.SetSelectedIndex(0)
	}
	w.nickname = widget.NewEntry()
	w.nickname.SetPlaceHolder("A name you will recognise, such as \"blue key\"")
	if len(w.devs) > 0 {
		if n := a.s.keys.entryModel(w.devs[0]); n != "" {
			w.nickname.SetText(n)
		}
	}
	w.problem = wrapped("")
	w.problem.Importance = widget.DangerImportance
	w.problem.Hide()
	if len(w.devs) == 0 {
		w.showProblem("No security key is plugged in. Plug in the key to enroll, then open this again.")
	}
	w.enrollBtn = widget.NewButton("Enroll", w.start)
	w.enrollBtn.Importance = widget.HighImportance
	if len(w.devs) == 0 {
		w.enrollBtn.Disable()
	}
	w.close = widget.NewButton("Cancel", w.finish)
	w.nickname.OnSubmitted = func(string) { w.start() }
	intro := widget.NewLabel("Enrolling adds the key to your account: you can then sign in with it. " +
		"The key asks for its PIN if it has one, and for a touch.")
	intro.Wrapping = fyne.TextWrapWord
	w.form = container.NewVBox(intro, widget.NewForm(
		widget.NewFormItem("Key", w.keySel),
		widget.NewFormItem("Name", w.nickname),
	), w.problem)
	w.doneText = wrapped("")
	w.signIn = widget.NewButton("Sign in with it", func() {
		w.finish()
		a.signInWithKey()
	})
	w.doneBox = container.NewVBox(w.doneText, container.NewHBox(w.signIn))
	w.doneBox.Hide()
	w.dlg = dialog.NewCustomWithoutButtons("Enroll a key at "+a.svc.Name,
		container.NewVBox(w.form, w.doneBox, container.NewHBox(w.close, w.enrollBtn)), a.s.win)
	w.dlg.Resize(fyne.NewSize(480, 0))
	w.dlg.Show()
	a.enroll = w
	a.s.win.Canvas().Focus(w.nickname)
}

func (w *enrollWizard) showProblem(msg string) {
	w.problem.SetText(msg)
	w.problem.Show()
}

// start enrolls the chosen key, off the UI goroutine.
func (w *enrollWizard) start() {
	name := strings.TrimSpace(w.nickname.Text)
	i := w.keySel.SelectedIndex()
	switch {
	case w.busy || w.enrolled != nil:
		return
	case i < 0 || i >= len(w.devs):
		w.showProblem("Choose the key to enroll.")
		return
	case name == "":
		w.showProblem("Give the key a name, so that you can tell it from your other keys.")
		return
	}
	dev := w.devs[i]
	w.busy = true
	w.problem.Hide()
	w.enrollBtn.Disable()
	var k *api.Key
	w.a.s.operate(dev, func(ctx context.Context) error {
		key, err := w.a.s.deps.Keys.Open(ctx, dev)
		if err != nil {
			return err
		}
		defer key.Close()
		k, err = w.a.acc.Enroll(ctx, key, name)
		return err
	}, func(err error) {
		w.busy = false
		w.enrollBtn.Enable()
		switch {
		case err == nil:
			w.done(k)
		case cancelled(err):
			w.showProblem("Cancelled: nothing was enrolled.")
		default:
			w.showProblem(serviceErrorText(err, w.a.svc))
		}
	})
}

// done shows the enrolled key (UI goroutine).
func (w *enrollWizard) done(k *api.Key) {
	w.enrolled = k
	w.form.Hide()
	w.enrollBtn.Hide()
	w.close.SetText("Done")
	text := fmt.Sprintf("%q is enrolled", k.Nickname)
	if k.Model != "" {
		text += " (" + k.Model + ")"
	}
	text += "."
	if k.RecoveryCodesAdvised {
		text += " Next, make recovery codes (Account > Recovery codes…): they let you back in if you lose your keys."
	}
	registerOnly := w.a.model.me != nil && w.a.model.me.Scope != "full"
	if registerOnly {
		text += " Sign in with it to see and manage your keys."
		w.signIn.Show()
	} else {
		w.signIn.Hide()
	}
	w.doneText.SetText(text)
	w.doneBox.Show()
	w.a.setStatus(fmt.Sprintf("Enrolled %q.", k.Nickname))
	if !registerOnly {
		w.a.reload()
	}
}

// finish closes the wizard.
func (w *enrollWizard) finish() {
	w.dlg.Hide()
	if w.a.enroll == w {
		w.a.enroll = nil
	}
}
