package rpclient

import (
	"context"
	"fmt"
	"net/http"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/rp/api"
)

// Authenticator names and pictures the key model whose AAGUID is aaguid
// (GET /v1/authenticators/{aaguid}; no session needed): from the FIDO
// metadata the service loaded, or the names it ships. A model the
// service does not know is ErrNotFound. An icon of the answer that
// api.DecodeIcon refuses is dropped, the name kept: a picture is not
// worth failing the answer for.
func (c *Client) Authenticator(ctx context.Context, aaguid [16]byte) (*api.Authenticator, error) {
	want := assets.FormatAAGUID(aaguid)
	var a api.Authenticator
	err := c.do(ctx, call{op: "describe key model", method: http.MethodGet, path: api.Version + "/authenticators/" + want,
		retry: retrySafe, want: http.StatusOK, out: &a, check: func() error {
			switch {
			case a.AAGUID != want:
				return fmt.Errorf("the answer describes another model (%.40q)", a.AAGUID)
			case a.Name == "":
				return missing("name")
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	if _, _, err := api.DecodeIcon(a.Icon); err != nil {
		a.Icon = ""
	}
	if _, _, err := api.DecodeIcon(a.IconDark); err != nil {
		a.IconDark = ""
	}
	return &a, nil
}
