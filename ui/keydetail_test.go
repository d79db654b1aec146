package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
)

// openKey plugs k, waits for it to be read, and opens its page.
func (h *harness) openKey(k *testKey) *keyDetail {
	h.t.Helper()
	h.usb.plug(k)
	h.eventually("the key read", func() bool {
		i := h.keys().model.index(k.dev.Path)
		return i >= 0 && h.keys().model.entries[i].info != nil
	})
	var d *keyDetail
	h.ui(func() {
		test.Tap(h.keys().rows[h.keys().model.index(k.dev.Path)].open)
		d = h.keys().detail
	})
	if d == nil {
		h.t.Fatal("selecting the key opened no page")
	}
	h.eventually("the page's full information", func() bool { return d.info != nil && d.info.PINRetries != 0 && d.status.Text == "" })
	return d
}

// fact is the value of a row of the page's form, "" when absent.
func (d *keyDetail) fact(label string) string {
	for _, it := range d.facts.Items {
		if it.Text == label {
			return it.Widget.(*widget.Label).Text
		}
	}
	return ""
}

// TestSetAndChangePIN: the PIN dialog checks the new PIN as it is typed
// (length, the two copies), sets it on the key, and the page then shows
// it set with the tries left; a wrong current PIN keeps the dialog open,
// says how many tries are left and clears the field; the right one
// changes it.
func TestSetAndChangePIN(t *testing.T) {
	h := newHarness(t)
	k := newTestKey(t, 1)
	d := h.openKey(k)
	h.ui(func() {
		if got := d.fact("PIN"); got != "Not set yet" {
			t.Errorf("PIN row = %q", got)
		}
		if d.pinBtn.Text != "Set a PIN" || d.pinBtn.Disabled() {
			t.Fatalf("PIN button %q (disabled %v)", d.pinBtn.Text, d.pinBtn.Disabled())
		}
		test.Tap(d.pinBtn)
	})
	var p *pinDialog
	h.ui(func() {
		p = d.pin
		if p == nil || p.change {
			t.Fatal("no set-PIN dialog")
		}
		test.Type(p.next, "12")
		if !p.problem.Visible() || !p.save.Disabled() {
			t.Errorf("a 2-character PIN: problem %q (shown %v), save disabled %v", p.problem.Text, p.problem.Visible(), p.save.Disabled())
		}
		test.Type(p.next, "3456")
		test.Type(p.again, "123457")
		if !strings.Contains(p.problem.Text, "differ") || !p.save.Disabled() {
			t.Errorf("differing PINs: problem %q, save disabled %v", p.problem.Text, p.save.Disabled())
		}
		p.again.SetText("")
		test.Type(p.again, "123456")
		if p.problem.Visible() || p.save.Disabled() {
			t.Errorf("a good PIN: problem %q (shown %v), save disabled %v", p.problem.Text, p.problem.Visible(), p.save.Disabled())
		}
		if p.hint.Text == "" {
			t.Error("no strength hint")
		}
		test.Tap(p.save)
	})
	h.eventually("the PIN set and the page read again", func() bool {
		return d.pin == nil && strings.HasPrefix(d.fact("PIN"), "Set") && d.pinBtn.Text == "Change the PIN"
	})
	h.ui(func() {
		if got := d.fact("PIN"); !strings.Contains(got, "8 wrong tries left") {
			t.Errorf("PIN row = %q, want the 8 tries left", got)
		}
		if p.next.Text != "" || p.again.Text != "" {
			t.Error("the closed dialog still holds the PIN")
		}
		test.Tap(d.pinBtn)
		p = d.pin
		if p == nil || !p.change {
			t.Fatal("no change-PIN dialog")
		}
		test.Type(p.current, "000000")
		test.Type(p.next, "abcdefgh")
		test.Type(p.again, "abcdefgh")
		test.Tap(p.save)
	})
	h.eventually("the wrong PIN told, the dialog open", func() bool {
		return !p.busy && p.problem.Visible() && d.pin == p
	})
	h.ui(func() {
		if !strings.Contains(p.problem.Text, "7") || p.current.Text != "" {
			t.Errorf("after a wrong PIN: problem %q, current field %q", p.problem.Text, p.current.Text)
		}
		test.Type(p.current, "123456")
		test.Tap(p.save)
	})
	h.eventually("the PIN changed", func() bool { return d.pin == nil && strings.Contains(d.fact("PIN"), "8 wrong tries left") })
	if err := k.key.ChangePIN(t.Context(), "abcdefgh", "abcdefgh1"); err != nil {
		t.Errorf("the new PIN does not work on the key: %v", err)
	}
}

// TestKeyUnpluggedMidDialog: pulling the key out while its PIN dialog is
// open says so and turns saving off; the page says to plug it back in.
func TestKeyUnpluggedMidDialog(t *testing.T) {
	h := newHarness(t)
	k := newTestKey(t, 1)
	d := h.openKey(k)
	h.ui(func() { test.Tap(d.pinBtn) })
	h.usb.unplug(k)
	h.eventually("the unplug told", func() bool {
		return d.gone && d.pin != nil && strings.Contains(d.pin.problem.Text, "unplugged") && d.pin.save.Disabled()
	})
	h.ui(func() {
		test.Type(d.pin.next, "123456")
		test.Type(d.pin.again, "123456")
		if !d.pin.save.Disabled() || !strings.Contains(d.pin.problem.Text, "unplugged") {
			t.Errorf("typing a good PIN after the unplug: save disabled %v, problem %q", d.pin.save.Disabled(), d.pin.problem.Text)
		}
		if !d.pinBtn.Disabled() || !strings.Contains(d.status.Text, "unplugged") {
			t.Errorf("page: PIN button disabled %v, status %q", d.pinBtn.Disabled(), d.status.Text)
		}
	})
}
