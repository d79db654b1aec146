package ui

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/keydesk/keydesk/rp/rptest"
)

// TestTour: the screenshot tour walks every screen it names, enrolling
// the demo account's first key with the virtual key, and writes a
// picture of each.
func TestTour(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withVirtualKey(), withService(&srv), withHelpdeskTab(), withProvisioningTab(), withRecovery(&srv))
	dir := t.TempDir()
	if err := h.shell.Tour(t.Context(), dir, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"keys", "key-detail", "pin", "account", "enroll", "touch", "enrolled", "account-keys", "helpdesk", "provisioning", "recovery", "settings"} {
		f, err := os.Open(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 100 {
			t.Errorf("%s.png: %v, %v", name, err, img)
		}
	}
	h.ui(func() {
		if a := h.shell.account; a.model.me == nil || len(a.model.keys) != 1 || a.model.keys[0].Nickname != "My first key" {
			t.Errorf("after the tour: session %+v, keys %+v", a.model.me, a.model.keys)
		}
	})
}
