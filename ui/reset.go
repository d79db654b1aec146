package ui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/platform"
)

// resetWindow is how long after being plugged in a key accepts a reset
// (CTAP 2.1 §6.6: 10 seconds).
const resetWindow = 10 * time.Second

// resetTick is how often the reset wizard's countdown is redrawn.
const resetTick = 200 * time.Millisecond

// resetCard is "Reset this key": erasing everything on the key, through
// the reset wizard.
type resetCard struct {
	d    *keyDetail
	card *widget.Card
	btn  *widget.Button
	// wizard is the wizard on show, nil when none.
	wizard *resetWizard
	// replugWait is how long the wizard waits for the key to be plugged
	// back in before giving up; the tests shorten it.
	replugWait time.Duration
}

func newResetCard(d *keyDetail) *resetCard {
	c := &resetCard{d: d, replugWait: 2 * time.Minute}
	c.btn = widget.NewButtonWithIcon("Reset this key…", theme.WarningIcon(), c.open)
	c.btn.Importance = widget.DangerImportance
	text := widget.NewLabel("A reset erases everything on the key: its passkeys, its PIN and its fingerprints. " +
		"It is for a key whose PIN is blocked, or one you pass on.")
	text.Wrapping = fyne.TextWrapWord
	c.card = widget.NewCard("Reset", "", container.NewVBox(text, container.NewHBox(c.btn)))
	return c
}

// show turns the button on when a reset can start (UI goroutine).
func (c *resetCard) show() {
	setEnabled(c.btn, c.d.usable() && c.wizard == nil)
}

// keyGone tells the wizard the key went: a step of the reset, or the end
// of it before it started.
func (c *resetCard) keyGone() {
	if c.wizard != nil {
		c.wizard.keyGone()
	}
}

// resetStage is where the wizard is.
type resetStage int

const (
	resetConfirming resetStage = iota // what will be lost; typing "erase"
	resetRunning                      // the key being reset: unplug, plug, touch
	resetEnded                        // done, or failed
)

// resetWizard resets the key: it first names what will be lost and wants
// the word "erase" typed, then guides the reset itself. A key accepts a
// reset only within 10 seconds of being plugged in, and only with a
// touch: when that time has passed the key is unplugged and plugged back
// in, and the wizard counts the 10 seconds down while it waits for the
// touch. The wizard shows these steps itself, with its own Cancel, instead
// of the touch sheet, which would hide them.
type resetWizard struct {
	c     *resetCard
	dlg   dialog.Dialog
	stage resetStage

	// Confirming.
	confirmPage *fyne.Container
	losses      *widget.Label
	word        *widget.Entry
	problem     *widget.Label
	erase       *widget.Button

	// Running.
	stepsPage *fyne.Container
	stepsBox  *fyne.Container
	steps     [3]*widget.Label
	now       *widget.Label
	countdown *widget.ProgressBar

	// Ended.
	endPage *fyne.Container
	endText *widget.Label
	again   *widget.Button

	close *widget.Button
	// body holds the pages, laid out again when one shows.
	body *fyne.Container

	// stop cancels the reset under way; ticking is closed when it ends,
	// which stops the countdown.
	stop    context.CancelFunc
	ticking chan struct{}
	// What the key said so far: it asked to be plugged back in (when),
	// it was seen unplugged since, and it waits for its touch (since
	// when; zero before the re-plug).
	replugAsked bool
	replugAt    time.Time
	unplugged   bool
	touchAt     time.Time
	timedOut    bool
	// succeeded is set once the key reported the reset done.
	succeeded bool
}

// open shows the wizard's first page.
func (c *resetCard) open() {
	if !c.d.usable() || c.wizard != nil {
		return
	}
	w := &resetWizard{c: c}
	c.wizard = w
	d := c.d

	w.losses = wrapped(resetLosses(d))
	w.word = widget.NewEntry()
	w.word.SetPlaceHolder("Type erase here")
	w.word.OnChanged = func(string) { w.validate() }
	w.word.OnSubmitted = func(string) {
		// Return confirms on the first page only: the field, hidden
		// after it, must not start another reset.
		if w.stage == resetConfirming {
			w.start()
		}
	}
	w.problem = wrapped("")
	w.problem.Importance = widget.DangerImportance
	w.problem.Hide()
	w.erase = widget.NewButtonWithIcon("Erase everything on the key", theme.DeleteIcon(), w.start)
	w.erase.Importance = widget.DangerImportance
	w.confirmPage = container.NewVBox(w.losses,
		widget.NewLabel(`To go on, type the word "erase":`), w.word, w.problem)

	intro := wrapped("A key accepts a reset only in the first 10 seconds after it is plugged in, and only with a touch.")
	for i, t := range []string{"1. Unplug the key.", "2. Plug it back in.", "3. Touch it within 10 seconds."} {
		w.steps[i] = widget.NewLabel(t)
	}
	w.stepsBox = container.NewVBox(w.steps[0], w.steps[1], w.steps[2])
	w.stepsBox.Hide()
	w.now = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	w.now.Wrapping = fyne.TextWrapWord
	w.countdown = widget.NewProgressBar()
	w.countdown.TextFormatter = func() string {
		return fmt.Sprintf("%d s left", int(math.Ceil(w.countdown.Value*resetWindow.Seconds())))
	}
	w.countdown.Hide()
	w.stepsPage = container.NewVBox(intro, w.stepsBox, w.now, w.countdown)
	w.stepsPage.Hide()

	w.endText = wrapped("")
	w.again = widget.NewButton("Try again", w.start)
	w.again.Importance = widget.DangerImportance
	w.endPage = container.NewVBox(w.endText)
	w.endPage.Hide()
	w.again.Hide()

	w.close = widget.NewButton("Cancel", w.cancel)
	w.body = container.NewVBox(w.confirmPage, w.stepsPage, w.endPage, container.NewHBox(w.close, w.erase, w.again))
	w.dlg = dialog.NewCustomWithoutButtons("Reset "+deviceName(d.dev, d.info)+"?", w.body, d.s.win)
	w.dlg.Resize(resetWizardSize)
	w.validate()
	w.dlg.Show()
	d.s.win.Canvas().Focus(w.word)
	c.show()
}

// resetWizardSize is the wizard's width; its height follows its page.
var resetWizardSize = fyne.NewSize(520, 0)

// relayout fits the dialog to what it shows now: a page, a step or a
// message came or went.
func (w *resetWizard) relayout() {
	w.body.Refresh()
	w.dlg.Resize(resetWizardSize)
}

// resetLosses names what a reset erases, with what the page knows of it.
func resetLosses(d *keyDetail) string {
	var b strings.Builder
	b.WriteString("Resetting erases, for good:\n")
	switch n, sites, known := d.cards.creds.counts(); {
	case !known && !d.info.PINSet():
		b.WriteString("• every passkey on the key (how many cannot be read from a key without a PIN)\n")
	case !known:
		b.WriteString("• every passkey on the key (to see how many, list them first under \"Passkeys on this key\": that needs the PIN)\n")
	case n == 0:
		b.WriteString("• every passkey on the key (it held none when they were last read)\n")
	default:
		fmt.Fprintf(&b, "• every passkey on the key (%s for %s)\n", countPasskeys(n), countSites(sites))
	}
	if d.info.PINSet() {
		b.WriteString("• its PIN\n")
	}
	if hasSensor(d.info) {
		if fps := d.cards.fps.fps; fps != nil {
			fmt.Fprintf(&b, "• its fingerprints (%d)\n", len(fps))
		} else {
			b.WriteString("• its fingerprints\n")
		}
	}
	b.WriteString("\nYou will no longer be able to sign in with this key anywhere it was used. " +
		"Make sure each of those accounts has another way in (another key, recovery codes) before you go on.")
	return b.String()
}

// countSites is "1 site" or "N sites".
func countSites(n int) string {
	if n == 1 {
		return "1 site"
	}
	return fmt.Sprintf("%d sites", n)
}

// validate turns the erase button on once "erase" is typed.
func (w *resetWizard) validate() {
	ok := strings.EqualFold(strings.TrimSpace(w.word.Text), "erase") && !w.c.d.gone
	setEnabled(w.erase, ok)
}

// keyGone follows the key's unplugging (UI goroutine).
func (w *resetWizard) keyGone() {
	switch w.stage {
	case resetConfirming:
		w.problem.SetText("The key was unplugged: plug it back in and open its page again to reset it.")
		w.problem.Show()
		w.validate()
	case resetRunning:
		if w.replugAsked && w.touchAt.IsZero() {
			w.unplugged = true
			w.setStep(1)
			w.now.SetText("Now plug the key back in.")
		}
	}
	w.relayout()
}

// start resets the key, off the UI goroutine.
func (w *resetWizard) start() {
	d := w.c.d
	if w.stage == resetRunning || w.erase.Disabled() && w.stage == resetConfirming {
		return
	}
	if d.gone && w.stage == resetEnded {
		w.endText.SetText("The key is not plugged in: plug it in, open its page again and start over.")
		return
	}
	w.stage = resetRunning
	w.word.SetText("")
	w.confirmPage.Hide()
	w.endPage.Hide()
	w.erase.Hide()
	w.again.Hide()
	w.stepsPage.Show()
	w.stepsBox.Hide()
	w.countdown.Hide()
	w.replugAsked, w.unplugged, w.timedOut = false, false, false
	w.replugAt, w.touchAt = time.Time{}, time.Time{}
	w.now.SetText("Asking the key…")
	w.close.SetText("Cancel")
	w.relayout()
	// The focus leaves the hidden field for Cancel, which Space presses.
	d.s.win.Canvas().Focus(w.close)
	d.cards.busy = true
	d.showCards()

	stopCtx, stop := context.WithCancel(context.Background())
	w.stop = stop
	ticking := make(chan struct{})
	w.ticking = ticking
	s := d.s
	s.goBackground(func(ctx context.Context) {
		t := time.NewTicker(resetTick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticking:
				return
			case <-t.C:
				s.do(func() {
					if w.ticking == ticking {
						w.tick()
					}
				})
			}
		}
	})
	d.runOnKey("", func(ctx context.Context, key platform.Authenticator, _ string) error {
		ctx, cancel := linked(ctx, stopCtx)
		defer cancel()
		ctx = platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
			s.do(func() {
				if w.ticking == ticking {
					w.report(ev)
				}
			})
		})
		return key.Reset(ctx)
	}, func(err error) {
		close(ticking)
		w.ticking = nil
		stop()
		d.cards.busy = false
		w.ended(err)
		d.showCards()
	})
}

// report follows the key's progress (UI goroutine).
func (w *resetWizard) report(ev platform.ProgressEvent) {
	defer w.relayout()
	switch ev.Stage {
	case platform.StageReinsert:
		first := !w.replugAsked
		w.replugAsked, w.unplugged = true, false
		w.replugAt, w.touchAt = time.Now(), time.Time{}
		w.stepsBox.Show()
		w.countdown.Hide()
		w.setStep(0)
		if first {
			w.now.SetText("More than 10 seconds have passed since the key was plugged in: unplug it now, then plug it back in.")
		} else {
			w.now.SetText("The 10 seconds passed. Unplug the key and plug it back in again, then touch it at once.")
		}
	case platform.StageTouch:
		if !w.replugAsked {
			w.now.SetText("Touch the key now to confirm the reset: it is waiting (it may be blinking).")
			return
		}
		w.touchAt = time.Now()
		w.setStep(2)
		w.countdown.SetValue(1)
		w.countdown.Show()
		w.now.SetText("Touch the key now: 10 seconds left.")
	}
}

// tick counts the 10 seconds down, and gives up on a re-plug that does
// not come (UI goroutine).
func (w *resetWizard) tick() {
	defer w.relayout()
	switch {
	case !w.touchAt.IsZero():
		left := resetWindow - time.Since(w.touchAt)
		if left <= 0 {
			w.countdown.SetValue(0)
			w.now.SetText("The 10 seconds are over. If touching the key does nothing, unplug it and plug it back in.")
			return
		}
		w.countdown.SetValue(left.Seconds() / resetWindow.Seconds())
		n := int(math.Ceil(left.Seconds()))
		unit := "seconds"
		if n == 1 {
			unit = "second"
		}
		w.now.SetText(fmt.Sprintf("Touch the key now: %d %s left.", n, unit))
	case w.replugAsked && time.Since(w.replugAt) > w.c.replugWait:
		w.timedOut = true
		w.stop()
	}
}

// setStep marks the steps before cur done and cur the one to do now.
func (w *resetWizard) setStep(cur int) {
	texts := []string{"1. Unplug the key.", "2. Plug it back in.", "3. Touch it within 10 seconds."}
	for i, l := range w.steps {
		switch {
		case i < cur:
			l.SetText(texts[i] + " Done.")
			l.Importance = widget.LowImportance
			l.TextStyle = fyne.TextStyle{}
		case i == cur:
			l.SetText(texts[i])
			l.Importance = widget.HighImportance
			l.TextStyle = fyne.TextStyle{Bold: true}
		default:
			l.SetText(texts[i])
			l.Importance = widget.MediumImportance
			l.TextStyle = fyne.TextStyle{}
		}
		l.Refresh()
	}
}

// ended shows how the reset ended (UI goroutine).
func (w *resetWizard) ended(err error) {
	d := w.c.d
	defer w.relayout()
	w.stage = resetEnded
	w.stepsPage.Hide()
	w.endPage.Show()
	w.close.SetText("Close")
	if err == nil {
		w.succeeded = true
		w.endText.SetText("The key is now empty: its passkeys, PIN and fingerprints are gone. " +
			"Set a new PIN (PIN card) before you use it again.")
		d.afterReset()
		return
	}
	w.endText.SetText(resetFailure(err, w.timedOut, w.c.replugWait))
	if !cancelled(err) || w.timedOut {
		w.again.Show()
	}
}

// resetFailure says why a reset failed and what to do.
func resetFailure(err error, timedOut bool, wait time.Duration) string {
	switch {
	case timedOut:
		return fmt.Sprintf("The key was not plugged back in within %s, so nothing was erased. "+
			"To reset it, try again, and unplug and re-plug the key when asked.", waitText(wait))
	case cancelled(err):
		return "Cancelled: nothing was erased."
	case errors.Is(err, platform.ErrNotAllowed):
		return "The key refused: it allows a reset only in the first 10 seconds after it is plugged in. Nothing was erased. " +
			"Try again: unplug the key, plug it back in and touch it at once."
	case errors.Is(err, platform.ErrTimeout):
		return "The key was not touched in time, so nothing was erased. Try again, and touch the key as soon as Keydesk asks."
	case errors.Is(err, platform.ErrOperationDenied):
		return "The reset was refused on the key: nothing was erased."
	case errors.Is(err, platform.ErrDeviceRemoved):
		return "Keydesk lost contact with the key before the key confirmed the reset. Plug the key in and open its page: " +
			"if it still has its PIN or passkeys, it was not reset, and you can try again."
	}
	return "The reset did not complete: " + errorText(err)
}

// waitText is a duration in words, such as "2 minutes".
func waitText(d time.Duration) string {
	switch {
	case d >= time.Minute && d%time.Minute == 0:
		if d == time.Minute {
			return "a minute"
		}
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	case d >= time.Second:
		return fmt.Sprintf("%d seconds", int(d.Round(time.Second)/time.Second))
	}
	return d.String()
}

// cancel stops the reset under way, or closes the wizard.
func (w *resetWizard) cancel() {
	if w.stage == resetRunning {
		w.stop()
		return
	}
	w.word.SetText("")
	w.dlg.Hide()
	if w.c.wizard == w {
		w.c.wizard = nil
	}
	w.c.show()
}

// afterReset shows the key as the reset left it: the page comes back to
// life (the key was unplugged and plugged back in during the reset),
// without the PIN kept for it or the lists read before.
func (d *keyDetail) afterReset() {
	d.forgetPIN()
	d.cards.creds.clear()
	d.cards.fps.clear()
	d.gone = false
	d.read()
}
