//go:build linux

package profile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The Keyring tests run against a real Secret Service: a private D-Bus
// session bus (dbus-daemon) and gnome-keyring-daemon on it, with their
// own HOME and XDG_RUNTIME_DIR in a temporary directory, started by
// TestMain and stopped at the end. The test process talks to nothing else:
// DBUS_SESSION_BUS_ADDRESS is set before any test runs, so the user's own
// keyring is never touched. If the daemons cannot start, every test that
// needs them fails (requireSecretService); none is skipped.

// childEnv marks a test binary started by runInChild; it starts no daemons
// and finds its bus address in DBUS_SESSION_BUS_ADDRESS.
const childEnv = "KEYDESK_PROFILE_TEST_CHILD"

// startupTimeout bounds how long the daemons may take to come up.
const startupTimeout = 15 * time.Second

var (
	testService    *secretService // the running Secret Service, or nil
	testServiceErr error          // why it could not start
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(m.Run())
	}
	testService, testServiceErr = startSecretService(true)
	if testServiceErr != nil {
		fmt.Fprintf(os.Stderr, "profile tests: no Secret Service for the keyring tests: %v\n", testServiceErr)
		// Point go-keyring at nothing rather than at the user's keyring.
		os.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/keydesk-test-bus")
	} else {
		os.Setenv("DBUS_SESSION_BUS_ADDRESS", testService.bus.addr)
	}
	code := m.Run()
	if testService != nil {
		testService.stop()
	}
	os.Exit(code)
}

// requireSecretService fails the test when TestMain could not start the
// Secret Service.
func requireSecretService(t *testing.T) *secretService {
	t.Helper()
	if testServiceErr != nil {
		t.Fatalf("the Secret Service could not be started (make deps installs dbus, gnome-keyring and libsecret-tools): %v", testServiceErr)
	}
	return testService
}

// lockedBuffer collects a daemon's output, written by os/exec's copying
// goroutine and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.b.String())
}

// daemon is a process the tests started, with its output and exit.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// startDaemon starts cmd, killed with the test binary if that dies first.
func startDaemon(name string, cmd *exec.Cmd) (*daemon, error) {
	d := &daemon{name: name, cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	if cmd.Stderr == nil {
		cmd.Stderr = d.stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

// stop ends the process, with SIGTERM and then SIGKILL.
func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// failure describes a daemon that is not doing its job, with its output.
func (d *daemon) failure(what string) error {
	select {
	case <-d.exited:
		what = fmt.Sprintf("%s (it exited: %v)", what, d.err)
	default:
	}
	if out := d.stderr.String(); out != "" {
		what += "; its output: " + out
	}
	return fmt.Errorf("%s: %s", d.name, what)
}

// sessionBus is a private dbus-daemon.
type sessionBus struct {
	*daemon
	addr string // its DBUS_SESSION_BUS_ADDRESS
}

// startBus starts a session bus listening in dir. Its configuration allows
// everything on the bus and, unlike the system's session.conf, names no
// service directory, so nothing is activated behind the tests' back: a
// Secret Service is there only when a test started one.
func startBus(dir string) (*sessionBus, error) {
	conf := filepath.Join(dir, "bus.conf")
	err := os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=`+dir+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("dbus-daemon", "--nofork", "--print-address", "--config-file="+conf)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	d, err := startDaemon("dbus-daemon", cmd)
	if err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			d.stop()
			return nil, d.failure("printed no address")
		}
		return &sessionBus{daemon: d, addr: addr}, nil
	case <-time.After(startupTimeout):
		d.stop()
		return nil, d.failure("printed no address within " + startupTimeout.String())
	}
}

// nameHasOwner asks the bus whether a D-Bus name is taken, with dbus-send
// (Debian's dbus-bin, which dbus-daemon depends on).
func (b *sessionBus) nameHasOwner(name string) (bool, error) {
	out, err := exec.Command("dbus-send", "--bus="+b.addr, "--print-reply", "--dest=org.freedesktop.DBus",
		"/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:"+name).CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("dbus-send: %v: %s", err, out)
	}
	return strings.Contains(string(out), "boolean true"), nil
}

// secretService is gnome-keyring-daemon serving org.freedesktop.secrets on
// its own session bus, with its login keyring unlocked (an empty
// password, so that no prompt ever appears).
type secretService struct {
	dir     string
	bus     *sessionBus
	keyring *daemon
	env     []string // the environment of the daemons and of secret-tool
}

// startSecretService starts a bus and gnome-keyring-daemon in a new
// temporary directory and waits until the Secret Service is on the bus.
// Without unlock, the daemon has no unlocked login keyring, as on a
// desktop whose user dismissed the unlock prompt.
func startSecretService(unlock bool) (_ *secretService, err error) {
	dir, err := os.MkdirTemp("", "keydesk-secretservice-")
	if err != nil {
		return nil, err
	}
	s := &secretService{dir: dir}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	home, run := filepath.Join(dir, "home"), filepath.Join(dir, "run")
	for _, d := range []string{home, run} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	if s.bus, err = startBus(run); err != nil {
		return nil, err
	}
	// gnome-keyring keeps its keyrings under $XDG_DATA_HOME/keyrings and
	// its control socket under $XDG_RUNTIME_DIR; both point into dir.
	// DISPLAY and WAYLAND_DISPLAY are left out so that no prompt can open
	// on a developer's screen.
	s.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_RUNTIME_DIR=" + run,
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"DBUS_SESSION_BUS_ADDRESS=" + s.bus.addr,
	}
	args := []string{"--foreground", "--components=secrets"}
	if unlock {
		args = append(args, "--unlock")
	}
	cmd := exec.Command("gnome-keyring-daemon", args...)
	cmd.Env = s.env
	cmd.Dir = home
	// --unlock reads the login keyring's password from stdin and creates
	// the keyring if need be: an empty password line. (With no line at
	// all, gnome-keyring creates no login keyring, and every call fails
	// with "failed to unlock correct collection".)
	cmd.Stdin = strings.NewReader("\n")
	if s.keyring, err = startDaemon("gnome-keyring-daemon", cmd); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(startupTimeout)
	for {
		owned, err := s.bus.nameHasOwner("org.freedesktop.secrets")
		if err != nil {
			return nil, err
		}
		if owned {
			return s, nil
		}
		select {
		case <-s.keyring.exited:
			return nil, s.keyring.failure("did not start")
		default:
		}
		if time.Now().After(deadline) {
			return nil, s.keyring.failure("did not take org.freedesktop.secrets within " + startupTimeout.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends both daemons and removes their directory.
func (s *secretService) stop() {
	if s.keyring != nil {
		s.keyring.stop()
	}
	if s.bus != nil {
		s.bus.stop()
	}
	if err := os.RemoveAll(s.dir); err != nil {
		fmt.Fprintf(os.Stderr, "profile tests: remove %s: %v\n", s.dir, err)
	}
}

// secretTool runs libsecret's secret-tool, a Secret Service client
// independent of go-keyring, against the test service.
func (s *secretService) secretTool(stdin string, args ...string) (string, error) {
	cmd := exec.Command("secret-tool", args...)
	cmd.Env = s.env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("secret-tool %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// runInChild runs the calling test again in a new test binary process
// whose environment adds env, and fails if it fails. A test calls it when
// os.Getenv(childEnv) is "" and otherwise does its work: go-keyring's
// D-Bus connection is shared by the whole process and kept once made, so
// a test that needs another bus (or none) needs a process of its own.
func runInChild(t *testing.T, env ...string) {
	t.Helper()
	// The child's own timeout turns a hang into a failure with a stack.
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=1m")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=1"}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the test failed in its own process (%v):\n%s", err, out)
	}
	// A -test.run that matched nothing would pass too.
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("the test did not run in its own process:\n%s", out)
	}
	t.Logf("in its own process:\n%s", out)
}

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
