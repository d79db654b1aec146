package ui

import (
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/platform/softkey"
)

// visibleLabels are the labels shown in o, in order (UI goroutine).
func visibleLabels(o fyne.CanvasObject) []string {
	var out []string
	var walk func(fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if !o.Visible() {
			return
		}
		switch w := o.(type) {
		case *widget.Label:
			out = append(out, w.Text)
		case *fyne.Container:
			for _, c := range w.Objects {
				walk(c)
			}
		}
	}
	walk(o)
	return out
}

// findButton is the button labelled text in o, shown or not.
func findButton(o fyne.CanvasObject, text string) *widget.Button {
	switch w := o.(type) {
	case *widget.Button:
		if w.Text == text {
			return w
		}
	case *fyne.Container:
		for _, c := range w.Objects {
			if b := findButton(c, text); b != nil {
				return b
			}
		}
	case *widget.Card:
		return findButton(w.Content, text)
	case *container.Scroll:
		return findButton(w.Content, text)
	}
	return nil
}

// passkeyKey is a key with the test PIN and three passkeys at two sites.
func passkeyKey(t *testing.T, h *harness) (*testKey, *cord) {
	k, c := h.newCordedKey(1, softkey.Config{}, 10*time.Second)
	setTestPIN(t, k)
	addPasskey(t, k, testPIN, "example.com", "Example", "alice", "Alice Liddell")
	addPasskey(t, k, testPIN, "example.com", "Example", "bob", "bob")
	addPasskey(t, k, testPIN, "login.example", "", "carol", "Carol")
	return k, c
}

// accountsOnKey are the user names of k's passkeys, by site.
func accountsOnKey(t *testing.T, k *testKey) []string {
	t.Helper()
	rps, err := direct(k).Credentials(t.Context(), testPIN)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rp := range rps {
		for _, c := range rp.Credentials {
			out = append(out, rp.ID+"/"+c.User.Name)
		}
	}
	slices.Sort(out)
	return out
}

// TestPasskeysListAndErase: the passkeys are listed by site after the PIN
// (the account, its display name); erasing one names the site and the
// account, erases it from the key after the confirmation and lists the
// key's passkeys again, without asking for the PIN a second time.
// Cancelling the confirmation erases nothing.
func TestPasskeysListAndErase(t *testing.T) {
	h := newHarness(t)
	k, _ := passkeyKey(t, h)
	d := h.openKey(k)
	c := d.cards.creds
	h.ui(func() {
		if !c.load.Visible() || c.load.Disabled() || c.setPIN.Visible() {
			t.Fatalf("load button shown %v disabled %v; set-PIN shown %v", c.load.Visible(), c.load.Disabled(), c.setPIN.Visible())
		}
		test.Tap(c.load)
	})
	h.answerPIN(d, nil, testPIN)
	h.eventually("the passkeys listed", func() bool { return c.rps != nil && !d.cards.busy })
	h.ui(func() {
		want := []string{
			"example.com (Example) · 2 passkeys", "alice (Alice Liddell)", "bob",
			"login.example · 1 passkey", "carol (Carol)",
		}
		if got := visibleLabels(c.list); !slices.Equal(got, want) {
			t.Errorf("list shows %q, want %q", got, want)
		}
		if len(c.erase) != 3 {
			t.Fatalf("%d erase buttons", len(c.erase))
		}
		// Erase bob, but think better of it first.
		test.Tap(c.erase[1])
		if c.confirm == nil {
			t.Fatal("no confirmation")
		}
		c.confirm.Dismiss()
	})
	if got := accountsOnKey(t, k); len(got) != 3 {
		t.Fatalf("after a cancelled erase the key holds %q", got)
	}
	h.ui(func() {
		test.Tap(c.erase[1])
		want := "you will not be able to sign in to example.com as bob with it"
		if c.confirm == nil || !strings.Contains(c.confirmText.Text, want) {
			t.Fatalf("confirmation says %q, want %q", c.confirmText.Text, want)
		}
		c.confirm.Confirm()
	})
	h.eventually("bob erased and the list read again", func() bool {
		return !d.cards.busy && strings.Contains(c.status.Text, "bob at example.com was erased")
	})
	h.ui(func() {
		want := []string{"example.com (Example) · 1 passkey", "alice (Alice Liddell)", "login.example · 1 passkey", "carol (Carol)"}
		if got := visibleLabels(c.list); !slices.Equal(got, want) {
			t.Errorf("after the erase the list shows %q, want %q", got, want)
		}
		if d.cards.asks != 1 {
			t.Errorf("the PIN was asked %d times on the page, want once", d.cards.asks)
		}
	})
	if got := accountsOnKey(t, k); !slices.Equal(got, []string{"example.com/alice", "login.example/carol"}) {
		t.Errorf("the key holds %q", got)
	}
	// Leaving the page forgets the PIN.
	h.ui(func() {
		if d.cards.pin == "" {
			t.Error("the PIN was not kept while the page is open")
		}
		test.Tap(findButton(d.content, "All keys"))
		if d.cards.pin != "" || h.keys().detail != nil {
			t.Error("the page closed and kept the PIN")
		}
	})
}

// TestPasskeysPINDialog: cancelling the PIN dialog lists nothing; a wrong
// PIN asks again and says how many tries are left; the right one lists
// the passkeys.
func TestPasskeysPINDialog(t *testing.T) {
	h := newHarness(t)
	k, _ := passkeyKey(t, h)
	d := h.openKey(k)
	c := d.cards.creds
	h.ui(func() { test.Tap(c.load) })
	h.eventually("the PIN dialog", func() bool { return d.cards.ask != nil })
	h.ui(func() { test.Tap(d.cards.ask.cancel) })
	h.eventually("the dialog gone", func() bool { return d.cards.ask == nil && !d.cards.busy })
	h.ui(func() {
		if c.rps != nil || c.status.Visible() || c.load.Disabled() {
			t.Errorf("after Cancel: listed %v, status %q, load disabled %v", c.rps != nil, c.status.Text, c.load.Disabled())
		}
		test.Tap(c.load)
	})
	first := h.answerPIN(d, nil, "000000")
	var again *pinAsk
	h.eventually("asked again", func() bool { again = d.cards.ask; return again != nil && again != first })
	h.ui(func() {
		if !strings.Contains(again.text.Text, "That PIN was wrong. 7 tries are left") {
			t.Errorf("second ask says %q", again.text.Text)
		}
	})
	h.answerPIN(d, first, testPIN)
	h.eventually("the passkeys listed", func() bool { return c.rps != nil && !d.cards.busy })
	if got := keyInfo(t, k).PINRetries; got != 8 {
		t.Errorf("%d PIN tries left after the right PIN", got)
	}
}

// TestPasskeysNeedAPIN: on a key without a PIN the card says that seeing
// the passkeys needs one, and offers to set it.
func TestPasskeysNeedAPIN(t *testing.T) {
	h := newHarness(t)
	d := h.openKey(newTestKey(t, 1))
	c := d.cards.creds
	h.ui(func() {
		if c.load.Visible() || !c.setPIN.Visible() || !strings.Contains(c.intro.Text, "needs its PIN") {
			t.Fatalf("no PIN: load shown %v, set-PIN shown %v, intro %q", c.load.Visible(), c.setPIN.Visible(), c.intro.Text)
		}
		test.Tap(c.setPIN)
		if d.pin == nil || d.pin.change {
			t.Error("Set a PIN opened no set-PIN dialog")
		}
	})
}

// TestPasskeysKeyUnpluggedMidErase: pulling the key out while an erase is
// under way says it was not erased and why; the list keeps the passkey,
// its buttons are off, and the key still holds it.
func TestPasskeysKeyUnpluggedMidErase(t *testing.T) {
	h := newHarness(t)
	k, cord := passkeyKey(t, h)
	d := h.openKey(k)
	c := d.cards.creds
	h.ui(func() { test.Tap(c.load) })
	h.answerPIN(d, nil, testPIN)
	h.eventually("the passkeys listed", func() bool { return c.rps != nil && !d.cards.busy })
	cord.hold("DeleteCredential")
	h.ui(func() {
		test.Tap(c.erase[0])
		c.confirm.Confirm()
	})
	cord.waitHeld()
	cord.pull()
	cord.release()
	h.eventually("the failure told", func() bool { return !d.cards.busy && strings.Contains(c.status.Text, "was not erased") })
	h.ui(func() {
		if !strings.Contains(c.status.Text, "lost contact") {
			t.Errorf("status %q", c.status.Text)
		}
		if got := visibleLabels(c.list); !slices.Contains(got, "alice (Alice Liddell)") {
			t.Errorf("the list lost alice: %q", got)
		}
	})
	h.eventually("the page turned off", func() bool {
		return d.gone && c.erase[0].Disabled() && c.load.Disabled() && d.cards.pin == ""
	})
	if got := accountsOnKey(t, k); len(got) != 3 {
		t.Errorf("the key holds %q", got)
	}
}

// TestGoldenPasskeys: the passkeys card, listed, scrolled into view.
func TestGoldenPasskeys(t *testing.T) {
	h := newHarness(t)
	k, _ := passkeyKey(t, h)
	d := h.openKey(k)
	c := d.cards.creds
	h.ui(func() { test.Tap(c.load) })
	h.answerPIN(d, nil, testPIN)
	h.eventually("the passkeys listed", func() bool { return c.rps != nil && !d.cards.busy })
	h.ui(func() { d.scroll.ScrollToOffset(fyne.NewPos(0, c.card.Position().Y)) })
	h.assertScreen("key_passkeys.png")
}
