package ui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
)

// Helpdesk is what the Helpdesk tab asks of the service, with the
// signed-in member's session; *rpclient.Client is one. Deps.Helpdesk
// gives the client the Account tab's enroll.Service signs in with, so
// that its token is the member's. The service enforces every rule
// (roles, the checklist, four eyes); the tab says them in plain words.
type Helpdesk interface {
	SearchUsers(ctx context.Context, query string, limit int) ([]api.User, error)
	User(ctx context.Context, name string) (*api.User, error)
	UserKeys(ctx context.Context, name string) ([]api.Key, error)
	UserAudit(ctx context.Context, name string, limit int) ([]audit.Entry, error)
	IssueGrant(ctx context.Context, name string, req api.IssueGrantRequest) (*api.Grant, error)
	RecoveryChecklist(ctx context.Context) (*api.RecoveryChecklist, error)
	IssueRecoveryGrant(ctx context.Context, name string, req api.IssueRecoveryGrantRequest) (*api.RecoveryGrant, error)
	ApproveRecoveryGrant(ctx context.Context, id string) (*api.RecoveryGrant, error)
	RevokeUserKey(ctx context.Context, name, id, reason string) (*api.Key, error)
}

var _ Helpdesk = (*rpclient.Client)(nil)

// How much the tab asks for: a page of matches and of a user's recent
// events, enough to help a caller without scrolling far.
const (
	searchLimit = 20
	auditLimit  = 20
)

// helpdeskModel is what the Helpdesk tab knows. Only the UI goroutine
// touches it.
type helpdeskModel struct {
	// member is the signed-in helpdesk member or admin, "" while the tab
	// is hidden; admin says whether they are an admin, who may act on
	// every account.
	member string
	admin  bool
	// gen counts the changes of member and of the page shown, so that
	// an answer for a page no longer shown is dropped.
	gen int

	results  []api.User
	searched bool

	// name is the user whose page is shown, "" on the search page; user,
	// keys and events are what was read of them (user nil until read).
	name   string
	user   *api.User
	keys   []api.Key
	events []audit.Entry

	// busy is set while a call to the service is under way.
	busy bool
}

// helpdeskScreen is the Helpdesk tab, shown only to a helpdesk member or
// an admin signed in with a key: find a user, see their keys and recent
// events, give them an enrollment or recovery code, revoke a lost key,
// and approve a colleague's recovery code (four eyes).
type helpdeskScreen struct {
	s     *Shell
	model helpdeskModel
	tab   *container.TabItem

	// now and loc are the clock and time zone times are told in; the
	// tests fix them, so that pictures do not change with the day.
	now func() time.Time
	loc *time.Location

	content *fyne.Container
	stack   *fyne.Container
	status  *widget.Label

	// The search page.
	searchPage    fyne.CanvasObject
	query         *widget.Entry
	searchBtn     *widget.Button
	resultsNote   *widget.Label
	resultsBox    *fyne.Container
	rows          []*userRow
	approveID     *widget.Entry
	approveBtn    *widget.Button
	approveResult *widget.Label
	approveBox    *fyne.Container

	// The user page.
	userPage    fyne.CanvasObject
	title       *widget.Label
	facts       *widget.Label
	limits      *widget.Label
	enrollBtn   *widget.Button
	recoveryBtn *widget.Button
	refreshBtn  *widget.Button
	userBody    *fyne.Container
	keysBox     *fyne.Container
	eventsBox   *fyne.Container
	// keyRows are the user's keys as shown.
	keyRows []*hdKeyRow

	// The dialogs last shown, for the tests.
	enrollDlg    *dialog.ConfirmDialog
	ttlSel       *widget.Select
	usesSel      *widget.Select
	recovery     *recoveryDialog
	codeDlg      *codeDialog
	revokeDlg    *dialog.ConfirmDialog
	revokeReason *widget.SelectEntry
}

func newHelpdeskScreen(s *Shell) *helpdeskScreen {
	hd := &helpdeskScreen{s: s, now: time.Now, loc: time.Local}
	hd.status = wrapped("")

	hd.query = widget.NewEntry()
	hd.query.SetPlaceHolder("Part of a user name or display name (empty: everyone)")
	hd.query.OnSubmitted = func(string) { hd.search() }
	hd.searchBtn = widget.NewButtonWithIcon("Search", theme.SearchIcon(), hd.search)
	hd.searchBtn.Importance = widget.HighImportance
	hd.resultsNote = wrapped("Find the caller by their user name or display name, then open their page.")
	hd.resultsBox = container.NewVBox()
	hd.approveID = widget.NewEntry()
	hd.approveID.SetPlaceHolder("Request ID your colleague reads to you")
	hd.approveID.OnSubmitted = func(string) { hd.approve() }
	hd.approveBtn = widget.NewButtonWithIcon("Approve", theme.ConfirmIcon(), hd.approve)
	hd.approveResult = wrapped("")
	hd.approveResult.Hide()
	hd.approveBox = container.NewVBox(container.NewBorder(nil, nil, nil, hd.approveBtn, hd.approveID), hd.approveResult)
	approveCard := widget.NewCard("", "Approve a colleague's recovery code", hd.approveBox)
	hd.searchPage = container.NewBorder(
		container.NewVBox(
			widget.NewLabelWithStyle("Find a user", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
			container.NewBorder(nil, nil, nil, hd.searchBtn, hd.query),
			hd.resultsNote),
		approveCard, nil, nil, container.NewVScroll(hd.resultsBox))

	hd.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	hd.facts = wrapped("")
	hd.limits = wrapped("")
	hd.limits.Importance = widget.WarningImportance
	hd.limits.Hide()
	back := widget.NewButtonWithIcon("Search", theme.NavigateBackIcon(), hd.back)
	hd.enrollBtn = widget.NewButtonWithIcon("Enrollment code…", theme.ContentAddIcon(), hd.askEnrollment)
	hd.enrollBtn.Importance = widget.HighImportance
	hd.recoveryBtn = widget.NewButtonWithIcon("Recovery code…", theme.AccountIcon(), hd.askRecovery)
	hd.refreshBtn = widget.NewButtonWithIcon("Refresh", theme.ViewRefreshIcon(), func() { hd.load(hd.model.name, "") })
	hd.keysBox = container.NewVBox()
	hd.eventsBox = container.NewVBox()
	hd.userBody = container.NewVBox(
		widget.NewLabelWithStyle("Keys", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), hd.keysBox,
		widget.NewSeparator(),
		widget.NewLabelWithStyle("Recent activity", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), hd.eventsBox)
	hd.userPage = container.NewBorder(
		container.NewVBox(container.NewBorder(nil, nil, back, nil, hd.title), hd.facts, hd.limits,
			container.NewHBox(hd.enrollBtn, hd.recoveryBtn, hd.refreshBtn)),
		nil, nil, nil, container.NewVScroll(hd.userBody))

	hd.stack = container.NewStack(hd.searchPage)
	hd.content = container.NewBorder(nil, hd.status, nil, nil, hd.stack)
	hd.tab = container.NewTabItem("Helpdesk", hd.content)
	hd.show()
	return hd
}

// accountShown follows the Account tab's session (UI goroutine): the
// account screen calls it whenever it shows its model.
func (s *Shell) accountShown(me *api.Me) {
	if s.helpdesk != nil {
		s.helpdesk.follow(me)
	}
	if s.provisioning != nil {
		s.provisioning.follow(me)
	}
}

// staffRoles says whether roles allow the helpdesk tools.
func staffRoles(roles []string) bool {
	return slices.Contains(roles, "helpdesk") || slices.Contains(roles, "admin")
}

// follow shows the tab for a full session of a helpdesk member or an
// admin, and hides it otherwise; another member signing in starts
// afresh, so that nothing of the last one's work stays on screen.
func (hd *helpdeskScreen) follow(me *api.Me) {
	member, admin := "", false
	if me != nil && me.Scope == "full" && staffRoles(me.User.Roles) {
		member, admin = me.User.Name, slices.Contains(me.User.Roles, "admin")
	}
	if member == hd.model.member {
		if admin != hd.model.admin {
			hd.model.admin = admin
			hd.showUser()
			hd.show()
		}
		return
	}
	hd.model = helpdeskModel{member: member, admin: admin, gen: hd.model.gen + 1}
	// The last member's dialogs go: none may act with the next one's
	// session, and a code on show is not for the next person's eyes.
	if hd.recovery != nil {
		hd.recovery.close()
	}
	for _, d := range []*dialog.ConfirmDialog{hd.enrollDlg, hd.revokeDlg} {
		if d != nil {
			d.Hide()
		}
	}
	if hd.codeDlg != nil {
		hd.codeDlg.dlg.Hide()
	}
	hd.query.SetText("")
	hd.approveID.SetText("")
	hd.approveResult.SetText("")
	hd.approveResult.Hide()
	hd.approveBox.Refresh()
	hd.resultsNote.SetText("Find the caller by their user name or display name, then open their page.")
	hd.setStatus("")
	hd.showResults()
	hd.showUser()
	hd.show()
	hd.s.showTab(hd.tab, member != "")
}

// client is the member's connection to the service, nil without one.
func (hd *helpdeskScreen) client() Helpdesk {
	if hd.s.deps.Helpdesk == nil {
		return nil
	}
	return hd.s.deps.Helpdesk()
}

// setStatus says what the tab is doing, or what went wrong; the line
// takes room only when it says something.
func (hd *helpdeskScreen) setStatus(msg string) {
	if msg == hd.status.Text && hd.status.Visible() == (msg != "") {
		return
	}
	hd.status.SetText(msg)
	if msg == "" {
		hd.status.Hide()
	} else {
		hd.status.Show()
	}
	hd.content.Refresh()
}

// run calls the service off the UI goroutine, one call at a time (a
// call asked for while another runs is not made: its buttons are off);
// work returns what to apply to the model on success. What goes wrong is
// said with report (the status line when nil), then failed, if set, is
// given the error. An answer that comes after the page or the member
// changed is dropped.
func (hd *helpdeskScreen) run(report func(string), doing string, work func(ctx context.Context, c Helpdesk) (func(), error), failed func(error)) {
	if report == nil {
		report = hd.setStatus
	}
	if hd.model.busy {
		return
	}
	c := hd.client()
	if c == nil {
		report("Keydesk has no connection to the service for the helpdesk tools: sign out and in again in the Account tab.")
		return
	}
	gen := hd.model.gen
	hd.model.busy = true
	hd.setStatus(doing)
	hd.show()
	hd.s.goBackground(func(ctx context.Context) {
		apply, err := work(ctx, c)
		hd.s.do(func() {
			if gen != hd.model.gen {
				return
			}
			hd.model.busy = false
			hd.setStatus("")
			switch {
			case err == nil:
				if apply != nil {
					apply()
				}
			case cancelled(err):
				report("Cancelled.")
			default:
				report(helpdeskErrorText(err, hd.s.deps.Service))
			}
			if err != nil && failed != nil {
				failed(err)
			}
			if err != nil && errors.Is(err, rpclient.ErrUnauthorized) && hd.s.account != nil {
				// The session ended: the Account tab finds out, says
				// so, and hides this tab.
				hd.s.account.reload()
			}
			hd.show()
		})
	})
}

// show shows the page of the model, its buttons enabled or not (UI
// goroutine); showResults and showUser fill the pages.
func (hd *helpdeskScreen) show() {
	page := hd.searchPage
	if hd.model.name != "" {
		page = hd.userPage
	}
	if len(hd.stack.Objects) != 1 || hd.stack.Objects[0] != page {
		hd.stack.Objects = []fyne.CanvasObject{page}
		hd.stack.Refresh()
	}
	busy := hd.model.busy
	for _, b := range []*widget.Button{hd.searchBtn, hd.approveBtn, hd.refreshBtn} {
		enable(b, !busy)
	}
	for _, r := range hd.rows {
		enable(r.open, !busy)
	}
	u := hd.model.user
	mayCode := u != nil && !u.Disabled && hd.mayManage(u)
	enable(hd.enrollBtn, !busy && mayCode)
	enable(hd.recoveryBtn, !busy && mayCode)
	for _, r := range hd.keyRows {
		enable(r.revoke, !busy)
	}
}

// enable enables or disables b.
func enable(b *widget.Button, on bool) {
	if on {
		b.Enable()
	} else {
		b.Disable()
	}
}

// mayManage says whether the member may give codes to u and revoke
// their keys: an admin may for everyone; a helpdesk member not for
// helpdesk members or admins (the service refuses those, "admin_only").
func (hd *helpdeskScreen) mayManage(u *api.User) bool {
	return hd.model.admin || !staffRoles(u.Roles)
}

// search lists the users matching the query.
func (hd *helpdeskScreen) search() {
	q := strings.TrimSpace(hd.query.Text)
	if len(q) > 64 {
		hd.setStatus("Type at most 64 characters: part of the name is enough.")
		return
	}
	hd.run(nil, "Searching…", func(ctx context.Context, c Helpdesk) (func(), error) {
		users, err := c.SearchUsers(ctx, q, searchLimit)
		if err != nil {
			return nil, err
		}
		return func() {
			hd.model.results, hd.model.searched = users, true
			switch {
			case len(users) == 0 && q == "":
				hd.resultsNote.SetText("There is nobody at this service yet.")
			case len(users) == 0:
				hd.resultsNote.SetText(fmt.Sprintf("Nobody matches %q. Try another part of the name, or search with an empty box to list everyone.", q))
			case len(users) == searchLimit:
				hd.resultsNote.SetText(fmt.Sprintf("The first %d matches: type more of the name to find fewer.", searchLimit))
			case len(users) == 1:
				hd.resultsNote.SetText("One match: open it to see the account.")
			default:
				hd.resultsNote.SetText(fmt.Sprintf("%d matches: open the caller's to see the account.", len(users)))
			}
			hd.showResults()
		}, nil
	}, nil)
}

// userRow is one search result: who, and the button that opens their
// page (reachable with Tab).
type userRow struct {
	box           *fyne.Container
	title, detail *widget.Label
	open          *widget.Button
	name          string
}

// showResults fills the rows with the results; rows beyond them are
// hidden and kept for the next search.
func (hd *helpdeskScreen) showResults() {
	for len(hd.rows) < len(hd.model.results) {
		r := &userRow{
			title:  widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
			detail: widget.NewLabel(""),
		}
		r.open = widget.NewButtonWithIcon("Open", theme.NavigateNextIcon(), func() { hd.open(r.name) })
		r.box = container.NewBorder(nil, widget.NewSeparator(), widget.NewIcon(theme.AccountIcon()), container.NewCenter(r.open),
			container.NewVBox(r.title, r.detail))
		hd.rows = append(hd.rows, r)
		hd.resultsBox.Add(r.box)
	}
	for i, r := range hd.rows {
		if i >= len(hd.model.results) {
			r.box.Hide()
			continue
		}
		u := hd.model.results[i]
		r.name = u.Name
		r.title.SetText(userTitle(u))
		r.detail.SetText(hd.userFacts(u))
		r.box.Show()
	}
	// The note above may take more lines or fewer: lay the page out.
	hd.searchPage.Refresh()
}

// userTitle names a user: "Display Name (name)", or the name alone.
func userTitle(u api.User) string {
	if u.DisplayName != "" && u.DisplayName != u.Name {
		return fmt.Sprintf("%s (%s)", u.DisplayName, u.Name)
	}
	return u.Name
}

// userFacts is a user's line of facts: roles, since when, disabled.
func (hd *helpdeskScreen) userFacts(u api.User) string {
	parts := []string{}
	var staff []string
	for _, r := range u.Roles {
		if r != "user" {
			staff = append(staff, r)
		}
	}
	if len(staff) > 0 {
		parts = append(parts, strings.Join(staff, " and "))
	} else {
		parts = append(parts, "user")
	}
	if !u.CreatedAt.IsZero() {
		parts = append(parts, "account since "+u.CreatedAt.In(hd.loc).Format("2 Jan 2006"))
	}
	if u.Disabled {
		parts = append(parts, "DISABLED")
	}
	return strings.Join(parts, " · ")
}

// open shows user name's page and reads it; an answer still awaited
// for the page left is dropped.
func (hd *helpdeskScreen) open(name string) {
	hd.model.gen++
	hd.model.busy = false
	hd.model.name, hd.model.user, hd.model.keys, hd.model.events = name, nil, nil, nil
	hd.setStatus("")
	hd.showUser()
	hd.show()
	hd.load(name, "")
}

// back goes back to the search results; an answer still awaited for
// the page left is dropped.
func (hd *helpdeskScreen) back() {
	hd.model.gen++
	hd.model.busy = false
	hd.model.name, hd.model.user, hd.model.keys, hd.model.events = "", nil, nil, nil
	hd.setStatus("")
	hd.showUser()
	hd.show()
	hd.s.win.Canvas().Focus(hd.query)
}

// load reads user name's account, keys and recent events, then says
// after, if set.
func (hd *helpdeskScreen) load(name, after string) {
	if name == "" {
		return
	}
	hd.run(nil, "Reading "+name+"'s account…", func(ctx context.Context, c Helpdesk) (func(), error) {
		u, err := c.User(ctx, name)
		if err != nil {
			return nil, err
		}
		keys, err := c.UserKeys(ctx, name)
		if err != nil {
			return nil, err
		}
		events, err := c.UserAudit(ctx, name, auditLimit)
		if err != nil {
			return nil, err
		}
		return func() {
			hd.model.user, hd.model.keys, hd.model.events = u, keys, events
			hd.showUser()
			hd.setStatus(after)
		}, nil
	}, nil)
}

// showUser fills the user page from the model (UI goroutine).
func (hd *helpdeskScreen) showUser() {
	u := hd.model.user
	if u == nil {
		hd.title.SetText(hd.model.name)
		hd.facts.SetText("")
		hd.limits.Hide()
		hd.keysBox.RemoveAll()
		hd.eventsBox.RemoveAll()
		hd.keyRows = nil
		hd.userBody.Refresh()
		return
	}
	hd.title.SetText(userTitle(*u))
	hd.facts.SetText(hd.userFacts(*u))
	switch {
	case !hd.mayManage(u):
		hd.limits.SetText("Only an admin may give codes to, or revoke keys of, a helpdesk member or an admin: ask an admin.")
		hd.limits.Show()
	case u.Disabled:
		hd.limits.SetText("This account is disabled: an admin must enable it before it can be given a code.")
		hd.limits.Show()
	default:
		hd.limits.Hide()
	}

	hd.keysBox.RemoveAll()
	hd.keyRows = nil
	if len(hd.model.keys) == 0 {
		l := wrapped(fmt.Sprintf("%s has no key, so cannot sign in. Give them an enrollment code to enroll one.", u.Name))
		hd.keysBox.Add(l)
	}
	usable := 0
	for _, k := range hd.model.keys {
		if k.RevokedAt == nil {
			usable++
		}
	}
	if len(hd.model.keys) > 0 && usable == 0 {
		l := wrapped(fmt.Sprintf("Every key of %s is revoked: they cannot sign in. Give them an enrollment or recovery code.", u.Name))
		l.Importance = widget.WarningImportance
		hd.keysBox.Add(l)
	}
	for _, k := range hd.model.keys {
		r := hd.newKeyRow(*u, k)
		hd.keyRows = append(hd.keyRows, r)
		hd.keysBox.Add(r.box)
	}

	hd.eventsBox.RemoveAll()
	if len(hd.model.events) == 0 {
		hd.eventsBox.Add(widget.NewLabel("Nothing recorded yet."))
	}
	for _, e := range hd.model.events {
		when := widget.NewLabel(hd.eventTime(e.Time))
		what := wrapped(hd.eventSentence(e))
		hd.eventsBox.Add(container.NewBorder(nil, nil, when, nil, what))
	}
	// What the page holds changed size: lay it out again.
	hd.userBody.Refresh()
	hd.userPage.Refresh()
}

// hdKeyRow is one of the user's keys: its name, facts, and Revoke.
type hdKeyRow struct {
	box           *fyne.Container
	title, detail *widget.Label
	revoke        *widget.Button
}

func (hd *helpdeskScreen) newKeyRow(u api.User, k api.Key) *hdKeyRow {
	r := &hdKeyRow{
		title:  widget.NewLabelWithStyle(hdKeyTitle(k), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		detail: widget.NewLabel(hd.keyFacts(k)),
	}
	r.detail.Wrapping = fyne.TextWrapWord
	r.revoke = widget.NewButtonWithIcon("Revoke…", theme.DeleteIcon(), func() { hd.askRevoke(u, k) })
	var right fyne.CanvasObject
	if k.RevokedAt == nil && hd.mayManage(&u) {
		right = container.NewCenter(r.revoke)
	}
	r.box = container.NewBorder(nil, nil, nil, right, container.NewVBox(r.title, r.detail))
	return r
}

// hdKeyTitle is a key's first line: its nickname, and whether it is
// revoked.
func hdKeyTitle(k api.Key) string {
	t := k.Nickname
	if t == "" {
		t = "Unnamed key"
	}
	if k.RevokedAt != nil {
		t += "  (revoked)"
	}
	return t
}

// keyFacts is a key's second line: model, enrolled, last used, revoked.
func (hd *helpdeskScreen) keyFacts(k api.Key) string {
	var parts []string
	if k.Model != "" {
		parts = append(parts, k.Model)
	}
	parts = append(parts, "enrolled "+k.CreatedAt.In(hd.loc).Format("2 Jan 2006"))
	if k.LastUsedAt != nil {
		parts = append(parts, "last used "+ago(hd.now().Sub(*k.LastUsedAt)))
	} else {
		parts = append(parts, "never used")
	}
	if k.RevokedAt != nil {
		r := "revoked " + k.RevokedAt.In(hd.loc).Format("2 Jan 2006")
		if k.RevokeReason != "" {
			r += ": " + k.RevokeReason
		}
		parts = append(parts, r)
	}
	return strings.Join(parts, " · ")
}

// eventTime tells when an event happened: the time alone today, the day
// too this year, the year too before.
func (hd *helpdeskScreen) eventTime(t time.Time) string {
	t, now := t.In(hd.loc), hd.now().In(hd.loc)
	switch {
	case t.YearDay() == now.YearDay() && t.Year() == now.Year():
		return t.Format("15:04")
	case t.Year() == now.Year():
		return t.Format("2 Jan 15:04")
	}
	return t.Format("2 Jan 2006")
}

// eventSentence says who did what, as a person reads it.
func (hd *helpdeskScreen) eventSentence(e audit.Entry) string {
	who := e.Actor
	switch e.ActorRole {
	case audit.RoleSystem:
		who = "Keydesk"
	case audit.RoleAnonymous:
		if e.Actor == "anonymous" || e.Actor == "" {
			who = "Someone"
		} else {
			who = fmt.Sprintf("Someone giving the name %s", e.Actor)
		}
	case audit.RoleHelpdesk, audit.RoleAdmin:
		if e.Subject != e.Actor {
			who = fmt.Sprintf("%s (%s)", e.Actor, e.ActorRole)
		}
	}
	// whose is the subject's, as a possessive: "their" for the actor's
	// own.
	whose, whom := "their", "themselves"
	if e.Subject != "" && e.Subject != e.Actor {
		whose, whom = e.Subject+"'s", e.Subject
	}
	key := "a key"
	if e.CredentialID != "" {
		key = whose + " key"
		for _, k := range hd.model.keys {
			if k.ID == e.CredentialID && k.Nickname != "" {
				key = fmt.Sprintf("%s key %q", whose, k.Nickname)
			}
		}
	}
	d := e.Details
	because := func(what string) string {
		if r := d["reason"]; r != "" {
			return what + " (" + strings.ReplaceAll(r, "_", " ") + ")"
		}
		return what
	}
	var what string
	switch e.Action {
	case audit.ActionUserCreated:
		what = "created " + whose + " account"
		if e.Subject == e.Actor || e.ActorRole == audit.RoleSystem {
			what = "created the account " + e.Subject
		}
	case audit.ActionUserDisabled:
		what = "disabled " + whose + " account"
		if d["disabled"] == "false" {
			what = "enabled " + whose + " account again"
		}
	case audit.ActionRoleChanged:
		what = "set " + whose + " roles to " + strings.ReplaceAll(d["roles"], ",", ", ")
	case audit.ActionPolicyChanged:
		what = "changed the service's policy"
	case audit.ActionCredentialRegistered:
		what = "enrolled " + key
		if d["scope"] == "recovery" {
			what += " while recovering the account"
		}
	case audit.ActionCredentialProvisioned:
		what = "provisioned " + key + " on the user's behalf"
		if b := d["batch"]; b != "" {
			what += " (batch " + b + ")"
		}
	case audit.ActionCredentialRenamed:
		what = "renamed " + key
	case audit.ActionCredentialRevoked:
		what = because("revoked " + key)
	case audit.ActionCounterRegressed:
		what = "signed in with " + key + " whose counter went backwards: the key may have been copied"
	case audit.ActionLoginSucceeded:
		what = "signed in"
		if key != "a key" && e.Subject == e.Actor {
			what = "signed in with " + key
		}
	case audit.ActionLoginFailed:
		what = because("failed to sign in")
	case audit.ActionGrantIssued:
		if d["kind"] == "recovery" {
			what = "gave " + whom + " a recovery code"
			if d["fourEyes"] == "true" {
				what += ", to be approved by a second helpdesk member"
			}
		} else {
			what = "gave " + whom + " an enrollment code"
			if d["uses"] != "" && d["uses"] != "1" {
				what += " for " + d["uses"] + " uses"
			}
		}
	case audit.ActionGrantRedeemed:
		what = "used an enrollment code"
	case audit.ActionRecoveryRequested:
		what = "asked to recover the account"
		if n := d["desktopName"]; n != "" {
			what += " from the computer " + n
		}
	case audit.ActionRecoveryApproved:
		if d["method"] == "helpdesk" {
			what = "approved " + whose + " recovery code"
			if d["issuer"] != "" {
				what += ", issued by " + d["issuer"]
			}
		} else {
			what = "approved the recovery on their phone"
		}
	case audit.ActionRecoveryRedeemed:
		switch d["method"] {
		case "helpdesk":
			what = "recovered the account with a helpdesk recovery code"
		case "recovery_code":
			what = "recovered the account with a recovery code"
		default:
			what = "recovered the account"
		}
	case audit.ActionRecoveryFailed:
		what = because("failed to recover the account")
	case audit.ActionRecoveryRefused:
		what = because("had a recovery request stopped")
	case audit.ActionRecoveryExpired:
		what = "noted that a recovery request expired unused"
	case audit.ActionRecoveryCodesGenerated:
		what = "made new recovery codes"
	default:
		what = string(e.Action)
		if e.Subject != "" && e.Subject != e.Actor {
			what += " (" + e.Subject + ")"
		}
	}
	return who + " " + what + "."
}

// ttlChoices are the lifetimes a code may be given, as shown.
var ttlChoices = []struct {
	label   string
	seconds int
}{
	{"15 minutes", 15 * 60},
	{"1 hour", 3600},
	{"8 hours", 8 * 3600},
	{"1 day", 86400},
}

// usesChoices are how many times an enrollment code may be used.
var usesChoices = []struct {
	label string
	uses  int
}{
	{"Once", 1},
	{"Twice", 2},
	{"3 times", 3},
	{"5 times", 5},
	{"10 times", 10},
}

// askEnrollment asks how long the enrollment code lasts and how many
// times it may be used, then issues it.
func (hd *helpdeskScreen) askEnrollment() {
	u := hd.model.user
	if u == nil {
		return
	}
	var ttls, uses []string
	for _, c := range ttlChoices {
		ttls = append(ttls, c.label)
	}
	for _, c := range usesChoices {
		uses = append(uses, c.label)
	}
	hd.ttlSel = widget.NewSelect(ttls, nil)
	hd.ttlSel.SetSelected("1 hour")
	hd.usesSel = widget.NewSelect(uses, nil)
	hd.usesSel.SetSelected("Once")
	ttlSel, usesSel := hd.ttlSel, hd.usesSel
	intro := wrapped(fmt.Sprintf("%s types the code in Keydesk to enroll a key: for a first key, or after losing all of them.", userTitle(*u)))
	hd.enrollDlg = dialog.NewCustomConfirm("Enrollment code for "+u.Name, "Give the code", "Cancel", container.NewVBox(intro, widget.NewForm(
		widget.NewFormItem("Valid for", ttlSel),
		widget.NewFormItem("Can be used", usesSel),
	)), func(ok bool) {
		if !ok {
			return
		}
		req := api.IssueGrantRequest{Kind: "enrollment",
			TTLSeconds: ttlChoices[max(ttlSel.SelectedIndex(), 0)].seconds,
			MaxUses:    usesChoices[max(usesSel.SelectedIndex(), 0)].uses}
		hd.issueEnrollment(*u, req)
	}, hd.s.win)
	hd.enrollDlg.Resize(fyne.NewSize(440, 0))
	hd.enrollDlg.Show()
}

// issueEnrollment issues an enrollment code and shows it once.
func (hd *helpdeskScreen) issueEnrollment(u api.User, req api.IssueGrantRequest) {
	hd.run(nil, "Issuing an enrollment code for "+u.Name+"…", func(ctx context.Context, c Helpdesk) (func(), error) {
		g, err := c.IssueGrant(ctx, u.Name, req)
		if err != nil {
			return nil, err
		}
		return func() {
			code := g.Code
			g.Code = ""
			uses := "once"
			if g.MaxUses > 1 {
				uses = fmt.Sprintf("up to %d times", g.MaxUses)
			}
			hd.showCode(codeShown{
				title: "Enrollment code for " + u.Name, code: code,
				what: fmt.Sprintf("Read it to %s. They type it in Keydesk (Account tab, with their user name %s) and enroll a key.",
					userTitle(u), u.Name),
				expiry: fmt.Sprintf("It works %s, until %s (%s).", uses, hd.until(g.ExpiresAt), hd.inTime(g.ExpiresAt)),
			})
			hd.load(u.Name, "")
		}, nil
	}, nil)
}

// until tells an expiry: the time, and the day when not today.
func (hd *helpdeskScreen) until(t time.Time) string {
	t, now := t.In(hd.loc), hd.now().In(hd.loc)
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04")
	}
	return t.Format("Mon 2 Jan 15:04")
}

// inTime says how long from now t is, roughly.
func (hd *helpdeskScreen) inTime(t time.Time) string {
	d := t.Sub(hd.now()).Round(time.Minute)
	switch {
	case d <= 0:
		return "now"
	case d < time.Hour:
		return fmt.Sprintf("in %d minutes", int(d.Minutes()))
	case d < 2*time.Hour:
		return "in 1 hour"
	}
	return fmt.Sprintf("in %d hours", int(d.Hours()))
}

// checklistLabels say the reference service's checklist items as a
// helpdesk member checks them; other items are shown as they come.
var checklistLabels = map[string]string{
	"photo-id":              "I saw an official photo ID that matches the account",
	"callback-known-number": "I called them back on the phone number on file",
	"manager-confirmation":  "Their manager confirmed the request",
}

// checklistLabel is how item reads on screen.
func checklistLabel(item string) string {
	if l, ok := checklistLabels[item]; ok {
		return l
	}
	return item
}

// recoveryDialog vouches for a locked-out user: every item of the
// service's checklist must be checked, with an optional note for the
// audit log.
type recoveryDialog struct {
	hd      *helpdeskScreen
	user    api.User
	items   []string
	checks  []*widget.Check
	note    *widget.Entry
	problem *widget.Label
	box     *fyne.Container
	issue   *widget.Button
	cancel  *widget.Button
	dlg     dialog.Dialog
	busy    bool
}

// askRecovery reads the checklist, then opens the recovery dialog.
func (hd *helpdeskScreen) askRecovery() {
	u := hd.model.user
	if u == nil {
		return
	}
	user := *u
	hd.run(nil, "Reading the recovery checklist…", func(ctx context.Context, c Helpdesk) (func(), error) {
		cl, err := c.RecoveryChecklist(ctx)
		if err != nil {
			return nil, err
		}
		return func() { hd.openRecovery(user, cl) }, nil
	}, nil)
}

func (hd *helpdeskScreen) openRecovery(u api.User, cl *api.RecoveryChecklist) {
	r := &recoveryDialog{hd: hd, user: u, items: cl.Items}
	intro := widget.NewLabel(fmt.Sprintf("A recovery code lets %s into the account without a key, to enroll a new key and revoke the lost ones. "+
		"Make sure the caller is %s: check every item before giving the code.", userTitle(u), u.Name))
	intro.Wrapping = fyne.TextWrapWord
	box := container.NewVBox(intro)
	r.box = box
	for _, it := range cl.Items {
		c := widget.NewCheck(checklistLabel(it), nil)
		r.checks = append(r.checks, c)
		box.Add(c)
	}
	r.note = widget.NewMultiLineEntry()
	r.note.SetPlaceHolder("How you checked, for the audit log (optional)")
	r.note.SetMinRowsVisible(2)
	r.note.Wrapping = fyne.TextWrapWord
	box.Add(r.note)
	if cl.FourEyes {
		l := wrapped("A second helpdesk member must approve the code before it works (four eyes).")
		box.Add(l)
	}
	r.problem = wrapped("")
	r.problem.Importance = widget.DangerImportance
	r.problem.Hide()
	box.Add(r.problem)
	r.issue = widget.NewButton("Give the recovery code", r.submit)
	r.issue.Importance = widget.HighImportance
	r.cancel = widget.NewButton("Cancel", r.close)
	box.Add(container.NewHBox(r.cancel, r.issue))
	r.dlg = dialog.NewCustomWithoutButtons("Recovery code for "+u.Name, box, hd.s.win)
	r.dlg.Resize(fyne.NewSize(520, 0))
	r.dlg.Show()
	hd.recovery = r
}

// showProblem says what stops the code from being given.
func (r *recoveryDialog) showProblem(msg string) {
	r.problem.SetText(msg)
	if msg == "" {
		r.problem.Hide()
	} else {
		r.problem.Show()
	}
	// The line comes and goes: lay the dialog out again.
	r.box.Refresh()
	r.dlg.Refresh()
}

// submit issues the recovery code once every item is checked.
func (r *recoveryDialog) submit() {
	if r.busy {
		return
	}
	var checked, missing []string
	for i, c := range r.checks {
		if c.Checked {
			checked = append(checked, r.items[i])
		} else {
			missing = append(missing, checklistLabel(r.items[i]))
		}
	}
	note := strings.TrimSpace(r.note.Text)
	switch {
	case len(missing) > 0:
		r.showProblem("Check every item first: every one is required. Not checked yet: " + strings.Join(missing, "; ") + ".")
		return
	case len(note) > 500:
		r.showProblem("The note is too long: keep it under 500 characters.")
		return
	}
	hd, u := r.hd, r.user
	if hd.model.busy {
		r.showProblem("Wait for the page to finish loading, then try again.")
		return
	}
	r.busy = true
	r.issue.Disable()
	r.showProblem("")
	hd.run(r.showProblem, "Issuing a recovery code for "+u.Name+"…", func(ctx context.Context, c Helpdesk) (func(), error) {
		g, err := c.IssueRecoveryGrant(ctx, u.Name, api.IssueRecoveryGrantRequest{Verification: checked, Note: note})
		if err != nil {
			return nil, err
		}
		return func() {
			r.close()
			code := g.Code
			g.Code = ""
			shown := codeShown{
				title: "Recovery code for " + u.Name, code: code,
				what: fmt.Sprintf("Read it to %s. They type it in Keydesk to recover the account: enroll a new key, then revoke the lost ones.",
					userTitle(u)),
				expiry: fmt.Sprintf("It works once, until %s (%s).", hd.until(g.ExpiresAt), hd.inTime(g.ExpiresAt)),
			}
			if g.Pending {
				shown.pendingID = g.ID
			}
			hd.showCode(shown)
			hd.load(u.Name, "")
		}, nil
	}, func(error) {
		r.busy = false
		r.issue.Enable()
	})
}

// close takes the dialog down.
func (r *recoveryDialog) close() {
	r.note.SetText("")
	r.dlg.Hide()
	if r.hd.recovery == r {
		r.hd.recovery = nil
	}
}

// codeShown is a code to show once, and what to say with it.
type codeShown struct {
	title, code, what, expiry string
	// pendingID is the ID of a recovery grant that waits for a second
	// member's approval; "" for a code that works now.
	pendingID string
}

// codeDialog shows a new code once: the service keeps no copy, so
// nobody can see it again. It holds the code only while it is open.
type codeDialog struct {
	dlg     dialog.Dialog
	code    *widget.Label
	what    *widget.Label
	expiry  *widget.Label
	pending *widget.Label
	copied  *widget.Label
	copy    *widget.Button
	copyID  *widget.Button
	done    *widget.Button
	box     *fyne.Container
	// grantID is the pending grant's ID, for its Copy button.
	grantID string
}

// say shows what Copy did, laying the dialog out again for the line.
func (d *codeDialog) say(msg string) {
	d.copied.SetText(msg)
	d.copied.Show()
	d.box.Refresh()
	d.dlg.Refresh()
}

// showCode shows c once; closing the dialog forgets the code.
func (hd *helpdeskScreen) showCode(c codeShown) {
	d := &codeDialog{grantID: c.pendingID}
	d.code = widget.NewLabelWithStyle(c.code, fyne.TextAlignCenter, fyne.TextStyle{Monospace: true, Bold: true})
	d.code.SizeName = theme.SizeNameSubHeadingText
	d.what = wrapped(c.what + " Keydesk shows the code only now: if it is lost, give a new one.")
	d.expiry = wrapped(c.expiry)
	d.copied = widget.NewLabel("")
	d.copied.Hide()
	d.copy = widget.NewButtonWithIcon("Copy the code", theme.ContentCopyIcon(), func() {
		hd.s.app.Clipboard().SetContent(d.code.Text)
		d.say("The code is on the clipboard.")
	})
	d.pending = wrapped("")
	d.pending.Importance = widget.WarningImportance
	d.copyID = widget.NewButtonWithIcon("Copy the request ID", theme.ContentCopyIcon(), func() {
		hd.s.app.Clipboard().SetContent(d.grantID)
		d.say("The request ID is on the clipboard.")
	})
	if c.pendingID == "" {
		d.pending.Hide()
		d.copyID.Hide()
	} else {
		d.pending.SetText(fmt.Sprintf("This code does not work yet: a second helpdesk member must approve it. "+
			"Ask a colleague to approve request %s (Helpdesk tab, “Approve a colleague's recovery code”), "+
			"and tell the caller to wait for that.", c.pendingID))
	}
	d.done = widget.NewButton("Done", nil)
	d.done.Importance = widget.HighImportance
	d.box = container.NewVBox(d.what, d.code, d.expiry, d.pending, container.NewHBox(d.copy, d.copyID), d.copied, container.NewHBox(d.done))
	d.dlg = dialog.NewCustomWithoutButtons(c.title, d.box, hd.s.win)
	d.done.OnTapped = d.dlg.Hide
	d.dlg.SetOnClosed(func() {
		// The code leaves the screen with the dialog.
		d.code.SetText("")
		if hd.codeDlg == d {
			hd.codeDlg = nil
		}
	})
	d.dlg.Resize(fyne.NewSize(480, 0))
	d.dlg.Show()
	hd.codeDlg = d
	hd.s.win.Canvas().Focus(d.copy)
}

// revokeReasons are offered when revoking; any other can be typed.
var revokeReasons = []string{"lost", "stolen", "broken", "left the organization", "no longer used"}

// askRevoke confirms the revocation of a user's key, with its reason.
func (hd *helpdeskScreen) askRevoke(u api.User, k api.Key) {
	reason := widget.NewSelectEntry(revokeReasons)
	reason.SetText("lost")
	hd.revokeReason = reason
	name := hdKeyTitle(k)
	msg := widget.NewLabel(fmt.Sprintf("%s will no longer sign in with %q. This cannot be undone. "+
		"If it is their last key, give them an enrollment code next.", u.Name, name))
	msg.Wrapping = fyne.TextWrapWord
	hd.revokeDlg = dialog.NewCustomConfirm(fmt.Sprintf("Revoke %s's key %q?", u.Name, name), "Revoke", "Cancel",
		container.NewVBox(msg, widget.NewForm(widget.NewFormItem("Why", reason))), func(ok bool) {
			if ok {
				hd.revoke(u, k, strings.TrimSpace(reason.Text))
			}
		}, hd.s.win)
	hd.revokeDlg.SetConfirmImportance(widget.DangerImportance)
	hd.revokeDlg.Resize(fyne.NewSize(460, 0))
	hd.revokeDlg.Show()
}

// revoke revokes a user's key for reason, then reads the page again.
func (hd *helpdeskScreen) revoke(u api.User, k api.Key, reason string) {
	switch {
	case reason == "":
		hd.setStatus("Nothing was revoked: say why the key is revoked (lost, stolen…).")
		return
	case len(reason) > 200:
		hd.setStatus("Nothing was revoked: keep the reason under 200 characters.")
		return
	}
	hd.run(nil, fmt.Sprintf("Revoking %q…", k.Nickname), func(ctx context.Context, c Helpdesk) (func(), error) {
		if _, err := c.RevokeUserKey(ctx, u.Name, k.ID, reason); err != nil {
			return nil, err
		}
		return func() {
			hd.load(u.Name, fmt.Sprintf("Revoked %s's key %q (%s).", u.Name, k.Nickname, reason))
		}, nil
	}, nil)
}

// approve approves a colleague's recovery code by its request ID.
func (hd *helpdeskScreen) approve() {
	id := strings.TrimSpace(hd.approveID.Text)
	report := func(msg string) {
		hd.approveResult.SetText(msg)
		hd.approveResult.Show()
		hd.approveBox.Refresh()
		hd.searchPage.Refresh()
	}
	if id == "" {
		report("Type the request ID your colleague reads from their screen.")
		return
	}
	hd.run(report, "Approving the recovery code…", func(ctx context.Context, c Helpdesk) (func(), error) {
		g, err := c.ApproveRecoveryGrant(ctx, id)
		if err != nil {
			return nil, err
		}
		return func() {
			hd.approveID.SetText("")
			msg := fmt.Sprintf("Approved: %s's recovery code, given by %s, now works until %s.", g.Username, g.IssuedBy, hd.until(g.ExpiresAt))
			if len(g.Verification) > 0 {
				var checked []string
				for _, it := range g.Verification {
					checked = append(checked, checklistLabel(it))
				}
				msg += " They checked: " + strings.Join(checked, "; ") + "."
			}
			if g.Note != "" {
				msg += " Their note: " + g.Note
			}
			report(msg)
		}, nil
	}, nil)
}

// helpdeskErrorText is an error from a helpdesk call as the member reads
// it, with what to do next.
func helpdeskErrorText(err error, svc Service) string {
	code := ""
	var re *rpclient.Error
	if errors.As(err, &re) {
		code = re.Code
	}
	switch {
	case errors.Is(err, rpclient.ErrSelfApproval):
		return "You gave this recovery code, so you cannot approve it too: another helpdesk member must. Ask a colleague to approve it."
	case errors.Is(err, rpclient.ErrAlreadyApproved):
		return "This recovery code was approved already (or withdrawn): there is nothing more to do."
	case errors.Is(err, rpclient.ErrVerificationIncomplete):
		msg := "No code was given: the service wants every item of its checklist checked, and its list may have changed since it was shown."
		if re != nil && re.Message != "" {
			msg += " The service says: " + re.Message
		}
		return msg + " Cancel, open “Recovery code…” again and check every item."
	case code == "not_pending":
		return "This recovery code needs no approval: it works already."
	case code == "grant_not_found":
		return "No recovery code has this request ID. Check it with your colleague: it is on their screen."
	case code == "grant_expired":
		return "This recovery code has expired: ask your colleague to give a new one."
	case code == "admin_only":
		return "Only an admin may give codes to, or revoke keys of, a helpdesk member or an admin: ask an admin."
	case code == "user_disabled" && errors.Is(err, rpclient.ErrConflict):
		return "This account is disabled: an admin must enable it before it can be given a code."
	case code == "user_disabled":
		return "Your own account is disabled: ask an admin."
	case code == "user_not_found":
		return "There is no such user (any more): search again."
	case code == "key_not_found":
		return "That key is gone: refresh the page."
	case errors.Is(err, rpclient.ErrBadArgument):
		return "That is not a request ID: it is the letters, digits, - and _ your colleague reads from their screen."
	case errors.Is(err, rpclient.ErrForbidden):
		return "The service refused: your account may not use the helpdesk tools. They need the helpdesk or admin role " +
			"and a sign-in with your security key. If an admin just changed your roles, sign out and in again."
	case errors.Is(err, rpclient.ErrUnauthorized):
		return "Your session has ended: sign in again in the Account tab."
	case errors.Is(err, rpclient.ErrRateLimited):
		if re != nil && re.RetryAfter > 0 {
			return fmt.Sprintf("The service is busy with too many requests: try again in %s.", re.RetryAfter.Round(time.Second))
		}
		return "The service is busy with too many requests: wait a minute and try again."
	}
	return serviceErrorText(err, svc)
}
