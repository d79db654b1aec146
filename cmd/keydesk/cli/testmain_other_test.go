//go:build !linux

package cli

import (
	"os"
	"testing"

	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

func TestMain(m *testing.M) { os.Exit(softkeytest.Preload(m)) }
