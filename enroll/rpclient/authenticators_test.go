package rpclient_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform/softkey"
)

// TestAuthenticator: the client reads a model's name and picture from the
// reference server without a session, and tells an unknown model
// (ErrNotFound) from an answer about another model (ErrBadResponse); a
// picture it would not show is dropped and the name kept.
func TestAuthenticator(t *testing.T) {
	const unknown = "dddddddd-0000-4000-8000-000000000002"
	const otherModel = "eeeeeeee-0000-4000-8000-000000000003"
	const badIcon = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
	env := newRP(t, envOptions{wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasSuffix(r.URL.Path, otherModel):
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"aaguid":"` + unknown + `","name":"Another","source":"builtin"}`))
			case strings.HasSuffix(r.URL.Path, badIcon):
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"aaguid":"` + badIcon + `","name":"YubiKey","icon":"data:image/png;base64,AAAA","iconDark":"https://example.com/x.svg","source":"builtin"}`))
			default:
				next.ServeHTTP(w, r)
			}
		})
	}})
	c := newClient(t, env.url, nil)
	ctx := context.Background()

	a, err := c.Authenticator(ctx, softkey.AAGUID)
	if err != nil {
		t.Fatal(err)
	}
	wantIcon, _ := assets.AAGUIDIcon(softkey.AAGUID)
	if a.Name != "Keydesk Software Key (virtual)" || a.Icon != wantIcon || a.Source != "builtin" || a.AAGUID != assets.FormatAAGUID(softkey.AAGUID) {
		t.Fatalf("software key: %+.60v", *a)
	}
	if c.Token() != "" {
		t.Fatal("a session appeared")
	}

	id := func(s string) [16]byte {
		v, err := assets.ParseAAGUID(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if _, err := c.Authenticator(ctx, id(unknown)); !errors.Is(err, rpclient.ErrNotFound) {
		t.Fatalf("unknown model: %v, want ErrNotFound", err)
	}
	if _, err := c.Authenticator(ctx, id(otherModel)); !errors.Is(err, rpclient.ErrBadResponse) {
		t.Fatalf("answer about another model: %v, want ErrBadResponse", err)
	}
	a, err = c.Authenticator(ctx, id(badIcon))
	if err != nil || a.Name != "YubiKey" || a.Icon != "" || a.IconDark != "" {
		t.Fatalf("bad icons: %+.60v, %v; want the name and no icons", a, err)
	}
}
