package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/api"
)

// Account is the person's account at a service, as the Account tab uses
// it; *enroll.Service is one.
type Account interface {
	Me(ctx context.Context) (*api.Me, error)
	SignedIn() bool
	SignIn(ctx context.Context, key platform.Authenticator, username string) (*api.Session, error)
	SignInWithCode(ctx context.Context, username, code string) (*api.Session, error)
	SignOut(ctx context.Context) error
	Keys(ctx context.Context, connected []platform.Authenticator) ([]enroll.Key, error)
	Enroll(ctx context.Context, key platform.Authenticator, nickname string) (*api.Key, error)
	Rename(ctx context.Context, id, nickname string) (*api.Key, error)
	RevokeLost(ctx context.Context, id, reason string, withKey platform.Authenticator) (*api.Key, error)
	RecoveryCodesStatus(ctx context.Context) (*api.RecoveryCodesStatus, error)
	GenerateRecoveryCodes(ctx context.Context) (*api.RecoveryCodes, error)
}

// Service says where the account is.
type Service struct {
	// Name and Origin name the service, as its profile does.
	Name, Origin string
	// DemoUser and DemoCode are set for the embedded local service: its
	// account, and an enrollment code while that account has no key.
	DemoUser, DemoCode string
	// Notice, if set, is shown on the Account tab from the start, such as
	// that sessions will not outlive the window (no system keyring).
	Notice string
}

// accountModel is what the Account tab knows. Only the UI goroutine
// touches it.
type accountModel struct {
	// me is the session, nil when signed out.
	me   *api.Me
	keys []enroll.Key
	// busy is set while a call to the service is under way.
	busy bool
}

// accountScreen is the Account tab: sign in, the account's keys, enroll,
// rename and revoke.
type accountScreen struct {
	s     *Shell
	acc   Account
	svc   Service
	model accountModel

	content *fyne.Container
	status  *widget.Label
	notice  *widget.Label

	// Signed out.
	signedOut  *fyne.Container
	user       *widget.Entry
	code       *widget.Entry
	signInKey  *widget.Button
	signInCode *widget.Button
	demo       *fyne.Container
	demoBtn    *widget.Button

	// Signed in.
	signedIn  *fyne.Container
	who       *widget.Label
	scopeNote *widget.Label
	list      *widget.List
	enrollBtn *widget.Button
	codesBtn  *widget.Button

	// The dialogs last shown, for the tests: the enrollment wizard,
	// renaming and revoking.
	enroll       *enrollWizard
	renameDlg    *dialog.FormDialog
	renameEntry  *widget.Entry
	revokeDlg    *dialog.ConfirmDialog
	revokeReason *widget.Select
	codes        *codesDialog
	codesConfirm *dialog.ConfirmDialog
}

func newAccountScreen(s *Shell, acc Account, svc Service) *accountScreen {
	a := &accountScreen{s: s, acc: acc, svc: svc}
	a.status = wrapped("")

	a.user = widget.NewEntry()
	a.user.SetPlaceHolder("User name (optional with a key that knows your account)")
	a.code = widget.NewPasswordEntry()
	a.code.SetPlaceHolder("Enrollment code from your helpdesk")
	a.signInKey = widget.NewButtonWithIcon("Sign in with my security key", theme.LoginIcon(), a.signInWithKey)
	a.signInKey.Importance = widget.HighImportance
	a.signInCode = widget.NewButton("Sign in with the code", a.signInWithCode)
	a.code.OnSubmitted = func(string) { a.signInWithCode() }
	a.demo = container.NewVBox()
	if svc.DemoCode != "" {
		a.demoBtn = widget.NewButtonWithIcon("Enroll a key for "+svc.DemoUser, theme.ContentAddIcon(), a.startDemo)
		a.demoBtn.Importance = widget.HighImportance
		a.demo.Add(widget.NewCard("Trying Keydesk out",
			fmt.Sprintf("This is Keydesk's own local service. Your account here is %q and has no key yet.", svc.DemoUser),
			container.NewHBox(a.demoBtn)))
	}
	a.signedOut = container.NewVBox(
		a.demo,
		widget.NewCard("Sign in", "to "+serviceLabel(svc), container.NewVBox(a.user, container.NewHBox(a.signInKey))),
		widget.NewCard("New here?", "Your helpdesk gave you an enrollment code to add your first key.",
			container.NewVBox(a.code, container.NewHBox(a.signInCode))),
	)

	a.who = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	a.scopeNote = wrapped("")
	a.enrollBtn = widget.NewButtonWithIcon("Enroll a key", theme.ContentAddIcon(), a.openEnroll)
	a.enrollBtn.Importance = widget.HighImportance
	signOut := widget.NewButtonWithIcon("Sign out", theme.LogoutIcon(), a.signOut)
	a.codesBtn = widget.NewButtonWithIcon("Recovery codes…", theme.DocumentIcon(), a.openCodes)
	refresh := widget.NewButtonWithIcon("Refresh", theme.ViewRefreshIcon(), a.reload)
	a.list = widget.NewList(func() int { return len(a.model.keys) }, a.newKeyRow, a.updateKeyRow)
	a.signedIn = container.NewBorder(
		container.NewVBox(a.who, a.scopeNote, container.NewHBox(a.enrollBtn, a.codesBtn, refresh, signOut),
			widget.NewLabelWithStyle("Your keys at "+serviceLabel(svc), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})),
		nil, nil, nil, a.list)

	a.notice = wrapped(svc.Notice)
	a.notice.Importance = widget.WarningImportance
	if svc.Notice == "" {
		a.notice.Hide()
	}
	a.content = container.NewBorder(a.notice, a.status, nil, nil, container.NewStack(a.signedOut))
	a.show()
	return a
}

// serviceLabel names a service.
func serviceLabel(svc Service) string {
	if svc.Name == "" {
		return svc.Origin
	}
	return fmt.Sprintf("%s (%s)", svc.Name, svc.Origin)
}

// setStatus shows what the account screen is doing (UI goroutine).
func (a *accountScreen) setStatus(msg string) { a.status.SetText(msg) }

// show shows the signed-in or signed-out view (UI goroutine).
func (a *accountScreen) show() {
	stack := a.content.Objects[0].(*fyne.Container)
	if a.model.me == nil {
		stack.Objects = []fyne.CanvasObject{container.NewVScroll(a.signedOut)}
	} else {
		me := a.model.me
		name := me.User.Name
		if me.User.DisplayName != "" && me.User.DisplayName != me.User.Name {
			name = fmt.Sprintf("%s (%s)", me.User.DisplayName, me.User.Name)
		}
		a.who.SetText("Signed in as " + name)
		switch me.Scope {
		case "register":
			a.scopeNote.SetText("Signed in with an enrollment code: you can enroll keys now. Sign in with one of them to see and manage them.")
		case "recovery":
			a.scopeNote.SetText("Signed in to recover the account: enroll a replacement key, then revoke the lost one.")
		default:
			a.scopeNote.SetText(fmt.Sprintf("The session ends at %s.", me.ExpiresAt.Local().Format("15:04")))
		}
		stack.Objects = []fyne.CanvasObject{a.signedIn}
		// Recovery codes belong to a full session.
		if me.Scope == "full" {
			a.codesBtn.Show()
		} else {
			a.codesBtn.Hide()
		}
	}
	busy := a.model.busy
	for _, b := range []*widget.Button{a.signInKey, a.signInCode, a.enrollBtn} {
		if busy {
			b.Disable()
		} else {
			b.Enable()
		}
	}
	stack.Refresh()
	a.list.Refresh()
	a.s.accountShown(a.model.me)
}

// start reads the session kept from a former run, if any.
func (a *accountScreen) start() {
	if !a.acc.SignedIn() {
		return
	}
	a.reload()
}

// reload asks the service who is signed in and lists their keys.
func (a *accountScreen) reload() {
	devs := a.s.connectedDevices()
	a.run("Reading your account…", func(ctx context.Context) (func(), error) {
		me, err := a.acc.Me(ctx)
		if err != nil {
			return nil, err
		}
		var keys []enroll.Key
		if me.Scope == "full" {
			connected := a.s.openAll(ctx, devs)
			defer closeKeys(connected)
			if keys, err = a.acc.Keys(ctx, connected); err != nil {
				return nil, err
			}
		}
		return func() { a.model.me, a.model.keys = me, keys }, nil
	}, func(err error) {
		if errors.Is(err, rpclient.ErrUnauthorized) {
			// The session ended: back to signing in.
			a.model.me, a.model.keys = nil, nil
			a.setStatus("Your session has ended: sign in again.")
		}
	})
}

// run calls the service off the UI goroutine with the touch sheet for
// any key it uses; work returns what to apply to the model on success.
// failed, if set, sees an error first.
func (a *accountScreen) run(doing string, work func(ctx context.Context) (func(), error), failed func(error)) {
	a.model.busy = true
	a.setStatus(doing)
	a.show()
	var apply func()
	a.s.operate(platform.Device{}, func(ctx context.Context) error {
		var err error
		apply, err = work(ctx)
		return err
	}, func(err error) {
		a.model.busy = false
		switch {
		case err == nil:
			a.setStatus("")
			if apply != nil {
				apply()
			}
		case cancelled(err):
			a.setStatus("Cancelled.")
		default:
			a.setStatus(serviceErrorText(err, a.svc))
		}
		if err != nil && failed != nil {
			failed(err)
		}
		a.show()
	})
}

// signInWithKey signs in with the connected key (touched, with several).
func (a *accountScreen) signInWithKey() {
	devs := a.s.connectedDevices()
	user := strings.TrimSpace(a.user.Text)
	a.run("Signing in…", func(ctx context.Context) (func(), error) {
		key, err := a.s.pickKey(ctx, devs)
		if err != nil {
			return nil, err
		}
		defer key.Close()
		if _, err := a.acc.SignIn(ctx, key, user); err != nil {
			return nil, err
		}
		return a.reload, nil
	}, nil)
}

// signInWithCode redeems an enrollment code.
func (a *accountScreen) signInWithCode() {
	user, code := strings.TrimSpace(a.user.Text), strings.TrimSpace(a.code.Text)
	switch {
	case user == "":
		a.setStatus("Type your user name above: an enrollment code is for one account.")
		return
	case code == "":
		a.setStatus("Type the enrollment code your helpdesk gave you.")
		return
	}
	a.code.SetText("")
	a.redeem(user, code, false)
}

// startDemo signs the demo account in with its code and opens the
// enrollment wizard.
func (a *accountScreen) startDemo() {
	a.redeem(a.svc.DemoUser, a.svc.DemoCode, true)
}

// redeem signs in with an enrollment code; then, if wizard, the
// enrollment wizard opens.
func (a *accountScreen) redeem(user, code string, wizard bool) {
	a.run("Signing in with the code…", func(ctx context.Context) (func(), error) {
		if _, err := a.acc.SignInWithCode(ctx, user, code); err != nil {
			return nil, err
		}
		me, err := a.acc.Me(ctx)
		if err != nil {
			return nil, err
		}
		return func() {
			a.model.me, a.model.keys = me, nil
			if wizard || me.Scope == "register" {
				a.openEnroll()
			}
		}, nil
	}, nil)
}

// signOut ends the session.
func (a *accountScreen) signOut() {
	a.run("Signing out…", func(ctx context.Context) (func(), error) {
		err := a.acc.SignOut(ctx)
		// The token is forgotten even when the service is out of reach.
		return nil, err
	}, nil)
	a.model.me, a.model.keys = nil, nil
	a.show()
}

// newKeyRow and updateKeyRow draw one of the account's keys.
func (a *accountScreen) newKeyRow() fyne.CanvasObject {
	rename := widget.NewButtonWithIcon("Rename", theme.DocumentCreateIcon(), nil)
	revoke := widget.NewButtonWithIcon("Revoke…", theme.DeleteIcon(), nil)
	return container.NewBorder(nil, nil, widget.NewIcon(theme.LoginIcon()), container.NewHBox(rename, revoke),
		container.NewVBox(widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), widget.NewLabel("")))
}

func (a *accountScreen) updateKeyRow(id widget.ListItemID, o fyne.CanvasObject) {
	if id >= len(a.model.keys) {
		return
	}
	k := a.model.keys[id]
	row := o.(*fyne.Container)
	// A border container holds the middle first, then the sides.
	texts, icon, buttons := row.Objects[0].(*fyne.Container), row.Objects[1].(*widget.Icon), row.Objects[2].(*fyne.Container)
	icon.SetResource(a.keyIcon(k))
	texts.Objects[0].(*widget.Label).SetText(keyTitle(k))
	texts.Objects[1].(*widget.Label).SetText(keyDetailLine(k))
	rename, revoke := buttons.Objects[0].(*widget.Button), buttons.Objects[1].(*widget.Button)
	rename.OnTapped = func() { a.askRename(k) }
	revoke.OnTapped = func() { a.askRevoke(k) }
	if k.RevokedAt != nil {
		buttons.Hide()
	} else {
		buttons.Show()
	}
}

// keyIcon is a key's picture in the account's list: its model's, from
// the service, else a key's.
func (a *accountScreen) keyIcon(k enroll.Key) fyne.Resource {
	if id, err := assets.ParseAAGUID(k.AAGUID); err == nil {
		if r := a.s.models.icon(id, a.list.Refresh); r != nil {
			return r
		}
	}
	return theme.LoginIcon()
}

// keyTitle is a key's first line in the account's list.
func keyTitle(k enroll.Key) string {
	t := k.Nickname
	if k.PluggedIn {
		t += "  • plugged in now"
	}
	if k.RevokedAt != nil {
		t += "  (revoked)"
	}
	return t
}

// keyDetailLine is its second: model, when enrolled, when last used.
func keyDetailLine(k enroll.Key) string {
	parts := []string{}
	if k.Model != "" {
		parts = append(parts, k.Model)
	}
	parts = append(parts, "enrolled "+k.CreatedAt.Local().Format("2 Jan 2006"))
	if k.LastUsedAt != nil {
		parts = append(parts, "last used "+ago(time.Since(*k.LastUsedAt)))
	} else {
		parts = append(parts, "never used")
	}
	if k.RevokedAt != nil && k.RevokeReason != "" {
		parts = append(parts, "revoked: "+k.RevokeReason)
	}
	return strings.Join(parts, " · ")
}

// ago says how long ago, roughly.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// askRename asks for a key's new nickname.
func (a *accountScreen) askRename(k enroll.Key) {
	a.renameDlg, a.renameEntry = nameForm("Rename "+k.Nickname, k.Nickname, "", a.s.win, func(name string, ok bool) {
		if !ok || name == "" || name == k.Nickname {
			return
		}
		a.run("Renaming…", func(ctx context.Context) (func(), error) {
			if _, err := a.acc.Rename(ctx, k.ID, name); err != nil {
				return nil, err
			}
			return a.reload, nil
		}, nil)
	})
}

// askRevoke confirms a revocation, with its reason.
func (a *accountScreen) askRevoke(k enroll.Key) {
	reasons := []string{"lost", "stolen", "broken", "no longer used"}
	reason := widget.NewSelect(reasons, nil)
	reason.SetSelected("lost")
	msg := wrapped(fmt.Sprintf("%q will no longer sign in to %s. This cannot be undone.", k.Nickname, serviceLabel(a.svc)))
	a.revokeReason = reason
	a.revokeDlg = dialog.NewCustomConfirm("Revoke "+k.Nickname+"?", "Revoke", "Cancel",
		container.NewVBox(msg, widget.NewForm(widget.NewFormItem("Why", reason))), func(ok bool) {
			if ok {
				a.revoke(k, reason.Selected)
			}
		}, a.s.win)
	a.revokeDlg.SetConfirmImportance(widget.DangerImportance)
	a.revokeDlg.Resize(fyne.NewSize(420, 0))
	a.revokeDlg.Show()
}

// revoke revokes a key; when the service wants a fresh sign-in first, it
// signs in again with another of the connected keys (touched).
func (a *accountScreen) revoke(k enroll.Key, reason string) {
	devs := a.s.connectedDevices()
	a.run("Revoking "+k.Nickname+"…", func(ctx context.Context) (func(), error) {
		_, err := a.acc.RevokeLost(ctx, k.ID, reason, nil)
		if errors.Is(err, rpclient.ErrStepUpRequired) {
			a.s.do(func() { a.setStatus("To revoke a key, sign in again with another of your keys: touch it.") })
			key, kerr := a.s.pickKey(ctx, devs)
			if kerr != nil {
				return nil, fmt.Errorf("%w (%w)", err, kerr)
			}
			defer key.Close()
			_, err = a.acc.RevokeLost(ctx, k.ID, reason, key)
		}
		if err != nil {
			return nil, err
		}
		return a.reload, nil
	}, nil)
}

// serviceErrorText is an error from an account flow as the person reads
// it, with what to do next.
func serviceErrorText(err error, svc Service) string {
	switch {
	case errors.Is(err, rpclient.ErrNetwork):
		return fmt.Sprintf("Keydesk could not reach %s. Check the network connection, then try again.", serviceLabel(svc))
	case errors.Is(err, rpclient.ErrLastKey):
		return "This is your last usable key: it cannot be revoked before another key is enrolled. Enroll another key first, or recover the account."
	case errors.Is(err, rpclient.ErrStepUpRequired):
		return "Revoking a key needs a fresh sign-in with another of your keys: plug one in and try again."
	case errors.Is(err, platform.ErrNoDevice):
		return "No security key is plugged in: plug yours in and try again."
	case errors.Is(err, rpclient.ErrUnauthorized):
		return "The service refused the sign-in. Check the user name or code and try again; a code works once and expires."
	}
	if e, ok := errors.AsType[*rpclient.Error](err); ok && e.Message != "" {
		return e.Message
	}
	return errorText(err)
}
