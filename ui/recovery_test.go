package ui

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/profile"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
)

// The Recovery tab against the reference RP (withService), with
// in-process keys at the desktop and rptest's software phone: a passkey
// that verifies its user, registered for root, approving as the phone's
// page does (describe, pick the number, assert).

// withRecovery gives the window a Recovery tab on the service that
// withService (which must come first) started.
func withRecovery(srv **rptest.Server) harnessOption {
	return func(h *harness, d *Deps) {
		s := *srv
		if s == nil {
			h.t.Fatal("withRecovery needs withService first")
		}
		d.NewRecoverer = func(ui enroll.UI) (Recoverer, error) {
			c, err := rpclient.New(rpclient.Config{BaseURL: s.URL, RetryBackoff: 5 * time.Millisecond})
			if err != nil {
				return nil, err
			}
			o, err := webauthn.ParseOrigin(testOrigin)
			if err != nil {
				return nil, err
			}
			return NewRecoverer(c, enroll.Config{Profile: "test", Origin: o, RPID: "localhost", UI: ui}), nil
		}
	}
}

// testOrigin is the test service's origin (rptest's default).
const testOrigin = "https://localhost"

// recovery is the Recovery tab, selected.
func (h *harness) recovery() *recoveryScreen {
	h.t.Helper()
	r := h.shell.recovery
	if r == nil {
		h.t.Fatal("no Recovery tab")
	}
	h.ui(func() {
		for i, it := range h.shell.tabs.Items {
			if it.Text == "Recovery" {
				h.shell.tabs.SelectIndex(i)
			}
		}
	})
	return r
}

// page is the page the tab shows (UI goroutine).
func (r *recoveryScreen) page() fyne.CanvasObject { return r.pages.Objects[0] }

// touching touches k every few milliseconds until stop: for the test's
// own calls (setting the account up, checking it), which no sheet
// announces.
func touching(k *testKey) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				k.signal.Touch()
			}
		}
	}()
	return func() { close(done) }
}

// rootApp is an enroll.Service for root at srv, without a session, and
// its API client. A key's PIN, when it asks, is testPIN.
func rootApp(t *testing.T, srv *rptest.Server) (*enroll.Service, *rpclient.Client) {
	t.Helper()
	c, err := rpclient.New(rpclient.Config{BaseURL: srv.URL, RetryBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	o, err := webauthn.ParseOrigin(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := enroll.New(enroll.Config{Profile: "setup", Origin: o, RPID: "localhost", API: c, Tokens: &profile.Memory{},
		UI: enroll.UI{PIN: func(context.Context, int) (string, error) { return testPIN, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	return svc, c
}

// enrollRoot enrolls k as root's first key, named nickname, and signs in
// with it: the client returned holds a fresh full session of root (an
// admin at rptest's service).
func enrollRoot(t *testing.T, srv *rptest.Server, k *testKey, nickname string) *rpclient.Client {
	t.Helper()
	ctx := t.Context()
	svc, c := rootApp(t, srv)
	stop := touching(k)
	defer stop()
	if _, err := svc.SignInWithCode(ctx, "root", srv.Code); err != nil {
		t.Fatalf("redeem root's enrollment code: %v", err)
	}
	if _, err := svc.Enroll(ctx, k.key, nickname); err != nil {
		t.Fatalf("enroll %s: %v", nickname, err)
	}
	if _, err := svc.SignIn(ctx, k.key, "root"); err != nil {
		t.Fatalf("sign in with %s: %v", nickname, err)
	}
	return c
}

// rootKeys signs in as root with k and lists root's keys by nickname,
// as the server has them.
func rootKeys(t *testing.T, srv *rptest.Server, k *testKey) map[string]enroll.Key {
	t.Helper()
	svc, _ := rootApp(t, srv)
	stop := touching(k)
	defer stop()
	if _, err := svc.SignIn(t.Context(), k.key, "root"); err != nil {
		t.Fatalf("sign in with %s: %v", k.dev.Product, err)
	}
	ks, err := svc.Keys(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]enroll.Key{}
	for _, k := range ks {
		out[k.Nickname] = k
	}
	return out
}

// registerPhone registers a passkey of rptest's software phone for the
// user of the full session c holds.
func registerPhone(t *testing.T, srv *rptest.Server, c *rpclient.Client) *rptest.Key {
	t.Helper()
	phone, err := rptest.NewUVKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&rptest.Client{BaseURL: srv.URL, Token: c.Token()}).Register(phone, "phone"); err != nil {
		t.Fatalf("register the phone's passkey: %v", err)
	}
	return phone
}

// phoneFor is the phone that opened the link the QR page shows (the
// secret in its fragment).
func phoneFor(t *testing.T, srv *rptest.Server, link string) *rptest.Phone {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Fragment == "" || !strings.Contains(u.Path, "/r/") {
		t.Fatalf("the page shows the link %q", link)
	}
	return &rptest.Phone{Client: &rptest.Client{BaseURL: srv.URL}, SessionID: u.Path[strings.LastIndexByte(u.Path, '/')+1:],
		Proof: api.RecoveryProof{Secret: u.Fragment}}
}

// plugAndRead plugs keys and waits until the Keys tab has read them all.
func (h *harness) plugAndRead(keys ...*testKey) {
	h.t.Helper()
	for _, k := range keys {
		h.usb.plug(k)
	}
	h.eventually("the keys read", func() bool {
		for _, k := range keys {
			i := h.keys().model.index(k.dev.Path)
			if i < 0 || h.keys().model.entries[i].info == nil {
				return false
			}
		}
		return true
	})
}

// startHandoff taps "Use my phone" and waits for the QR page; it returns
// the link and the number shown.
func (h *harness) startHandoff(r *recoveryScreen) (link string, number int) {
	h.t.Helper()
	h.ui(func() { test.Tap(r.phoneBtn) })
	h.eventually("the QR page", func() bool { return r.model.handoff != nil && r.page() == r.qrPage && r.link.Text != "" })
	h.ui(func() {
		link = r.link.Text
		fmt.Sscan(r.number.Text, &number)
	})
	return link, number
}

// chooseReplacement waits for the replacement page, chooses k named
// nickname and continues.
func (h *harness) chooseReplacement(r *recoveryScreen, k *testKey, nickname string) {
	h.t.Helper()
	h.eventually("the replacement page with "+k.dev.Product, func() bool {
		return r.page() == r.replacePage && slices.ContainsFunc(r.model.devs, func(d platform.Device) bool { return d.Path == k.dev.Path })
	})
	h.ui(func() {
		r.keySel.SetSelectedIndex(slices.IndexFunc(r.model.devs, func(d platform.Device) bool { return d.Path == k.dev.Path }))
		r.nickname.SetText(nickname)
		test.Tap(r.continueBtn)
	})
}

// shownText is all the text drawn in the window, overlays included
// (UI goroutine).
func (h *harness) shownText() string {
	var b strings.Builder
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		switch o := o.(type) {
		case *canvas.Text:
			b.WriteString(o.Text + "\n")
		case *fyne.Container:
			for _, c := range o.Objects {
				walk(c)
			}
		case fyne.Widget:
			for _, c := range test.WidgetRenderer(o).Objects() {
				walk(c)
			}
		}
	}
	walk(h.shell.Window().Canvas().Content())
	for _, o := range h.shell.Window().Canvas().Overlays().List() {
		walk(o)
	}
	return b.String()
}

// lostTitles are the checkboxes of the lost keys' page.
func (r *recoveryScreen) lostTitles() []string {
	var out []string
	for _, c := range r.lostChecks {
		out = append(out, c.Text)
	}
	return out
}

// tickLost ticks the lost key titled title.
func (h *harness) tickLost(r *recoveryScreen, title string) {
	h.t.Helper()
	h.ui(func() {
		i := slices.Index(r.lostTitles(), title)
		if i < 0 {
			h.t.Fatalf("no key %q to tick among %q", title, r.lostTitles())
		}
		test.Tap(r.lostChecks[i])
	})
}

// TestRecoverWithThePhone: blue, root's only key, is lost. From the
// Recovery tab root starts a QR handoff (the page shows the QR code, the
// number, the link and typed code, this computer's name and a live
// countdown), approves on the phone, chooses green as the new key, ticks
// blue as lost, touches green: blue is revoked, green enrolled, and
// green signs in.
func TestRecoverWithThePhone(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv), withRecovery(&srv))
	blue, green := newTestKey(t, 1), newTestKey(t, 2)
	c := enrollRoot(t, srv, blue, "blue")
	phone := registerPhone(t, srv, c)
	h.plugAndRead(green)
	r := h.recovery()
	h.ui(func() {
		if r.user.Text != "root" {
			t.Errorf("user name %q, want the demo user prefilled", r.user.Text)
		}
	})
	link, number := h.startHandoff(r)
	var countdown string
	h.ui(func() {
		hd := r.model.handoff
		if want := fmt.Sprintf("%02d", hd.Number()); r.number.Text != want || number != hd.Number() {
			t.Errorf("number shown %q, want %s", r.number.Text, want)
		}
		if r.typed.Text != hd.TypedCode() || link != hd.URL() || !r.link.Selectable || !r.typed.Selectable {
			t.Errorf("typed code %q, link %q: not the handoff's, or not selectable", r.typed.Text, link)
		}
		if host, _ := os.Hostname(); host != "" && !strings.Contains(r.desktop.Text, host) {
			t.Errorf("desktop name: %q, want %q", r.desktop.Text, host)
		}
		if b := r.qr.Image.Bounds(); b.Dx() != recoveryQRSize || b.Dy() != recoveryQRSize {
			t.Errorf("QR image %v, want %d pixels square", b, recoveryQRSize)
		}
		countdown = r.countdown.Text
		if !strings.HasPrefix(countdown, "Time left: 3:00") && !strings.HasPrefix(countdown, "Time left: 2:5") {
			t.Errorf("countdown %q, want about 3 minutes", countdown)
		}
	})
	h.eventually("the countdown ticking", func() bool { return r.countdown.Text != countdown })

	// The phone: describe, pick the number shown, approve with the
	// passkey.
	p := phoneFor(t, srv, link)
	if d, _, err := p.Describe(); err != nil || d.Username != "root" {
		t.Fatalf("describe: %+v, %v", d, err)
	}
	if resp, err := p.Approve(phone, number); err != nil {
		t.Fatalf("approve: %v %+v", err, resp)
	}
	h.eventually("the replacement page", func() bool { return r.page() == r.replacePage && r.model.token != "" })
	h.ui(func() {
		if shown := h.shownText(); strings.Contains(shown, r.model.token) || !strings.Contains(shown, "Recovering root") {
			t.Error("the session's token is on screen, or the screen's text was not read")
		}
		if r.link.Text != "" || r.typed.Text != "" || r.model.handoff != nil {
			t.Error("the handoff's link or code stayed on screen after it was used")
		}
		if r.keySel.SelectedIndex() != 0 || r.nickname.Text != "Keydesk Software Key (virtual)" {
			t.Errorf("defaults: key %d, name %q", r.keySel.SelectedIndex(), r.nickname.Text)
		}
	})
	h.chooseReplacement(r, green, "green")
	h.eventually("the lost keys asked", func() bool { return r.page() == r.lostPage })
	h.ui(func() {
		if got := r.lostTitles(); !slices.Equal(got, []string{"blue", "phone"}) && !slices.Equal(got, []string{"phone", "blue"}) {
			t.Errorf("usable keys offered: %q", got)
		}
		if r.lostOK.Text != "Enroll the new key, revoke none" {
			t.Errorf("button before ticking: %q", r.lostOK.Text)
		}
	})
	h.tickLost(r, "blue")
	h.ui(func() {
		if r.lostOK.Text != "Enroll the new key, revoke the ticked key" {
			t.Errorf("button after ticking: %q", r.lostOK.Text)
		}
		test.Tap(r.lostOK)
	})
	h.touchWhenAsked(green)
	h.eventually("the summary", func() bool { return r.page() == r.donePage })
	h.ui(func() {
		text := r.doneText.Text
		if r.doneHead.Text != "Your account is recovered" || !strings.Contains(text, `The new key "green" (Keydesk Software Key (virtual)) is enrolled in the account root`) ||
			!strings.Contains(text, `Revoked "blue"`) {
			t.Errorf("summary: %q / %q", r.doneHead.Text, text)
		}
		if r.model.token != "" {
			t.Error("the session's token is kept after the recovery")
		}
	})
	h.assertScreen("recovery_done.png")

	ks := rootKeys(t, srv, green)
	if ks["blue"].RevokedAt == nil || ks["blue"].RevokeReason != "lost" || ks["green"].ID == "" || ks["green"].RevokedAt != nil || ks["phone"].RevokedAt != nil {
		t.Errorf("root's keys at the service: %+v", ks)
	}
	h.ui(func() { test.Tap(r.doneBtn) })
	h.ui(func() {
		if r.page() != r.startScroll {
			t.Error("Done did not go back to the first page")
		}
	})
}

// TestRecoveryRefusedOnThePhone: a wrong number picked on the phone stops
// the request: the page says so and why, forgets the link, and offers to
// start again, which shows a new request; Cancel goes back.
func TestRecoveryRefusedOnThePhone(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv), withRecovery(&srv))
	r := h.recovery()
	link, number := h.startHandoff(r)
	if _, _, err := phoneFor(t, srv, link).Begin(number%90 + 10); err == nil {
		t.Fatal("the service took a wrong number")
	}
	h.eventually("the refusal shown", func() bool { return r.outcome.Visible() && r.qrAgain.Visible() })
	h.ui(func() {
		if r.qrHead.Text != "The request was stopped" || !strings.Contains(r.outcome.Text, "a number other than the one this computer shows was picked") || r.qrBody.Visible() {
			t.Errorf("refusal: %q / %q, QR code shown %v", r.qrHead.Text, r.outcome.Text, r.qrBody.Visible())
		}
		if r.link.Text != "" || r.typed.Text != "" || r.countdown.Text != "" || r.qrCancel.Text != "Back" {
			t.Errorf("after the refusal: link %q, code %q, countdown %q, button %q", r.link.Text, r.typed.Text, r.countdown.Text, r.qrCancel.Text)
		}
		test.Tap(r.qrAgain)
	})
	h.eventually("a new request", func() bool { return r.model.handoff != nil && r.link.Text != "" && r.link.Text != link })
	h.ui(func() {
		if r.outcome.Visible() || r.qrAgain.Visible() || !r.qrBody.Visible() {
			t.Error("the old refusal is still shown, or the new code is not")
		}
		hd := r.model.handoff
		test.Tap(r.qrCancel)
		if r.page() != r.startScroll || !strings.Contains(r.status.Text, "Cancelled") || r.model.handoff != nil {
			t.Errorf("after Cancel: status %q", r.status.Text)
		}
		if _, _, err := hd.Redeem(context.Background()); err == nil {
			t.Error("a cancelled request could still be redeemed")
		}
	})
}

// TestRecoveryExpires: nobody approves within the request's three
// minutes (the service's clock moves on): the page says it expired and
// offers to start again.
func TestRecoveryExpires(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv), withRecovery(&srv))
	r := h.recovery()
	h.startHandoff(r)
	srv.Clock.Advance(3*time.Minute + time.Second)
	h.eventually("the expiry shown", func() bool { return r.outcome.Visible() })
	h.ui(func() {
		if r.qrHead.Text != "The request expired" || !strings.Contains(r.outcome.Text, "Start again") || !r.qrAgain.Visible() || r.qrBody.Visible() {
			t.Errorf("expiry: %q / %q, start again offered %v, QR code shown %v", r.qrHead.Text, r.outcome.Text, r.qrAgain.Visible(), r.qrBody.Visible())
		}
	})
}

// TestRecoverWithARecoveryCode: a wrong recovery code is refused, said
// plainly, and changes nothing; one of root's codes opens the session;
// the keys plugged in are marked among the lost ones; none ticked, none
// revoked; the code cannot be used twice.
func TestRecoverWithARecoveryCode(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv), withRecovery(&srv))
	blue, green := newTestKey(t, 1), newTestKey(t, 2)
	c := enrollRoot(t, srv, blue, "blue")
	codes, err := c.GenerateRecoveryCodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	h.plugAndRead(blue, green)
	r := h.recovery()

	h.ui(func() {
		test.Type(r.code, "AAAAA-BBBBB-CCCCC-DDDDD")
		test.Tap(r.codeBtn)
		if r.code.Text != "" {
			t.Error("the code stayed in its field")
		}
	})
	h.eventually("the wrong code refused", func() bool { return !r.model.busy && strings.Contains(r.status.Text, "do not match") })
	h.ui(func() {
		if r.page() != r.startScroll || r.model.token != "" {
			t.Error("a wrong code left the first page")
		}
	})

	h.ui(func() {
		test.Type(r.code, strings.ToLower(codes.Codes[0]))
		r.code.OnSubmitted(r.code.Text) // Enter
	})
	h.chooseReplacement(r, green, "green")
	h.eventually("the lost keys asked", func() bool { return r.page() == r.lostPage })
	h.ui(func() {
		if got := r.lostTitles(); !slices.Equal(got, []string{"blue  • plugged in now"}) {
			t.Errorf("usable keys offered: %q", got)
		}
		test.Tap(r.lostOK)
	})
	h.touchWhenAsked(green)
	h.eventually("the summary", func() bool { return r.page() == r.donePage })
	h.ui(func() {
		if !strings.Contains(r.doneText.Text, "No key was revoked") || !strings.Contains(r.doneText.Text, "recovery code you used no longer works") {
			t.Errorf("summary: %q", r.doneText.Text)
		}
		test.Tap(r.doneBtn)
	})
	ks := rootKeys(t, srv, blue)
	if len(ks) != 2 || ks["blue"].RevokedAt != nil || ks["green"].ID == "" {
		t.Errorf("root's keys at the service: %+v", ks)
	}

	h.ui(func() {
		test.Type(r.code, codes.Codes[0])
		test.Tap(r.codeBtn)
	})
	h.eventually("the used code refused", func() bool { return !r.model.busy && strings.Contains(r.status.Text, "used already") })
}

// TestRecoverWithTheHelpdesksCode: a wrong helpdesk code is refused with
// what to do; the helpdesk's recovery code (root is an admin, vouching
// for itself) opens the session; the new key asks for its PIN in a
// dialog; blue is revoked. Going back from the lost keys changes
// nothing and keeps the session.
func TestRecoverWithTheHelpdesksCode(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv), withRecovery(&srv))
	blue, green := newTestKey(t, 1), newTestKey(t, 2)
	c := enrollRoot(t, srv, blue, "blue")
	checklist, err := c.RecoveryChecklist(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	grant, err := c.IssueRecoveryGrant(t.Context(), "root", api.IssueRecoveryGrantRequest{Verification: checklist.Items, Note: "ui test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := green.key.SetPIN(t.Context(), testPIN); err != nil {
		t.Fatal(err)
	}
	h.plugAndRead(green)
	r := h.recovery()

	h.ui(func() {
		test.Type(r.grant, "AAAA-BBBB-CCCC-DDDD")
		test.Tap(r.grantBtn)
	})
	h.eventually("the wrong code refused", func() bool {
		return !r.model.busy && strings.Contains(r.status.Text, "ask your helpdesk for a new code")
	})

	h.ui(func() {
		test.Type(r.grant, grant.Code)
		test.Tap(r.grantBtn)
		if r.grant.Text != "" {
			t.Error("the code stayed in its field")
		}
	})
	h.chooseReplacement(r, green, "green")
	h.eventually("the lost keys asked", func() bool { return r.page() == r.lostPage })
	h.ui(func() { test.Tap(r.lostBack) })
	h.eventually("back at the replacement, nothing changed", func() bool {
		return r.page() == r.replacePage && !r.model.busy && r.problem.Visible()
	})
	h.ui(func() {
		if !strings.Contains(r.problem.Text, "nothing was changed") || r.model.token == "" || r.nickname.Text != "green" {
			t.Errorf("after Back: problem %q, session kept %v, name %q", r.problem.Text, r.model.token != "", r.nickname.Text)
		}
		test.Tap(r.continueBtn)
	})
	h.eventually("the lost keys asked again", func() bool { return r.page() == r.lostPage })
	h.tickLost(r, "blue")
	h.ui(func() { test.Tap(r.lostOK) })
	h.eventually("the PIN asked", func() bool { return h.shell.pinPrompt != nil })
	h.ui(func() {
		test.Type(h.shell.pinPrompt.entry, testPIN)
		test.Tap(h.shell.pinPrompt.ok)
	})
	h.touchWhenAsked(green)
	h.eventually("the summary", func() bool { return r.page() == r.donePage })
	h.ui(func() {
		if r.doneHead.Text != "Your account is recovered" || !strings.Contains(r.doneText.Text, `Revoked "blue"`) {
			t.Errorf("summary: %q / %q", r.doneHead.Text, r.doneText.Text)
		}
	})
	if ks := rootKeys(t, srv, green); ks["blue"].RevokedAt == nil || ks["green"].RevokedAt != nil {
		t.Errorf("root's keys at the service: %+v", ks)
	}
}

// TestRecoverWithAnEnrollmentCode: an enrollment code given as the
// helpdesk's code enrolls the new key rather than wasting the code, and
// says that nothing was revoked and how to revoke the lost key.
func TestRecoverWithAnEnrollmentCode(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv), withRecovery(&srv))
	blue, green := newTestKey(t, 1), newTestKey(t, 2)
	c := enrollRoot(t, srv, blue, "blue")
	g, err := c.IssueGrant(t.Context(), "root", api.IssueGrantRequest{})
	if err != nil {
		t.Fatal(err)
	}
	h.plugAndRead(green)
	r := h.recovery()
	h.ui(func() {
		test.Type(r.grant, g.Code)
		test.Tap(r.grantBtn)
	})
	h.eventually("the replacement page", func() bool { return r.page() == r.replacePage })
	h.ui(func() {
		if !strings.Contains(r.replaceText.Text, "That was an enrollment code") {
			t.Errorf("replacement page: %q", r.replaceText.Text)
		}
	})
	h.chooseReplacement(r, green, "green")
	h.touchWhenAsked(green)
	h.eventually("the summary", func() bool { return r.page() == r.donePage })
	h.ui(func() {
		if r.doneHead.Text != "Your new key is enrolled" || !strings.Contains(r.doneText.Text, "Nothing was revoked") {
			t.Errorf("summary: %q / %q", r.doneHead.Text, r.doneText.Text)
		}
	})
	if ks := rootKeys(t, srv, green); ks["blue"].RevokedAt != nil || ks["green"].ID == "" {
		t.Errorf("root's keys at the service: %+v", ks)
	}
}

// TestRecoveryServiceUnreachable: with the service down, starting a
// recovery says Keydesk could not reach it, and stays on the first page.
func TestRecoveryServiceUnreachable(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv), withRecovery(&srv))
	r := h.recovery()
	srv.HTTP.Close()
	h.ui(func() { test.Tap(r.phoneBtn) })
	h.eventually("the failure told", func() bool { return !r.model.busy && r.status.Text != "" && !strings.HasSuffix(r.status.Text, "…") })
	h.ui(func() {
		if !strings.Contains(r.status.Text, "could not reach Test service") || r.page() != r.startScroll {
			t.Errorf("status %q", r.status.Text)
		}
	})
}

// TestGoldenRecoveryStart is the Recovery tab's first page.
func TestGoldenRecoveryStart(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv), withRecovery(&srv))
	h.recovery()
	h.assertScreen("recovery_start.png")
}
