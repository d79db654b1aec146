package ui

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"time"
)

// Tour walks through the main screens of a running window and saves
// each as a PNG in dir (make screenshots): the keys, a key's page and its
// PIN dialog, the account (with the demo service: its first key enrolled
// with the virtual key, touched by the tour), the helpdesk and
// provisioning tabs of the demo account (an admin), the recovery tab, and
// the settings. It runs
// on the real driver, from a goroutine other than the UI's, once the
// window is shown. It leaves the demo account with a key: run it on a
// throwaway data directory. capture takes a picture of the screen; nil
// captures the window's canvas (which a display without working OpenGL
// read-back, such as Xvfb's, draws blank).
func (s *Shell) Tour(ctx context.Context, dir string, capture func() (image.Image, error)) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if capture == nil {
		capture = func() (image.Image, error) {
			var img image.Image
			s.doWait(func() { img = s.win.Canvas().Capture() })
			return img, nil
		}
	}
	shot := func(name string) error {
		img, err := capture()
		if err != nil {
			return fmt.Errorf("tour: %s: %w", name, err)
		}
		f, err := os.Create(filepath.Join(dir, name+".png"))
		if err != nil {
			return err
		}
		if err := png.Encode(f, img); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	wait := func(what string, cond func() bool) error {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var ok bool
			s.doWait(func() { ok = cond() })
			if ok {
				// Let the frame with the change be drawn.
				time.Sleep(300 * time.Millisecond)
				return nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("tour: waiting for %s: timed out", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	described := func() bool { return len(s.keys.model.entries) > 0 && s.keys.model.entries[0].info != nil }
	if err := wait("a key described", described); err != nil {
		return err
	}
	if err := shot("keys"); err != nil {
		return err
	}
	s.doWait(func() { s.keys.rows[0].open.OnTapped() })
	if err := wait("the key's page", func() bool { return s.keys.detail != nil && s.keys.detail.status.Text == "" }); err != nil {
		return err
	}
	if err := shot("key-detail"); err != nil {
		return err
	}
	s.doWait(func() { s.keys.detail.askPIN() })
	if err := wait("the PIN dialog", func() bool { return s.keys.detail.pin != nil }); err != nil {
		return err
	}
	if err := shot("pin"); err != nil {
		return err
	}
	s.doWait(func() {
		s.keys.detail.pin.close(false)
		s.keys.close()
	})
	if s.account != nil {
		s.doWait(func() { s.tabs.SelectIndex(1) })
		if err := wait("the account tab", func() bool { return !s.account.model.busy }); err != nil {
			return err
		}
		if err := shot("account"); err != nil {
			return err
		}
		if err := s.tourDemo(wait, shot); err != nil {
			return err
		}
	}
	if s.helpdesk != nil {
		var shown bool
		s.doWait(func() { shown = s.selectTab("Helpdesk") })
		if shown {
			if err := wait("the helpdesk tab", func() bool { return true }); err != nil {
				return err
			}
			if err := shot("helpdesk"); err != nil {
				return err
			}
		}
	}
	if s.provisioning != nil {
		var shown bool
		s.doWait(func() { shown = s.selectTab("Provisioning") })
		if shown {
			if err := wait("the provisioning tab", func() bool { return true }); err != nil {
				return err
			}
			if err := shot("provisioning"); err != nil {
				return err
			}
		}
	}
	if s.recovery != nil {
		s.doWait(func() { s.selectTab("Recovery") })
		if err := wait("the recovery tab", func() bool { return true }); err != nil {
			return err
		}
		if err := shot("recovery"); err != nil {
			return err
		}
	}
	s.doWait(func() { s.tabs.SelectIndex(len(s.tabs.Items) - 1) })
	if err := wait("the settings tab", func() bool { return true }); err != nil {
		return err
	}
	return shot("settings")
}

// tourDemo enrolls the demo account's first key with the virtual key and
// signs in with it, capturing the wizard, the touch sheet and the
// account's keys.
func (s *Shell) tourDemo(wait func(string, func() bool) error, shot func(string) error) error {
	a := s.account
	if a.demoBtn == nil || s.deps.TouchVirtual == nil {
		return nil
	}
	s.doWait(a.startDemo)
	if err := wait("the enrollment wizard", func() bool { return a.enroll != nil && !a.model.busy }); err != nil {
		return err
	}
	s.doWait(func() { a.enroll.nickname.SetText("My first key") })
	if err := shot("enroll"); err != nil {
		return err
	}
	s.doWait(a.enroll.start)
	if err := wait("the touch sheet", s.touch.visible); err != nil {
		return err
	}
	if err := shot("touch"); err != nil {
		return err
	}
	s.deps.TouchVirtual()
	if err := wait("the key enrolled", func() bool { return a.enroll != nil && a.enroll.enrolled != nil }); err != nil {
		return err
	}
	if err := shot("enrolled"); err != nil {
		return err
	}
	s.doWait(func() {
		a.enroll.finish()
		a.signInWithKey()
	})
	if err := wait("the touch sheet", s.touch.visible); err != nil {
		return err
	}
	s.deps.TouchVirtual()
	if err := wait("signed in with the key", func() bool { return a.model.me != nil && a.model.me.Scope == "full" && !a.model.busy }); err != nil {
		return err
	}
	return shot("account-keys")
}

// doWait runs f on the UI goroutine and waits for it.
func (s *Shell) doWait(f func()) {
	done := make(chan struct{})
	s.do(func() {
		defer close(done)
		f()
	})
	<-done
}

// selectTab shows the tab called text, and reports whether there is one.
func (s *Shell) selectTab(text string) bool {
	for _, it := range s.tabs.Items {
		if it.Text == text {
			s.tabs.Select(it)
			return true
		}
	}
	return false
}
