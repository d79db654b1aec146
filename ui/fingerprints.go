package ui

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/platform"
)

// fingerprintsCard is "Fingerprints", shown only for a key with a
// fingerprint sensor (the bioEnroll option present, whatever its value):
// the enrolled fingerprints, read with the PIN, and enrolling, renaming
// and deleting them. As with passkeys, the list shown is the key's own
// answer, read again after every change.
type fingerprintsCard struct {
	d    *keyDetail
	card *widget.Card

	intro  *widget.Label
	load   *widget.Button
	add    *widget.Button
	setPIN *widget.Button
	status *widget.Label
	list   *fyne.Container

	// fps is the key's answer; nil until read.
	fps []platform.Fingerprint
	// The rows' buttons, in list order, and the dialogs on show, for the
	// tests.
	renameBtns, deleteBtns []*widget.Button
	enroll                 *enrollFingerprint
	renameDlg              *dialog.FormDialog
	renameEntry            *widget.Entry
	confirm                *dialog.ConfirmDialog
}

func newFingerprintsCard(d *keyDetail) *fingerprintsCard {
	c := &fingerprintsCard{d: d}
	c.intro = wrapped("")
	c.load = widget.NewButtonWithIcon("Show the fingerprints", theme.VisibilityIcon(), c.read)
	c.add = widget.NewButtonWithIcon("Add a fingerprint", theme.ContentAddIcon(), c.openEnroll)
	c.setPIN = widget.NewButtonWithIcon("Set a PIN", theme.AccountIcon(), d.askPIN)
	c.status = wrapped("")
	c.status.Hide()
	c.list = container.NewVBox()
	c.card = widget.NewCard("Fingerprints", "", container.NewVBox(
		c.intro, container.NewHBox(c.load, c.add, c.setPIN), c.status, c.list))
	c.card.Hide()
	return c
}

// hasSensor reports whether a key has a fingerprint sensor: it lists the
// bioEnroll option, true once a fingerprint is enrolled.
func hasSensor(i *platform.Info) bool {
	_, ok := i.Options["bioEnroll"]
	return ok
}

// show fills the card from what the page knows (UI goroutine).
func (c *fingerprintsCard) show() {
	i := c.d.info
	if i == nil || !hasSensor(i) {
		c.card.Hide()
		return
	}
	c.card.Show()
	if !i.PINSet() {
		c.intro.SetText("This key has a fingerprint sensor. Adding fingerprints needs a PIN, and this key has none yet: set one first.")
		c.load.Hide()
		c.add.Hide()
		c.setPIN.Show()
		setEnabled(c.setPIN, c.d.usable())
		return
	}
	c.intro.SetText("A fingerprint unlocks the key instead of its PIN where a site asks for it. Managing fingerprints needs the PIN.")
	c.setPIN.Hide()
	c.load.Show()
	c.add.Show()
	if c.fps != nil {
		c.load.SetText("Read again")
	} else {
		c.load.SetText("Show the fingerprints")
	}
	ok := c.d.usable()
	setEnabled(c.load, ok)
	setEnabled(c.add, ok)
	for _, b := range slices.Concat(c.renameBtns, c.deleteBtns) {
		setEnabled(b, ok)
	}
	if c.enroll != nil {
		c.enroll.validate()
	}
}

// setEnabled enables or disables b.
func setEnabled(b *widget.Button, on bool) {
	if on {
		b.Enable()
	} else {
		b.Disable()
	}
}

// setStatus says what happened last; "" hides the line.
func (c *fingerprintsCard) setStatus(msg string) { showText(c.status, msg) }

// read lists the fingerprints, with the PIN.
func (c *fingerprintsCard) read() {
	c.change("see the fingerprints", "Reading the fingerprints…", nil, "", "The fingerprints could not be read: ")
}

// change runs op (nil for none) then lists the fingerprints again, in
// one operation; success says ok, a failure failed followed by why.
func (c *fingerprintsCard) change(what, doing string, op func(ctx context.Context, key platform.Authenticator, pin string) error, ok, failed string) {
	var fps []platform.Fingerprint
	done := false
	c.setStatus(doing)
	c.d.withPIN(what, func(ctx context.Context, key platform.Authenticator, pin string) error {
		if op != nil {
			if err := op(ctx, key, pin); err != nil {
				return err
			}
		}
		done = true
		var err error
		fps, err = key.Fingerprints(ctx, pin)
		return err
	}, func(err error) {
		switch {
		case err == nil:
			c.setStatus(ok)
			c.fill(fps)
			if op != nil {
				c.d.read()
			}
		case done && op != nil:
			c.setStatus(ok + " The list could not be read again: " + c.d.cardErrorText(err))
			c.clear()
		case cancelled(err):
			if op != nil {
				c.setStatus("Cancelled: nothing was changed.")
			} else {
				c.setStatus("")
			}
		default:
			c.setStatus(failed + c.d.cardErrorText(err))
		}
	})
}

// fill shows the key's answer (UI goroutine).
func (c *fingerprintsCard) fill(fps []platform.Fingerprint) {
	c.fps = fps
	c.renameBtns, c.deleteBtns = nil, nil
	c.list.Objects = nil
	if len(fps) == 0 {
		c.list.Add(widget.NewLabel("No fingerprint is enrolled on this key."))
	}
	for i, fp := range fps {
		name := fingerprintName(fp, i)
		rename := widget.NewButtonWithIcon("Rename", theme.DocumentCreateIcon(), func() { c.askRename(fp, name) })
		del := widget.NewButtonWithIcon("Delete…", theme.DeleteIcon(), func() { c.askDelete(fp, name) })
		c.renameBtns = append(c.renameBtns, rename)
		c.deleteBtns = append(c.deleteBtns, del)
		label := widget.NewLabel(name)
		label.Truncation = fyne.TextTruncateEllipsis
		c.list.Add(container.NewBorder(nil, nil, widget.NewIcon(theme.AccountIcon()), container.NewHBox(rename, del), label))
	}
	c.list.Refresh()
	c.show()
}

// clear forgets the list shown.
func (c *fingerprintsCard) clear() {
	c.fps = nil
	c.renameBtns, c.deleteBtns = nil, nil
	c.list.Objects = nil
	c.list.Refresh()
	c.show()
}

// fingerprintName is how a fingerprint is called: its name, or its place
// in the list.
func fingerprintName(fp platform.Fingerprint, i int) string {
	if fp.Name != "" {
		return fp.Name
	}
	return fmt.Sprintf("Fingerprint %d (no name)", i+1)
}

// askRename asks for a fingerprint's new name.
func (c *fingerprintsCard) askRename(fp platform.Fingerprint, name string) {
	if !c.d.usable() {
		return
	}
	c.renameDlg, c.renameEntry = nameForm("Rename "+name, fp.Name, "Such as \"right thumb\"", c.d.s.win, func(newName string, ok bool) {
		c.renameDlg = nil
		if !ok || newName == "" || newName == fp.Name {
			return
		}
		c.change("rename a fingerprint", "Renaming…", func(ctx context.Context, key platform.Authenticator, pin string) error {
			return key.RenameFingerprint(ctx, pin, fp.ID, newName)
		}, fmt.Sprintf("Renamed to %q.", newName), "The fingerprint was not renamed: ")
	})
}

// askDelete confirms a fingerprint's deletion.
func (c *fingerprintsCard) askDelete(fp platform.Fingerprint, name string) {
	if !c.d.usable() {
		return
	}
	msg := wrapped(fmt.Sprintf("%q will be deleted from the key: that finger will no longer unlock it. You can enroll it again later.", name))
	c.confirm = dialog.NewCustomConfirm("Delete this fingerprint?", "Delete", "Cancel", msg, func(ok bool) {
		c.confirm = nil
		if !ok {
			return
		}
		c.change("delete a fingerprint", "Deleting…", func(ctx context.Context, key platform.Authenticator, pin string) error {
			return key.DeleteFingerprint(ctx, pin, fp.ID)
		}, fmt.Sprintf("%q was deleted.", name), "The fingerprint was not deleted: ")
	}, c.d.s.win)
	c.confirm.SetConfirmImportance(widget.DangerImportance)
	c.confirm.Resize(fyne.NewSize(420, 0))
	c.confirm.Show()
}

// enrollFingerprint is the dialog that adds a fingerprint: its name, then
// the sensor's samples one touch at a time, with their progress. The
// dialog itself guides the touches (the touch sheet would hide the
// progress), and its Cancel stops the enrollment, which the key then
// abandons.
type enrollFingerprint struct {
	c   *fingerprintsCard
	dlg dialog.Dialog

	name     *widget.Entry
	help     *widget.Label
	sample   *widget.Label
	progress *widget.ProgressBar
	problem  *widget.Label
	start    *widget.Button
	close    *widget.Button

	// body is the dialog's content, laid out again as parts come and go.
	body *fyne.Container
	// stop ends the enrollment under way.
	stop    context.CancelFunc
	running bool
	// total is the number of samples, known from the first one; taken
	// counts those taken.
	total, taken int
	added        bool
}

// openEnroll shows the enrollment dialog.
func (c *fingerprintsCard) openEnroll() {
	if !c.d.usable() {
		return
	}
	e := &enrollFingerprint{c: c}
	e.name = widget.NewEntry()
	e.name.SetPlaceHolder("A name, such as \"right thumb\" (optional)")
	e.name.OnSubmitted = func(string) { e.begin() }
	e.help = wrapped("The key asks you to touch its sensor several times. Lift your finger between touches, and place it a little differently each time.")
	e.sample = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	e.sample.Hide()
	e.progress = widget.NewProgressBar()
	e.progress.TextFormatter = func() string {
		if e.total == 0 {
			return ""
		}
		return fmt.Sprintf("%d of %d samples", e.taken, e.total)
	}
	e.progress.Hide()
	e.problem = wrapped("")
	e.problem.Importance = widget.DangerImportance
	e.problem.Hide()
	e.start = widget.NewButton("Start", e.begin)
	e.start.Importance = widget.HighImportance
	e.close = widget.NewButton("Cancel", e.cancel)
	e.body = container.NewVBox(e.help, widget.NewForm(widget.NewFormItem("Name", e.name)), e.sample, e.progress, e.problem,
		container.NewHBox(e.close, e.start))
	e.dlg = dialog.NewCustomWithoutButtons("Add a fingerprint to "+deviceName(c.d.dev, c.d.info), e.body, c.d.s.win)
	e.dlg.Resize(enrollFingerprintSize)
	c.enroll = e
	e.dlg.Show()
	c.d.s.win.Canvas().Focus(e.name)
}

// enrollFingerprintSize is the dialog's width; its height follows what
// it shows.
var enrollFingerprintSize = fyne.NewSize(460, 0)

// relayout fits the dialog to what it shows now.
func (e *enrollFingerprint) relayout() {
	e.body.Refresh()
	e.dlg.Resize(enrollFingerprintSize)
}

// validate turns Start on only when an enrollment can begin; it is called
// after every change of the dialog, and lays it out again.
func (e *enrollFingerprint) validate() {
	defer e.relayout()
	setEnabled(e.start, !e.running && !e.added && e.c.d.usable())
	// A failure said already stays: it tells what was not done.
	if e.c.d.gone && !e.running && !e.problem.Visible() {
		e.showProblem("The key was unplugged: plug it back in and open its page again.")
	}
}

func (e *enrollFingerprint) showProblem(msg string) {
	e.problem.SetText(msg)
	e.problem.Show()
}

// begin enrolls, with the PIN.
func (e *enrollFingerprint) begin() {
	if e.running || e.added || !e.c.d.usable() {
		return
	}
	name := strings.TrimSpace(e.name.Text)
	stopCtx, stop := context.WithCancel(context.Background())
	e.stop = stop
	e.running = true
	e.total, e.taken = 0, 0
	e.problem.Hide()
	e.progress.SetValue(0)
	e.sample.SetText("Type the PIN when it is asked, then touch the sensor.")
	e.sample.Show()
	e.name.Disable()
	e.validate()
	s := e.c.d.s
	var fps []platform.Fingerprint
	added := false
	e.c.d.withPIN("add a fingerprint", func(ctx context.Context, key platform.Authenticator, pin string) error {
		ctx, cancel := linked(ctx, stopCtx)
		defer cancel()
		ctx = platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
			s.do(func() { e.report(ev) })
		})
		if _, err := key.EnrollFingerprint(ctx, pin, name); err != nil {
			return err
		}
		added = true
		var err error
		fps, err = key.Fingerprints(context.WithoutCancel(ctx), pin)
		return err
	}, func(err error) {
		e.running = false
		stop()
		e.name.Enable()
		switch {
		case added:
			e.done(name)
			if err == nil {
				e.c.setStatus("")
				e.c.fill(fps)
			} else {
				e.c.setStatus("The fingerprint was added, but the list could not be read again: " + e.c.d.cardErrorText(err))
				e.c.clear()
			}
			e.c.d.read()
		default:
			// Nothing half-done stays on show as done.
			e.progress.Hide()
			e.sample.Hide()
			if cancelled(err) {
				e.showProblem("Cancelled: no fingerprint was added.")
			} else {
				e.showProblem("No fingerprint was added: " + e.c.d.cardErrorText(err))
			}
		}
		e.validate()
	})
}

// report shows one step of the enrollment (UI goroutine).
func (e *enrollFingerprint) report(ev platform.ProgressEvent) {
	if !e.running {
		return
	}
	defer e.relayout()
	switch ev.Stage {
	case platform.StageTouch:
		if e.total == 0 {
			e.sample.SetText("Touch the sensor now.")
		}
	case platform.StageSample:
		if e.total == 0 {
			e.total = ev.Remaining + 1
		}
		e.taken = e.total - ev.Remaining
		e.progress.Show()
		e.progress.SetValue(float64(e.taken) / float64(e.total))
		if ev.Remaining > 0 {
			e.sample.SetText(fmt.Sprintf("Touch the sensor: %d more", ev.Remaining))
		} else {
			e.sample.SetText("All samples taken: saving the fingerprint…")
		}
	}
}

// done shows the fingerprint added.
func (e *enrollFingerprint) done(name string) {
	e.added = true
	if name == "" {
		name = "The fingerprint"
	} else {
		name = fmt.Sprintf("%q", name)
	}
	e.progress.SetValue(1)
	e.sample.SetText(name + " was added: that finger now unlocks the key.")
	e.close.SetText("Done")
	e.start.Hide()
	e.relayout()
}

// cancel stops an enrollment under way, or closes the dialog.
func (e *enrollFingerprint) cancel() {
	if e.running {
		e.stop()
		if a := e.c.d.cards.ask; a != nil {
			a.finish("", false)
		}
		return
	}
	e.name.SetText("")
	e.dlg.Hide()
	if e.c.enroll == e {
		e.c.enroll = nil
	}
}
