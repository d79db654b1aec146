package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/mds"
	"github.com/keydesk/keydesk/rp/mds/mdstest"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
)

// pngIcon is a data URL of a side×side PNG.
func pngIcon(t testing.TB, side int) string {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = 0x80
	}
	img.Set(0, 0, color.Black)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

// TestAuthenticatorModels: GET /v1/authenticators/{aaguid} names a model
// from the metadata BLOB, with its pictures, before the names the server
// ships; answers the shipped name (and the software key's own picture)
// without metadata; drops a picture clients would refuse and keeps the
// name; and refuses an unknown model or a bad AAGUID with a problem.
func TestAuthenticatorModels(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	light, dark := pngIcon(t, 32), "data:image/svg+xml;base64,"+base64.StdEncoding.EncodeToString([]byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`))
	const broken = "cccccccc-0000-4000-8000-000000000001"
	p := mdstest.NewPKI(t, "models", e.clock.Now().AddDate(0, 0, 2))
	soft := mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{e.newKey().Authenticator.AttestationCA()})
	soft.MetadataStatement.Description = "Software Key, as the metadata names it"
	soft.MetadataStatement.Icon, soft.MetadataStatement.IconDark = light, dark
	bad := mdstest.Entry(broken, [][]byte{e.newKey().Authenticator.AttestationCA()})
	bad.MetadataStatement.Description = "A model with a broken icon"
	bad.MetadataStatement.Icon = "data:image/png;base64," + base64.StdEncoding.EncodeToString([]byte("not a png"))
	provider, _, err := mds.Parse(p.Blob(t, soft, bad), mds.Options{Roots: p.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	withMDS := e.cfg
	withMDS.MDS, withMDS.MDSNextUpdate = provider, e.clock.Now().AddDate(0, 1, 0)
	s, err := server.New(withMDS)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	metadataClient, plainClient := &rptest.Client{BaseURL: ts.URL}, e.client()

	softkeyIcon, _ := assets.AAGUIDIcon(mustAAGUID(t, mdstest.SoftkeyAAGUID))
	const yubikey = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
	yubikeyName, _ := assets.AAGUIDName(mustAAGUID(t, yubikey))
	tests := []struct {
		name   string
		client *rptest.Client
		aaguid string
		status int
		want   api.Authenticator
		code   string
	}{
		{"ShouldNameAndPictureAModelFromTheMetadata", metadataClient, mdstest.SoftkeyAAGUID, 200,
			api.Authenticator{AAGUID: mdstest.SoftkeyAAGUID, Name: "Software Key, as the metadata names it", Icon: light, IconDark: dark, Source: "metadata"}, ""},
		{"ShouldReadTheAAGUIDInUpperCase", metadataClient, strings.ToUpper(mdstest.SoftkeyAAGUID), 200,
			api.Authenticator{AAGUID: mdstest.SoftkeyAAGUID, Name: "Software Key, as the metadata names it", Icon: light, IconDark: dark, Source: "metadata"}, ""},
		{"ShouldDropAnIconClientsRefuse", metadataClient, broken, 200,
			api.Authenticator{AAGUID: broken, Name: "A model with a broken icon", Source: "metadata"}, ""},
		{"ShouldFallBackToTheShippedNames", metadataClient, yubikey, 200,
			api.Authenticator{AAGUID: yubikey, Name: yubikeyName, Source: "builtin"}, ""},
		{"ShouldShowTheSoftwareKeysOwnPictureWithoutMetadata", plainClient, mdstest.SoftkeyAAGUID, 200,
			api.Authenticator{AAGUID: mdstest.SoftkeyAAGUID, Name: "Keydesk Software Key (virtual)", Icon: softkeyIcon, Source: "builtin"}, ""},
		{"ShouldRefuseAnUnknownModel", metadataClient, "dddddddd-0000-4000-8000-000000000002", 404, api.Authenticator{}, "unknown_authenticator"},
		{"ShouldRefuseTheZeroAAGUID", metadataClient, "00000000-0000-0000-0000-000000000000", 404, api.Authenticator{}, "unknown_authenticator"},
		{"ShouldRefuseABadAAGUID", metadataClient, "not-an-aaguid", 400, api.Authenticator{}, "bad_aaguid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got api.Authenticator
			r, err := tt.client.Do("GET", "/v1/authenticators/"+tt.aaguid, nil, &got)
			if err != nil && tt.status == 200 {
				t.Fatal(err)
			}
			if r.Status != tt.status || r.Problem.Error != tt.code {
				t.Fatalf("status %d %+v, want %d %q", r.Status, r.Problem, tt.status, tt.code)
			}
			if tt.status == 200 && got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", short(got), short(tt.want))
			}
		})
	}

	// The whole list: what the BLOB describes, then what the server
	// ships, each model once, sorted; with an ETag that answers 304.
	list := func(c *rptest.Client, etag string) (*http.Response, api.Authenticators) {
		t.Helper()
		req, _ := http.NewRequest("GET", c.BaseURL+"/v1/authenticators", nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out api.Authenticators
		if resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
		}
		return resp, out
	}
	resp, all := list(metadataClient, "")
	byID := map[string]api.Authenticator{}
	for i, a := range all.Authenticators {
		if i > 0 && all.Authenticators[i-1].AAGUID >= a.AAGUID {
			t.Fatalf("the list is not sorted, or lists a model twice, at %s", a.AAGUID)
		}
		byID[a.AAGUID] = a
	}
	if got := byID[mdstest.SoftkeyAAGUID]; got != tests[0].want {
		t.Errorf("the list's software key: %+v", short(got))
	}
	if got := byID[broken]; got.Name != "A model with a broken icon" || got.Icon != "" {
		t.Errorf("the list's broken model: %+v", short(got))
	}
	if got := byID[yubikey]; got.Name != yubikeyName || got.Source != api.SourceBuiltin {
		t.Errorf("the list's YubiKey: %+v", short(got))
	}
	if len(all.Authenticators) != len(assets.KnownAAGUIDs())+1 {
		t.Errorf("%d models listed, want the %d shipped and the one only the BLOB knows", len(all.Authenticators), len(assets.KnownAAGUIDs()))
	}
	etag := resp.Header.Get("ETag")
	if r, _ := list(metadataClient, etag); etag == "" || r.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match %s: %d", etag, r.StatusCode)
	}
	resp, plain := list(plainClient, etag)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == etag || len(plain.Authenticators) != len(assets.KnownAAGUIDs()) {
		t.Fatalf("without metadata: %d, ETag %s, %d models", resp.StatusCode, resp.Header.Get("ETag"), len(plain.Authenticators))
	}

	// A BLOB swapped in later is what the routes answer from.
	p2 := mdstest.NewPKI(t, "models2", e.clock.Now().AddDate(0, 0, 2))
	soft.MetadataStatement.Description = "Renamed in the next BLOB"
	provider2, _, err := mds.Parse(p2.Blob(t, soft), mds.Options{Roots: p2.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetMDS(provider2, e.clock.Now().AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	var got api.Authenticator
	if _, err := metadataClient.Do("GET", "/v1/authenticators/"+mdstest.SoftkeyAAGUID, nil, &got); err != nil || got.Name != "Renamed in the next BLOB" {
		t.Fatalf("after SetMDS: %+v, %v", short(got), err)
	}
	resp, all = list(metadataClient, etag)
	if resp.StatusCode != 200 || !slices.ContainsFunc(all.Authenticators, func(a api.Authenticator) bool { return a.Name == "Renamed in the next BLOB" }) {
		t.Fatalf("the list after SetMDS: %d", resp.StatusCode)
	}
}

// short cuts an answer's icons for a failure message.
func short(a api.Authenticator) api.Authenticator {
	cut := func(s string) string {
		if len(s) > 40 {
			return s[:40] + "…"
		}
		return s
	}
	a.Icon, a.IconDark = cut(a.Icon), cut(a.IconDark)
	return a
}

func mustAAGUID(t testing.TB, s string) [16]byte {
	t.Helper()
	id, err := assets.ParseAAGUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
