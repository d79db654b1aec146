package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/rp/rptest"
)

func (k cordedKey) MakeCredential(ctx context.Context, req platform.MakeCredentialRequest) (*platform.Attestation, error) {
	if err := k.c.enter("MakeCredential"); err != nil {
		return nil, err
	}
	a, err := k.pluggedKey.MakeCredential(ctx, req)
	return a, k.c.leave("MakeCredential", err)
}

// TestEnrollWizardKeyPulledMidTouch: the key pulled out while it waits
// for the touch ends the enrollment with what happened and what to do;
// the sheet goes, the wizard stays open to try again, and the service
// holds no key for the account.
func TestEnrollWizardKeyPulledMidTouch(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withService(&srv))
	k, c := h.newCordedKey(1, softkey.Config{}, 10*time.Second)
	h.usb.plug(k)
	h.eventually("the key read", func() bool { return len(h.rows()) == 1 && h.keys().model.entries[0].info != nil })
	a := h.account()
	h.ui(func() { test.Tap(a.demoBtn) })
	h.eventually("the wizard", func() bool { return a.enroll != nil && !a.model.busy })
	w := a.enroll
	h.ui(func() {
		w.nickname.SetText("blue")
		test.Tap(w.enrollBtn)
	})
	h.eventually("the touch sheet", func() bool { return h.shell.touch.visible() })
	c.pull()
	h.eventually("the enrollment stopped", func() bool { return !w.busy && !h.shell.touch.visible() })
	h.ui(func() {
		if !w.problem.Visible() || !strings.Contains(strings.ToLower(w.problem.Text), "lost contact") || w.enrolled != nil {
			t.Errorf("after the pull: problem %q (shown %v), enrolled %v", w.problem.Text, w.problem.Visible(), w.enrolled)
		}
		if a.enroll != w || w.enrollBtn.Disabled() {
			t.Error("the wizard closed, or cannot try again")
		}
	})
	// Nothing was registered: the account has no key.
	if cs, err := srv.Config.Store.Credentials(t.Context(), rootID(t, srv)); err != nil || len(cs) != 0 {
		t.Errorf("root's credentials after the pull: %d, %v", len(cs), err)
	}
}

// rootID is root's user handle at srv.
func rootID(t *testing.T, srv *rptest.Server) []byte {
	t.Helper()
	u, err := srv.Config.Store.UserByName(t.Context(), "root")
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}
