package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/recovery"
	"github.com/keydesk/keydesk/rp/api"
)

// Recoverer is what the Recovery tab works with: the ways to a recovery
// session, and what a session does. NewRecoverer makes one for a
// service. The tokens it hands back are the recovery session's: the
// screen keeps them in memory only, never shows or logs them, and drops
// them once the recovery is over.
type Recoverer interface {
	// Start starts a QR handoff for username's account, naming this
	// computer desktopName.
	Start(ctx context.Context, username, desktopName string) (*recovery.Handoff, error)
	// RedeemCode trades one of the user's recovery codes for a recovery
	// session's token.
	RedeemCode(ctx context.Context, username, code string) (token string, err error)
	// RedeemGrant trades a code from the helpdesk for a session's token
	// and scope: "recovery" for a helpdesk recovery code, "register" for
	// an enrollment code given instead (which can enroll, not revoke).
	RedeemGrant(ctx context.Context, username, code string) (token, scope string, err error)
	// Recover walks through the recovery session of token
	// (recovery.Recover).
	Recover(ctx context.Context, token string, plan recovery.Plan) (*recovery.Summary, error)
	// EnrollOnly enrolls key under nickname in the session of token, a
	// "register" one, and ends the session.
	EnrollOnly(ctx context.Context, token string, key platform.Authenticator, nickname string) (*api.Key, error)
	// End ends the session of token at the service: a recovery given up
	// or failed half-way leaves no open session behind.
	End(ctx context.Context, token string) error
}

// NewRecoverer is the Recoverer of the service client calls: client
// without a session (each handoff and code gets a copy of its own, so
// that no session token travels with them), and cfg the account's
// configuration (Origin, RPID; its UI, the Shell's, asks for PINs in
// dialogs). cfg.API defaults to client; cfg.Tokens is not used: a
// recovery session is never stored.
func NewRecoverer(client *rpclient.Client, cfg enroll.Config) Recoverer {
	if cfg.API == nil {
		cfg.API = client
	}
	cfg.Tokens = nil
	return &serviceRecoverer{client: client, cfg: cfg}
}

// serviceRecoverer is NewRecoverer's Recoverer.
type serviceRecoverer struct {
	client *rpclient.Client
	cfg    enroll.Config
}

// anonymous is a fresh client without a session: redeeming a code makes
// a client use the new session, which must not leak into the next try.
func (r *serviceRecoverer) anonymous() (*rpclient.Client, error) {
	if r.client == nil {
		return nil, errors.New("recovery: no API client")
	}
	return r.client.WithToken("")
}

func (r *serviceRecoverer) Start(ctx context.Context, username, desktopName string) (*recovery.Handoff, error) {
	c, err := r.anonymous()
	if err != nil {
		return nil, err
	}
	return recovery.Start(ctx, c, username, desktopName)
}

func (r *serviceRecoverer) RedeemCode(ctx context.Context, username, code string) (string, error) {
	c, err := r.anonymous()
	if err != nil {
		return "", err
	}
	_, token, err := recovery.RedeemCode(ctx, c, username, code)
	return token, err
}

func (r *serviceRecoverer) RedeemGrant(ctx context.Context, username, code string) (string, string, error) {
	c, err := r.anonymous()
	if err != nil {
		return "", "", err
	}
	sess, token, err := c.RedeemGrant(ctx, username, code)
	if err != nil {
		return "", "", err
	}
	return token, sess.Scope, nil
}

func (r *serviceRecoverer) Recover(ctx context.Context, token string, plan recovery.Plan) (*recovery.Summary, error) {
	return recovery.Recover(ctx, r.cfg, token, plan)
}

func (r *serviceRecoverer) EnrollOnly(ctx context.Context, token string, key platform.Authenticator, nickname string) (*api.Key, error) {
	s, err := recovery.Begin(ctx, r.cfg, token)
	if err != nil {
		return nil, err
	}
	k, err := s.EnrollReplacement(ctx, key, nickname)
	if err != nil {
		return nil, err
	}
	_ = s.End(ctx) // best effort: the session lives in memory only
	return k, nil
}

func (r *serviceRecoverer) End(ctx context.Context, token string) error {
	cfg := r.cfg
	cfg.UI = enroll.UI{} // nothing to tell: it is the way out
	s, err := recovery.Begin(ctx, cfg, token)
	if err != nil {
		return err
	}
	return s.End(ctx)
}

// recoveryEnrollUI is the enroll.UI of the recovery flows: the Shell's
// (the PIN dialog, the account chooser), with the flows' events on the
// Recovery tab's status line rather than the Account tab's.
func (s *Shell) recoveryEnrollUI() enroll.UI {
	u := s.enrollUI()
	u.Event = func(ev enroll.Event) {
		s.do(func() {
			s.touchDoneAfter(ev)
			if s.recovery != nil {
				s.recovery.setStatus(ev.Message)
			}
		})
	}
	return u
}

// The ways back into an account.
type recoveryWay int

const (
	viaPhone recoveryWay = iota
	viaCode
	viaGrant
)

// recoveryQRSize is the QR code's size on screen, in pixels: well above
// recovery.MinQRSize, small enough to leave room for the number.
const recoveryQRSize = 200

// recoveryModel is where the Recovery tab is. Only the UI goroutine
// touches it.
type recoveryModel struct {
	user string
	way  recoveryWay
	// handoff is the QR handoff on show, nil when none; stopWait ends
	// its wait and its countdown.
	handoff  *recovery.Handoff
	stopWait func()
	// token and scope are the recovery session's, once granted: in
	// memory only, dropped when the recovery ends.
	token, scope string
	// devs are the keys offered as the replacement; stopKeys ends
	// following plugs and unplugs for that list.
	devs     []platform.Device
	stopKeys func()
	// busy is set while a call or the recovery itself is under way.
	busy bool
}

// recoveryScreen is the Recovery tab, "I lost my key": a recovery
// session from the phone (QR handoff), a recovery code or a helpdesk's
// code; then the replacement key, the lost keys, and what was done.
type recoveryScreen struct {
	s     *Shell
	rec   Recoverer
	svc   Service
	model recoveryModel

	content *fyne.Container
	pages   *fyne.Container
	status  *widget.Label

	// The first page: the account and the three ways.
	startPage   *fyne.Container
	startScroll *container.Scroll
	user        *widget.Entry
	phoneBtn    *widget.Button
	code        *widget.Entry
	codeBtn     *widget.Button
	grant       *widget.Entry
	grantBtn    *widget.Button

	// The QR page.
	qrPage    *fyne.Container
	qrHead    *widget.Label
	qrBody    *fyne.Container
	qr        *canvas.Image
	number    *canvas.Text
	countdown *widget.Label
	desktop   *widget.Label
	link      *widget.Label
	typed     *widget.Label
	waiting   *widget.Label
	outcome   *widget.Label
	qrCancel  *widget.Button
	qrAgain   *widget.Button

	// The replacement key.
	replacePage *fyne.Container
	replaceHead *widget.Label
	replaceText *widget.Label
	keySel      *widget.Select
	nickname    *widget.Entry
	problem     *widget.Label
	continueBtn *widget.Button
	giveUp      *widget.Button

	// The lost keys, asked while the recovery runs.
	lostPage   *fyne.Container
	lostBox    *fyne.Container
	lostChecks []*widget.Check
	lostOK     *widget.Button
	lostBack   *widget.Button

	// The recovery under way.
	workPage *fyne.Container
	workText *widget.Label

	// What was done.
	donePage *fyne.Container
	doneHead *widget.Label
	doneText *widget.Label
	doneBtn  *widget.Button
}

func newRecoveryScreen(s *Shell, rec Recoverer, svc Service) *recoveryScreen {
	r := &recoveryScreen{s: s, rec: rec, svc: svc}
	r.status = wrapped("")
	r.buildStart()
	r.buildQR()
	r.buildReplace()
	r.buildLost()
	r.buildWork()
	r.buildDone()
	r.startScroll = container.NewVScroll(r.startPage)
	r.pages = container.NewStack(r.startScroll)
	r.content = container.NewBorder(nil, r.status, nil, nil, r.pages)
	return r
}

// recoveryHeading is a page's title.
func recoveryHeading(text string) *widget.Label {
	return widget.NewLabelWithStyle(text, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
}

func (r *recoveryScreen) buildStart() {
	r.user = widget.NewEntry()
	r.user.SetPlaceHolder("Your user name at " + serviceLabel(r.svc))
	r.user.SetText(r.svc.DemoUser)
	r.phoneBtn = widget.NewButton("Use my phone", r.startPhone)
	r.phoneBtn.Importance = widget.HighImportance
	r.code = widget.NewPasswordEntry()
	r.code.SetPlaceHolder("Recovery code, such as ABCDE-FGHJK-MNPQR-STVWX")
	r.code.OnSubmitted = func(string) { r.useCode() }
	r.codeBtn = widget.NewButton("Use the recovery code", r.useCode)
	r.grant = widget.NewPasswordEntry()
	r.grant.SetPlaceHolder("Code from your helpdesk")
	r.grant.OnSubmitted = func(string) { r.useGrant() }
	r.grantBtn = widget.NewButton("Use the helpdesk's code", r.useGrant)
	intro := wrapped("Lost your security key, or it broke? Get back into your account at " + serviceLabel(r.svc) +
		": Keydesk enrolls a new key in its place, then revokes the lost one so that it no longer signs in. " +
		"First prove it is you, in one of three ways.")
	r.startPage = container.NewVBox(
		recoveryHeading("I lost my key"),
		intro,
		widget.NewForm(widget.NewFormItem("User name", r.user)),
		widget.NewCard("", "With my phone: scan a QR code and approve with the passkey on the phone",
			container.NewHBox(r.phoneBtn)),
		widget.NewCard("", "With a recovery code: one of the codes you saved when you made them; each works once",
			container.NewBorder(nil, nil, nil, r.codeBtn, r.code)),
		widget.NewCard("", "With a code from my helpdesk: ask them, they check who you are first",
			container.NewBorder(nil, nil, nil, r.grantBtn, r.grant)),
	)
}

func (r *recoveryScreen) buildQR() {
	r.qr = canvas.NewImageFromImage(image.NewGray(image.Rect(0, 0, 1, 1)))
	r.qr.FillMode = canvas.ImageFillContain
	r.qr.ScaleMode = canvas.ImageScalePixels
	r.qr.SetMinSize(fyne.NewSize(recoveryQRSize, recoveryQRSize))
	r.number = canvas.NewText("", theme.Color(theme.ColorNameForeground))
	r.number.TextSize = 56
	r.number.TextStyle = fyne.TextStyle{Bold: true}
	r.countdown = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	r.desktop = wrapped("")
	r.link = wrapped("")
	r.link.Selectable = true
	r.typed = widget.NewLabel("")
	r.typed.Selectable = true
	r.waiting = wrapped("")
	r.outcome = wrapped("")
	r.outcome.Importance = widget.DangerImportance
	r.outcome.Hide()
	r.qrCancel = widget.NewButton("Cancel", r.cancelHandoff)
	r.qrAgain = widget.NewButtonWithIcon("Start again", theme.ViewRefreshIcon(), r.startPhone)
	r.qrAgain.Importance = widget.HighImportance
	r.qrAgain.Hide()
	side := container.NewVBox(
		wrapped("Point the phone's camera at the code. On the page it opens, pick this number, then approve with your passkey:"),
		// The label's text is inset by the theme's inner padding: the
		// number lines up with it.
		container.New(layout.NewCustomPaddedLayout(0, 0, theme.InnerPadding(), 0), r.number),
		r.countdown,
	)
	r.qrHead = recoveryHeading("")
	// qrBody is what the phone needs, shown while the request can be
	// approved.
	r.qrBody = container.NewVBox(
		container.NewBorder(nil, nil, container.NewCenter(r.qr), nil, side),
		widget.NewForm(
			widget.NewFormItem("No camera? Open", r.link),
			widget.NewFormItem("Code, if asked", r.typed),
		),
		r.desktop,
	)
	r.qrPage = container.NewBorder(
		r.qrHead,
		container.NewBorder(nil, nil, container.NewHBox(r.qrCancel, r.qrAgain), nil, r.waiting),
		nil, nil,
		container.NewVScroll(container.NewVBox(r.qrBody, r.outcome)),
	)
}

func (r *recoveryScreen) buildReplace() {
	r.replaceHead = recoveryHeading("")
	r.replaceText = wrapped("")
	r.keySel = widget.NewSelect(nil, nil)
	r.nickname = widget.NewEntry()
	r.nickname.SetPlaceHolder("A name you will recognise, such as \"green key\"")
	r.nickname.OnSubmitted = func(string) { r.recover() }
	r.problem = wrapped("")
	r.problem.Importance = widget.DangerImportance
	r.problem.Hide()
	r.continueBtn = widget.NewButton("Continue", r.recover)
	r.continueBtn.Importance = widget.HighImportance
	r.giveUp = widget.NewButton("Cancel the recovery", r.cancelSession)
	r.replacePage = container.NewVBox(
		r.replaceHead, r.replaceText,
		widget.NewForm(widget.NewFormItem("New key", r.keySel), widget.NewFormItem("Name", r.nickname)),
		r.problem,
		container.NewHBox(r.giveUp, r.continueBtn),
	)
}

func (r *recoveryScreen) buildLost() {
	r.lostBox = container.NewVBox()
	r.lostOK = widget.NewButton("", nil)
	r.lostOK.Importance = widget.HighImportance
	r.lostBack = widget.NewButton("Back", nil)
	r.lostPage = container.NewBorder(
		container.NewVBox(recoveryHeading("Which keys did you lose?"),
			wrapped("Tick the keys you lost. Once the new key is enrolled they are revoked: they will no longer sign in, "+
				"whoever finds them. Keys plugged in now are marked: those are not lost.")),
		container.NewHBox(r.lostBack, r.lostOK), nil, nil,
		container.NewVScroll(r.lostBox))
}

func (r *recoveryScreen) buildWork() {
	r.workText = wrapped("")
	r.workPage = container.NewVBox(recoveryHeading("Recovering your account"), r.workText)
}

func (r *recoveryScreen) buildDone() {
	r.doneHead = recoveryHeading("")
	r.doneText = wrapped("")
	r.doneBtn = widget.NewButton("Done", r.finish)
	r.doneBtn.Importance = widget.HighImportance
	r.donePage = container.NewVBox(r.doneHead, r.doneText, container.NewHBox(r.doneBtn))
}

// setStatus shows what the recovery is doing (UI goroutine).
func (r *recoveryScreen) setStatus(msg string) { r.status.SetText(msg) }

// showPage puts page up (UI goroutine).
func (r *recoveryScreen) showPage(page fyne.CanvasObject) {
	r.pages.Objects = []fyne.CanvasObject{page}
	r.pages.Refresh()
}

// setBusy turns the first page's buttons off while a call is under way.
func (r *recoveryScreen) setBusy(busy bool) {
	r.model.busy = busy
	for _, b := range []*widget.Button{r.phoneBtn, r.codeBtn, r.grantBtn, r.continueBtn, r.giveUp} {
		if busy {
			b.Disable()
		} else {
			b.Enable()
		}
	}
}

// account is the user name typed, or "" after telling the person to
// type one.
func (r *recoveryScreen) account() string {
	user := strings.TrimSpace(r.user.Text)
	if user == "" {
		r.setStatus("Type your user name first: the recovery is for one account.")
		r.s.win.Canvas().Focus(r.user)
	}
	return user
}

// startPhone starts a QR handoff and shows it (the first page's "Use my
// phone", and "Start again").
func (r *recoveryScreen) startPhone() {
	user := r.account()
	if user == "" || r.model.busy {
		return
	}
	r.closeHandoff()
	r.model.user, r.model.way = user, viaPhone
	r.setBusy(true)
	r.setStatus("Asking " + serviceLabel(r.svc) + " for a recovery request…")
	r.s.goBackground(func(ctx context.Context) {
		desktop, err := os.Hostname()
		if err != nil || desktop == "" {
			desktop = "Keydesk"
		}
		h, err := r.rec.Start(ctx, user, desktop)
		var qr image.Image
		if err == nil {
			var b []byte
			if b, err = h.QR(recoveryQRSize); err == nil {
				qr, err = png.Decode(bytes.NewReader(b))
			}
			if err != nil {
				h.Close()
			}
		}
		r.s.do(func() {
			r.setBusy(false)
			if err != nil {
				r.showPage(r.startScroll)
				r.setStatus("The recovery could not start. " + recoveryErrorText(err, r.svc))
				return
			}
			r.showHandoff(h, qr, desktop)
		})
	})
}

// showHandoff shows the QR page of h and waits for the phone in the
// background, with the countdown (UI goroutine).
func (r *recoveryScreen) showHandoff(h *recovery.Handoff, qr image.Image, desktop string) {
	r.model.handoff = h
	r.qr.Image = qr
	r.qr.Refresh()
	r.number.Text = fmt.Sprintf("%02d", h.Number())
	r.number.Color = theme.Color(theme.ColorNameForeground)
	r.number.Refresh()
	r.desktop.SetText(fmt.Sprintf("The phone names this computer %q. If it names another, or if you did not start this, do not approve.", desktop))
	r.link.SetText(h.URL())
	r.typed.SetText(h.TypedCode())
	r.waiting.SetText("Waiting for your phone…")
	r.qrHead.SetText("Scan this code with your phone")
	r.qrBody.Show()
	r.outcome.Hide()
	r.qrCancel.SetText("Cancel")
	r.qrAgain.Hide()
	r.qrPage.Refresh()
	r.tick()
	r.setStatus("")
	r.showPage(r.qrPage)

	ctx, cancel := context.WithCancel(r.s.ctx)
	stopTicker := r.every(time.Second, r.tick)
	r.model.stopWait = func() { cancel(); stopTicker() }
	r.s.goBackground(func(context.Context) {
		o, err := h.Wait(ctx)
		token := ""
		if err == nil && o.Status == recovery.Approved {
			r.s.do(func() {
				if r.model.handoff == h {
					r.waiting.SetText("Approved on the phone. Opening the recovery session…")
				}
			})
			token, err = redeemHandoff(ctx, h)
		}
		r.s.do(func() {
			if r.model.handoff != h {
				// Cancelled, or started again: a session granted
				// meanwhile is not wanted.
				if token != "" {
					r.endSession(token)
				}
				return
			}
			r.model.stopWait()
			r.model.stopWait = nil
			r.waited(o, token, err)
		})
	})
}

// redeemHandoff trades the approval for the recovery session's token. A
// redeem whose answer never came is sent again, as recovery.Handoff
// allows (the same signature).
func redeemHandoff(ctx context.Context, h *recovery.Handoff) (string, error) {
	for attempt := 1; ; attempt++ {
		_, token, err := h.Redeem(ctx)
		if err == nil || attempt == 3 || ctx.Err() != nil ||
			!(errors.Is(err, rpclient.ErrNetwork) || errors.Is(err, rpclient.ErrServer)) {
			return token, err
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// tick shows the time left (UI goroutine).
func (r *recoveryScreen) tick() {
	if h := r.model.handoff; h != nil {
		r.countdown.SetText("Time left: " + countdownText(h.Remaining(time.Now())))
	}
}

// countdownText is d as m:ss, rounded up: a countdown shows 0:00 only
// at its end.
func countdownText(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// every runs f on the UI goroutine every d until the returned stop is
// called (on the UI goroutine) or the window closes.
func (r *recoveryScreen) every(d time.Duration, f func()) (stop func()) {
	ctx, cancel := context.WithCancel(r.s.ctx)
	r.s.goBackground(func(context.Context) {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.s.do(func() {
					if ctx.Err() == nil {
						f()
					}
				})
			}
		}
	})
	return cancel
}

// waited shows how the handoff ended (UI goroutine): on to the
// replacement key, or why not.
func (r *recoveryScreen) waited(o recovery.Outcome, token string, err error) {
	// Its key is forgotten however it ended (Close is safe after
	// Redeem).
	r.model.handoff.Close()
	r.forgetHandoff()
	if err == nil && o.Status == recovery.Approved {
		r.granted(token, "recovery")
		return
	}
	r.countdown.SetText("")
	r.waiting.SetText("")
	switch {
	case err == nil && o.Status == recovery.Expired:
		r.qrHead.SetText("The request expired")
		r.outcome.SetText(o.Reason)
	case err == nil:
		r.qrHead.SetText("The request was stopped")
		r.outcome.SetText(o.Reason)
	case cancelled(err):
		r.qrHead.SetText("The request was cancelled")
		r.outcome.SetText("It can no longer be used from this computer.")
	default:
		r.qrHead.SetText("The request failed")
		r.outcome.SetText(recoveryErrorText(err, r.svc))
	}
	r.qrBody.Hide()
	r.outcome.Show()
	r.qrCancel.SetText("Back")
	r.qrAgain.Show()
	r.qrPage.Refresh() // lay out what is shown now
	r.s.win.Canvas().Focus(r.qrAgain)
}

// forgetHandoff clears the QR page of the handoff's secrets and forgets
// it (UI goroutine): its link, typed code and QR code stay on screen
// only while it can be approved.
func (r *recoveryScreen) forgetHandoff() {
	r.model.handoff = nil
	r.link.SetText("")
	r.typed.SetText("")
	r.qr.Image = image.NewGray(image.Rect(0, 0, 1, 1))
	r.qr.Refresh()
	r.number.Text = "—"
	r.number.Refresh()
}

// closeHandoff stops the handoff on show, if any (UI goroutine): its key
// is forgotten, nothing can redeem it from here any more.
func (r *recoveryScreen) closeHandoff() {
	if r.model.stopWait != nil {
		r.model.stopWait()
		r.model.stopWait = nil
	}
	if h := r.model.handoff; h != nil {
		h.Close()
		r.forgetHandoff()
	}
}

// cancelHandoff is the QR page's Cancel (and Back, once it ended).
func (r *recoveryScreen) cancelHandoff() {
	waiting := r.model.handoff != nil
	r.closeHandoff()
	r.showPage(r.startScroll)
	if waiting {
		r.setStatus("Cancelled: the request can no longer be used from this computer.")
	} else {
		r.setStatus("")
	}
}

// useCode redeems a recovery code.
func (r *recoveryScreen) useCode() {
	user := r.account()
	code := strings.TrimSpace(r.code.Text)
	r.code.SetText("")
	switch {
	case user == "" || r.model.busy:
		return
	case code == "":
		r.setStatus("Type one of your recovery codes.")
		return
	}
	r.model.user, r.model.way = user, viaCode
	r.redeem("Checking the recovery code…", func(ctx context.Context) (string, string, error) {
		token, err := r.rec.RedeemCode(ctx, user, code)
		return token, "recovery", err
	})
}

// useGrant redeems a helpdesk's code.
func (r *recoveryScreen) useGrant() {
	user := r.account()
	code := strings.TrimSpace(r.grant.Text)
	r.grant.SetText("")
	switch {
	case user == "" || r.model.busy:
		return
	case code == "":
		r.setStatus("Type the code your helpdesk gave you.")
		return
	}
	r.model.user, r.model.way = user, viaGrant
	r.redeem("Checking the helpdesk's code…", func(ctx context.Context) (string, string, error) {
		return r.rec.RedeemGrant(ctx, user, code)
	})
}

// redeem trades a code for a session off the UI goroutine.
func (r *recoveryScreen) redeem(doing string, trade func(ctx context.Context) (token, scope string, err error)) {
	r.setBusy(true)
	r.setStatus(doing)
	way := r.model.way
	r.s.goBackground(func(ctx context.Context) {
		token, scope, err := trade(ctx)
		r.s.do(func() {
			r.setBusy(false)
			if err != nil {
				r.setStatus(recoveryCodeErrorText(err, way, r.svc))
				return
			}
			r.granted(token, scope)
		})
	})
}

// recoveryCodeErrorText is a refused code as the person reads it.
func recoveryCodeErrorText(err error, way recoveryWay, svc Service) string {
	switch {
	case errors.Is(err, recovery.ErrBadCode):
		return "That user name and recovery code do not match: check both and try again. A code of an older set no longer works."
	case errors.Is(err, recovery.ErrCodeUsed):
		return "That recovery code was used already: each code works once. Use another of your codes."
	case errors.Is(err, rpclient.ErrGrantPending):
		return "This code waits for a second helpdesk member's approval. Ask your helpdesk to have it approved, then try again: the code still works."
	case way == viaGrant && errors.Is(err, rpclient.ErrUnauthorized):
		return "That user name and code do not match, or the code expired or was used. Check both, or ask your helpdesk for a new code."
	}
	return recoveryErrorText(err, svc)
}

// recoveryErrorText is an error of a recovery as the person reads it,
// with what to do next.
func recoveryErrorText(err error, svc Service) string {
	var re *rpclient.Error
	switch {
	case errors.Is(err, rpclient.ErrRateLimited) && errors.As(err, &re) && re.RetryAfter > 0:
		return fmt.Sprintf("Too many tries: wait %s, then try again.", recoveryWait(re.RetryAfter))
	case errors.Is(err, rpclient.ErrRateLimited):
		return "Too many tries: wait a few minutes, then try again."
	case errors.Is(err, recovery.ErrExpired):
		return "The recovery request expired before it was used. Start again."
	case errors.Is(err, recovery.ErrUsed):
		return "The approval was used already (an answer may have been lost on the way). Start again."
	case errors.Is(err, recovery.ErrRefused):
		return "The recovery request was stopped. Start again."
	case errors.Is(err, recovery.ErrWrongDesktop):
		return "The service says this is not the computer that started the request. Start again from this computer."
	case errors.Is(err, recovery.ErrUnknownKey):
		return "A key chosen as lost is not one of the account's usable keys: nothing was changed."
	}
	return serviceErrorText(err, svc)
}

// recoveryWait is a wait as people say it.
func recoveryWait(d time.Duration) string {
	switch {
	case d <= time.Minute:
		return fmt.Sprintf("%d seconds", int((d+time.Second-1)/time.Second))
	case d < 2*time.Hour:
		return fmt.Sprintf("%d minutes", int((d+time.Minute-1)/time.Minute))
	}
	return fmt.Sprintf("%d hours", int((d+time.Hour-1)/time.Hour))
}

// granted moves on to the replacement key with the session of token
// (UI goroutine).
func (r *recoveryScreen) granted(token, scope string) {
	r.model.token, r.model.scope = token, scope
	r.model.devs = nil
	r.nickname.SetText("")
	r.showReplace()
}

// showReplace shows the replacement key's page, following the keys
// plugged in (UI goroutine).
func (r *recoveryScreen) showReplace() {
	scope := r.model.scope
	r.setStatus("")
	r.replaceHead.SetText(fmt.Sprintf("Recovering %s: choose the new key", r.model.user))
	text := "Plug in the key that replaces the lost one, and give it a name. It is enrolled in your account: " +
		"it asks for its PIN if it has one, and for a touch. You have about ten minutes."
	if scope == "register" {
		text = "That was an enrollment code, not a helpdesk recovery code: it adds a key to your account but cannot revoke one. " +
			"Plug in the new key and give it a name; once it is enrolled, sign in with it on the Account tab and revoke the lost key there."
	}
	r.replaceText.SetText(text)
	r.problem.Hide()
	r.replacePage.Refresh()
	r.followKeys()
	if r.model.stopKeys == nil {
		r.model.stopKeys = r.every(r.s.deps.WatchInterval, r.followKeys)
	}
	r.setBusy(false)
	r.showPage(r.replacePage)
	r.s.win.Canvas().Focus(r.nickname)
}

// followKeys offers the keys plugged in now as the replacement, keeping
// the one chosen (UI goroutine).
func (r *recoveryScreen) followKeys() {
	devs := r.s.connectedDevices()
	same := slices.EqualFunc(devs, r.model.devs, func(a, b platform.Device) bool { return a.Path == b.Path })
	if same && r.model.devs != nil {
		return
	}
	chosen := ""
	if i := r.keySel.SelectedIndex(); i >= 0 && i < len(r.model.devs) {
		chosen = r.model.devs[i].Path
	}
	r.model.devs = devs
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = fmt.Sprintf("%d. %s", i+1, r.s.keys.entryTitle(d))
	}
	r.keySel.SetOptions(names)
	r.keySel.ClearSelected()
	switch {
	case len(devs) == 0:
		r.keySel.PlaceHolder = "No key is plugged in"
		r.keySel.Refresh()
	case slices.ContainsFunc(devs, func(d platform.Device) bool { return d.Path == chosen }):
		r.keySel.SetSelectedIndex(slices.IndexFunc(devs, func(d platform.Device) bool { return d.Path == chosen }))
	default:
		r.keySel.SetSelectedIndex(0)
		if r.nickname.Text == "" {
			r.nickname.SetText(r.s.keys.entryModel(devs[0]))
		}
	}
}

// stopFollowingKeys ends followKeys' updates.
func (r *recoveryScreen) stopFollowingKeys() {
	if r.model.stopKeys != nil {
		r.model.stopKeys()
		r.model.stopKeys = nil
	}
}

// showProblem says on the replacement page what is wrong.
func (r *recoveryScreen) showProblem(msg string) {
	r.problem.SetText(msg)
	r.problem.Show()
	r.replacePage.Refresh() // lay it out
}

// recover runs the recovery with the chosen key: the lost keys are asked
// on the way (SelectLost), then the key is enrolled (PIN dialog, touch
// sheet) and the lost ones revoked.
func (r *recoveryScreen) recover() {
	name := strings.TrimSpace(r.nickname.Text)
	i := r.keySel.SelectedIndex()
	switch {
	case r.model.busy || r.model.token == "":
		return
	case i < 0 || i >= len(r.model.devs):
		r.showProblem("Plug in the new key and choose it above.")
		return
	case name == "":
		r.showProblem("Give the new key a name, so that you can tell it from your other keys.")
		return
	}
	dev, devs := r.model.devs[i], r.s.connectedDevices()
	token, scope := r.model.token, r.model.scope
	r.setBusy(true)
	r.problem.Hide()
	r.replacePage.Refresh()
	r.stopFollowingKeys()
	r.workText.SetText("Reading your account's keys…")
	r.showPage(r.workPage)
	var sum *recovery.Summary
	r.s.operate(dev, func(ctx context.Context) error {
		key, err := r.s.deps.Keys.Open(ctx, dev)
		if err != nil {
			return err
		}
		defer key.Close()
		if scope == "register" {
			r.s.do(func() { r.workText.SetText("Enrolling the new key: touch it when it blinks.") })
			k, err := r.rec.EnrollOnly(ctx, token, key, name)
			if k != nil {
				sum = &recovery.Summary{Enrolled: k}
			}
			return err
		}
		connected := r.s.openAll(ctx, devs)
		defer closeKeys(connected)
		sum, err = r.rec.Recover(ctx, token, recovery.Plan{
			Replacement: key, Nickname: name, Connected: connected,
			SelectLost: func(usable []enroll.Key) ([]string, error) { return r.askLost(ctx, usable) },
		})
		return err
	}, func(err error) {
		r.setBusy(false)
		r.recovered(sum, err)
	})
}

// askLost shows the account's usable keys as checkboxes and waits for
// the person's choice; it runs on the recovery's goroutine. Back stops
// the recovery before anything changed.
func (r *recoveryScreen) askLost(ctx context.Context, usable []enroll.Key) ([]string, error) {
	return ask(ctx, r.s, func(reply func([]string, error)) func() {
		r.showLost(usable, reply)
		return func() { r.showPage(r.workPage) }
	})
}

// showLost puts up the lost keys' page (UI goroutine).
func (r *recoveryScreen) showLost(usable []enroll.Key, reply func([]string, error)) {
	r.lostBox.RemoveAll()
	r.lostChecks = nil
	if len(usable) == 0 {
		r.lostBox.Add(wrapped("The account has no other usable key: there is nothing to revoke."))
	}
	update := func() {
		n := 0
		for _, c := range r.lostChecks {
			if c.Checked {
				n++
			}
		}
		switch n {
		case 0:
			r.lostOK.SetText("Enroll the new key, revoke none")
		case 1:
			r.lostOK.SetText("Enroll the new key, revoke the ticked key")
		default:
			r.lostOK.SetText(fmt.Sprintf("Enroll the new key, revoke the %d ticked keys", n))
		}
	}
	for _, k := range usable {
		c := widget.NewCheck(keyTitle(k), func(bool) { update() })
		r.lostChecks = append(r.lostChecks, c)
		detail := wrapped(keyDetailLine(k))
		detail.SizeName = theme.SizeNameCaptionText
		// The detail lines up under the check's text.
		indent := canvas.NewRectangle(color.Transparent)
		indent.SetMinSize(fyne.NewSize(theme.IconInlineSize()+theme.Padding(), 0))
		r.lostBox.Add(container.NewVBox(c, container.NewBorder(nil, nil, indent, nil, detail)))
	}
	update()
	answered := false
	r.lostOK.OnTapped = func() {
		if answered {
			return
		}
		answered = true
		var ids []string
		for i, c := range r.lostChecks {
			if c.Checked {
				ids = append(ids, usable[i].ID)
			}
		}
		r.workText.SetText("Enrolling the new key: touch it when it blinks.")
		r.showPage(r.workPage)
		reply(ids, nil)
	}
	r.lostBack.OnTapped = func() {
		if answered {
			return
		}
		answered = true
		r.showPage(r.workPage)
		reply(nil, &platform.Error{Op: "choose the lost keys", Kind: platform.ErrCancelled, RetriesLeft: -1})
	}
	r.setStatus("")
	r.showPage(r.lostPage)
	if len(r.lostChecks) > 0 {
		r.s.win.Canvas().Focus(r.lostChecks[0])
	}
}

// recovered shows how the recovery ended (UI goroutine). Before
// anything changed the session is kept, to try again with the same key
// or another; once the new key is enrolled, what was done is shown and
// the session ended.
func (r *recoveryScreen) recovered(sum *recovery.Summary, err error) {
	enrolled := sum != nil && sum.Enrolled != nil
	ended := errors.Is(err, rpclient.ErrUnauthorized)
	switch {
	case err == nil:
		r.showDone(sum, nil)
	case !enrolled && !ended:
		// Nothing changed and the session lives: back to the key.
		msg := recoveryErrorText(err, r.svc)
		if cancelled(err) {
			msg = "Stopped: nothing was changed. Choose the new key again, or cancel the recovery."
		}
		r.showReplace()
		r.showProblem(msg)
	default:
		r.showDone(sum, err)
	}
}

// showDone shows what the recovery did, and err if it did not finish
// (UI goroutine); the session is over either way.
func (r *recoveryScreen) showDone(sum *recovery.Summary, err error) {
	token, scope := r.model.token, r.model.scope
	r.model.token, r.model.scope = "", ""
	r.stopFollowingKeys()
	if err != nil && !errors.Is(err, rpclient.ErrUnauthorized) && !errors.Is(err, rpclient.ErrNetwork) {
		// The session lives in this process only: end it rather than
		// leave it open for minutes.
		r.endSession(token)
	}
	var b strings.Builder
	account := r.model.user
	if sum != nil && sum.User.Name != "" {
		account = sum.User.Name
	}
	if sum != nil && sum.Enrolled != nil {
		k := sum.Enrolled
		fmt.Fprintf(&b, "The new key %q", k.Nickname)
		if k.Model != "" {
			fmt.Fprintf(&b, " (%s)", k.Model)
		}
		fmt.Fprintf(&b, " is enrolled in the account %s.\n", account)
	}
	if sum != nil {
		for _, k := range sum.Revoked {
			fmt.Fprintf(&b, "Revoked %q: it no longer signs in.\n", k.Nickname)
		}
	}
	switch {
	case err == nil && scope == "register":
		// An enrollment code: enrolled, nothing revoked.
		r.doneHead.SetText("Your new key is enrolled")
		b.WriteString("Nothing was revoked: an enrollment code cannot do that. Sign in with the new key on the Account tab, and revoke the lost key there.")
	case err == nil:
		r.doneHead.SetText("Your account is recovered")
		if len(sum.Revoked) == 0 {
			b.WriteString("No key was revoked.\n")
		}
		b.WriteString("Sign in with the new key on the Account tab.")
		if r.model.way == viaCode {
			b.WriteString(" The recovery code you used no longer works: if few are left, make a new set once signed in.")
		}
	case sum != nil && sum.Enrolled != nil:
		r.doneHead.SetText("The recovery did not finish")
		fmt.Fprintf(&b, "The lost keys could not all be revoked: %s\n", recoveryErrorText(err, r.svc))
		b.WriteString("Sign in with the new key on the Account tab, and revoke the lost keys there (Revoke…).")
	default:
		r.doneHead.SetText("The recovery did not finish")
		b.WriteString("Nothing was changed. ")
		if errors.Is(err, rpclient.ErrUnauthorized) {
			b.WriteString("The recovery session ended before the new key was enrolled: it lasts ten minutes. ")
		} else {
			b.WriteString(recoveryErrorText(err, r.svc) + " ")
		}
		b.WriteString("Start again.")
		if note := r.spentNote(); note != "" {
			b.WriteString(" " + note)
		}
	}
	r.doneText.SetText(b.String())
	r.setStatus("")
	r.showPage(r.donePage)
	r.s.win.Canvas().Focus(r.doneBtn)
}

// spentNote says what became of the code that opened the session.
func (r *recoveryScreen) spentNote() string {
	switch r.model.way {
	case viaCode:
		return "The recovery code you used is used up: use another one."
	case viaGrant:
		return "The helpdesk's code is used up: ask your helpdesk for a new one."
	}
	return ""
}

// cancelSession is the replacement page's "Cancel the recovery": the
// session is ended, nothing changed.
func (r *recoveryScreen) cancelSession() {
	if r.model.busy {
		return
	}
	token := r.model.token
	r.model.token, r.model.scope = "", ""
	r.stopFollowingKeys()
	if token != "" {
		r.endSession(token)
	}
	r.showPage(r.startScroll)
	msg := "The recovery was cancelled: nothing was changed."
	if note := r.spentNote(); note != "" {
		msg += " " + note
	}
	r.setStatus(msg)
}

// endSession ends the session of token in the background, best effort:
// a session that could not be ended expires within minutes.
func (r *recoveryScreen) endSession(token string) {
	r.s.goBackground(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = r.rec.End(ctx, token)
	})
}

// finish goes back to the first page.
func (r *recoveryScreen) finish() {
	r.doneText.SetText("")
	r.setStatus("")
	r.showPage(r.startScroll)
}
