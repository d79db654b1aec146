package ui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/platform"
)

// keyEntry is one connected key as the list shows it.
type keyEntry struct {
	dev platform.Device
	// info is what the key said of itself (Describe), nil until it
	// answered; err is why it did not.
	info *platform.Info
	err  error
}

// keysModel is the list of connected keys, in the order they arrived.
// Only the UI goroutine touches it.
type keysModel struct {
	entries []keyEntry
	// identified is the path of the key last touched to identify it.
	identified string
}

func (m *keysModel) index(path string) int {
	return slices.IndexFunc(m.entries, func(e keyEntry) bool { return e.dev.Path == path })
}

// arrived adds a key, once.
func (m *keysModel) arrived(d platform.Device) bool {
	if m.index(d.Path) >= 0 {
		return false
	}
	m.entries = append(m.entries, keyEntry{dev: d})
	return true
}

// removed drops a key.
func (m *keysModel) removed(d platform.Device) {
	if i := m.index(d.Path); i >= 0 {
		m.entries = slices.Delete(m.entries, i, i+1)
	}
	if m.identified == d.Path {
		m.identified = ""
	}
}

// described records what a key said of itself, if it is still there.
func (m *keysModel) described(path string, info *platform.Info, err error) {
	if i := m.index(path); i >= 0 {
		m.entries[i].info, m.entries[i].err = info, err
	}
}

// deviceName is what a key is called on screen: its model when known,
// else its product string, else its transport.
func deviceName(d platform.Device, info *platform.Info) string {
	switch {
	case d.Transport == platform.TransportVirtual:
		return "the Keydesk virtual key"
	case info != nil && info.Model != "":
		return info.Model
	case d.Product != "":
		return d.Product
	case d.Transport == platform.TransportNFC:
		return "the NFC security key"
	}
	return "your security key"
}

// title is an entry's first line.
func (e keyEntry) title() string {
	if e.dev.Transport == platform.TransportVirtual {
		return "Keydesk virtual key — for trying Keydesk out"
	}
	n := deviceName(e.dev, e.info)
	if n == "your security key" {
		return "Security key"
	}
	return n
}

// detail is an entry's second line: how it is connected and whether it
// has a PIN, or why it could not be read.
func (e keyEntry) detail() string {
	var parts []string
	switch e.dev.Transport {
	case platform.TransportUSB:
		parts = append(parts, "USB")
	case platform.TransportNFC:
		parts = append(parts, "NFC")
	case platform.TransportVirtual:
		parts = append(parts, "Not a real security key: what it holds stays on this computer")
	}
	switch {
	case e.err != nil:
		parts = append(parts, "could not be read: "+errorText(e.err))
	case e.info == nil:
		parts = append(parts, "reading…")
	case e.info.PINSet():
		parts = append(parts, "PIN set")
	default:
		parts = append(parts, "no PIN yet")
	}
	return strings.Join(parts, " · ")
}

// icon is an entry's picture: its model's, from the service, once the key
// said which model it is and the service answered; else its transport.
func (e keyEntry) icon(mi *modelIcons, redraw func()) fyne.Resource {
	if e.info != nil {
		if r := mi.icon(e.info.AAGUID, redraw); r != nil {
			return r
		}
	}
	return e.transportIcon()
}

// transportIcon is the picture of how the key is connected.
func (e keyEntry) transportIcon() fyne.Resource {
	switch e.dev.Transport {
	case platform.TransportNFC:
		return theme.MediaRecordIcon()
	case platform.TransportVirtual:
		return theme.ComputerIcon()
	}
	return theme.LoginIcon()
}

// keysScreen is the Keys tab: the connected keys, live, and a key's
// detail once one is opened.
type keysScreen struct {
	s     *Shell
	model keysModel

	// rows show the entries, in order; rows beyond the entries are
	// hidden and kept for the next key, so that plugging and unplugging
	// makes no new widgets (a widget.List made new rows each time, which
	// Fyne's renderer cache never let go).
	rows     []*keyRow
	rowsBox  *fyne.Container
	empty    *widget.Label
	identify *widget.Button
	// identifyRow holds identify, shown only with several keys.
	identifyRow *fyne.Container
	status      *widget.Label
	// content switches between the list and a key's detail.
	content *fyne.Container
	header  *fyne.Container
	listBox fyne.CanvasObject
	detail  *keyDetail
}

func newKeysScreen(s *Shell) *keysScreen {
	k := &keysScreen{s: s}
	k.empty = wrapped("No security key is plugged in. Plug one in (or hold it to the NFC reader) and it appears here.")
	k.status = wrapped("")
	k.identify = widget.NewButtonWithIcon("Which key is which? Touch one", theme.SearchIcon(), k.identifyByTouch)
	k.identifyRow = container.NewHBox(k.identify)
	k.identifyRow.Hide()
	k.header = container.NewVBox(
		widget.NewLabelWithStyle("Your security keys", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		k.empty, k.identifyRow, k.status,
	)
	k.rowsBox = container.NewVBox()
	k.listBox = container.NewBorder(k.header, nil, nil, nil, container.NewVScroll(k.rowsBox))
	k.content = container.NewStack(k.listBox)
	k.refresh()
	return k
}

// refresh redraws the list after the model changed (UI goroutine).
func (k *keysScreen) refresh() {
	if len(k.model.entries) == 0 {
		k.empty.Show()
	} else {
		k.empty.Hide()
	}
	if len(k.model.entries) > 1 {
		k.identifyRow.Show()
	} else {
		k.identifyRow.Hide()
	}
	if k.status.Text == "" {
		k.status.Hide()
	} else {
		k.status.Show()
	}
	// What shows in the header changed: lay it, and the list under it,
	// out again.
	k.header.Refresh()
	for len(k.rows) < len(k.model.entries) {
		r := newKeyRow(k, len(k.rows))
		k.rows = append(k.rows, r)
		k.rowsBox.Add(r.box)
	}
	for i, r := range k.rows {
		if i < len(k.model.entries) {
			r.show(k.model.entries[i], k.model.identified, k.s.models, k.refresh)
		} else {
			r.box.Hide()
		}
	}
	k.rowsBox.Refresh()
	k.listBox.Refresh()
}

// keyPictureSize is the side of a key's picture in the list.
const keyPictureSize = 36

// keyRow is one line of the list: the key's icon, name and state, and
// the button that opens its page (reachable with Tab).
type keyRow struct {
	box           *fyne.Container
	icon          *widget.Icon
	title, detail *widget.Label
	open          *widget.Button
}

func newKeyRow(k *keysScreen, i int) *keyRow {
	r := &keyRow{
		icon:   widget.NewIcon(theme.LoginIcon()),
		title:  widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		detail: widget.NewLabel(""),
	}
	r.detail.Wrapping = fyne.TextWrapWord
	r.open = widget.NewButtonWithIcon("Open", theme.NavigateNextIcon(), func() {
		if i < len(k.model.entries) {
			k.open(k.model.entries[i])
		}
	})
	// A model's picture is drawn larger than an inline icon, to be told
	// apart at a glance.
	pic := container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(keyPictureSize), r.icon))
	r.box = container.NewBorder(nil, widget.NewSeparator(), pic, container.NewCenter(r.open),
		container.NewVBox(r.title, r.detail))
	return r
}

// show fills the row with e (UI goroutine).
func (r *keyRow) show(e keyEntry, identified string, mi *modelIcons, redraw func()) {
	title := e.titleWith(mi)
	if e.dev.Path == identified {
		title += "  (the key you touched)"
	}
	r.title.SetText(title)
	r.detail.SetText(e.detail())
	r.icon.SetResource(e.icon(mi, redraw))
	r.box.Show()
}

// watch follows plugs and unplugs until the window closes: each arrival
// is described in the background, so that a slow key holds up no other.
func (k *keysScreen) watch() {
	s := k.s
	s.goBackground(func(ctx context.Context) {
		for ev := range platform.Watch(ctx, s.deps.Keys, s.deps.WatchInterval) {
			switch ev.Kind {
			case platform.Arrived:
				s.do(func() {
					if k.model.arrived(ev.Device) {
						k.refresh()
					}
				})
				d := ev.Device
				s.goBackground(func(ctx context.Context) { k.describe(ctx, d) })
			case platform.Removed:
				s.do(func() {
					k.model.removed(ev.Device)
					k.status.SetText("")
					k.refresh()
					if k.detail != nil && k.detail.dev.Path == ev.Device.Path {
						k.detail.unplugged()
					}
				})
			case platform.ListFailed:
				err := ev.Err
				s.do(func() {
					k.status.SetText("Keys cannot be listed: " + errorText(err))
					k.refresh()
				})
			}
		}
	})
}

// describe asks a key what it is, off the UI goroutine.
func (k *keysScreen) describe(ctx context.Context, d platform.Device) {
	var info *platform.Info
	key, err := k.s.deps.Keys.Open(ctx, d)
	if err == nil {
		info, err = key.Describe(ctx)
		key.Close()
	}
	if ctx.Err() != nil {
		return
	}
	k.s.do(func() {
		k.model.described(d.Path, info, err)
		k.refresh()
	})
}

// identifyByTouch has every key blink and marks the one touched.
func (k *keysScreen) identifyByTouch() {
	devs := make([]platform.Device, len(k.model.entries))
	for i, e := range k.model.entries {
		devs[i] = e.dev
	}
	k.status.SetText("Touch the key you want to find…")
	k.refresh()
	var touched platform.Device
	k.s.operate(platform.Device{}, func(ctx context.Context) error {
		var keys []platform.Authenticator
		defer func() {
			for _, key := range keys {
				key.Close()
			}
		}()
		for _, d := range devs {
			key, err := k.s.deps.Keys.Open(ctx, d)
			if err != nil {
				return err
			}
			keys = append(keys, key)
		}
		// Every key blinks at once; the sheet names none of them.
		key, err := platform.SelectAmong(ctx, keys)
		if err != nil {
			return err
		}
		touched = key.Device()
		return nil
	}, func(err error) {
		switch {
		case cancelled(err):
			k.status.SetText("No key was identified: cancelled.")
		case err != nil:
			k.status.SetText("No key was identified: " + errorText(err))
		default:
			k.model.identified = touched.Path
			k.status.SetText("The key you touched is marked below.")
		}
		k.refresh()
	})
}

// open shows a key's detail.
func (k *keysScreen) open(e keyEntry) {
	k.detail = newKeyDetail(k.s, e, k.close)
	k.content.Objects = []fyne.CanvasObject{k.detail.content}
	k.content.Refresh()
}

// close goes back to the list.
func (k *keysScreen) close() {
	k.detail = nil
	k.content.Objects = []fyne.CanvasObject{k.listBox}
	k.content.Refresh()
}

// entryTitle is how the list calls the key at d (UI goroutine).
func (k *keysScreen) entryTitle(d platform.Device) string {
	if i := k.model.index(d.Path); i >= 0 {
		return k.model.entries[i].titleWith(k.s.models)
	}
	return keyEntry{dev: d}.title()
}

// entryModel is the model name of the key at d, "" when unknown.
func (k *keysScreen) entryModel(d platform.Device) string {
	if i := k.model.index(d.Path); i >= 0 {
		return k.model.entries[i].modelName(k.s.models)
	}
	return ""
}

// modelName is the name of e's model: Keydesk's list's, else the
// service's (its FIDO metadata may know a model the list does not); ""
// while neither knows it.
func (e keyEntry) modelName(mi *modelIcons) string {
	switch {
	case e.info == nil:
		return ""
	case e.info.Model != "":
		return e.info.Model
	}
	return mi.name(e.info.AAGUID)
}

// titleWith is title, with the model's name from the service when
// Keydesk's list does not know it.
func (e keyEntry) titleWith(mi *modelIcons) string {
	if e.dev.Transport != platform.TransportVirtual && (e.info == nil || e.info.Model == "") {
		if n := e.modelName(mi); n != "" {
			return n
		}
	}
	return e.title()
}

// errorText is an error as the person at the screen reads it.
func errorText(err error) string {
	if pe, ok := errors.AsType[*platform.Error](err); ok {
		return pe.Message()
	}
	return fmt.Sprint(err)
}
