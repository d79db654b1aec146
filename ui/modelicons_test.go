package ui

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/png"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/enroll/models"
	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/rp/mds"
	"github.com/keydesk/keydesk/rp/mds/mdstest"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
)

// modelPictures are a model's two pictures as a metadata BLOB carries
// them: a red square PNG for light backgrounds, a yellow disc SVG for
// dark ones.
func modelPictures(t *testing.T) (light, dark []byte) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for y := range 32 {
		for x := range 32 {
			img.Set(x, y, color.NRGBA{0xd0, 0x20, 0x20, 0xff})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="14" fill="#f0c000"/></svg>`)
}

// metadataModel is the AAGUID of a model that Keydesk's own list of names
// does not know, and the test BLOB does.
const metadataModel = "7e570000-0000-4000-8000-00000000a0a0"

// newModelKey is newTestKey of the model metadataModel.
func newModelKey(t *testing.T, n int) *testKey {
	t.Helper()
	k := newTestKey(t, n)
	id, err := assets.ParseAAGUID(metadataModel)
	if err != nil {
		t.Fatal(err)
	}
	a, err := softkey.New(softkey.Config{Presence: k.signal, AAGUID: id})
	if err != nil {
		t.Fatal(err)
	}
	k.engine, k.key = a, pluggedKey{inprocess.New(a), k.dev}
	return k
}

// withMetadataService is withService on a reference RP that loaded a
// FIDO metadata BLOB describing the test keys' model with pictures.
func withMetadataService(srv **rptest.Server) harnessOption {
	return func(h *harness, d *Deps) {
		light, dark := modelPictures(h.t)
		sample, err := softkey.New(softkey.Config{})
		if err != nil {
			h.t.Fatal(err)
		}
		e := mdstest.Entry(metadataModel, [][]byte{sample.AttestationCA()})
		e.MetadataStatement.Description = "Test Key Series 5"
		e.MetadataStatement.Icon = "data:image/png;base64," + base64.StdEncoding.EncodeToString(light)
		e.MetadataStatement.IconDark = "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(dark)
		p := mdstest.NewPKI(h.t, "ui", time.Now().Add(48*time.Hour))
		provider, _, err := mds.Parse(p.Blob(h.t, e), mds.Options{Roots: p.Pool()})
		if err != nil {
			h.t.Fatal(err)
		}
		s := rptest.StartServer(h.t, rptest.ServerOptions{Configure: func(c *server.Config) { c.MDS = provider }})
		*srv = s
		withServiceAt(h, d, s)
	}
}

// rowIcon is the picture the Keys tab shows for its first key.
func (h *harness) rowIcon() fyne.Resource {
	var r fyne.Resource
	h.ui(func() { r = h.keys().rows[0].icon.Resource })
	return r
}

// TestKeysShowTheModelsPicture: a plugged key's row shows its model's
// picture from the service's metadata, the dark one on a dark theme,
// and the account's list shows it beside the enrolled key.
func TestKeysShowTheModelsPicture(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withMetadataService(&srv))
	light, dark := modelPictures(t)
	k := newModelKey(t, 1)
	// The test driver's own theme is dark.
	h.ui(func() { h.app.Settings().SetTheme(variantTheme{theme.DefaultTheme(), theme.VariantLight}) })
	h.usb.plug(k)
	h.eventually("the model's picture", func() bool {
		r := h.keys().rows
		return len(r) == 1 && r[0].icon.Resource != nil && strings.HasPrefix(r[0].icon.Resource.Name(), "model-")
	})
	if got := h.rowIcon(); !bytes.Equal(got.Content(), light) {
		t.Fatalf("the row shows %s, not the metadata's picture", got.Name())
	}
	h.ui(func() {
		if got := h.keys().rows[0].title.Text; got != "Test Key Series 5" {
			t.Errorf("the row is titled %q, not with the metadata's name", got)
		}
	})
	var d *keyDetail
	h.ui(func() {
		test.Tap(h.keys().rows[0].open)
		d = h.keys().detail
	})
	h.eventually("the key's page read", func() bool { return d.info != nil && d.info.PINRetries != 0 })
	h.ui(func() {
		if d.title.Text != "Test Key Series 5" || d.picture.Resource == nil || !bytes.Equal(d.picture.Resource.Content(), light) ||
			d.fact("Model") != "Test Key Series 5 (as the service's FIDO metadata names it)" {
			t.Errorf("the key's page: title %q, picture %v, model %q", d.title.Text, d.picture.Resource, d.fact("Model"))
		}
		d.closePage()
		h.keys().close()
	})
	h.assertScreen("keys_model_picture.png")

	h.ui(func() {
		h.app.Settings().SetTheme(variantTheme{theme.DefaultTheme(), theme.VariantDark})
		h.keys().refresh()
	})
	if got := h.rowIcon(); !bytes.Equal(got.Content(), dark) || !strings.HasSuffix(got.Name(), ".svg") {
		t.Fatalf("on a dark theme the row shows %s, not the dark picture", got.Name())
	}
	h.ui(func() {
		h.app.Settings().SetTheme(variantTheme{theme.DefaultTheme(), theme.VariantLight})
		h.keys().refresh()
	})

	a := h.enrollAndSignIn(k)
	h.eventually("the key listed", func() bool { return len(a.model.keys) == 1 && !a.model.busy })
	h.ui(func() {
		if got := a.keyIcon(a.model.keys[0]); !bytes.Equal(got.Content(), light) {
			t.Errorf("the account's list shows %s for the key", got.Name())
		}
	})
}

// countingModels is a Deps.Models that fails, counting its calls.
type countingModels struct{ calls atomic.Int32 }

func (c *countingModels) model(ctx context.Context, aaguid [16]byte) (models.Model, error) {
	c.calls.Add(1)
	return models.Model{}, errors.New("connection refused")
}

// TestKeysKeepTheirPictureWithoutAnAnswer: when the service does not
// answer, a key keeps the picture of how it is connected, and the list,
// redrawn at every plug, asks once, not at every redraw.
func TestKeysKeepTheirPictureWithoutAnAnswer(t *testing.T) {
	var cm countingModels
	h := newHarness(t, func(h *harness, d *Deps) { d.Models = cm.model })
	k1, k2 := newTestKey(t, 1), newTestKey(t, 2)
	h.usb.plug(k1)
	h.usb.plug(k2)
	h.eventually("both keys read and the model asked for", func() bool {
		m := h.keys().model.entries
		return len(m) == 2 && m[0].info != nil && m[1].info != nil && cm.calls.Load() > 0 && len(h.shell.models.redraw) == 0
	})
	h.usb.unplug(k2)
	h.eventually("one key left", func() bool { return len(h.keys().model.entries) == 1 })
	if got := h.rowIcon(); got.Name() != theme.LoginIcon().Name() {
		t.Fatalf("the row shows %s, want the USB key's picture", got.Name())
	}
	if n := cm.calls.Load(); n != 1 {
		t.Fatalf("the model was asked for %d times", n)
	}
}

// TestVirtualKeyShowsItsOwnPicture: with the service Keydesk runs, the
// virtual key's row shows the picture Keydesk ships for it.
func TestVirtualKeyShowsItsOwnPicture(t *testing.T) {
	var srv *rptest.Server
	h := newHarness(t, withVirtualKey(), withService(&srv))
	want, _ := assets.AAGUIDIcon(softkey.AAGUID)
	h.eventually("the virtual key's picture", func() bool {
		r := h.keys().rows
		return len(r) == 1 && r[0].icon.Resource != nil && strings.HasPrefix(r[0].icon.Resource.Name(), "model-")
	})
	got := h.rowIcon()
	if "data:image/svg+xml;base64,"+base64.StdEncoding.EncodeToString(got.Content()) != want {
		t.Fatalf("the virtual key shows %s", got.Name())
	}
	h.ui(func() { h.app.Settings().SetTheme(variantTheme{theme.DefaultTheme(), theme.VariantLight}) })
	h.assertScreen("keys_virtual_picture.png")
}
