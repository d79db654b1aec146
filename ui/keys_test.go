package ui

import (
	"slices"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
)

// TestKeysListFollowsPlugAndUnplug: keys appear as they are plugged in,
// described (model, PIN), and go when they are pulled out; with several,
// the list offers to identify one by touch.
func TestKeysListFollowsPlugAndUnplug(t *testing.T) {
	h := newHarness(t)
	h.ui(func() {
		if !h.keys().empty.Visible() {
			t.Error("no key plugged in, and the list does not say so")
		}
	})
	a, b := newTestKey(t, 1), newTestKey(t, 2)
	h.usb.plug(a)
	h.eventually("key 1 listed and read", func() bool {
		return slices.Equal(h.rows(), []string{"Keydesk Software Key (virtual) | USB · no PIN yet"})
	})
	h.ui(func() {
		if h.keys().empty.Visible() || h.keys().identifyRow.Visible() {
			t.Error("with one key: the empty text or the identify button shows")
		}
	})
	h.usb.plug(b)
	h.eventually("two keys listed", func() bool { return len(h.rows()) == 2 && h.keys().identifyRow.Visible() })
	h.usb.unplug(a)
	h.eventually("key 1 gone", func() bool {
		r := h.rows()
		return len(r) == 1 && h.keys().model.entries[0].dev.Path == b.dev.Path && !h.keys().identifyRow.Visible()
	})
	h.usb.unplug(b)
	h.eventually("the list empty again", func() bool { return len(h.rows()) == 0 && h.keys().empty.Visible() })
}

// TestVirtualKeyOnlyWhenNoKeyIsPlugged: the virtual key is offered, and
// labelled as such, only while no hardware key is present.
func TestVirtualKeyOnlyWhenNoKeyIsPlugged(t *testing.T) {
	h := newHarness(t, withVirtualKey())
	h.eventually("the virtual key listed", func() bool {
		r := h.rows()
		return len(r) == 1 && strings.HasPrefix(r[0], "Keydesk virtual key — for trying Keydesk out | Not a real security key")
	})
	k := newTestKey(t, 1)
	h.usb.plug(k)
	h.eventually("the virtual key replaced by the hardware key", func() bool {
		r := h.rows()
		return len(r) == 1 && strings.Contains(r[0], "USB")
	})
	h.usb.unplug(k)
	h.eventually("the virtual key back", func() bool {
		r := h.rows()
		return len(r) == 1 && strings.HasPrefix(r[0], "Keydesk virtual key")
	})
}

// TestIdentifyByTouch: with two keys, "which key is which" makes both
// blink behind the touch sheet; the one touched is marked, and the sheet
// goes. Cancelling stops the wait and says nothing was identified.
func TestIdentifyByTouch(t *testing.T) {
	h := newHarness(t)
	a, b := newTestKey(t, 1), newTestKey(t, 2)
	h.usb.plug(a)
	h.usb.plug(b)
	h.eventually("two keys read", func() bool {
		r := h.rows()
		return len(r) == 2 && !strings.Contains(strings.Join(r, ""), "reading")
	})

	h.ui(func() { test.Tap(h.keys().identify) })
	h.eventually("the touch sheet", func() bool { return h.shell.touch.visible() })
	h.ui(func() {
		if h.shell.touch.touchVirtual.Visible() {
			t.Error("the sheet offers to touch the virtual key for hardware keys")
		}
	})
	// Touch key 2 once it waits.
	h.eventually("key 2 touched", func() bool { return b.signal.Touch() > 0 })
	h.eventually("key 2 marked, the sheet gone", func() bool {
		return !h.shell.touch.visible() && h.keys().model.identified == b.dev.Path &&
			strings.Contains(h.keys().status.Text, "marked")
	})

	h.ui(func() { test.Tap(h.keys().identify) })
	h.eventually("the touch sheet again", func() bool { return h.shell.touch.visible() })
	h.ui(func() { test.Tap(h.shell.touch.cancelButton) })
	h.eventually("the sheet gone after Cancel", func() bool {
		return !h.shell.touch.visible() && strings.HasPrefix(h.keys().status.Text, "No key was identified")
	})
}
