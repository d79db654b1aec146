package libfido2

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// permissionChildEnv names the key a child process, run as another user,
// tries to open (TestPermissionChild).
const permissionChildEnv = "KEYDESK_PERMISSION_CHILD"

// TestPermissionDeniedIsExplained opens a key the user may not open — as
// a hidraw node owned by someone else is — from a child process running
// as nobody, and checks the error says what to do.
func TestPermissionDeniedIsExplained(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test runs a child process as another user and needs root (as on CI)")
	}
	k := softkeytest.Serve(t, softkey.Config{})
	// The child needs its own readable copies of the test binary and the
	// shim: the originals sit in root's private directories.
	dir, err := os.MkdirTemp("", "kdperm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	exe, _ := os.Executable()
	bin, shim := filepath.Join(dir, "child.test"), filepath.Join(dir, "vhid.so")
	copyFile(t, exe, bin)
	copyFile(t, softkeytest.Shim(t), shim)

	cmd := exec.Command(bin, "-test.run=^TestPermissionChild$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"LD_PRELOAD=" + shim, softkeytest.ShimEnv + "=" + shim, "GODEBUG=asyncpreemptoff=1",
		softkeytest.SocketEnv + "=" + os.Getenv(softkeytest.SocketEnv),
		permissionChildEnv + "=" + k.Path,
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "kind=permission") || !strings.Contains(string(out), k.Path+" needs to be readable and writable by you") {
		t.Fatalf("child's error does not explain the permission problem:\n%s", out)
	}
}

// TestPermissionChild is the child side of TestPermissionDeniedIsExplained;
// run directly, without its environment variable, it has nothing to do.
func TestPermissionChild(t *testing.T) {
	path := os.Getenv(permissionChildEnv)
	if path == "" {
		return
	}
	key, err := New(Config{}).Open(context.Background(), platform.Device{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	_, err = key.Info(context.Background())
	if errors.Is(err, platform.ErrPermission) {
		t.Logf("kind=permission: %v", err)
		return
	}
	t.Fatalf("kind=other: %v", err)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
