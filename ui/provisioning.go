package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/enroll/provision"
	"github.com/keydesk/keydesk/enroll/provision/journal"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/api"
)

// The Provisioning tab is "keydesk provision" in the window: an admin
// loads a CSV of users, and Keydesk sets up one key after another as they
// are plugged in (provision.RunBatch), with the operator told what to do
// at each turn, a line per user, and the batch's questions (reset a used
// key? start a user over on another key?) as dialogs.

// The choices of the set-up page, and their defaults (those of keydesk
// provision).
var (
	provPINLengths    = lengthChoices(6, 12)
	provMinPINLengths = lengthChoices(4, 12)
)

const (
	provDefaultPINLength    = "8 characters"
	provDefaultMinPINLength = "6 characters"
	provDigits              = "Digits"
	provAlphanumeric        = "Letters and digits"
)

// lengthChoices are "n characters" for n from lo to hi.
func lengthChoices(lo, hi int) []string {
	var out []string
	for n := lo; n <= hi; n++ {
		out = append(out, fmt.Sprintf("%d characters", n))
	}
	return out
}

// choiceLength reads a lengthChoices choice back.
func choiceLength(s string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(s, " characters"))
	return n
}

// provRowState is where a user of the batch is.
type provRowState int

const (
	provWaiting  provRowState = iota // not reached yet, or waiting for a key
	provWorking                      // their key is being set up
	provEnrolled                     // done: the key enrolled, the PIN page written
	provFailed                       // given up for this run (see text)
)

// provRow is one user of the batch as the table shows them.
type provRow struct {
	user  string
	state provRowState
	// text is the step under way (working), or the error (failed).
	text string
	// model is the key's model, once known.
	model string
	// note is what happened on the way (an interrupted attempt's key
	// revoked), shown when the row is selected.
	note string
}

// status is the row's status column.
func (r provRow) status() string {
	switch r.state {
	case provWorking:
		return r.text
	case provEnrolled:
		return "enrolled"
	case provFailed:
		return "failed: " + r.text
	}
	return "waiting"
}

// provRun is what a run works with, fixed when Start is pressed on the
// set-up page; Start (after a stop) and "Retry failed users" run it again.
type provRun struct {
	users          []provision.User
	batch, dir     string
	nickname       string
	pinLength      int
	minPINLength   int
	alphabet       provision.Alphabet
	enterpriseAttn bool
}

// provisioningModel is what the Provisioning tab knows. Only the UI
// goroutine touches it.
type provisioningModel struct {
	// admin is the signed-in admin, "" while the tab is hidden; gen
	// counts the admins, so that a run's news for the last one is
	// dropped.
	admin string
	gen   int

	// The set-up page: the users read from the CSV, the batch name
	// taken from its file name (batchDefault), and the results folder
	// chosen ("" follows the batch name under Deps.ProvisioningDir).
	users        []provision.User
	batchDefault string
	dir          string

	// onRunPage says the run page is on show (set-up otherwise).
	onRunPage bool
	run       provRun
	// active is set while RunBatch runs; cancel stops it; stopping is
	// set once Stop was pressed.
	active   bool
	stopping bool
	cancel   context.CancelFunc
	rows     []provRow
	index    map[string]int
	// said is what the operator must do now, before the sentence said
	// before it.
	said, before string
	// step is the step under way, nil between keys.
	step *provision.Progress
	// outcome says how the last run ended; revoked counts its
	// interrupted keys revoked.
	outcome string
	revoked int
	// selected is the table's row selected, -1 for none; exporting is
	// set while the results are copied; asking while a question of the
	// run is on show.
	selected  int
	exporting bool
	asking    bool
}

// provisioningScreen is the Provisioning tab, shown only to an admin
// signed in with a key: a set-up page (the users' CSV, the batch, the
// results folder, the PIN rules), then the run page.
type provisioningScreen struct {
	s     *Shell
	model provisioningModel
	tab   *container.TabItem

	// home is shown as ~ in paths; openURL opens the results folder
	// (the app's). The tests set both.
	home    string
	openURL func(*url.URL) error

	stack *fyne.Container

	// The set-up page.
	setupPage *fyne.Container
	loadBtn   *widget.Button
	usersNote *widget.Label
	batch     *widget.Entry
	dirLabel  *widget.Label
	chooseBtn *widget.Button
	nickname  *widget.Entry
	pinLength *widget.Select
	alphabet  *widget.Select
	minPIN    *widget.Select
	attest    *widget.Check
	setupNote *widget.Label
	startBtn  *widget.Button

	// The run page.
	runPage   *fyne.Container
	said      *widget.Label
	before    *widget.Label
	stepBox   *fyne.Container
	bar       *widget.ProgressBar
	touch     *widget.Label
	table     *widget.Table
	detail    *widget.Label
	summary   *widget.Label
	where     *widget.Label
	outcome   *widget.Label
	stopBtn   *widget.Button
	resumeBtn *widget.Button
	retryBtn  *widget.Button
	openBtn   *widget.Button
	exportBtn *widget.Button
	setupBtn  *widget.Button

	// The batch's questions last asked, for the tests.
	resetDlg *dialog.ConfirmDialog
	resetMsg string
	wrongDlg *dialog.ConfirmDialog
	wrongMsg string
}

// newProvisioningScreen makes the tab, on its set-up page; follow shows
// it to an admin.
func newProvisioningScreen(s *Shell) *provisioningScreen {
	p := &provisioningScreen{s: s, openURL: s.app.OpenURL}
	p.model.selected = -1
	if h, err := os.UserHomeDir(); err == nil {
		p.home = h
	}
	p.newSetupPage()
	p.newRunPage()
	p.stack = container.NewStack(p.setupPage)
	p.tab = container.NewTabItem("Provisioning", p.stack)
	p.show()
	return p
}

// newSetupPage makes the set-up page's widgets.
func (p *provisioningScreen) newSetupPage() {
	p.loadBtn = widget.NewButtonWithIcon("Load users…", theme.FolderOpenIcon(), p.openCSV)
	p.usersNote = wrapped("A CSV file: one user name a line, optionally followed by the key's name.")
	p.batch = widget.NewEntry()
	p.batch.SetPlaceHolder("The batch's name: the service keeps it with each key")
	p.batch.OnChanged = func(string) { p.showSetup() }
	p.batch.OnSubmitted = func(string) { p.start() }
	p.dirLabel = wrapped("")
	p.chooseBtn = widget.NewButtonWithIcon("Choose…", theme.FolderIcon(), p.openDirDialog)
	p.nickname = widget.NewEntry()
	p.nickname.SetPlaceHolder("Key name where the CSV gives none (empty: the service names it)")
	p.nickname.OnSubmitted = func(string) { p.start() }
	p.pinLength = widget.NewSelect(provPINLengths, nil)
	p.pinLength.SetSelected(provDefaultPINLength)
	p.alphabet = widget.NewSelect([]string{provDigits, provAlphanumeric}, nil)
	p.alphabet.SetSelected(provDigits)
	p.minPIN = widget.NewSelect(provMinPINLengths, nil)
	p.minPIN.SetSelected(provDefaultMinPINLength)
	p.attest = widget.NewCheck("Enable enterprise attestation on each key", nil)
	p.setupNote = wrapped("")
	p.startBtn = widget.NewButtonWithIcon("Start", theme.MediaPlayIcon(), p.start)
	p.startBtn.Importance = widget.HighImportance

	intro := wrapped("Each key plugged in gets a random PIN, is enrolled for the next user of the list and tested " +
		"with a sign-in; its user must choose their own PIN on first use. Keydesk writes a PIN page per user, to print. " +
		"Keys plugged in before you start are left alone.")
	form := widget.NewForm(
		widget.NewFormItem("Users", container.NewBorder(nil, nil, container.NewVBox(p.loadBtn), nil, p.usersNote)),
		widget.NewFormItem("Batch name", p.batch),
		widget.NewFormItem("Results folder", container.NewBorder(nil, nil, nil, container.NewVBox(p.chooseBtn), p.dirLabel)),
		widget.NewFormItem("Key name", p.nickname),
		widget.NewFormItem("Random PIN", container.NewGridWithColumns(2, p.pinLength, p.alphabet)),
		widget.NewFormItem("User's own PIN", container.NewHBox(widget.NewLabel("at least"), p.minPIN)),
		widget.NewFormItem("", p.attest),
	)
	p.setupPage = container.NewBorder(nil, container.NewVBox(p.setupNote, container.NewHBox(p.startBtn)), nil, nil,
		container.NewVScroll(container.NewVBox(intro, form)))
}

// newRunPage makes the run page's widgets: the table's rows are made by
// the table as it needs them, and reused.
func (p *provisioningScreen) newRunPage() {
	p.said = wrapped("")
	p.said.SizeName = theme.SizeNameSubHeadingText
	p.said.TextStyle = fyne.TextStyle{Bold: true}
	p.before = wrapped("")
	p.before.SizeName = theme.SizeNameCaptionText
	p.bar = widget.NewProgressBar()
	p.bar.TextFormatter = func() string {
		if p.bar.Max <= 0 || p.bar.Value <= 0 {
			return ""
		}
		return fmt.Sprintf("step %d of %d", int(p.bar.Value), int(p.bar.Max))
	}
	// The current user's progress, and the touch beside it; the step
	// itself is in the user's row.
	p.touch = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	p.touch.Importance = widget.WarningImportance
	p.stepBox = container.NewBorder(nil, nil, nil, p.touch, p.bar)

	p.table = widget.NewTable(
		func() (int, int) { return len(p.model.rows), 3 },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		p.updateCell)
	p.table.ShowHeaderRow = true
	p.table.ShowHeaderColumn = true
	p.table.CreateHeader = func() fyne.CanvasObject {
		return widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	p.table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		l := o.(*widget.Label)
		switch {
		case id.Row < 0:
			l.SetText([]string{"User", "Status", "Key model"}[id.Col])
		default:
			l.SetText(strconv.Itoa(id.Row + 1))
		}
	}
	for col, w := range []float32{110, 350, 212} {
		p.table.SetColumnWidth(col, w)
	}
	p.table.OnSelected = func(id widget.TableCellID) {
		p.model.selected = id.Row
		p.showRun()
	}
	p.detail = wrapped("")
	p.detail.Hide()

	p.summary = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	p.where = wrapped("")
	p.where.SizeName = theme.SizeNameCaptionText
	p.outcome = wrapped("")
	p.outcome.Hide()
	p.stopBtn = widget.NewButtonWithIcon("Stop", theme.MediaStopIcon(), p.stop)
	p.resumeBtn = widget.NewButtonWithIcon("Start", theme.MediaPlayIcon(), p.launch)
	p.resumeBtn.Importance = widget.HighImportance
	p.retryBtn = widget.NewButtonWithIcon("Retry failed users", theme.ViewRefreshIcon(), p.launch)
	p.retryBtn.Importance = widget.HighImportance
	p.openBtn = widget.NewButtonWithIcon("Open results folder", theme.FolderOpenIcon(), p.openFolder)
	p.exportBtn = widget.NewButtonWithIcon("Export results…", theme.DocumentSaveIcon(), p.openExportDialog)
	p.setupBtn = widget.NewButtonWithIcon("Set-up", theme.NavigateBackIcon(), p.backToSetup)

	// The outcome takes the progress bar's place once the run ended.
	top := container.NewVBox(p.said, p.before, p.stepBox, p.outcome)
	bottom := container.NewVBox(p.detail, p.summary, p.where,
		container.NewHBox(p.stopBtn, p.resumeBtn, p.retryBtn, p.openBtn, p.exportBtn, p.setupBtn))
	p.runPage = container.NewBorder(top, bottom, nil, nil, p.table)
}

// updateCell draws one cell of the users' table.
func (p *provisioningScreen) updateCell(id widget.TableCellID, o fyne.CanvasObject) {
	l := o.(*widget.Label)
	if id.Row >= len(p.model.rows) {
		l.SetText("")
		return
	}
	r := p.model.rows[id.Row]
	switch id.Col {
	case 0:
		l.SetText(r.user)
	case 1:
		l.SetText(r.status())
	default:
		l.SetText(r.model)
	}
}

// follow shows the tab for an admin's full session and hides it
// otherwise; another admin signing in, or the admin signing out, stops
// the run (its calls go with the session) and starts afresh.
func (p *provisioningScreen) follow(me *api.Me) {
	admin := ""
	if me != nil && me.Scope == "full" && slices.Contains(me.User.Roles, "admin") {
		admin = me.User.Name
	}
	if admin == p.model.admin {
		return
	}
	if p.model.cancel != nil {
		// Its questions go down with its context (ask).
		p.model.cancel()
	}
	p.model = provisioningModel{admin: admin, gen: p.model.gen + 1, selected: -1}
	p.table.UnselectAll()
	p.batch.SetText("")
	p.nickname.SetText("")
	p.pinLength.SetSelected(provDefaultPINLength)
	p.alphabet.SetSelected(provDigits)
	p.minPIN.SetSelected(provDefaultMinPINLength)
	p.attest.SetChecked(false)
	p.usersNote.SetText("A CSV file: one user name a line, optionally followed by the key's name.")
	p.show()
	p.s.showTab(p.tab, admin != "")
}

// show shows the page of the model (UI goroutine).
func (p *provisioningScreen) show() {
	page := p.setupPage
	if p.model.onRunPage {
		page = p.runPage
	}
	if len(p.stack.Objects) != 1 || p.stack.Objects[0] != fyne.CanvasObject(page) {
		p.stack.Objects = []fyne.CanvasObject{page}
		p.stack.Refresh()
	}
	p.showSetup()
	p.showRun()
}

// resultsDir is the results folder the set-up page would use: the one
// chosen, or the batch's under Deps.ProvisioningDir.
func (p *provisioningScreen) resultsDir() string {
	if p.model.dir != "" {
		return p.model.dir
	}
	name := folderName(p.batch.Text)
	if name == "" || p.s.deps.ProvisioningDir == "" {
		return ""
	}
	return filepath.Join(p.s.deps.ProvisioningDir, name)
}

// showSetup fills the set-up page from the model (UI goroutine).
func (p *provisioningScreen) showSetup() {
	dir := p.resultsDir()
	switch {
	case dir != "":
		p.dirLabel.SetText(p.displayPath(dir))
	case p.s.deps.ProvisioningDir == "":
		p.dirLabel.SetText("Choose the folder for the results and the PIN pages.")
	default:
		p.dirLabel.SetText("A folder named after the batch, in " + p.displayPath(p.s.deps.ProvisioningDir))
	}
	note := ""
	switch {
	case len(p.model.users) == 0:
		note = "Load the users to start."
	case strings.TrimSpace(p.batch.Text) == "":
		note = "Give the batch a name to start."
	case dir == "":
		note = "Choose the results folder to start."
	}
	p.setupNote.SetText(note)
	if note == "" {
		p.setupNote.Hide()
	} else {
		p.setupNote.Show()
	}
	enable(p.startBtn, note == "")
	// The notes may take more lines or fewer: lay the page out again.
	relayout(p.setupPage)
}

// openCSV asks for the users' CSV file.
func (p *provisioningScreen) openCSV() {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		switch {
		case err != nil:
			p.usersNote.SetText("The file cannot be opened: " + err.Error())
			p.showSetup()
		case r != nil:
			defer r.Close()
			p.load(r.URI().Name(), r)
		}
	}, p.s.win)
	d.SetFilter(storage.NewExtensionFileFilter([]string{".csv", ".txt"}))
	d.Show()
}

// load reads the users from r, the CSV file name (UI goroutine). The
// batch takes the file's name, unless one was typed.
func (p *provisioningScreen) load(name string, r io.Reader) {
	users, err := provision.ReadUsers(r)
	if err != nil {
		p.model.users = nil
		p.usersNote.SetText(fmt.Sprintf("%s cannot be used: %v. Correct the file and load it again.", name, err))
		p.showSetup()
		return
	}
	p.model.users = users
	def := strings.TrimSuffix(name, filepath.Ext(name))
	if t := strings.TrimSpace(p.batch.Text); t == "" || t == p.model.batchDefault {
		p.batch.SetText(def)
	}
	p.model.batchDefault = def
	p.usersNote.SetText(fmt.Sprintf("%s read from %s: %s.", plural(len(users), "user"), name, firstNames(users, 3)))
	p.showSetup()
}

// firstNames lists the first n users' names, and how many more.
func firstNames(users []provision.User, n int) string {
	var names []string
	for i, u := range users {
		if i == n {
			names = append(names, fmt.Sprintf("and %d more", len(users)-n))
			break
		}
		names = append(names, u.Name)
	}
	return strings.Join(names, ", ")
}

// plural is "1 user", "2 users".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// openDirDialog asks for the results folder.
func (p *provisioningScreen) openDirDialog() {
	d := dialog.NewFolderOpen(func(l fyne.ListableURI, err error) {
		if err == nil && l != nil {
			p.chooseDir(l.Path())
		}
	}, p.s.win)
	if base := p.s.deps.ProvisioningDir; base != "" {
		if l, err := storage.ListerForURI(storage.NewFileURI(base)); err == nil {
			d.SetLocation(l)
		}
	}
	d.Show()
}

// chooseDir makes dir the results folder: a new batch's, or an earlier
// one's to resume it (UI goroutine).
func (p *provisioningScreen) chooseDir(dir string) {
	p.model.dir = dir
	p.showSetup()
}

// displayPath is path as shown: under the home folder, with ~.
func (p *provisioningScreen) displayPath(path string) string {
	if p.home != "" {
		if rel, err := filepath.Rel(p.home, path); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return filepath.Join("~", rel)
		}
	}
	return path
}

// folderName is a batch name made a folder's name on every system.
func folderName(batch string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(batch) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(" ._-", r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return strings.Trim(b.String(), ". ")
}

// start runs the batch set up on the set-up page.
func (p *provisioningScreen) start() {
	if p.startBtn.Disabled() || p.model.active {
		return
	}
	abc := provision.Digits
	if p.alphabet.Selected == provAlphanumeric {
		abc = provision.Alphanumeric
	}
	m := &p.model
	m.run = provRun{
		users: m.users, batch: strings.TrimSpace(p.batch.Text), dir: p.resultsDir(),
		nickname:  strings.TrimSpace(p.nickname.Text),
		pinLength: choiceLength(p.pinLength.Selected), minPINLength: choiceLength(p.minPIN.Selected),
		alphabet: abc, enterpriseAttn: p.attest.Checked,
	}
	m.rows, m.index = nil, map[string]int{}
	for i, u := range m.users {
		m.rows = append(m.rows, provRow{user: u.Name})
		m.index[u.Name] = i
	}
	m.revoked = 0
	m.selected = -1
	p.table.UnselectAll()
	p.table.ScrollToTop()
	p.launch()
}

// launch runs the batch of the run page (again: it resumes) off the UI
// goroutine; the batch's news come back through s.do.
func (p *provisioningScreen) launch() {
	m := &p.model
	if m.active || len(m.run.users) == 0 || p.s.deps.Provisioning == nil {
		return
	}
	ctx, cancel := context.WithCancel(p.s.ctx)
	m.onRunPage, m.active, m.stopping, m.cancel = true, true, false, cancel
	m.said, m.before, m.step, m.outcome = "Reading the service's rules for keys…", "", nil, ""
	for i := range m.rows {
		if r := &m.rows[i]; r.state != provEnrolled {
			r.state, r.text = provWaiting, ""
		}
	}
	run, gen := m.run, m.gen
	base := p.s.deps.Provisioning()
	// update runs f on the UI goroutine while the run's admin is the
	// one signed in.
	update := func(f func()) {
		p.s.do(func() {
			if gen == p.model.gen {
				f()
			}
		})
	}
	p.show()
	p.s.goBackground(func(context.Context) {
		defer cancel()
		if earlier := readEarlierResults(run.dir); len(earlier) > 0 {
			update(func() { p.applyEarlier(earlier) })
		}
		keys, present := provision.WatchKeys(ctx, hardwareKeys{p.s.deps.Keys}, p.s.deps.WatchInterval)
		if present > 0 {
			msg := "1 key is plugged in already: it is left alone. To provision it, unplug it and plug it back in."
			if present > 1 {
				msg = fmt.Sprintf("%d keys are plugged in already: they are left alone. To provision one, unplug it and plug it back in.", present)
			}
			update(func() { p.say(msg) })
		}
		cfg := base
		cfg.Batch, cfg.Nickname = run.batch, run.nickname
		cfg.PINLength, cfg.PINAlphabet, cfg.MinPINLength = run.pinLength, run.alphabet, run.minPINLength
		cfg.EnterpriseAttestation = run.enterpriseAttn
		cfg.ConfirmReset = p.askReset
		cfg.Progress = func(pr provision.Progress) { update(func() { p.progress(pr) }) }
		sum, err := provision.RunBatch(ctx, provision.BatchConfig{
			Provision: cfg, Users: run.users, Dir: run.dir, Keys: keys,
			Operator: provision.Operator{
				Say:      func(line string) { update(func() { p.say(line) }) },
				WrongKey: p.askWrongKey,
				UserDone: func(r provision.Result) { update(func() { p.userDone(r) }) },
			},
		})
		update(func() { p.ended(sum, err) })
	})
}

// say shows the batch's sentence to the operator (UI goroutine): the key
// worked on is done with, for now.
func (p *provisioningScreen) say(line string) {
	m := &p.model
	m.before, m.said, m.step = m.said, line, nil
	for i := range m.rows {
		if r := &m.rows[i]; r.state == provWorking {
			r.state, r.text = provWaiting, ""
		}
	}
	p.showRun()
}

// progress shows a step of a key's set-up (UI goroutine). The first step
// of a key replaces the sentence that asked for it.
func (p *provisioningScreen) progress(pr provision.Progress) {
	m := &p.model
	if m.step == nil {
		m.said = fmt.Sprintf("Setting up %s's key: leave it plugged in.", pr.User)
	}
	m.step = &pr
	if i, ok := m.index[pr.User]; ok {
		m.rows[i].state, m.rows[i].text = provWorking, pr.Message
		p.showRun()
		// The user worked on is in sight, however long the list.
		p.table.ScrollTo(widget.TableCellID{Row: i, Col: 0})
		return
	}
	p.showRun()
}

// userDone shows a user's result (UI goroutine).
func (p *provisioningScreen) userDone(r provision.Result) {
	p.model.step = nil
	p.setResult(r)
	p.showRun()
}

// setResult puts r in its user's row.
func (p *provisioningScreen) setResult(r provision.Result) {
	i, ok := p.model.index[r.User]
	if !ok {
		return
	}
	row := &p.model.rows[i]
	row.model, row.note, row.text = r.Model, "", ""
	switch r.Status {
	case provision.StatusEnrolled:
		row.state, row.note = provEnrolled, r.Error
	case provision.StatusFailed:
		row.state, row.text = provFailed, r.Error
	default:
		row.state = provWaiting
	}
}

// applyEarlier marks the users an earlier run enrolled, which this run
// skips without a word (UI goroutine).
func (p *provisioningScreen) applyEarlier(earlier map[string]provision.Result) {
	for _, r := range earlier {
		if i, ok := p.model.index[r.User]; ok && r.Status == provision.StatusEnrolled && p.model.rows[i].state == provWaiting {
			p.setResult(r)
		}
	}
	p.showRun()
}

// ended shows how the run ended (UI goroutine).
func (p *provisioningScreen) ended(sum *provision.Summary, err error) {
	m := &p.model
	m.active, m.stopping, m.cancel, m.step = false, false, nil, nil
	if sum != nil {
		for _, r := range sum.Results {
			p.setResult(r)
		}
		m.revoked = sum.Revoked
	}
	dir := p.displayPath(m.run.dir)
	switch {
	case err == nil && sum != nil && sum.Failed > 0:
		m.outcome = "Finished, but not everyone is enrolled: select a user to see why. Retry failed users tries them again."
	case err == nil:
		m.outcome = "Finished."
	case errors.Is(err, context.Canceled):
		m.outcome = "Stopped — Start resumes where it stopped."
	case errors.Is(err, provision.ErrBatchRunning):
		m.outcome = fmt.Sprintf("Another provisioning run is working in %s (in another Keydesk window, or keydesk provision). "+
			"Wait for it to end, or go back to the set-up and choose another results folder.", dir)
	case errors.Is(err, journal.ErrOtherBatch):
		m.outcome = fmt.Sprintf("%s holds another batch's results. Go back to the set-up and choose another results folder, "+
			"or that batch's name to resume it.", dir)
	case errors.Is(err, rpclient.ErrForbidden):
		m.outcome = "The service refused: provisioning keys for others needs an admin's session. Sign out and in again as an admin in the Account tab."
	case errors.Is(err, rpclient.ErrUnauthorized) && p.s.account != nil:
		// The session ended: the Account tab finds out and says so,
		// which hides this tab. The results so far are in the folder,
		// and the same batch resumes once signed in again.
		p.s.account.reload()
	default:
		text := serviceErrorText(err, p.s.deps.Service)
		if !strings.HasSuffix(text, ".") {
			text += "."
		}
		m.outcome = "The batch stopped: " + text + " Start resumes where it stopped."
	}
	if err == nil {
		m.said, m.before = "The batch is finished: remove the last key, if one is plugged in.", m.said
	}
	p.showRun()
}

// counts are the users enrolled, failed and not done.
func (m *provisioningModel) counts() (enrolled, failed, pending int) {
	for _, r := range m.rows {
		switch r.state {
		case provEnrolled:
			enrolled++
		case provFailed:
			failed++
		default:
			pending++
		}
	}
	return
}

// showRun fills the run page from the model (UI goroutine).
func (p *provisioningScreen) showRun() {
	m := &p.model
	p.said.SetText(m.said)
	p.before.SetText(m.before)
	if m.before == "" {
		p.before.Hide()
	} else {
		p.before.Show()
	}
	if m.active {
		p.stepBox.Show()
	} else {
		p.stepBox.Hide()
	}
	if st := m.step; st != nil {
		p.bar.Max, p.bar.Value = float64(st.Total), float64(st.Index)
		if st.Touch && !m.asking {
			p.touch.SetText("Touch the key when it blinks")
		} else {
			p.touch.SetText("")
		}
	} else {
		p.bar.Max, p.bar.Value = 1, 0
		p.touch.SetText("")
	}
	p.bar.Refresh()

	enrolled, failed, pending := m.counts()
	sum := fmt.Sprintf("%d enrolled, %d failed, %d pending", enrolled, failed, pending)
	if m.revoked > 0 {
		sum += fmt.Sprintf("; %s of interrupted attempts revoked", plural(m.revoked, "key"))
	}
	p.summary.SetText(sum)
	p.outcome.SetText(m.outcome)
	if m.outcome == "" {
		p.outcome.Hide()
	} else {
		p.outcome.Show()
	}
	if m.run.dir != "" {
		dir := p.displayPath(m.run.dir)
		p.where.SetText(fmt.Sprintf("Results: %s. PIN pages: %s — print them, hand them over, then delete the files.",
			filepath.Join(dir, provision.ResultsFile), filepath.Join(dir, provision.HandoverDir)))
	}

	ended := !m.active
	show := func(b *widget.Button, on bool) {
		if on {
			b.Show()
		} else {
			b.Hide()
		}
	}
	show(p.stopBtn, m.active)
	enable(p.stopBtn, !m.stopping)
	show(p.resumeBtn, ended && pending > 0)
	show(p.retryBtn, ended && pending == 0 && failed > 0)
	show(p.openBtn, ended)
	show(p.exportBtn, ended)
	enable(p.exportBtn, !m.exporting)
	show(p.setupBtn, ended)
	p.showDetail()
	// What the page says changed size: lay it out again (which redraws
	// the table's visible cells too).
	relayout(p.runPage)
}

// relayout lays page out again after what it shows changed. A wrapped
// label knows how many lines it takes only once it has its width, so the
// first pass can leave too little room for it: the second uses what the
// first learnt.
func relayout(page *fyne.Container) {
	page.Refresh()
	page.Layout.Layout(page.Objects, page.Size())
}

// showDetail says all of the selected user's status, which the table
// cuts short.
func (p *provisioningScreen) showDetail() {
	i := p.model.selected
	if i < 0 || i >= len(p.model.rows) {
		p.detail.Hide()
		return
	}
	r := p.model.rows[i]
	text := r.user + ": " + r.status()
	if r.model != "" {
		text += " (" + r.model + ")"
	}
	if r.note != "" {
		text += "; " + r.note
	}
	p.detail.SetText(text)
	p.detail.Show()
}

// stop cancels the run: RunBatch writes the results so far and ends with
// context.Canceled.
func (p *provisioningScreen) stop() {
	if !p.model.active || p.model.stopping {
		return
	}
	p.model.stopping = true
	p.model.outcome = "Stopping…"
	p.model.cancel()
	p.showRun()
}

// backToSetup shows the set-up page again, once the run ended.
func (p *provisioningScreen) backToSetup() {
	if p.model.active {
		return
	}
	p.model.onRunPage = false
	p.show()
}

// openFolder shows the results folder in the system's file manager.
func (p *provisioningScreen) openFolder() {
	u, err := url.Parse(storage.NewFileURI(p.model.run.dir).String())
	if err == nil {
		err = p.openURL(u)
	}
	if err != nil {
		p.model.outcome = "The folder cannot be opened here: it is " + p.model.run.dir + "."
		p.showRun()
	}
}

// openExportDialog asks where to save a copy of the results.
func (p *provisioningScreen) openExportDialog() {
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		switch {
		case err != nil:
			p.model.outcome = "The results were not exported: " + err.Error()
			p.showRun()
		case w != nil:
			p.export(w, w.URI().Path())
		}
	}, p.s.win)
	d.SetFileName(folderName(p.model.run.batch) + "-" + provision.ResultsFile)
	d.Show()
}

// export copies results.csv to w (where names it), off the UI goroutine.
// The results hold no PIN.
func (p *provisioningScreen) export(w io.WriteCloser, where string) {
	p.model.exporting = true
	p.showRun()
	src, gen := filepath.Join(p.model.run.dir, provision.ResultsFile), p.model.gen
	p.s.goBackground(func(context.Context) {
		err := copyFile(w, src)
		p.s.do(func() {
			if gen != p.model.gen {
				return
			}
			p.model.exporting = false
			if err != nil {
				p.model.outcome = "The results were not exported: " + err.Error()
			} else {
				p.model.outcome = "The results are exported to " + p.displayPath(where) + "."
			}
			p.showRun()
		})
	})
}

// copyFile copies the file at src to w, and closes w.
func copyFile(w io.WriteCloser, src string) error {
	f, err := os.Open(src)
	if err != nil {
		w.Close()
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// askReset asks the operator, from the run's goroutine, whether to reset
// the keys of the batch that are in use; the dialog goes with ctx.
func (p *provisioningScreen) askReset(ctx context.Context, k provision.KeyFacts) (bool, error) {
	why := "has a PIN"
	if k.Credentials > 0 {
		why = "holds " + plural(k.Credentials, "credential")
	}
	key := "This key"
	if k.Model != "" {
		key = fmt.Sprintf("This key (%s)", k.Model)
	}
	msg := key + " is in use (" + why + "). Reset it and every later key of this batch that is in use? Everything on them is erased."
	return p.confirm(ctx, "Reset keys that are in use?", msg, "Reset", "Don't reset", func(d *dialog.ConfirmDialog) {
		d.SetConfirmImportance(widget.DangerImportance)
		p.resetDlg, p.resetMsg = d, msg
	})
}

// askWrongKey asks the operator, from the run's goroutine, whether to
// start user over on the key plugged in instead of theirs; the dialog
// goes with ctx.
func (p *provisioningScreen) askWrongKey(ctx context.Context, user string) (bool, error) {
	msg := fmt.Sprintf("This is not the key %s's provisioning started on. Start %s over on this key (the first key's enrollment is revoked)?", user, user)
	return p.confirm(ctx, "Another key", msg, "Start over", "Wait for the first key", func(d *dialog.ConfirmDialog) {
		p.wrongDlg, p.wrongMsg = d, msg
	})
}

// confirm asks msg in a dialog from the run's goroutine and waits for the
// answer or for ctx, which takes the dialog down; made sees the dialog
// before it shows. While it is up, the key waits for the answer, not for
// a touch: the page does not say to touch it.
func (p *provisioningScreen) confirm(ctx context.Context, title, msg, yes, no string, made func(*dialog.ConfirmDialog)) (bool, error) {
	return ask(ctx, p.s, func(reply func(bool, error)) func() {
		answered := false
		done := func() {
			answered = true
			p.model.asking = false
			p.showRun()
		}
		d := dialog.NewCustomConfirm(title, yes, no, wrapped(msg), func(ok bool) {
			if !answered {
				done()
				reply(ok, nil)
			}
		}, p.s.win)
		d.Resize(fyne.NewSize(440, 0))
		made(d)
		p.model.asking = true
		p.showRun()
		d.Show()
		return func() {
			if !answered {
				done()
				d.Hide()
			}
		}
	})
}

// hardwareKeys is an Enumerator without the virtual key: the app lists it
// whenever no hardware key is plugged in, and a batch must never set up
// (reset, give a PIN to) the person's own virtual key.
type hardwareKeys struct{ platform.Enumerator }

func (h hardwareKeys) Devices(ctx context.Context) ([]platform.Device, error) {
	devs, err := h.Enumerator.Devices(ctx)
	var out []platform.Device
	for _, d := range devs {
		if d.Transport != platform.TransportVirtual {
			out = append(out, d)
		}
	}
	return out, err
}

// readEarlierResults reads the results an earlier run wrote in dir, by
// user: nil when there are none. They only tell the table who is done
// already; the journal, which RunBatch reads, is what counts.
func readEarlierResults(dir string) map[string]provision.Result {
	f, err := os.Open(filepath.Join(dir, provision.ResultsFile))
	if err != nil {
		return nil
	}
	defer f.Close()
	results, err := provision.ReadResults(f)
	if err != nil {
		return nil
	}
	out := map[string]provision.Result{}
	for _, r := range results {
		if r.User != "" {
			out[r.User] = r
		}
	}
	return out
}
