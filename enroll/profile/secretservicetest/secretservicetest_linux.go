//go:build linux

package secretservicetest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BusEnv is the variable godbus (and so go-keyring) finds the session bus
// in.
const BusEnv = "DBUS_SESSION_BUS_ADDRESS"

// NoBus is a session bus address with nothing behind it: a process
// pointed at it has no keyring, rather than the user's.
const NoBus = "unix:path=/nonexistent/keydesk-test-bus"

// ChildEnv marks a test binary started by RunInChild: Run then leaves the
// environment its parent gave it as it is.
const ChildEnv = "KEYDESK_SECRETSERVICE_TEST_CHILD"

// StartupTimeout bounds how long the daemons may take to come up.
const StartupTimeout = 15 * time.Second

// lockedBuffer collects a daemon's output, written by os/exec's copying
// goroutine and read when the daemon fails.
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

// daemon is a process this package started, with its output and exit.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// startDaemon starts cmd, killed with the test binary if that dies first
// (a test timeout, a crash), so that no daemon outlives the tests.
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

// Bus is a private dbus-daemon session bus.
type Bus struct {
	// Address is its DBUS_SESSION_BUS_ADDRESS.
	Address string
	d       *daemon
}

// StartBus starts a session bus listening in dir. Its configuration
// allows everything on the bus and, unlike the system's session.conf,
// names no service directory, so that nothing is activated behind a
// test's back: a Secret Service is there only when a test started one.
func StartBus(dir string) (*Bus, error) {
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
		return &Bus{Address: addr, d: d}, nil
	case <-time.After(StartupTimeout):
		d.stop()
		return nil, d.failure("printed no address within " + StartupTimeout.String())
	}
}

// Stop ends the bus.
func (b *Bus) Stop() { b.d.stop() }

// NameHasOwner asks the bus whether a D-Bus name is taken, with dbus-send
// (Debian's dbus-bin, which dbus-daemon depends on) rather than godbus, so
// that asking does not make this process's shared connection.
func (b *Bus) NameHasOwner(name string) (bool, error) {
	out, err := exec.Command("dbus-send", "--bus="+b.Address, "--print-reply", "--dest=org.freedesktop.DBus",
		"/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:"+name).CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("dbus-send: %v: %s", err, out)
	}
	return strings.Contains(string(out), "boolean true"), nil
}

// Service is gnome-keyring-daemon serving org.freedesktop.secrets on its
// own session bus.
type Service struct {
	// Bus is the session bus the service is on.
	Bus *Bus
	// Env is the environment of the daemons, for other clients of the
	// service (SecretTool): its own HOME and XDG directories and the
	// bus address.
	Env []string

	dir     string
	keyring *daemon
}

// Start starts a bus and gnome-keyring-daemon in a new temporary
// directory and waits until the Secret Service is on the bus. With
// unlock, the login keyring is created (or opened) with an empty
// password, so that no prompt ever appears; without, the daemon has no
// unlocked login keyring, as on a desktop whose user dismissed the
// unlock prompt. The error says which daemon failed and what it printed.
func Start(unlock bool) (_ *Service, err error) {
	dir, err := os.MkdirTemp("", "keydesk-secretservice-")
	if err != nil {
		return nil, err
	}
	s := &Service{dir: dir}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	home, run := filepath.Join(dir, "home"), filepath.Join(dir, "run")
	for _, d := range []string{home, run} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	if s.Bus, err = StartBus(run); err != nil {
		return nil, err
	}
	// gnome-keyring keeps its keyrings under $XDG_DATA_HOME/keyrings and
	// its control socket under $XDG_RUNTIME_DIR; both point into dir.
	// DISPLAY and WAYLAND_DISPLAY are left out so that no prompt can open
	// on a developer's screen.
	s.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_RUNTIME_DIR=" + run,
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		BusEnv + "=" + s.Bus.Address,
	}
	args := []string{"--foreground", "--components=secrets"}
	if unlock {
		args = append(args, "--unlock")
	}
	cmd := exec.Command("gnome-keyring-daemon", args...)
	cmd.Env = s.Env
	cmd.Dir = home
	// --unlock reads the login keyring's password from stdin and creates
	// the keyring if need be: an empty password line. (With no line at
	// all, gnome-keyring creates no login keyring, and every call fails
	// with "failed to unlock correct collection".)
	cmd.Stdin = strings.NewReader("\n")
	if s.keyring, err = startDaemon("gnome-keyring-daemon", cmd); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(StartupTimeout)
	for {
		owned, err := s.Bus.NameHasOwner("org.freedesktop.secrets")
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
			return nil, s.keyring.failure("did not take org.freedesktop.secrets within " + StartupTimeout.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends both daemons and removes their directory.
func (s *Service) Stop() {
	if s.keyring != nil {
		s.keyring.stop()
	}
	if s.Bus != nil {
		s.Bus.Stop()
	}
	if err := os.RemoveAll(s.dir); err != nil {
		fmt.Fprintf(os.Stderr, "secretservicetest: remove %s: %v\n", s.dir, err)
	}
}

// SecretTool runs libsecret's secret-tool, a Secret Service client
// independent of go-keyring, against the service: what it finds is what
// other programs (and the next Keydesk) find.
func (s *Service) SecretTool(stdin string, args ...string) (string, error) {
	cmd := exec.Command("secret-tool", args...)
	cmd.Env = s.Env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("secret-tool %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// shared is the Secret Service of this test process, started by the
// first Shared.
var shared struct {
	mu   sync.Mutex
	done bool
	svc  *Service
	err  error
}

// Run is for TestMain: os.Exit(secretservicetest.Run(m.Run)). It points
// this process's session bus at NoBus, so that no test reaches the user's
// keyring by accident, calls run, then stops the Secret Service Shared
// started, if any. In a RunInChild child it only calls run: the parent
// chose the child's bus.
//
// run may re-execute the test binary, as softkeytest.Preload does: the
// environment set here goes with the new process, and the daemons, which
// Shared starts lazily in the process that runs the tests, are never
// started in the process that is replaced (they would be left running
// with no one to stop them).
func Run(run func() int) int {
	if InChild() {
		return run()
	}
	os.Setenv(BusEnv, NoBus)
	code := run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.svc != nil {
		shared.svc.Stop()
		shared.svc = nil
	}
	return code
}

// Shared returns this process's Secret Service, with an unlocked login
// keyring, starting it on first use and pointing $DBUS_SESSION_BUS_ADDRESS
// at it for the rest of the process (go-keyring connects once and keeps
// the connection). It fails tb, never skips it, when the daemons cannot
// start: a keyring test that does not run is a missing test. The package's
// TestMain must use Run, which stops the service at the end.
func Shared(tb testing.TB) *Service {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.done {
		shared.done = true
		shared.svc, shared.err = Start(true)
		if shared.err == nil {
			os.Setenv(BusEnv, shared.svc.Bus.Address)
		}
	}
	if shared.err != nil {
		tb.Fatalf("the Secret Service could not be started (make deps installs dbus, gnome-keyring and libsecret-tools): %v", shared.err)
	}
	return shared.svc
}

// InChild reports whether this test binary was started by RunInChild.
func InChild() bool { return os.Getenv(ChildEnv) != "" }

// RunInChild runs the calling test again in a new process of the test
// binary whose environment adds env (such as BusEnv+"="+NoBus), and fails
// tb if it fails there. A test calls it when InChild is false and
// otherwise does its work: go-keyring's D-Bus connection is shared by the
// whole process and kept once made, so a test that needs another bus (or
// none) needs a process of its own.
func RunInChild(t *testing.T, env ...string) {
	t.Helper()
	// The child's own timeout turns a hang into a failure with a stack.
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=1m")
	cmd.Env = append(os.Environ(), append([]string{ChildEnv + "=1"}, env...)...)
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
