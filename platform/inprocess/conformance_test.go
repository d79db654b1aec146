package inprocess

import (
	"testing"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/platformtest"
	"github.com/keydesk/keydesk/platform/softkey"
)

// TestConformance runs the cases every Authenticator shares against the
// software key in-process.
func TestConformance(t *testing.T) {
	platformtest.Run(t, func(t *testing.T, cfg softkey.Config) (platform.Authenticator, *softkey.Authenticator) {
		a, err := softkey.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return New(a), a
	})
}
