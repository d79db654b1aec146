//go:build !nogui

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/models"
	"github.com/keydesk/keydesk/enroll/profile"
	"github.com/keydesk/keydesk/enroll/provision"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/enroll/webauthn"
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

// provisioningFolder is the folder of the data directory that holds a
// results folder per provisioning batch, by default.
const provisioningFolder = "provisioning"

// runGUI opens the Keydesk window and returns when it is closed.
func runGUI() error { return runWindow(windowOptions{}) }

// windowOptions vary the window for the tour and the measurements.
type windowOptions struct {
	// wrapKeys, if set, stands in front of the hardware keys' enumerator.
	wrapKeys func(platform.Enumerator) platform.Enumerator
	// watchInterval is the key list's refresh interval; 0 is ui's.
	watchInterval time.Duration
	// onStarted runs once the app runs, on its goroutine.
	onStarted func(fyne.App, *ui.Shell)
}

// errNoDisplay is keydesk with no command where there is no display (over
// SSH, in a container): GLFW would panic.
var errNoDisplay = errors.New("there is no display to open the window on (DISPLAY is not set); " +
	"the commands work without one: keydesk help lists them")

// runWindow runs the app until its window closes.
func runWindow(o windowOptions) error {
	if err := checkDisplay(); err != nil {
		return err
	}
	dir, err := local.DataDir()
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	extra, err := platform.ExtraDevices()
	if err != nil {
		return err
	}
	var hardware platform.Enumerator = libfido2.New(libfido2.Config{ExtraDevices: extra})
	if o.wrapKeys != nil {
		hardware = o.wrapKeys(hardware)
	}
	// A virtual key that cannot be opened (its files damaged) leaves the
	// window with hardware keys only: the window still opens.
	keys, touchVirtual := hardware, func() {}
	if engine, touch, err := virtualKey(dir); err != nil {
		fmt.Fprintln(os.Stderr, "keydesk: the virtual key is not available:", err)
	} else {
		keys, touchVirtual = inprocess.WithFallback(hardware, inprocess.New(engine)), func() { touch.Touch() }
	}

	// The profiles file is the keydesk profiles command's; a broken one
	// leaves Settings without it, and the window on the demo service.
	var set *profile.Set
	if path, err := profile.DefaultPath(); err == nil {
		if set, err = profile.Load(path); err != nil {
			fmt.Fprintln(os.Stderr, "keydesk: profiles:", err)
			set = nil
		}
	}
	deps := ui.Deps{Keys: keys, WatchInterval: o.watchInterval, TouchVirtual: touchVirtual, Profiles: set}
	// Without a service the keys still work: the Account tab says why.
	if stop, err := withService(&deps, dir, set); err != nil {
		fmt.Fprintln(os.Stderr, "keydesk:", err)
		deps.NewAccount = func(enroll.UI) (ui.Account, error) { return nil, err }
	} else {
		defer stop()
	}

	a := app.NewWithID(appID)
	a.SetIcon(fyne.NewStaticResource("keydesk.png", assets.Icon))
	deps.Versions = versions(a.Metadata().Version)
	s := ui.New(a, deps)
	if o.onStarted != nil {
		a.Lifecycle().SetOnStarted(func() { o.onStarted(a, s) })
	}
	s.Start()
	s.Window().ShowAndRun()
	s.Close()
	return nil
}

// withService fills in d's account, recovery, helpdesk and provisioning
// for the service in use (see service); stop stops what was started.
func withService(d *ui.Deps, dir string, set *profile.Set) (stop func(), err error) {
	svc, prof, stop, err := service(dir, set)
	if err != nil {
		return nil, err
	}
	accountCfg, err := enrollConfig(prof, enroll.UI{})
	if err != nil {
		stop()
		return nil, fmt.Errorf("profile %s: %w", prof.Name, err)
	}
	// Without a keyring the session lives as long as the window: the
	// Account tab says so.
	tokens, warning := profile.OpenTokenStore()
	svc.Notice = warning
	d.Service = svc
	d.NewAccount = func(u enroll.UI) (ui.Account, error) { return account(accountCfg, tokens, u) }
	// The helpdesk's calls go with the Account tab's session: the same
	// client, whose token follows sign-in and sign-out.
	d.Helpdesk = func() ui.Helpdesk { return accountCfg.API }
	// Provisioning too: an admin's session, the one the Account tab
	// signs in; each batch's results and PIN pages go in a folder of
	// their own in the data directory (the PIN pages' folder is 0700).
	d.Provisioning = func() provision.Config {
		return provision.Config{API: accountCfg.API, Origin: accountCfg.Origin, RPID: accountCfg.RPID}
	}
	d.ProvisioningDir = filepath.Join(dir, provisioningFolder)
	// Key models' names and pictures come from the service's FIDO
	// metadata; the question needs no session.
	d.Models = models.New(accountCfg.API, 0).Model
	d.NewRecoverer = func(u enroll.UI) (ui.Recoverer, error) {
		cfg, err := enrollConfig(prof, u)
		if err != nil {
			return nil, err
		}
		return ui.NewRecoverer(cfg.API, cfg), nil
	}
	return stop, nil
}

// virtualKey opens the virtual key kept in dir, and its touch.
func virtualKey(dir string) (*softkey.Authenticator, *softkey.Signal, error) {
	seal, err := local.LoadSecret(filepath.Join(dir, virtualKeySeal))
	if err != nil {
		return nil, nil, err
	}
	touch := softkey.NewSignal(30 * time.Second)
	engine, err := softkey.New(softkey.Config{StatePath: filepath.Join(dir, virtualKeyState), StateKey: seal[:32], Presence: touch})
	if err != nil {
		return nil, nil, err
	}
	return engine, touch, nil
}

// demoProfile names the embedded service's profile (and its session's
// slot in the keyring).
const demoProfile = "local-demo"

// service is the account service the window works with: the current
// profile's, or, with none configured, the reference RP started here
// (rp/local) with a demo account for the person at the computer. stop
// stops what was started.
func service(dir string, set *profile.Set) (ui.Service, profile.Profile, func(), error) {
	if set != nil {
		if p, ok := set.Current(); ok {
			return ui.Service{Name: p.Name, Origin: p.Origin}, p, func() {}, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := local.Start(ctx, local.Config{DataDir: dir})
	if err != nil {
		return ui.Service{}, profile.Profile{}, nil, fmt.Errorf("start the local demo service: %w", err)
	}
	user := demoUser()
	code, err := srv.DemoAccount(ctx, user)
	if err != nil {
		// The account may need what only an admin can do (its keys were
		// all revoked): the app still works, signing in as usual.
		fmt.Fprintln(os.Stderr, "keydesk: demo account:", err)
		code = ""
	}
	p := profile.Profile{Name: demoProfile, Origin: srv.Origin(), RPID: srv.RPID(), APIURL: srv.BaseURL(), Username: user}
	svc := ui.Service{Name: "Keydesk local demo", Origin: srv.Origin(), DemoUser: user, DemoCode: code}
	return svc, p, func() { srv.Close() }, nil
}

// demoUser is the demo account's name: the person's login name when the
// service takes it as a user name, else "demo".
func demoUser() string {
	if u, err := user.Current(); err == nil {
		name := strings.ToLower(u.Username)
		if i := strings.LastIndexAny(name, `\`); i >= 0 { // DOMAIN\name on Windows
			name = name[i+1:]
		}
		if name != "" && name != "root" && strings.IndexFunc(name, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
		}) < 0 {
			return name
		}
	}
	return "demo"
}

// account is the account at cfg's service, with the person reached
// through u, its session in tokens (the system keyring, or, without one,
// memory).
func account(cfg enroll.Config, tokens enroll.TokenStore, u enroll.UI) (ui.Account, error) {
	cfg.UI, cfg.Tokens = u, tokens
	return enroll.New(cfg)
}

// enrollConfig is the flows' configuration for p's service, with a client
// of its own and no token store.
func enrollConfig(p profile.Profile, u enroll.UI) (enroll.Config, error) {
	api, err := rpclient.New(rpclient.Config{BaseURL: p.APIURL})
	if err != nil {
		return enroll.Config{}, err
	}
	origin, err := webauthn.ParseOrigin(p.Origin)
	if err != nil {
		return enroll.Config{}, err
	}
	return enroll.Config{Profile: p.Name, Origin: origin, RPID: p.RPID, API: api, UI: u}, nil
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
