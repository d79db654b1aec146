package ui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/profile"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/rptest"
)

// The Helpdesk tab against the reference RP, staffed through the admin
// calls as an organization would be: root (the bootstrapped admin) made
// hd1 and hd2 helpdesk members; alice enrolled "blue key" and "green
// key", and root revoked green; bob has no key. Everyone's key is an
// in-process software key that approves at once; a member signs in to
// the window with theirs through the Account tab.

// helpdeskEpoch is when the organization is set up, on the server's
// clock, so that the pictures do not change with the day.
var helpdeskEpoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// hdEnv is the service of a helpdesk test and its people.
type hdEnv struct {
	srv *rptest.Server
	// api is the window's client: its session is the Account tab's.
	api *rpclient.Client
	// root is the admin's own client, with a full session.
	root *rpclient.Client
	// keys are everyone's keys, by user name.
	keys map[string]*testKey
	// override, when set (as the UI goroutine), is what the window's
	// Deps.Helpdesk gives instead of api.
	override Helpdesk
}

// withHelpdesk gives the window an Account tab and a Helpdesk tab on a
// reference RP started for the test, sharing one client as cmd/keydesk
// does.
func withHelpdesk(env *hdEnv) harnessOption {
	return func(h *harness, d *Deps) {
		env.srv = rptest.StartServer(h.t, rptest.ServerOptions{})
		// The pictures' clock, before any request (root's account and
		// code were made at the real time, and stay valid); it only
		// moves forward from here, as the rate limits want.
		env.srv.Clock.Advance(helpdeskEpoch.Sub(env.srv.Clock.Now()))
		c, err := rpclient.New(rpclient.Config{BaseURL: env.srv.URL, RetryBackoff: 5 * time.Millisecond})
		if err != nil {
			h.t.Fatal(err)
		}
		env.api = c
		d.Service = Service{Name: "Test service", Origin: "https://localhost"}
		d.NewAccount = func(ui enroll.UI) (Account, error) { return newService(c, ui) }
		d.Helpdesk = func() Helpdesk {
			if env.override != nil {
				return env.override
			}
			return env.api
		}
	}
}

// newService is the account service of c.
func newService(c *rpclient.Client, ui enroll.UI) (*enroll.Service, error) {
	o, err := webauthn.ParseOrigin("https://localhost")
	if err != nil {
		return nil, err
	}
	return enroll.New(enroll.Config{Profile: "test", Origin: o, RPID: "localhost", API: c, Tokens: &profile.Memory{}, UI: ui})
}

// newAutoKey is a software key that approves every request at once, as
// the people of the organization use theirs.
func newAutoKey(t *testing.T, n int) *testKey {
	t.Helper()
	a, err := softkey.New(softkey.Config{Presence: softkey.ApproveAlways})
	if err != nil {
		t.Fatal(err)
	}
	dev := platform.Device{Path: fmt.Sprintf("/dev/hidraw%d", n), Transport: platform.TransportUSB,
		Manufacturer: "Keydesk", Product: fmt.Sprintf("Test key %d", n)}
	return &testKey{engine: a, key: pluggedKey{inprocess.New(a), dev}, dev: dev}
}

// newHelpdeskHarness is a window on a staffed organization, its
// Helpdesk tab telling time on the server's clock in UTC.
func newHelpdeskHarness(t *testing.T) (*harness, *hdEnv) {
	t.Helper()
	env := &hdEnv{keys: map[string]*testKey{}}
	h := newHarness(t, withHelpdesk(env))
	env.staff(t)
	h.ui(func() {
		h.helpdesk().now = env.srv.Clock.Now
		h.helpdesk().loc = time.UTC
	})
	return h, env
}

// enrollPerson redeems code for name with a new client, enrolls key as
// nickname and signs in with it; the clock moves a few minutes between
// the steps, as a person at their desk takes them.
func (env *hdEnv) enrollPerson(t *testing.T, name, code string, key *testKey, nickname string) (*rpclient.Client, *enroll.Service) {
	t.Helper()
	ctx := t.Context()
	c, err := rpclient.New(rpclient.Config{BaseURL: env.srv.URL, RetryBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := newService(c, enroll.UI{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SignInWithCode(ctx, name, code); err != nil {
		t.Fatalf("%s redeems their code: %v", name, err)
	}
	env.srv.Clock.Advance(2 * time.Minute)
	if _, err := svc.Enroll(ctx, key.key, nickname); err != nil {
		t.Fatalf("%s enrolls %s: %v", name, nickname, err)
	}
	env.srv.Clock.Advance(time.Minute)
	if _, err := svc.SignIn(ctx, key.key, name); err != nil {
		t.Fatalf("%s signs in: %v", name, err)
	}
	env.keys[name] = key
	return c, svc
}

// staff sets the organization up through the API, as its admin would.
func (env *hdEnv) staff(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	root, rootSvc := env.enrollPerson(t, "root", env.srv.Code, newAutoKey(t, 10), "root's key")
	env.root = root
	issue := func(name string) string {
		g, err := root.IssueGrant(ctx, name, api.IssueGrantRequest{})
		if err != nil {
			t.Fatalf("IssueGrant(%s): %v", name, err)
		}
		return g.Code
	}
	for i, name := range []string{"hd1", "hd2"} {
		if _, err := root.CreateUser(ctx, api.CreateUserRequest{Name: name, DisplayName: "Helpdesk " + []string{"One", "Two"}[i]}); err != nil {
			t.Fatal(err)
		}
		if _, err := root.SetRoles(ctx, name, []string{"helpdesk"}); err != nil {
			t.Fatal(err)
		}
		env.enrollPerson(t, name, issue(name), newAutoKey(t, 11+i), name+"'s key")
	}
	for _, u := range []api.CreateUserRequest{{Name: "alice", DisplayName: "Alice Liddell"}, {Name: "bob", DisplayName: "Bob Stone"}} {
		if _, err := root.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	env.srv.Clock.Advance(10 * time.Minute)
	_, alice := env.enrollPerson(t, "alice", issue("alice"), newAutoKey(t, 20), "blue key")
	env.srv.Clock.Advance(5 * time.Minute)
	green := newAutoKey(t, 21)
	k, err := alice.Enroll(ctx, green.key, "green key")
	if err != nil {
		t.Fatal(err)
	}
	env.srv.Clock.Advance(20 * time.Minute)
	if _, err := root.RevokeUserKey(ctx, "alice", k.ID, "broken"); err != nil {
		t.Fatal(err)
	}
	env.srv.Clock.Advance(25 * time.Minute)
	// A fresh session for root, whose first one has ended by now.
	if _, err := rootSvc.SignIn(ctx, env.keys["root"].key, "root"); err != nil {
		t.Fatal(err)
	}
}

// helpdesk is the Helpdesk screen (shown or not).
func (h *harness) helpdesk() *helpdeskScreen {
	h.t.Helper()
	if h.shell.helpdesk == nil {
		h.t.Fatal("no Helpdesk screen")
	}
	return h.shell.helpdesk
}

// tabNames are the window's tabs, in order (UI goroutine).
func (h *harness) tabNames() []string {
	var out []string
	for _, it := range h.shell.tabs.Items {
		out = append(out, it.Text)
	}
	return out
}

// signInAs plugs name's key (alone) and signs in with it in the Account
// tab.
func (h *harness) signInAs(env *hdEnv, name string) {
	h.t.Helper()
	k := env.keys[name]
	h.usb.plug(k)
	h.eventually(name+"'s key read", func() bool {
		i := h.keys().model.index(k.dev.Path)
		return i >= 0 && h.keys().model.entries[i].info != nil
	})
	a := h.account()
	h.ui(func() {
		a.user.SetText(name)
		test.Tap(a.signInKey)
	})
	h.eventually("signed in as "+name, func() bool {
		return !a.model.busy && a.model.me != nil && a.model.me.User.Name == name && a.model.me.Scope == "full"
	})
}

// signOut signs out in the Account tab and unplugs name's key.
func (h *harness) signOut(env *hdEnv, name string) {
	h.t.Helper()
	a := h.account()
	h.ui(a.signOut)
	h.eventually("signed out", func() bool { return !a.model.busy && a.model.me == nil })
	h.usb.unplug(env.keys[name])
	h.eventually(name+"'s key unplugged", func() bool { return h.keys().model.index(env.keys[name].dev.Path) < 0 })
}

// openHelpdesk selects the Helpdesk tab, which must be there.
func (h *harness) openHelpdesk() *helpdeskScreen {
	h.t.Helper()
	hd := h.helpdesk()
	h.eventually("the Helpdesk tab", func() bool { return slices.Contains(h.shell.tabs.Items, hd.tab) })
	h.ui(func() { h.shell.tabs.Select(hd.tab) })
	return hd
}

// find searches for query and opens name's page.
func (h *harness) find(query, name string) *helpdeskScreen {
	h.t.Helper()
	hd := h.openHelpdesk()
	h.ui(func() {
		hd.query.SetText(query)
		test.Tap(hd.searchBtn)
	})
	h.eventually("results for "+query, func() bool { return !hd.model.busy && hd.model.searched })
	h.ui(func() {
		i := slices.IndexFunc(hd.model.results, func(u api.User) bool { return u.Name == name })
		if i < 0 {
			h.t.Fatalf("no %s among the results for %q: %v", name, query, hd.resultNames())
		}
		test.Tap(hd.rows[i].open)
	})
	h.eventually(name+"'s page read", func() bool { return !hd.model.busy && hd.model.user != nil && hd.model.user.Name == name })
	return hd
}

// resultNames are the names of the results shown.
func (hd *helpdeskScreen) resultNames() []string {
	var out []string
	for i, r := range hd.rows {
		if i < len(hd.model.results) && r.box.Visible() {
			out = append(out, r.title.Text)
		}
	}
	return out
}

// keyLines are the user's keys as shown: title | facts.
func (hd *helpdeskScreen) keyLines() []string {
	var out []string
	for _, r := range hd.keyRows {
		out = append(out, r.title.Text+" | "+r.detail.Text)
	}
	return out
}

// eventLines are the recent events' sentences, as shown. (Their times
// are the audit log's, which keeps the real time, not the server's
// clock.)
func (hd *helpdeskScreen) eventLines() []string {
	var out []string
	for _, o := range hd.eventsBox.Objects {
		if row, ok := o.(*fyne.Container); ok {
			out = append(out, row.Objects[0].(*widget.Label).Text)
		}
	}
	return out
}

// texts are the words o draws (UI goroutine).
func texts(o fyne.CanvasObject) []string {
	var out []string
	for _, x := range test.LaidOutObjects(o) {
		if t, ok := x.(*canvas.Text); ok && t.Text != "" {
			out = append(out, t.Text)
		}
	}
	return out
}

// windowShows reports whether s is drawn anywhere in the window, its
// dialogs included (UI goroutine).
func (h *harness) windowShows(s string) bool {
	c := h.shell.Window().Canvas()
	objs := append([]fyne.CanvasObject{c.Content()}, c.Overlays().List()...)
	for _, o := range objs {
		for _, t := range texts(o) {
			if strings.Contains(t, s) {
				return true
			}
		}
	}
	return false
}

// takeCode reads the code dialog's code, checks it is on screen, copies
// it with the Copy button, closes the dialog and checks the code is gone
// from the window. It returns the code.
func (h *harness) takeCode(hd *helpdeskScreen) (code string, d *codeDialog) {
	h.t.Helper()
	h.eventually("the code dialog", func() bool { return hd.codeDlg != nil && !hd.model.busy })
	h.ui(func() {
		d = hd.codeDlg
		code = d.code.Text
		if code == "" || !h.windowShows(code) {
			h.t.Fatalf("the code %q is not shown", code)
		}
		test.Tap(d.copy)
		if got := h.app.Clipboard().Content(); got != code {
			h.t.Errorf("Copy put %q on the clipboard, want the code", got)
		}
		if !d.copied.Visible() {
			h.t.Error("Copy says nothing")
		}
	})
	return code, d
}

// closeCode closes the code dialog and checks the code left the window.
func (h *harness) closeCode(hd *helpdeskScreen, d *codeDialog, code string) {
	h.t.Helper()
	h.ui(func() {
		test.Tap(d.done)
		if hd.codeDlg != nil || d.code.Text != "" {
			h.t.Errorf("after Done: dialog kept %v, its code %q", hd.codeDlg != nil, d.code.Text)
		}
		if h.windowShows(code) {
			h.t.Error("the code is still drawn in the window after the dialog closed")
		}
	})
}

// redeem trades code for alice's session with a new client.
func (env *hdEnv) redeem(t *testing.T, name, code string) (*api.Session, error) {
	t.Helper()
	c, err := rpclient.New(rpclient.Config{BaseURL: env.srv.URL, RetryBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := c.RedeemGrant(t.Context(), name, code)
	return s, err
}

// TestHelpdeskFindsAUserAndGivesAnEnrollmentCode: the tab appears when a
// helpdesk member signs in, after the Account tab; the member finds
// alice by her display name, sees her keys (the revoked one said so,
// with its reason) and her recent events as sentences, and gives her an
// enrollment code valid 15 minutes for two uses: it is shown once, with
// its expiry, copied with Copy, gone from the window when the dialog
// closes, and it redeems for alice.
func TestHelpdeskFindsAUserAndGivesAnEnrollmentCode(t *testing.T) {
	h, env := newHelpdeskHarness(t)
	h.ui(func() {
		if got := h.tabNames(); !slices.Equal(got, []string{"Keys", "Account", "Settings"}) {
			t.Errorf("signed out, the tabs are %q", got)
		}
	})
	h.signInAs(env, "hd1")
	h.eventually("the Helpdesk tab after Account", func() bool {
		return slices.Equal(h.tabNames(), []string{"Keys", "Account", "Helpdesk", "Settings"})
	})
	hd := h.find("LIDDELL", "alice")
	h.ui(func() {
		if got := hd.resultNames(); !slices.Equal(got, []string{"Alice Liddell (alice)"}) {
			t.Errorf("results %q", got)
		}
		if hd.title.Text != "Alice Liddell (alice)" || !strings.Contains(hd.facts.Text, "account since 2 Mar 2026") {
			t.Errorf("page: %q / %q", hd.title.Text, hd.facts.Text)
		}
		keys := hd.keyLines()
		if len(keys) != 2 ||
			!strings.HasPrefix(keys[0], "blue key | ") || !strings.HasSuffix(keys[0], "enrolled 2 Mar 2026 · last used 50 min ago") ||
			!strings.HasPrefix(keys[1], "green key  (revoked) | ") || !strings.HasSuffix(keys[1], "never used · revoked 2 Mar 2026: broken") {
			t.Errorf("keys:\n%s", strings.Join(keys, "\n"))
		}
		// A row is its texts, and Revoke on the right unless revoked.
		if hd.keyRows[0].revoke.Disabled() || len(hd.keyRows[0].box.Objects) != 2 || len(hd.keyRows[1].box.Objects) != 1 {
			t.Errorf("Revoke offered wrongly: blue disabled %v, rows of %d and %d objects", hd.keyRows[0].revoke.Disabled(),
				len(hd.keyRows[0].box.Objects), len(hd.keyRows[1].box.Objects))
		}
		events := strings.Join(hd.eventLines(), "\n")
		for _, want := range []string{
			`root (admin) revoked alice's key "green key" (broken).`,
			`alice signed in with their key "blue key".`,
			`alice enrolled their key "blue key".`,
			`alice used an enrollment code.`,
			`root (admin) gave alice an enrollment code.`,
			`root (admin) created alice's account.`,
		} {
			if !strings.Contains(events, want) {
				t.Errorf("recent events lack %q:\n%s", want, events)
			}
		}
		test.Tap(hd.enrollBtn)
		hd.ttlSel.SetSelected("15 minutes")
		hd.usesSel.SetSelected("Twice")
		hd.enrollDlg.Confirm()
	})
	code, d := h.takeCode(hd)
	h.ui(func() {
		until := env.srv.Clock.Now().Add(15 * time.Minute).Format("15:04")
		if want := "It works up to 2 times, until " + until + " (in 15 minutes)."; d.expiry.Text != want {
			t.Errorf("expiry %q, want %q", d.expiry.Text, want)
		}
		if d.pending.Visible() || d.copyID.Visible() {
			t.Error("an enrollment code is said to wait for approval")
		}
	})
	h.closeCode(hd, d, code)
	s, err := env.redeem(t, "alice", code)
	if err != nil || s.Scope != "register" || s.User.Name != "alice" {
		t.Fatalf("the code redeems to %+v, %v", s, err)
	}
	h.eventually("the page read again, with the code given", func() bool {
		return !hd.model.busy && strings.Contains(strings.Join(hd.eventLines(), "\n"), "hd1 (helpdesk) gave alice an enrollment code for 2 uses.")
	})
}

// staleChecklist is a service whose checklist grew since the window read
// it: the window shows one item fewer than the service wants.
type staleChecklist struct{ Helpdesk }

func (s staleChecklist) RecoveryChecklist(ctx context.Context) (*api.RecoveryChecklist, error) {
	cl, err := s.Helpdesk.RecoveryChecklist(ctx)
	if err != nil {
		return nil, err
	}
	cl.Items = cl.Items[:len(cl.Items)-1]
	return cl, nil
}

// TestHelpdeskRecoveryCode: the recovery dialog lists the service's
// checklist as checkboxes; with one unchecked it says which and sends
// nothing; with all checked and a note it gives a code that works now
// and redeems to a recovery session. A checklist the service changed
// meanwhile is refused, said in plain words.
func TestHelpdeskRecoveryCode(t *testing.T) {
	h, env := newHelpdeskHarness(t)
	h.signInAs(env, "hd1")
	hd := h.find("alice", "alice")
	h.ui(func() { test.Tap(hd.recoveryBtn) })
	h.eventually("the recovery dialog", func() bool { return hd.recovery != nil && !hd.model.busy })
	r := hd.recovery
	h.ui(func() {
		var labels []string
		for _, c := range r.checks {
			labels = append(labels, c.Text)
		}
		want := []string{"I saw an official photo ID that matches the account", "I called them back on the phone number on file",
			"Their manager confirmed the request"}
		if !slices.Equal(labels, want) {
			t.Errorf("checklist %q", labels)
		}
		r.checks[0].SetChecked(true)
		r.checks[1].SetChecked(true)
		test.Tap(r.issue)
		if !r.problem.Visible() || !strings.Contains(r.problem.Text, "Not checked yet: Their manager confirmed the request.") || hd.model.busy {
			t.Errorf("incomplete: problem %q (shown %v), busy %v", r.problem.Text, r.problem.Visible(), hd.model.busy)
		}
		r.checks[2].SetChecked(true)
		test.Type(r.note, "Called back on the number on file; her manager confirmed.")
		test.Tap(r.issue)
	})
	code, d := h.takeCode(hd)
	h.ui(func() {
		until := env.srv.Clock.Now().Add(time.Hour).Format("15:04")
		if hd.recovery != nil || d.pending.Visible() || d.expiry.Text != "It works once, until "+until+" (in 1 hour)." {
			t.Errorf("recovery dialog left %v; pending %v; expiry %q", hd.recovery != nil, d.pending.Visible(), d.expiry.Text)
		}
	})
	h.closeCode(hd, d, code)
	if s, err := env.redeem(t, "alice", code); err != nil || s.Scope != "recovery" {
		t.Fatalf("the recovery code redeems to %+v, %v", s, err)
	}
	h.eventually("the code given, in the events", func() bool {
		return !hd.model.busy && strings.Contains(strings.Join(hd.eventLines(), "\n"), "hd1 (helpdesk) gave alice a recovery code.")
	})

	h.ui(func() {
		env.override = staleChecklist{env.api}
		test.Tap(hd.recoveryBtn)
	})
	h.eventually("the recovery dialog again", func() bool { return hd.recovery != nil && hd.recovery != r && !hd.model.busy })
	r = hd.recovery
	h.ui(func() {
		for _, c := range r.checks {
			c.SetChecked(true)
		}
		test.Tap(r.issue)
	})
	h.eventually("the service's refusal", func() bool { return !hd.model.busy && r.problem.Visible() })
	h.ui(func() {
		if !strings.HasPrefix(r.problem.Text, "No code was given: the service wants every item of its checklist checked") ||
			!strings.Contains(r.problem.Text, "manager-confirmation") || hd.codeDlg != nil || r.issue.Disabled() {
			t.Errorf("refusal: %q; code dialog %v; issue disabled %v", r.problem.Text, hd.codeDlg != nil, r.issue.Disabled())
		}
		test.Tap(r.cancel)
		if hd.recovery != nil {
			t.Error("Cancel left the dialog")
		}
	})
}

// TestHelpdeskFourEyes: under the four-eyes policy a recovery code comes
// back pending, said so with its request ID (copied with its button); it
// does not redeem yet; its issuer cannot approve it; hd1 signs out (a
// dialog left open goes with them) and the tab starts afresh for hd2,
// who approves it by its ID (once; an unknown ID is said so), and the
// code then redeems.
func TestHelpdeskFourEyes(t *testing.T) {
	h, env := newHelpdeskHarness(t)
	pol, err := env.root.Policy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pol.RecoveryFourEyes = true
	if _, err := env.root.SetPolicy(t.Context(), *pol); err != nil {
		t.Fatal(err)
	}
	h.signInAs(env, "hd1")
	hd := h.find("alice", "alice")
	h.ui(func() { test.Tap(hd.recoveryBtn) })
	h.eventually("the recovery dialog", func() bool { return hd.recovery != nil && !hd.model.busy })
	h.ui(func() {
		for _, c := range hd.recovery.checks {
			c.SetChecked(true)
		}
		test.Tap(hd.recovery.issue)
	})
	code, d := h.takeCode(hd)
	id := d.grantID
	h.ui(func() {
		if id == "" || !d.pending.Visible() || !strings.Contains(d.pending.Text, "a second helpdesk member must approve it") ||
			!strings.Contains(d.pending.Text, id) || !d.copyID.Visible() {
			t.Fatalf("pending: %q (shown %v), ID %q", d.pending.Text, d.pending.Visible(), id)
		}
		test.Tap(d.copyID)
		if got := h.app.Clipboard().Content(); got != id {
			t.Errorf("Copy the request ID put %q on the clipboard", got)
		}
	})
	h.closeCode(hd, d, code)
	if _, err := env.redeem(t, "alice", code); !errors.Is(err, rpclient.ErrGrantPending) {
		t.Fatalf("redeeming before approval: %v, want ErrGrantPending", err)
	}

	approve := func(id string) string {
		var msg string
		h.ui(func() {
			if hd.model.name != "" {
				hd.back()
			}
			hd.approveID.SetText(id)
			test.Tap(hd.approveBtn)
		})
		h.eventually("the approval's answer", func() bool {
			msg = hd.approveResult.Text
			return !hd.model.busy && hd.approveResult.Visible()
		})
		h.ui(func() { hd.approveResult.SetText("") })
		return msg
	}
	if msg := approve(id); !strings.HasPrefix(msg, "You gave this recovery code, so you cannot approve it too") {
		t.Errorf("self-approval: %q", msg)
	}

	// hd1 leaves a recovery dialog open, and signs out: it goes too.
	h.find("alice", "alice")
	h.ui(func() { test.Tap(hd.recoveryBtn) })
	h.eventually("the recovery dialog", func() bool { return hd.recovery != nil && !hd.model.busy })
	h.signOut(env, "hd1")
	h.ui(func() {
		if slices.Contains(h.shell.tabs.Items, hd.tab) || hd.recovery != nil {
			t.Errorf("after signing out: the Helpdesk tab stays %v, hd1's recovery dialog stays %v",
				slices.Contains(h.shell.tabs.Items, hd.tab), hd.recovery != nil)
		}
	})
	h.signInAs(env, "hd2")
	h.openHelpdesk()
	h.ui(func() {
		if hd.model.name != "" || hd.model.searched || hd.approveResult.Visible() || hd.query.Text != "" {
			t.Errorf("hd2 sees hd1's work: page %q, searched %v", hd.model.name, hd.model.searched)
		}
	})
	until := env.srv.Clock.Now().Add(time.Hour).Format("15:04")
	if msg := approve(id); !strings.HasPrefix(msg, "Approved: alice's recovery code, given by hd1, now works until "+until+".") ||
		!strings.Contains(msg, "They checked: I saw an official photo ID") {
		t.Errorf("approval: %q", msg)
	}
	if msg := approve(id); !strings.HasPrefix(msg, "This recovery code was approved already") {
		t.Errorf("second approval: %q", msg)
	}
	if msg := approve("nosuchgrant"); !strings.HasPrefix(msg, "No recovery code has this request ID") {
		t.Errorf("unknown ID: %q", msg)
	}
	if s, err := env.redeem(t, "alice", code); err != nil || s.Scope != "recovery" {
		t.Fatalf("the approved code redeems to %+v, %v", s, err)
	}
}

// TestHelpdeskRevokesAKey: Revoke asks for confirmation with a reason;
// confirmed, the key shows revoked with that reason, the page says so,
// and the event reads as a sentence. An empty reason revokes nothing.
func TestHelpdeskRevokesAKey(t *testing.T) {
	h, env := newHelpdeskHarness(t)
	h.signInAs(env, "hd1")
	hd := h.find("alice", "alice")
	h.ui(func() {
		test.Tap(hd.keyRows[0].revoke)
		hd.revokeReason.SetText("  ")
		hd.revokeDlg.Confirm()
		if !strings.HasPrefix(hd.status.Text, "Nothing was revoked: say why") || hd.model.busy {
			t.Errorf("no reason: %q", hd.status.Text)
		}
		test.Tap(hd.keyRows[0].revoke)
		if hd.revokeReason.Text != "lost" {
			t.Errorf("default reason %q", hd.revokeReason.Text)
		}
		hd.revokeReason.SetText("stolen")
		hd.revokeDlg.Confirm()
	})
	h.eventually("blue revoked", func() bool {
		return !hd.model.busy && len(hd.keyRows) == 2 && strings.HasPrefix(hd.keyRows[0].title.Text, "blue key  (revoked)")
	})
	h.ui(func() {
		if !strings.Contains(hd.keyRows[0].detail.Text, "revoked 2 Mar 2026: stolen") {
			t.Errorf("blue: %q", hd.keyRows[0].detail.Text)
		}
		if hd.status.Text != `Revoked alice's key "blue key" (stolen).` {
			t.Errorf("status %q", hd.status.Text)
		}
		if ev := hd.eventLines(); len(ev) == 0 || ev[0] != `hd1 (helpdesk) revoked alice's key "blue key" (stolen).` {
			t.Errorf("newest event: %q", ev)
		}
		if !strings.Contains(strings.Join(texts(hd.keysBox), " "), "Every key of alice is revoked") {
			t.Error("the page does not say alice has no usable key left")
		}
	})
	keys, err := env.root.UserKeys(t.Context(), "alice")
	if err != nil || keys[0].RevokedAt == nil || keys[0].RevokeReason != "stolen" {
		t.Fatalf("alice's keys at the service: %+v, %v", keys, err)
	}
}

// TestHelpdeskOnlyForStaff: a plain user never sees the tab; a helpdesk
// member sees another member's page without the actions only an admin
// may take; a member whose role was taken away meanwhile is told plainly,
// and so is one whose service went out of reach; signing out hides the
// tab.
func TestHelpdeskOnlyForStaff(t *testing.T) {
	h, env := newHelpdeskHarness(t)
	h.signInAs(env, "alice")
	h.ui(func() {
		if got := h.tabNames(); !slices.Equal(got, []string{"Keys", "Account", "Settings"}) {
			t.Errorf("alice sees the tabs %q", got)
		}
	})
	h.signOut(env, "alice")

	h.signInAs(env, "hd1")
	hd := h.find("helpdesk two", "hd2")
	h.ui(func() {
		if !hd.limits.Visible() || !strings.HasPrefix(hd.limits.Text, "Only an admin may") ||
			!hd.enrollBtn.Disabled() || !hd.recoveryBtn.Disabled() {
			t.Errorf("hd2's page: note %q (shown %v), enroll disabled %v, recovery disabled %v",
				hd.limits.Text, hd.limits.Visible(), hd.enrollBtn.Disabled(), hd.recoveryBtn.Disabled())
		}
		if len(hd.keyRows) != 1 || len(hd.keyRows[0].box.Objects) != 1 {
			t.Errorf("hd2's key offers Revoke to a helpdesk member")
		}
		hd.back()
	})

	if _, err := env.root.SetRoles(t.Context(), "hd1", nil); err != nil {
		t.Fatal(err)
	}
	h.ui(func() { test.Tap(hd.searchBtn) })
	h.eventually("the refusal", func() bool { return !hd.model.busy && hd.status.Text != "" })
	h.ui(func() {
		if !strings.HasPrefix(hd.status.Text, "The service refused: your account may not use the helpdesk tools.") {
			t.Errorf("forbidden: %q", hd.status.Text)
		}
	})

	env.srv.HTTP.Close()
	h.ui(func() { test.Tap(hd.searchBtn) })
	h.eventually("the service unreachable", func() bool { return !hd.model.busy && strings.Contains(hd.status.Text, "could not reach") })
	h.ui(func() {
		if want := "Keydesk could not reach Test service (https://localhost). Check the network connection, then try again."; hd.status.Text != want {
			t.Errorf("unreachable: %q", hd.status.Text)
		}
		h.account().signOut()
	})
	h.eventually("the tab gone after signing out", func() bool {
		return !h.account().model.busy && slices.Equal(h.tabNames(), []string{"Keys", "Account", "Settings"})
	})
	h.ui(func() {
		if got := h.shell.tabs.Selected().Text; got != "Account" {
			t.Errorf("after the Helpdesk tab went, %q is shown", got)
		}
	})
}

// TestGoldenHelpdesk: the search results, a user's page with keys and
// recent events (the server's clock is fixed, times in UTC), and the
// recovery checklist. The code dialog is not pictured: its code is new
// each time (TestHelpdesk* check its widgets).
func TestGoldenHelpdesk(t *testing.T) {
	h, env := newHelpdeskHarness(t)
	h.signInAs(env, "hd1")
	hd := h.openHelpdesk()
	h.ui(func() {
		hd.query.SetText("e")
		test.Tap(hd.searchBtn)
	})
	h.eventually("results", func() bool { return !hd.model.busy && hd.model.searched })
	h.assertScreen("helpdesk_search.png")
	h.ui(func() { test.Tap(hd.rows[0].open) })
	h.eventually("alice's page", func() bool { return !hd.model.busy && hd.model.user != nil })
	h.ui(func() {
		// The audit log keeps the real time, not the server's clock: the
		// picture's events happen a few minutes apart that morning.
		for i := range hd.model.events {
			hd.model.events[i].Time = helpdeskEpoch.Add(time.Duration(60-7*i) * time.Minute)
		}
		hd.showUser()
	})
	h.assertScreen("helpdesk_user.png")
	h.ui(func() { test.Tap(hd.recoveryBtn) })
	h.eventually("the recovery checklist", func() bool { return hd.recovery != nil && !hd.model.busy })
	h.ui(func() { hd.recovery.checks[0].SetChecked(true) })
	h.assertScreen("helpdesk_recovery.png")
}

// TestEventSentenceOfAProvisionedKey: a key an admin enrolled on a user's
// behalf reads as such, with its batch.
func TestEventSentenceOfAProvisionedKey(t *testing.T) {
	hd := &helpdeskScreen{}
	hd.model.keys = []api.Key{{ID: "k1", Nickname: "laptop key"}}
	got := hd.eventSentence(audit.Entry{Actor: "root", ActorRole: audit.RoleAdmin, Action: audit.ActionCredentialProvisioned,
		Subject: "pat", CredentialID: "k1", Details: map[string]string{"batch": "2026-11 laptops"}})
	if want := `root (admin) provisioned pat's key "laptop key" on the user's behalf (batch 2026-11 laptops)`; !strings.HasPrefix(got, want) {
		t.Errorf("sentence %q, want it to start with %q", got, want)
	}
}
