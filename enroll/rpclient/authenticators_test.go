package rpclient_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform/softkey"
)

// TestAuthenticators: the client reads the reference server's list of
// models without a session, the software key with its picture among
// them; an answer that lists something that is not a model is
// ErrBadResponse.
func TestAuthenticators(t *testing.T) {
	env := newRP(t, envOptions{})
	c := newClient(t, env.url, nil)
	list, err := c.Authenticators(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(assets.KnownAAGUIDs()) {
		t.Fatalf("%d models, want %d", len(list), len(assets.KnownAAGUIDs()))
	}
	wantIcon, _ := assets.AAGUIDIcon(softkey.AAGUID)
	found := false
	for _, a := range list {
		if a.AAGUID == assets.FormatAAGUID(softkey.AAGUID) {
			found = a.Name == "Keydesk Software Key (virtual)" && a.Icon == wantIcon
		}
	}
	if !found || c.Token() != "" {
		t.Fatalf("software key listed with its picture: %v; a session appeared: %v", found, c.Token() != "")
	}

	for name, body := range map[string]string{
		"ShouldRefuseAModelWithoutAnAAGUID": `{"authenticators":[{"aaguid":"nope","name":"X","source":"builtin"}]}`,
		"ShouldRefuseAModelWithoutAName":    `{"authenticators":[{"aaguid":"cb69481e-8ff7-4039-93ec-0a2729a154a8","name":"","source":"builtin"}]}`,
		"ShouldRefuseAnAnswerWithoutAList":  `{}`,
	} {
		t.Run(name, func(t *testing.T) {
			bad := newRP(t, envOptions{wrap: func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.Write([]byte(body))
				})
			}})
			if _, err := newClient(t, bad.url, nil).Authenticators(context.Background()); !errors.Is(err, rpclient.ErrBadResponse) {
				t.Fatalf("err %v, want ErrBadResponse", err)
			}
		})
	}
}
