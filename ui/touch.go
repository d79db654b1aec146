package ui

import (
	"context"
	"errors"
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/platform"
)

// touchPrompt is the "Touch your key" sheet: shown while a key waits for
// a touch (or to be plugged back in), gone as soon as it is touched, the
// operation ends or the person cancels it.
type touchPrompt struct {
	s *Shell
	// popup is the sheet on show, nil when none; cancel ends the
	// operation it is for.
	popup   *widget.PopUp
	cancel  context.CancelFunc
	message *widget.Label
	// touchVirtual is the virtual key's "Touch" button, shown only for
	// the virtual key.
	touchVirtual *widget.Button
	cancelButton *widget.Button
}

func newTouchPrompt(s *Shell) *touchPrompt {
	p := &touchPrompt{s: s}
	p.message = wrapped("")
	p.message.Alignment = fyne.TextAlignCenter
	p.cancelButton = widget.NewButton("Cancel", func() {
		if p.cancel != nil {
			p.cancel()
		}
	})
	p.touchVirtual = widget.NewButton("Touch the virtual key", func() {
		if s.deps.TouchVirtual != nil {
			s.deps.TouchVirtual()
		}
	})
	p.touchVirtual.Importance = widget.HighImportance
	return p
}

// show puts the sheet up for stage of an operation on dev (UI goroutine).
func (p *touchPrompt) show(dev platform.Device, stage platform.Stage, cancel context.CancelFunc) {
	p.cancel = cancel
	name := deviceName(dev, nil)
	switch stage {
	case platform.StageReinsert:
		p.message.SetText(fmt.Sprintf("Unplug %s and plug it back in.", name))
	default:
		p.message.SetText(fmt.Sprintf("Touch %s now: it is waiting for you (it may be blinking).", name))
	}
	virtual := dev.Transport == platform.TransportVirtual && p.s.deps.TouchVirtual != nil
	if virtual && stage == platform.StageTouch {
		p.touchVirtual.Show()
	} else {
		p.touchVirtual.Hide()
	}
	if p.popup != nil {
		p.popup.Refresh()
		return
	}
	content := container.NewVBox(
		widget.NewLabelWithStyle("Your security key is waiting", fyne.TextAlignCenter, fyne.TextStyle{Bold: true}),
		p.message,
		container.NewCenter(container.NewHBox(p.touchVirtual, p.cancelButton)),
	)
	p.popup = widget.NewModalPopUp(container.NewPadded(content), p.s.win.Canvas())
	p.popup.Resize(fyne.NewSize(380, 0))
	p.popup.Show()
	if virtual {
		p.s.win.Canvas().Focus(p.touchVirtual)
	} else {
		p.s.win.Canvas().Focus(p.cancelButton)
	}
}

// hide takes the sheet down (UI goroutine).
func (p *touchPrompt) hide() {
	if p.popup != nil {
		p.popup.Hide()
		p.popup = nil
	}
	p.cancel = nil
}

// visible reports whether the sheet is up (UI goroutine).
func (p *touchPrompt) visible() bool { return p.popup != nil }

// operate runs op on a key off the UI goroutine, with the touch prompt up
// while the key waits for the person, then done with op's error on the UI
// goroutine. A cancelled operation ends with platform.ErrCancelled or the
// context's error: done decides whether that is worth telling.
func (s *Shell) operate(dev platform.Device, op func(ctx context.Context) error, done func(err error)) {
	s.goBackground(func(parent context.Context) {
		ctx, cancel := context.WithCancel(parent)
		defer cancel()
		ctx = platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
			switch ev.Stage {
			case platform.StageTouch, platform.StageReinsert:
				s.do(func() { s.touch.show(dev, ev.Stage, cancel) })
			}
		})
		err := op(ctx)
		s.do(func() {
			s.touch.hide()
			done(err)
		})
	})
}

// cancelled reports whether err is the person stopping an operation.
func cancelled(err error) bool {
	return errors.Is(err, platform.ErrCancelled) || errors.Is(err, context.Canceled)
}
