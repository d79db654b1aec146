package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/api"
)

// codesDialog shows how many recovery codes the account has left and
// makes a new set, which it shows once: the service keeps only their
// hashes, and the dialog forgets them when it closes. A new set needs a
// recent sign-in: the person touches one of their keys when the service
// asks.
type codesDialog struct {
	a   *accountScreen
	dlg dialog.Dialog

	status  *widget.Label
	codes   *widget.Label
	problem *widget.Label
	make    *widget.Button
	copyAll *widget.Button
	done    *widget.Button

	// remaining is what the service said is left; -1 until it said.
	remaining int
	busy      bool
}

// openCodes opens the recovery codes dialog (UI goroutine).
func (a *accountScreen) openCodes() {
	c := &codesDialog{a: a, remaining: -1}
	c.status = wrapped("Asking the service…")
	c.codes = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
	c.codes.Hide()
	c.problem = wrapped("")
	c.problem.Importance = widget.DangerImportance
	c.problem.Hide()
	c.make = widget.NewButtonWithIcon("Make a new set", theme.ContentAddIcon(), c.ask)
	c.make.Disable()
	c.copyAll = widget.NewButtonWithIcon("Copy them", theme.ContentCopyIcon(), func() {
		a.s.app.Clipboard().SetContent(c.codes.Text)
	})
	c.copyAll.Hide()
	c.done = widget.NewButton("Close", c.close)
	intro := widget.NewLabel("Recovery codes let you back into your account if you lose every key: each works once. " +
		"Keep them somewhere safe, away from your keys, such as printed in a drawer or in a password manager.")
	intro.Wrapping = fyne.TextWrapWord
	c.dlg = dialog.NewCustomWithoutButtons("Recovery codes", container.NewVBox(
		intro, c.status, c.codes, c.problem, container.NewHBox(c.done, c.copyAll, c.make)), a.s.win)
	c.dlg.Resize(fyne.NewSize(520, 0))
	c.dlg.Show()
	a.codes = c
	c.read()
}

// read asks how many codes are left.
func (c *codesDialog) read() {
	a := c.a
	a.s.goBackground(func(ctx context.Context) {
		st, err := a.acc.RecoveryCodesStatus(ctx)
		a.s.do(func() {
			if err != nil {
				c.showProblem(serviceErrorText(err, a.svc))
				return
			}
			c.remaining = st.Remaining
			c.status.SetText(codesStatusText(st))
			c.make.Enable()
		})
	})
}

// codesStatusText says what is left of the account's codes.
func codesStatusText(st *api.RecoveryCodesStatus) string {
	if st.Total == 0 || st.GeneratedAt == nil {
		return "You have no recovery codes yet."
	}
	return fmt.Sprintf("%d of your %d codes are left (made %s).", st.Remaining, st.Total, st.GeneratedAt.Local().Format("2 Jan 2006"))
}

// ask confirms replacing codes that still work, then makes the set.
func (c *codesDialog) ask() {
	if c.busy {
		return
	}
	if c.remaining <= 0 {
		c.generate()
		return
	}
	d := dialog.NewConfirm("Replace your recovery codes?",
		fmt.Sprintf("Your %d unused codes will stop working, and only the new set will let you back in.", c.remaining),
		func(ok bool) {
			if ok {
				c.generate()
			}
		}, c.a.s.win)
	c.a.codesConfirm = d
	d.Show()
}

// generate makes a new set, signing in again first when the service
// wants a fresh sign-in.
func (c *codesDialog) generate() {
	a := c.a
	c.busy = true
	c.make.Disable()
	c.problem.Hide()
	c.status.SetText("Making a new set…")
	devs := a.s.connectedDevices()
	user := ""
	if a.model.me != nil {
		user = a.model.me.User.Name
	}
	var codes *api.RecoveryCodes
	a.s.operate(platform.Device{}, func(ctx context.Context) error {
		var err error
		codes, err = a.acc.GenerateRecoveryCodes(ctx)
		if errors.Is(err, rpclient.ErrStepUpRequired) {
			a.s.do(func() { c.status.SetText("New codes need a fresh sign-in: touch one of your keys.") })
			key, kerr := a.s.pickKey(ctx, devs)
			if kerr != nil {
				return fmt.Errorf("%w (%w)", err, kerr)
			}
			defer key.Close()
			if _, err := a.acc.SignIn(ctx, key, user); err != nil {
				return err
			}
			codes, err = a.acc.GenerateRecoveryCodes(ctx)
		}
		return err
	}, func(err error) {
		c.busy = false
		if err != nil {
			c.make.Enable()
			if cancelled(err) {
				c.status.SetText("Cancelled: your codes are as they were.")
			} else {
				c.showProblem(serviceErrorText(err, a.svc))
			}
			return
		}
		c.remaining = len(codes.Codes)
		c.status.SetText(fmt.Sprintf("Your new codes, shown this once (the old ones no longer work). Write them down or copy them now: "+
			"Keydesk does not keep them. Made %s.", codes.GeneratedAt.Local().Format("2 Jan 2006 15:04")))
		c.codes.SetText(strings.Join(codes.Codes, "\n"))
		c.codes.Show()
		c.copyAll.Show()
		c.make.Hide()
		c.done.SetText("I have kept them")
		// The focus leaves the hidden button for Copy.
		a.s.win.Canvas().Focus(c.copyAll)
	})
}

func (c *codesDialog) showProblem(msg string) {
	c.problem.SetText(msg)
	c.problem.Show()
}

// close forgets the codes and closes the dialog.
func (c *codesDialog) close() {
	c.codes.SetText("")
	c.dlg.Hide()
	if c.a.codes == c {
		c.a.codes = nil
	}
}
