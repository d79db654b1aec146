package rpclient

import (
	"context"
	"fmt"
	"net/http"

	"github.com/keydesk/keydesk/assets"
	"github.com/keydesk/keydesk/rp/api"
)

// Bounds of the model list: the FIDO metadata describes a few hundred
// models, some with pictures of tens of kilobytes.
const (
	maxModels         = 10000
	maxModelListBytes = 32 << 20
)

// Authenticators lists every key model the service can name, with its
// pictures (GET /v1/authenticators; no session needed): the FIDO
// metadata it loaded and the names it ships. The question names no key,
// so the service does not learn which keys are plugged in. An entry that
// is not a model (a bad AAGUID, no name) makes the answer
// ErrBadResponse. The icons come as the service sent them: check one
// with api.DecodeIcon before showing it.
func (c *Client) Authenticators(ctx context.Context) ([]api.Authenticator, error) {
	var list api.Authenticators
	err := c.do(ctx, call{op: "list key models", method: http.MethodGet, path: api.Version + "/authenticators",
		retry: retrySafe, want: http.StatusOK, out: &list, maxBody: maxModelListBytes, check: func() error {
			switch {
			case list.Authenticators == nil:
				return missing("authenticators")
			case len(list.Authenticators) > maxModels:
				return fmt.Errorf("the answer lists %d models", len(list.Authenticators))
			}
			for i, a := range list.Authenticators {
				if _, err := assets.ParseAAGUID(a.AAGUID); err != nil || a.Name == "" {
					return fmt.Errorf("model %d of the answer has no AAGUID or no name", i)
				}
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	return list.Authenticators, nil
}
