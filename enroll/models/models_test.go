package models_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/enroll/models"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
)

// fakeSource answers a list, counting the questions; gate, when set,
// holds every answer until it is closed.
type fakeSource struct {
	list  []api.Authenticator
	err   error
	gate  chan struct{}
	calls atomic.Int32
}

func (f *fakeSource) Authenticators(ctx context.Context) ([]api.Authenticator, error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.list, nil
}

// listing is a fake source's list entry for the model id.
func listing(id [16]byte, name, icon, iconDark, source string) api.Authenticator {
	return api.Authenticator{AAGUID: assets.FormatAAGUID(id), Name: name, Icon: icon, IconDark: iconDark, Source: source}
}

var (
	modelA = [16]byte{1}
	modelB = [16]byte{2}
)

const svgIcon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 4"/>`

func svgURL() string {
	return "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(svgIcon))
}

// TestModelShouldReadTheListOnce: keys arriving together share one
// reading of the list, and later questions read nothing.
func TestModelShouldReadTheListOnce(t *testing.T) {
	src := &fakeSource{list: []api.Authenticator{listing(modelA, "Model A", svgURL(), "", api.SourceMetadata)}, gate: make(chan struct{})}
	c := models.New(src, 0)
	var wg sync.WaitGroup
	got := make([]models.Model, 8)
	for i := range got {
		wg.Go(func() {
			m, err := c.Model(context.Background(), modelA)
			if err != nil {
				t.Error(err)
			}
			got[i] = m
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(src.gate)
	wg.Wait()
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("%d readings of the list", n)
	}
	for _, m := range got {
		if m.Name != "Model A" || !m.FromMetadata || m.Icon == nil || m.Icon.MediaType != api.IconSVG || string(m.Icon.Data) != svgIcon || m.IconDark != nil {
			t.Fatalf("model %+v", m)
		}
	}
	if _, err := c.Model(context.Background(), modelA); err != nil || src.calls.Load() != 1 {
		t.Fatalf("a later lookup read the list again (%d readings, %v)", src.calls.Load(), err)
	}
	if _, err := c.Model(context.Background(), modelB); !errors.Is(err, models.ErrUnknownModel) || src.calls.Load() != 1 {
		t.Fatalf("a model not listed: %v, %d readings", err, src.calls.Load())
	}
}

// TestModelShouldNotAskAboutTheZeroAAGUID: it names no model, and reads
// no list.
func TestModelShouldNotAskAboutTheZeroAAGUID(t *testing.T) {
	src := &fakeSource{}
	if _, err := models.New(src, 0).Model(context.Background(), [16]byte{}); !errors.Is(err, models.ErrUnknownModel) || src.calls.Load() != 0 {
		t.Fatalf("zero AAGUID: %v, %d readings", err, src.calls.Load())
	}
}

// TestModelShouldAskAgainAfterAFailure: a service that did not answer is
// asked again, but only after the retry delay.
func TestModelShouldAskAgainAfterAFailure(t *testing.T) {
	src := &fakeSource{err: &rpclient.Error{Op: "describe key model", Err: errors.New("connection refused")}}
	c := models.New(src, 50*time.Millisecond)
	if _, err := c.Model(context.Background(), modelA); err == nil || errors.Is(err, models.ErrUnknownModel) {
		t.Fatalf("err %v, want the failure", err)
	}
	c.Model(context.Background(), modelA)
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("read %d times within the retry delay", n)
	}
	time.Sleep(60 * time.Millisecond)
	src.err = nil
	src.list = []api.Authenticator{listing(modelA, "Model A", "", "", api.SourceBuiltin)}
	m, err := c.Model(context.Background(), modelA)
	if err != nil || m.Name != "Model A" || m.FromMetadata || m.Icon != nil || src.calls.Load() != 2 {
		t.Fatalf("after the delay: %+v, %v, %d readings", m, err, src.calls.Load())
	}
}

// TestModelShouldLetACallerGiveUp: a caller whose context ends stops
// waiting; the reading goes on, and the next caller gets its answer.
func TestModelShouldLetACallerGiveUp(t *testing.T) {
	src := &fakeSource{list: []api.Authenticator{listing(modelA, "Model A", "", "", api.SourceBuiltin)}, gate: make(chan struct{})}
	c := models.New(src, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Model(ctx, modelA); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	close(src.gate)
	if m, err := c.Model(context.Background(), modelA); err != nil || m.Name != "Model A" || src.calls.Load() != 1 {
		t.Fatalf("%+v, %v, %d readings", m, err, src.calls.Load())
	}
}

// TestModelShouldDropABadPicture: a picture that does not decode is no
// picture; the name stays.
func TestModelShouldDropABadPicture(t *testing.T) {
	src := &fakeSource{list: []api.Authenticator{listing(modelA, "Model A", "data:image/png;base64,AAAA", svgURL(), api.SourceBuiltin)}}
	m, err := models.New(src, 0).Model(context.Background(), modelA)
	if err != nil || m.Name != "Model A" || m.Icon != nil || m.IconDark == nil {
		t.Fatalf("%+v, %v", m, err)
	}
	if m.IconFor(false) != nil || m.IconFor(true) != m.IconDark {
		t.Fatal("IconFor picks the wrong picture")
	}
}

func TestIconFor(t *testing.T) {
	light, dark := &models.Icon{MediaType: api.IconPNG}, &models.Icon{MediaType: api.IconSVG}
	tests := []struct {
		name string
		m    models.Model
		dark bool
		want *models.Icon
	}{
		{"ShouldPickTheLightPictureOnLight", models.Model{Icon: light, IconDark: dark}, false, light},
		{"ShouldPickTheDarkPictureOnDark", models.Model{Icon: light, IconDark: dark}, true, dark},
		{"ShouldFallBackToTheLightPictureOnDark", models.Model{Icon: light}, true, light},
		{"ShouldHaveNoneWithoutPictures", models.Model{}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.IconFor(tt.dark); got != tt.want {
				t.Fatalf("IconFor(%v) = %v", tt.dark, got)
			}
		})
	}
	if light.Extension() != ".png" || dark.Extension() != ".svg" {
		t.Fatal("Extension")
	}
}

// TestCatalogWithTheReferenceServer: through the real client and server,
// the software key's model comes with the picture Keydesk ships for it,
// and no request names the model asked about.
func TestCatalogWithTheReferenceServer(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	s := rptest.StartServer(t, rptest.ServerOptions{Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			paths = append(paths, r.URL.String())
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}})
	client, err := rpclient.New(rpclient.Config{BaseURL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.New(client, 0).Model(context.Background(), softkey.AAGUID)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := assets.AAGUIDIcon(softkey.AAGUID)
	_, data, _ := api.DecodeIcon(want)
	if m.Name != "Keydesk Software Key (virtual)" || m.Icon == nil || string(m.Icon.Data) != string(data) || m.Icon.Extension() != ".svg" {
		t.Fatalf("%+v", m)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(paths, []string{"/v1/authenticators"}) {
		t.Fatalf("requests %q, want the list alone", paths)
	}
}
