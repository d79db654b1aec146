package ui

import (
	"context"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/platform"
)

// keyDetail is one key's page: what it is, and its PIN. Its state is the
// key's full information, read when the page opens and after every
// change.
type keyDetail struct {
	s    *Shell
	dev  platform.Device
	info *platform.Info // nil until read

	content *fyne.Container
	title   *widget.Label
	picture *widget.Icon
	facts   *widget.Form
	status  *widget.Label
	pinBtn  *widget.Button
	// gone is set once the key was unplugged: every action is off.
	gone bool
	// pin is the PIN dialog on show, for the tests.
	pin *pinDialog
	// cards are the passkeys, fingerprints, security settings and reset
	// (keycards.go); scroll holds the page's cards.
	cards  keyCards
	scroll *container.Scroll
}

func newKeyDetail(s *Shell, e keyEntry, back func()) *keyDetail {
	d := &keyDetail{s: s, dev: e.dev, info: e.info}
	d.title = widget.NewLabelWithStyle(e.titleWith(s.models), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	d.picture = widget.NewIcon(e.icon(s.models, nil))
	d.facts = widget.NewForm()
	d.status = wrapped("")
	d.pinBtn = widget.NewButtonWithIcon("Set a PIN", theme.AccountIcon(), d.askPIN)
	backBtn := widget.NewButtonWithIcon("All keys", theme.NavigateBackIcon(), func() {
		d.closePage()
		back()
	})
	pinCard := widget.NewCard("PIN", "", container.NewVBox(
		widget.NewLabel("The PIN protects the key if it is lost: without it, nobody can use the key to sign in."),
		container.NewHBox(d.pinBtn),
	))
	d.scroll = container.NewVScroll(container.NewVBox(append([]fyne.CanvasObject{
		widget.NewCard("About this key", "", d.facts), pinCard}, d.newCards()...)...))
	d.content = container.NewBorder(
		container.NewVBox(container.NewHBox(backBtn),
			container.NewBorder(nil, nil, container.NewGridWrap(fyne.NewSquareSize(keyPictureSize), d.picture), nil, d.title),
			d.status), nil, nil, nil, d.scroll,
	)
	d.show()
	d.read()
	return d
}

// read asks the key for its full information (with the PIN retries
// left), off the UI goroutine.
func (d *keyDetail) read() {
	dev := d.dev
	d.status.SetText("Reading the key…")
	d.s.goBackground(func(ctx context.Context) {
		var info *platform.Info
		key, err := d.s.deps.Keys.Open(ctx, dev)
		if err == nil {
			info, err = key.Info(ctx)
			key.Close()
		}
		if ctx.Err() != nil {
			return
		}
		d.s.do(func() {
			if d.gone {
				return
			}
			if err != nil {
				d.status.SetText("This key could not be read: " + errorText(err))
				return
			}
			d.info = info
			d.status.SetText("")
			d.show()
		})
	})
}

// show fills the page from what is known (UI goroutine).
func (d *keyDetail) show() {
	d.facts.Items = nil
	add := func(label, value string) {
		v := wrapped(value)
		d.facts.Append(label, v)
	}
	add("Connected by", transportName(d.dev.Transport))
	if d.dev.Transport == platform.TransportVirtual {
		add("Note", "This virtual key lives in Keydesk, on this computer. It is for trying Keydesk out: use a real security key to protect an account.")
	}
	if d.dev.Manufacturer != "" || d.dev.Product != "" {
		add("Made by", strings.TrimSpace(d.dev.Manufacturer+" "+d.dev.Product))
	}
	i := d.info
	e := keyEntry{dev: d.dev, info: i}
	d.picture.SetResource(e.icon(d.s.models, d.show))
	if i != nil {
		switch name := e.modelName(d.s.models); {
		case i.Model != "":
			add("Model", i.Model)
		case name != "":
			add("Model", name+" (as the service's FIDO metadata names it)")
		}
		add("Model ID (AAGUID)", assets.FormatAAGUID(i.AAGUID))
		if i.FirmwareVersion != 0 {
			add("Firmware", fmt.Sprintf("%d.%d.%d", i.FirmwareVersion>>16, (i.FirmwareVersion>>8)&0xff, i.FirmwareVersion&0xff))
		}
		add("Standards", strings.Join(i.Versions, ", "))
		add("PIN", pinState(i))
		if i.RemainingDiscoverableCredentials >= 0 {
			add("Room for passkeys", fmt.Sprint(i.RemainingDiscoverableCredentials))
		}
		if hasSensor(i) {
			add("Fingerprint reader", "yes")
		}
	}
	d.facts.Refresh()
	switch {
	case i == nil || d.gone:
		d.pinBtn.Disable()
	case i.PINSet():
		d.pinBtn.SetText("Change the PIN")
		d.pinBtn.Enable()
	default:
		d.pinBtn.SetText("Set a PIN")
		d.pinBtn.Enable()
	}
	d.showCards()
}

// unplugged turns the page off when its key goes (UI goroutine).
func (d *keyDetail) unplugged() {
	d.gone = true
	d.status.SetText("This key was unplugged. Plug it back in and open it again from the list.")
	d.pinBtn.Disable()
	if d.pin != nil {
		d.pin.keyGone()
	}
	d.cardsKeyGone()
}

// askPIN opens the dialog that sets or changes the PIN.
func (d *keyDetail) askPIN() {
	if d.info == nil {
		return
	}
	d.pin = newPINDialog(d.s, d.dev, d.info, func(changed bool) {
		d.pin = nil
		if changed {
			d.forgetPIN()
			d.read()
		}
	})
}

// transportName says how a key is connected.
func transportName(t platform.Transport) string {
	switch t {
	case platform.TransportUSB:
		return "USB"
	case platform.TransportNFC:
		return "NFC"
	case platform.TransportVirtual:
		return "Nothing: a virtual key inside Keydesk"
	}
	return string(t)
}

// pinState says whether a key has a PIN and how many tries are left.
func pinState(i *platform.Info) string {
	if !i.PINSet() {
		return "Not set yet"
	}
	s := "Set"
	if i.MinPINLength > 0 {
		s += fmt.Sprintf(" (at least %d characters)", i.MinPINLength)
	}
	if i.PINRetries >= 0 {
		s += fmt.Sprintf("; %d wrong tries left before it locks", i.PINRetries)
	}
	if i.ForcePINChange {
		s += "; it must be changed before the key is used again"
	}
	return s
}
