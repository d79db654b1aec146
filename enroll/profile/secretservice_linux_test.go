//go:build linux

package profile

import (
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keydesk/keydesk/enroll/profile/secretservicetest"
)

// The Keyring tests run against a real Secret Service: a private D-Bus
// session bus (dbus-daemon) and gnome-keyring-daemon on it, with their
// own HOME and XDG_RUNTIME_DIR in a temporary directory (package
// secretservicetest). secretservicetest.Run points the test process at no
// bus before any test runs, and the tests that need the keyring call
// secretservicetest.Shared, which starts the daemons once and points the
// process at them; so the user's own keyring is never touched. If the
// daemons cannot start, every test that needs them fails; none is skipped.
// Tests that need another bus, or none, run in a process of their own
// (secretservicetest.RunInChild), since go-keyring keeps its first
// connection.

func TestMain(m *testing.M) { os.Exit(secretservicetest.Run(m.Run)) }

// silentBus listens on a unix socket like a session bus, accepts
// connections and never answers: a D-Bus peer that hangs. It returns the
// bus address.
func silentBus(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "bus")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "unix:path=" + sock
}
