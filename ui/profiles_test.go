package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"github.com/keydesk/keydesk/enroll/profile"
)

// withProfiles lists the profiles of a file in the test's directory.
func withProfiles(path string) harnessOption {
	return func(h *harness, d *Deps) {
		set, err := profile.Load(path)
		if err != nil {
			h.t.Fatal(err)
		}
		d.Profiles = set
	}
}

// TestProfilesInSettings: a service is added (saved to the profiles file
// the keydesk command reads, and in use as the first), a bad origin is
// refused in plain words and nothing is saved, another is chosen, the
// local demo chosen back, one removed.
func TestProfilesInSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profiles.json")
	h := newHarness(t, withProfiles(path))
	p := h.shell.settings.profiles
	add := func(name, origin string) {
		p.name.SetText(name)
		p.origin.SetText(origin)
		test.Tap(p.add)
	}
	h.ui(func() {
		if p.demo.Visible() || !strings.Contains(labels(p.rows), "local demo service · in use") {
			t.Errorf("no profile: the demo should be in use; rows %q", labels(p.rows))
		}
		add("work", "http://login.example.com")
		if !p.problem.Visible() || !strings.Contains(p.problem.Text, "https") {
			t.Errorf("plain HTTP off loopback: problem %q (shown %v)", p.problem.Text, p.problem.Visible())
		}
		if _, err := os.Stat(path); err == nil {
			t.Error("a refused profile was saved")
		}
		add("work", "https://login.example.com")
		add("lab", "https://lab.example.org")
	})
	set, err := profile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cur, ok := set.Current(); !ok || cur.Name != "work" || len(set.List()) != 2 {
		t.Fatalf("saved: current %+v (%v), %d profiles", cur, ok, len(set.List()))
	}
	h.ui(func() {
		if got := labels(p.rows); !strings.Contains(got, "work — https://login.example.com (RP ID login.example.com) · in use") {
			t.Errorf("rows: %q", got)
		}
		p.use("lab")
		p.remove("work")
		p.use("")
		if !strings.Contains(p.note.Text, "next time") {
			t.Errorf("note: %q", p.note.Text)
		}
	})
	if set, err = profile.Load(path); err != nil {
		t.Fatal(err)
	}
	if _, ok := set.Current(); ok || len(set.List()) != 1 || set.List()[0].Name != "lab" {
		t.Errorf("saved: %+v", set.List())
	}
}
