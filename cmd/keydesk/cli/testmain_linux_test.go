//go:build linux

package cli

import (
	"os"
	"testing"

	"github.com/keydesk/keydesk/enroll/profile/secretservicetest"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// TestMain gives the tests software keys behind the real libfido2 and,
// for the account commands, a real Secret Service: every keydesk run is a
// new Run, and its session must reach the next one through the keyring,
// as it does between two keydesk processes.
//
// The order matters. softkeytest.Preload re-executes the test binary
// under LD_PRELOAD with syscall.Exec, which replaces the process: daemons
// started before it would be left running with no one to stop them. So
// secretservicetest.Run only points the bus at nothing (an environment
// variable, which the re-executed binary inherits) and then calls
// Preload; the daemons are started by the first test that needs them
// (secretservicetest.Shared), which runs in the re-executed process, and
// are stopped when Preload returns there — it returns only in that
// process, after the tests.
//
// A test that needs keydesk as a process of its own, to kill it, runs the
// test binary again with childArgsEnv set: it then is keydesk (runChild),
// with the shim, the sockets and the bus it inherits.
func TestMain(m *testing.M) {
	if os.Getenv(childArgsEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(secretservicetest.Run(func() int { return softkeytest.Preload(m) }))
}
