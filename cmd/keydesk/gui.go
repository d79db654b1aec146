package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"fyne.io/fyne/v2/app"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/libfido2"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/rp/local"
	"github.com/keydesk/keydesk/ui"
)

// appID is the desktop app's identifier (FyneApp.toml's too): where Fyne
// keeps its preferences.
const appID = "io.keydesk.desktop"

// The virtual key's files in the data directory: its state, sealed with
// the key in the second file (so that a copy of the state alone is no
// use). It is a key for trying Keydesk out: both stay on this computer.
const (
	virtualKeyState = "virtual-key.state"
	virtualKeySeal  = "virtual-key.seal"
)

// runGUI opens the Keydesk window and returns when it is closed.
func runGUI() error {
	dir, err := local.DataDir()
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	seal, err := local.LoadSecret(filepath.Join(dir, virtualKeySeal))
	if err != nil {
		return fmt.Errorf("virtual key: %w", err)
	}
	touch := softkey.NewSignal(30 * time.Second)
	engine, err := softkey.New(softkey.Config{StatePath: filepath.Join(dir, virtualKeyState), StateKey: seal[:32], Presence: touch})
	if err != nil {
		return fmt.Errorf("virtual key: %w", err)
	}
	extra, err := platform.ExtraDevices()
	if err != nil {
		return err
	}
	keys := inprocess.WithFallback(libfido2.New(libfido2.Config{ExtraDevices: extra}), inprocess.New(engine))

	a := app.NewWithID(appID)
	s := ui.New(a, ui.Deps{
		Keys:         keys,
		TouchVirtual: func() { touch.Touch() },
		Versions:     versions(a.Metadata().Version),
	})
	s.Start()
	s.Window().ShowAndRun()
	s.Close()
	return nil
}

// versions names what Keydesk is made of, for Settings > About.
func versions(app string) []ui.Version {
	if app == "" {
		app = "development build"
	}
	out := []ui.Version{{Name: "Keydesk", Version: app}, {Name: "Go", Version: runtime.Version()}}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	for _, m := range []struct{ path, name string }{
		{"fyne.io/fyne/v2", "Fyne"},
		{"github.com/keys-pub/go-libfido2", "go-libfido2"},
		{"github.com/go-webauthn/webauthn", "go-webauthn"},
	} {
		for _, d := range bi.Deps {
			if d.Path == m.path {
				out = append(out, ui.Version{Name: m.name, Version: d.Version})
			}
		}
	}
	return out
}
