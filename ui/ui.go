// Package ui is Keydesk's desktop window: Fyne screens only. Every device
// operation and every call to a service runs off the UI goroutine, through
// the platform, enroll and recovery packages; the screens keep their state
// in small models that only the UI goroutine touches, and show what the
// background work reports.
package ui

import (
	"context"
	"slices"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/models"
	"github.com/keydesk/keydesk/enroll/profile"
	"github.com/keydesk/keydesk/enroll/provision"
	"github.com/keydesk/keydesk/platform"
)

// Deps is what the screens work with.
type Deps struct {
	// Keys finds and opens security keys (libfido2, and the virtual key
	// when none is plugged in: inprocess.WithFallback).
	Keys platform.Enumerator
	// WatchInterval is how often the key list is refreshed, so that it
	// follows plugs and unplugs; 500 ms when zero.
	WatchInterval time.Duration
	// TouchVirtual, if set, plays the touch of the virtual key: the touch
	// prompt offers it as a button while the virtual key waits.
	TouchVirtual func()
	// Versions are the components named in Settings > About, in order
	// (Keydesk, libfido2, Go...).
	Versions []Version
	// NewAccount, if set, makes the account at the service (given how
	// its flows reach the person: the PIN dialog, the account chooser):
	// the Account tab. Service says which service it is.
	NewAccount func(ui enroll.UI) (Account, error)
	Service    Service
	// Profiles, if set, are the services listed in Settings (the
	// profiles file the keydesk profiles command edits).
	Profiles *profile.Set
	// NewRecoverer, if set, makes the recovery flows at the service
	// (given how they reach the person: the PIN dialog): the Recovery
	// tab, "I lost my key".
	NewRecoverer func(ui enroll.UI) (Recoverer, error)
	// Helpdesk, if set, is the service's client with the Account tab's
	// session (the *rpclient.Client its enroll.Service uses, whose token
	// changes as people sign in and out): the Helpdesk tab, shown while a
	// helpdesk member or an admin is signed in with a key.
	Helpdesk func() Helpdesk
	// Provisioning, if set, gives the provisioning configuration for the
	// Account tab's session (its API client, origin and RP ID): the
	// Provisioning tab, shown while an admin is signed in with a key.
	Provisioning func() provision.Config
	// ProvisioningDir is the folder under which each batch gets its results
	// folder by default.
	ProvisioningDir string
	// Models, if set, names and pictures key models by AAGUID (the
	// service's FIDO metadata, through enroll/models): the pictures of
	// the Keys tab and of the account's keys.
	Models func(ctx context.Context, aaguid [16]byte) (models.Model, error)
	// Do runs f on the UI goroutine; nil means fyne.Do. Tests serialize
	// with their own.
	Do func(f func())
}

// Version is one line of Settings > About.
type Version struct{ Name, Version string }

// Shell is the Keydesk window: its screens, and the work they run.
type Shell struct {
	app  fyne.App
	win  fyne.Window
	deps Deps

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	touch *touchPrompt
	// models are the key models' pictures the screens show.
	models   *modelIcons
	keys     *keysScreen
	account  *accountScreen
	recovery *recoveryScreen
	helpdesk *helpdeskScreen
	// provisioning is the Provisioning tab's screen, nil without
	// Deps.Provisioning.
	provisioning *provisioningScreen
	settings     *settingsScreen
	tabs         *container.AppTabs
	// pinPrompt is a flow's PIN dialog on show, for the tests.
	pinPrompt *pinPrompt
}

// New builds the window on app. Start begins watching for keys.
func New(app fyne.App, d Deps) *Shell {
	if d.WatchInterval <= 0 {
		d.WatchInterval = 500 * time.Millisecond
	}
	if d.Do == nil {
		d.Do = fyne.Do
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Shell{app: app, deps: d, ctx: ctx, cancel: cancel}
	s.win = app.NewWindow("Keydesk")
	s.touch = newTouchPrompt(s)
	s.models = newModelIcons(s)
	s.keys = newKeysScreen(s)
	s.settings = newSettingsScreen(s)
	s.tabs = container.NewAppTabs(container.NewTabItem("Keys", s.keys.content))
	if d.NewAccount != nil {
		acc, err := d.NewAccount(s.enrollUI())
		if err != nil {
			s.tabs.Append(container.NewTabItem("Account", widget.NewLabel("The account service is not available: "+errorText(err))))
		} else {
			s.account = newAccountScreen(s, acc, d.Service)
			s.tabs.Append(container.NewTabItem("Account", s.account.content))
			if d.Helpdesk != nil {
				s.helpdesk = newHelpdeskScreen(s)
			}
			if d.Provisioning != nil {
				s.provisioning = newProvisioningScreen(s)
			}
		}
	}
	if d.NewRecoverer != nil {
		rec, err := d.NewRecoverer(s.recoveryEnrollUI())
		if err != nil {
			s.tabs.Append(container.NewTabItem("Recovery", widget.NewLabel("Account recovery is not available: "+errorText(err))))
		} else {
			s.recovery = newRecoveryScreen(s, rec, d.Service)
			s.tabs.Append(container.NewTabItem("Recovery", s.recovery.content))
		}
	}
	s.tabs.Append(container.NewTabItem("Settings", s.settings.content))
	s.win.SetContent(s.tabs)
	s.win.Resize(fyne.NewSize(720, 520))
	s.win.SetOnClosed(s.Close)
	return s
}

// Window is the main window.
func (s *Shell) Window() fyne.Window { return s.win }

// Start begins the background work: watching for keys.
func (s *Shell) Start() {
	s.keys.watch()
	if s.account != nil {
		s.do(s.account.start)
	}
}

// Close stops the background work and waits for it; operations in
// progress are cancelled (a key waiting for a touch stops waiting).
func (s *Shell) Close() {
	s.cancel()
	s.wg.Wait()
}

// do runs f on the UI goroutine.
func (s *Shell) do(f func()) { s.deps.Do(f) }

// goBackground runs f off the UI goroutine, with a context that ends when
// the window closes.
func (s *Shell) goBackground(f func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
}

// sessionTabs are the tabs shown only for some sessions, in their order
// right after the Account tab.
func (s *Shell) sessionTabs() []*container.TabItem {
	var out []*container.TabItem
	if s.helpdesk != nil {
		out = append(out, s.helpdesk.tab)
	}
	if s.provisioning != nil {
		out = append(out, s.provisioning.tab)
	}
	return out
}

// showTab puts tab, one of sessionTabs, in its place after the Account
// tab, or takes it away (then showing the tab before it if it was the one
// on show) (UI goroutine).
func (s *Shell) showTab(tab *container.TabItem, shown bool) {
	tabs := s.tabs
	i := slices.Index(tabs.Items, tab)
	switch {
	case shown && i < 0:
		order := s.sessionTabs()
		before := order[:max(slices.Index(order, tab), 0)]
		at := len(tabs.Items)
		for j, it := range tabs.Items {
			if (s.account != nil && it.Content == fyne.CanvasObject(s.account.content)) || slices.Contains(before, it) {
				at = j + 1
			}
		}
		sel := tabs.SelectedIndex()
		tabs.SetItems(slices.Insert(slices.Clone(tabs.Items), at, tab))
		if sel >= at {
			tabs.SelectIndex(sel + 1)
		}
	case !shown && i >= 0:
		wasShown := tabs.SelectedIndex() == i
		tabs.Remove(tab)
		if wasShown && i > 0 {
			tabs.SelectIndex(i - 1)
		}
	}
}

// connectedDevices are the keys plugged in now, as the Keys tab lists
// them (UI goroutine).
func (s *Shell) connectedDevices() []platform.Device {
	devs := make([]platform.Device, len(s.keys.model.entries))
	for i, e := range s.keys.model.entries {
		devs[i] = e.dev
	}
	return devs
}

// openAll opens the keys it can of devs.
func (s *Shell) openAll(ctx context.Context, devs []platform.Device) []platform.Authenticator {
	var keys []platform.Authenticator
	for _, d := range devs {
		if k, err := s.deps.Keys.Open(ctx, d); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// closeKeys closes keys.
func closeKeys(keys []platform.Authenticator) {
	for _, k := range keys {
		k.Close()
	}
}

// pickKey opens the key to use of devs: the only one, or the one the
// person touches among several.
func (s *Shell) pickKey(ctx context.Context, devs []platform.Device) (platform.Authenticator, error) {
	keys := s.openAll(ctx, devs)
	if len(keys) == 0 {
		return nil, &platform.Error{Op: "choose a key", Kind: platform.ErrNoDevice, RetriesLeft: -1}
	}
	k, err := platform.SelectAmong(ctx, keys)
	for _, o := range keys {
		if o != k {
			o.Close()
		}
	}
	return k, err
}
