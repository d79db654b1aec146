package platform

import (
	"os"
	"path/filepath"
)

// ExtraDevicesEnv lists device paths the operating system does not
// enumerate, separated by ':' — such as the software key behind the vhid
// shim (/dev/keydesk-vhidN). They are listed like any other key when
// present.
const ExtraDevicesEnv = "KEYDESK_EXTRA_DEVICES"

// ExtraDevicesFromEnv returns the paths in $KEYDESK_EXTRA_DEVICES.
func ExtraDevicesFromEnv() []string {
	var out []string
	for _, p := range filepath.SplitList(os.Getenv(ExtraDevicesEnv)) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
