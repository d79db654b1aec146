package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
)

// The main screens as pictures (testdata/*.png). A change to a screen
// fails here until its picture is looked at and replaced: the test
// driver writes what it drew under testdata/failed/.

func (h *harness) assertScreen(name string) {
	h.t.Helper()
	h.ui(func() { test.AssertImageMatches(h.t, name, h.shell.Window().Canvas().Capture()) })
}

func TestGoldenKeys(t *testing.T) {
	h := newHarness(t)
	h.assertScreen("keys_empty.png")
	h.usb.plug(newTestKey(t, 1))
	k2 := newTestKey(t, 2)
	if err := k2.key.SetPIN(t.Context(), "123456"); err != nil {
		t.Fatal(err)
	}
	h.usb.plug(k2)
	h.eventually("two keys read", func() bool {
		r := h.rows()
		return len(r) == 2 && !strings.Contains(strings.Join(r, ""), "reading")
	})
	h.assertScreen("keys_two.png")
}

func TestGoldenVirtualKey(t *testing.T) {
	h := newHarness(t, withVirtualKey())
	h.eventually("the virtual key read", func() bool {
		r := h.rows()
		return len(r) == 1 && !strings.Contains(r[0], "reading")
	})
	h.assertScreen("keys_virtual.png")
}

func TestGoldenKeyDetailAndPIN(t *testing.T) {
	h := newHarness(t)
	d := h.openKey(newTestKey(t, 1))
	h.assertScreen("key_detail.png")
	h.ui(func() {
		test.Tap(d.pinBtn)
		test.Type(d.pin.next, "1234")
	})
	h.assertScreen("pin_set.png")
}

func TestGoldenSettings(t *testing.T) {
	h := newHarness(t)
	h.ui(func() { h.shell.tabs.SelectIndex(1) })
	h.assertScreen("settings.png")
}
