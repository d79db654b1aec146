package libfido2

import (
	"context"
	"testing"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/platformtest"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// TestConformance runs the cases every Authenticator shares, through the
// real libfido2 and the shim.
func TestConformance(t *testing.T) {
	platformtest.Run(t, func(t *testing.T, cfg softkey.Config) (platform.Authenticator, *softkey.Authenticator) {
		k := softkeytest.Serve(t, cfg)
		a, err := New(Config{}).Open(context.Background(), platform.Device{Path: k.Path})
		if err != nil {
			t.Fatal(err)
		}
		return a, k.Authenticator
	})
}
