// Package softkeytest puts software keys where the real libfido2 finds them,
// for tests: it serves keys on unix sockets, maps them to /dev/keydesk-vhidN
// paths through the vhid LD_PRELOAD shim, and re-executes the test binary
// with the shim loaded.
package softkeytest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/ctaphid"
)

// Environment variables shared with the shim and the Makefile.
const (
	// ShimEnv names a prebuilt shim (make test sets it to build/vhid.so).
	ShimEnv = "KEYDESK_VHID_SO"
	// SocketEnv is the shim's ':'-separated socket list.
	SocketEnv = "KEYDESK_VHID_SOCKET"
	// PathPrefix plus an index is a virtual device path.
	PathPrefix = "/dev/keydesk-vhid"
)

// Preload makes sure the running test binary has the vhid shim loaded,
// re-executing it with LD_PRELOAD set if not, and then runs the tests.
// Call it from TestMain: os.Exit(softkeytest.Preload(m)).
func Preload(m *testing.M) int {
	shim, err := shimPath()
	if err != nil {
		fmt.Fprintln(os.Stderr, "softkeytest:", err)
		return 1
	}
	if !strings.Contains(os.Getenv("LD_PRELOAD"), shim) {
		// Go preempts goroutines with SIGURG, and the runtime signals a
		// thread even while it sits in a cgo call: libfido2's ppoll then
		// fails with EINTR and the operation ends in FIDO_ERR_RX. Tests
		// that use go-libfido2 (which does not set fido_dev_set_sigmask)
		// would fail at random without this.
		godebug := strings.TrimPrefix(os.Getenv("GODEBUG")+",asyncpreemptoff=1", ",")
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "LD_PRELOAD=") && !strings.HasPrefix(kv, "GODEBUG=") {
				env = append(env, kv)
			}
		}
		env = append(env, "LD_PRELOAD="+strings.TrimPrefix(os.Getenv("LD_PRELOAD")+" "+shim, " "), "GODEBUG="+godebug)
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "softkeytest:", err)
			return 1
		}
		err = syscall.Exec(exe, os.Args, env)
		fmt.Fprintln(os.Stderr, "softkeytest: re-exec with the shim:", err)
		return 1
	}
	return m.Run()
}

// Shim returns the path of the vhid shim, building it when needed.
func Shim(tb testing.TB) string {
	tb.Helper()
	p, err := shimPath()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

var (
	shimOnce sync.Once
	shimFile string
	shimErr  error
)

// shimPath uses $KEYDESK_VHID_SO, or compiles platform/vhid/vhid.c into
// the user cache, so `go test` works without make.
func shimPath() (string, error) {
	shimOnce.Do(func() {
		if p := os.Getenv(ShimEnv); p != "" {
			if _, err := os.Stat(p); err != nil {
				shimErr = fmt.Errorf("$%s: %w", ShimEnv, err)
			}
			shimFile = p
			return
		}
		_, self, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(self), "..", "..", "vhid", "vhid.c")
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "keydesk")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			shimErr = err
			return
		}
		shimFile = filepath.Join(dir, "vhid.so")
		if si, err := os.Stat(src); err == nil {
			if so, err := os.Stat(shimFile); err == nil && so.ModTime().After(si.ModTime()) {
				return
			}
		}
		tmp := shimFile + fmt.Sprintf(".%d", os.Getpid())
		out, err := exec.Command("cc", "-std=c11", "-Wall", "-Wextra", "-O2", "-fPIC", "-shared", "-o", tmp, src, "-ldl").CombinedOutput()
		if err != nil {
			shimErr = fmt.Errorf("build vhid shim: %v\n%s", err, out)
			return
		}
		shimErr = os.Rename(tmp, shimFile)
	})
	return shimFile, shimErr
}

// Key is a software key served where libfido2 can open it.
type Key struct {
	// Path is the virtual hidraw path to hand to libfido2.
	Path string
	// Socket is the unix socket the key listens on.
	Socket string
	// Authenticator is the key itself, for power cycles and inspection.
	Authenticator *softkey.Authenticator
	// Device is its CTAPHID transport.
	Device *ctaphid.Device

	stop func()
}

var (
	slotsMu sync.Mutex
	slots   []string // socket per vhid index; "" when free
)

// Serve starts a key with cfg and registers it with the shim. The key
// stops when the test ends.
func Serve(tb testing.TB, cfg softkey.Config) *Key {
	tb.Helper()
	a, err := softkey.New(cfg)
	if err != nil {
		tb.Fatalf("softkey: %v", err)
	}
	return ServeAuthenticator(tb, a)
}

// ServeAuthenticator serves an existing key, as Serve does.
func ServeAuthenticator(tb testing.TB, a *softkey.Authenticator) *Key {
	tb.Helper()
	return ServeHandler(tb, a, a)
}

// ServeHandler serves h, a Handler standing in front of a (to record or
// alter what the key sees), as Serve does.
func ServeHandler(tb testing.TB, a *softkey.Authenticator, h ctaphid.Handler) *Key {
	tb.Helper()
	// Unix socket paths are limited to 108 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "kd")
	if err != nil {
		tb.Fatal(err)
	}
	k := serve(tb, a, h, filepath.Join(dir, "key.sock"), true)
	stop := k.stop
	k.stop = sync.OnceFunc(func() { stop(); os.RemoveAll(dir) })
	return k
}

// SocketPath returns a new unix socket path, for ServeAt, in a directory
// removed when the test ends.
func SocketPath(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "kd")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "key.sock")
}

// ServeAt serves a on the socket sock without telling this process's shim
// (Key.Path is empty): for a program started earlier whose
// KEYDESK_VHID_SOCKET already lists sock, which sees the key appear at
// that place in its list as if it were plugged in. A program's
// environment is fixed when it starts, so keys served later by Serve are
// out of its sight.
func ServeAt(tb testing.TB, a *softkey.Authenticator, sock string) *Key {
	tb.Helper()
	return serve(tb, a, a, sock, false)
}

// serve listens on sock and serves h in front of a; announce tells the
// shim of this process about it.
func serve(tb testing.TB, a *softkey.Authenticator, h ctaphid.Handler, sock string, announce bool) *Key {
	tb.Helper()
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		tb.Fatal(err)
	}
	dev := ctaphid.NewDevice(h, ctaphid.Options{Version: [3]byte{1, 0, 0}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctaphid.Serve(ctx, ln, dev)
	}()
	k := &Key{Socket: sock, Authenticator: a, Device: dev}
	idx := -1
	if announce {
		idx = register(sock)
		k.Path = fmt.Sprintf("%s%d", PathPrefix, idx)
	}
	k.stop = sync.OnceFunc(func() {
		if idx >= 0 {
			unregister(idx)
		}
		cancel()
		ln.Close()
		<-done
		dev.Close()
		os.Remove(sock)
	})
	tb.Cleanup(k.Stop)
	return k
}

// Stop unplugs the key: its path no longer opens. It is called at the end
// of the test anyway.
func (k *Key) Stop() { k.stop() }

func register(sock string) int {
	slotsMu.Lock()
	defer slotsMu.Unlock()
	idx := -1
	for i, s := range slots {
		if s == "" {
			idx = i
			break
		}
	}
	if idx < 0 {
		idx = len(slots)
		slots = append(slots, "")
	}
	slots[idx] = sock
	os.Setenv(SocketEnv, strings.Join(slots, ":"))
	return idx
}

func unregister(idx int) {
	slotsMu.Lock()
	defer slotsMu.Unlock()
	slots[idx] = ""
	os.Setenv(SocketEnv, strings.Join(slots, ":"))
}

// Tool runs a fido2-tools binary (or any program) with the test's
// environment — the shim and socket list included — in a new session
// without a controlling terminal, so that fido2-tools read PINs from
// stdin. It returns stdout, stderr and the exit error.
func Tool(tb testing.TB, stdin string, name string, args ...string) (string, string, error) {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// MustTool is Tool that fails the test on a non-zero exit and returns stdout.
func MustTool(tb testing.TB, stdin string, name string, args ...string) string {
	tb.Helper()
	out, errOut, err := Tool(tb, stdin, name, args...)
	if err != nil {
		tb.Fatalf("%s %v: %v\nstdout: %s\nstderr: %s", name, args, err, out, errOut)
	}
	return out
}

// InfoLine returns the value of "label: value" in fido2-token -I output.
func InfoLine(tb testing.TB, out, label string) string {
	tb.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `: (.*)$`).FindStringSubmatch(out)
	if m == nil {
		tb.Fatalf("no %q line in:\n%s", label, out)
	}
	return m[1]
}
