package ui

import (
	"errors"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/rptest"
)

// signedInWithKey enrolls k for the demo account (root) and signs in
// with it: a full session on the Account tab.
func (h *harness) signedInWithKey(k *testKey) *accountScreen {
	h.t.Helper()
	h.usb.plug(k)
	return h.enrollAndSignIn(k)
}

// enrollAndSignIn is signedInWithKey for k plugged in already.
func (h *harness) enrollAndSignIn(k *testKey) *accountScreen {
	h.t.Helper()
	h.eventually("the key read", func() bool { return len(h.rows()) == 1 && h.keys().model.entries[0].info != nil })
	a := h.account()
	h.ui(func() { test.Tap(a.demoBtn) })
	h.eventually("the wizard", func() bool { return a.enroll != nil && !a.model.busy })
	h.ui(func() { test.Tap(a.enroll.enrollBtn) })
	h.touchWhenAsked(k)
	h.eventually("enrolled", func() bool { return a.enroll.enrolled != nil })
	h.ui(func() { test.Tap(a.enroll.signIn) })
	h.touchWhenAsked(k)
	h.eventually("signed in", func() bool { return a.model.me != nil && a.model.me.Scope == "full" && !a.model.busy })
	return a
}

// redeems reports whether code is one of root's working recovery codes.
func redeems(t *testing.T, srv *rptest.Server, code string) bool {
	t.Helper()
	c, err := rpclient.New(rpclient.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.RedeemRecoveryCode(t.Context(), "root", code)
	switch {
	case err == nil:
		return true
	case errors.Is(err, rpclient.ErrUnauthorized), errors.Is(err, rpclient.ErrRecoveryCodeUsed):
		return false
	}
	t.Fatalf("redeem: %v", err)
	return false
}

// TestRecoveryCodesFromTheAccount: a signed-in account makes its first
// set of ten codes, shown once and copied, forgotten by the window when
// the dialog closes, and working at the service; the count is then
// shown; a second set, some minutes later, needs a confirmation and a
// fresh sign-in (a touch), and the first set stops working.
func TestRecoveryCodesFromTheAccount(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv))
	k := newTestKey(t, 1)
	a := h.signedInWithKey(k)
	h.ui(func() {
		if !a.codesBtn.Visible() {
			t.Fatal("no Recovery codes button in a full session")
		}
		test.Tap(a.codesBtn)
	})
	h.eventually("the status read", func() bool { return a.codes != nil && !a.codes.make.Disabled() })
	var first []string
	h.ui(func() {
		if a.codes.status.Text != "You have no recovery codes yet." {
			t.Errorf("status %q", a.codes.status.Text)
		}
		test.Tap(a.codes.make)
	})
	h.eventually("the codes shown", func() bool { return a.codes != nil && a.codes.codes.Visible() })
	h.ui(func() {
		first = strings.Split(a.codes.codes.Text, "\n")
		test.Tap(a.codes.copyAll)
		if got := h.app.Clipboard().Content(); got != a.codes.codes.Text {
			t.Errorf("clipboard %q", got)
		}
	})
	if len(first) != 10 {
		t.Fatalf("%d codes: %q", len(first), first)
	}
	if !redeems(t, srv, first[0]) {
		t.Fatal("a code shown does not work at the service")
	}
	var c *codesDialog
	h.ui(func() {
		c = a.codes
		test.Tap(c.done)
		if c.codes.Text != "" || a.codes != nil {
			t.Error("the codes stay in the window after the dialog closed")
		}
		test.Tap(a.codesBtn)
	})
	h.eventually("the count", func() bool { return a.codes != nil && !a.codes.make.Disabled() })
	h.ui(func() {
		if !strings.HasPrefix(a.codes.status.Text, "9 of your 10 codes are left") {
			t.Errorf("status %q", a.codes.status.Text)
		}
	})

	// Later: the session is no longer fresh enough for new codes.
	srv.Clock.Advance(10 * time.Minute)
	h.ui(func() {
		test.Tap(a.codes.make)
		if a.codesConfirm == nil {
			t.Fatal("replacing working codes asks nothing")
		}
		a.codesConfirm.Confirm()
	})
	h.touchWhenAsked(k)
	h.eventually("the new codes", func() bool { return a.codes != nil && a.codes.codes.Visible() })
	var second []string
	h.ui(func() { second = strings.Split(a.codes.codes.Text, "\n") })
	if len(second) != 10 || second[0] == first[1] {
		t.Fatalf("new set: %q", second)
	}
	if redeems(t, srv, first[1]) {
		t.Error("a code of the replaced set still works")
	}
	if !redeems(t, srv, second[0]) {
		t.Error("a code of the new set does not work")
	}
}
