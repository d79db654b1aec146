package ui

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/softkey"
)

// The tests drive the real screens against in-process software keys (the
// same CTAP 2.1 engine the virtual key is), plugged and unplugged through
// a test Enumerator. The UI's work runs in goroutines as in the app; its
// updates, and everything a test does to the window, are serialized by
// one lock standing in for the UI goroutine.

// testPIN is the PIN the tests give their keys.
const testPIN = "123456"

// testKey is a software key as the tests plug it: its engine, its
// presence (touches), and the device record it enumerates as.
type testKey struct {
	engine *softkey.Authenticator
	signal *softkey.Signal
	key    platform.Authenticator
	dev    platform.Device
}

// pluggedKey is an in-process key seen at a device path of its own, so
// that several can be plugged at once.
type pluggedKey struct {
	platform.Authenticator
	dev platform.Device
}

func (p pluggedKey) Device() platform.Device { return p.dev }

// newTestKey makes a software key that waits for explicit touches.
func newTestKey(t *testing.T, n int) *testKey {
	t.Helper()
	sig := softkey.NewSignal(10 * time.Second)
	a, err := softkey.New(softkey.Config{Presence: sig})
	if err != nil {
		t.Fatal(err)
	}
	dev := platform.Device{Path: fmt.Sprintf("/dev/hidraw%d", n), Transport: platform.TransportUSB,
		Manufacturer: "Keydesk", Product: fmt.Sprintf("Test key %d", n)}
	return &testKey{engine: a, signal: sig, key: pluggedKey{inprocess.New(a), dev}, dev: dev}
}

// usbPort is the test's USB stack: the keys plugged in now.
type usbPort struct {
	mu   sync.Mutex
	keys []*testKey
}

func (u *usbPort) plug(k *testKey) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.keys = append(u.keys, k)
}

func (u *usbPort) unplug(k *testKey) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.keys = slices.DeleteFunc(u.keys, func(x *testKey) bool { return x == k })
}

func (u *usbPort) Devices(context.Context) ([]platform.Device, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	devs := make([]platform.Device, len(u.keys))
	for i, k := range u.keys {
		devs[i] = k.dev
	}
	return devs, nil
}

func (u *usbPort) Open(_ context.Context, d platform.Device) (platform.Authenticator, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, k := range u.keys {
		if k.dev.Path == d.Path {
			return k.key, nil
		}
	}
	return nil, &platform.Error{Op: "open", Kind: platform.ErrDeviceRemoved, RetriesLeft: -1}
}

// harness is a Keydesk window on the test driver.
type harness struct {
	t     *testing.T
	mu    sync.Mutex // the UI goroutine
	app   fyne.App
	shell *Shell
	usb   *usbPort
	// virtual is the virtual key, when the harness offers one.
	virtual *softkey.Signal
	// api is withService's client, whose session is the Account tab's.
	api *rpclient.Client
}

type harnessOption func(*harness, *Deps)

// withVirtualKey offers the virtual key when no key is plugged in.
func withVirtualKey() harnessOption {
	return func(h *harness, d *Deps) {
		sig := softkey.NewSignal(10 * time.Second)
		a, err := softkey.New(softkey.Config{Presence: sig})
		if err != nil {
			h.t.Fatal(err)
		}
		h.virtual = sig
		d.Keys = inprocess.WithFallback(h.usb, inprocess.New(a))
		d.TouchVirtual = func() { sig.Touch() }
	}
}

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, usb: &usbPort{}}
	h.app = test.NewTempApp(t)
	d := Deps{
		Keys:          h.usb,
		WatchInterval: 20 * time.Millisecond,
		Versions:      []Version{{"Keydesk", "test"}, {"libfido2", "1.12.0"}},
		Do: func(f func()) {
			h.mu.Lock()
			defer h.mu.Unlock()
			f()
		},
	}
	for _, o := range opts {
		o(h, &d)
	}
	h.ui(func() { h.shell = New(h.app, d) })
	h.shell.Window().Resize(fyne.NewSize(720, 520))
	h.shell.Start()
	t.Cleanup(func() {
		h.shell.Close()
		h.ui(func() { h.shell.Window().Close() })
	})
	return h
}

// ui runs f as the UI goroutine.
func (h *harness) ui(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

// eventually waits, up to 10 s, for cond (run as the UI goroutine).
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ok bool
		h.ui(func() { ok = cond() })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			h.t.Fatalf("timed out waiting for %s\n%s", what, buf[:n])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// keys is the Keys tab.
func (h *harness) keys() *keysScreen { return h.shell.keys }

// titles are the list's entries' titles and details (UI goroutine).
func (h *harness) rows() []string {
	var out []string
	for _, e := range h.keys().model.entries {
		out = append(out, e.title()+" | "+e.detail())
	}
	return out
}

// labels joins the text of the labels in a container's tree.
func labels(o fyne.CanvasObject) string {
	var out []string
	var walk func(fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
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
	return strings.Join(out, "\n")
}
