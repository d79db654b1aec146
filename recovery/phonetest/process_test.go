package phonetest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestStartCloseLeavesNothing starts a browser of its own with Start, opens a phone on it,
// and checks that when the test (here a subtest) ends no process of that browser is left and
// its temp dir is gone. It first checks that the leftover check sees the running browser's
// processes, so that "nothing found" afterwards means something.
func TestStartCloseLeavesNothing(t *testing.T) {
	t.Parallel()
	var dir string
	var running []int
	t.Run("run", func(t *testing.T) {
		b := Start(t)
		dir = b.dir
		p := b.NewPhone(t)
		p.Navigate("about:blank")
		running = processesMentioning(dir)
	})
	if len(running) < 3 {
		// The browser, its zygotes, the network service, renderers, the crash handler.
		t.Fatalf("found %d processes of the running browser (%v), want several", len(running), running)
	}
	if left := processesMentioning(dir); len(left) != 0 {
		t.Errorf("processes left after the test: %v", left)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s still there (stat: %v)", dir, err)
	}
}

// crashHelperEnv makes TestCrashHelper a helper process instead of a no-op.
const crashHelperEnv = "KEYDESK_PHONETEST_CRASH_HELPER"

// TestCrashHelper is not a test: run by TestKilledProcessLeavesNothing in a child process, it
// starts a browser, prints its temp dir and waits to be killed.
func TestCrashHelper(t *testing.T) {
	if os.Getenv(crashHelperEnv) != "1" {
		return
	}
	b, err := start()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("dir=%s\n", b.dir)
	select {}
}

// TestKilledProcessLeavesNothing kills (SIGKILL, as an OOM kill or a CI timeout would) a test
// process that has a browser running, and checks that the kernel's parent-death signal and
// the watchdog still leave no Chromium process and no temp dir behind.
func TestKilledProcessLeavesNothing(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Logf("the leftover check reads /proc; on %s only the start and kill are exercised", runtime.GOOS)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashHelperEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	dirc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "dir="); ok {
				dirc <- d
				return
			}
		}
		close(dirc)
	}()
	var dir string
	select {
	case d, ok := <-dirc:
		if !ok {
			t.Fatal("the helper ended without starting a browser")
		}
		dir = d
	case <-time.After(startTimeout):
		t.Fatal("the helper did not start a browser in time")
	}
	if runtime.GOOS == "linux" && len(processesMentioning(dir)) == 0 {
		t.Fatalf("no process of the helper's browser found")
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true

	deadline := time.Now().Add(10 * time.Second)
	for {
		left := processesMentioning(dir)
		_, statErr := os.Stat(dir)
		gone := errors.Is(statErr, os.ErrNotExist)
		if len(left) == 0 && gone {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the kill: processes %v left, temp dir removed: %v", left, gone)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMissingChromiumFails shows that without a browser Start fails the test (it never
// skips) with a message that says how to install one.
func TestMissingChromiumFails(t *testing.T) {
	t.Setenv(EnvChromium, "/nonexistent/chromium")
	if _, err := FindChromium(); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("FindChromium() error = %v, want ErrNotInstalled", err)
	}
	tb := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(tb)
	}()
	<-done
	if !tb.failed || !strings.Contains(tb.msg, "make deps") || !strings.Contains(tb.msg, EnvChromium) {
		t.Errorf("Start without Chromium: failed %v with %q, want a failure that says make deps and %s", tb.failed, tb.msg, EnvChromium)
	}
}

// TestBrokenChromiumFails shows that a browser that cannot start fails Start promptly, with
// what it printed, and leaves nothing behind.
func TestBrokenChromiumFails(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Log("no shell script stands in for a browser on Windows; the start failure path is not exercised")
		return
	}
	fake := filepath.Join(t.TempDir(), "chromium")
	script := "#!/bin/sh\necho 'fake-chromium: no display, no luck' >&2\nexit 3\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvChromium, fake)
	// A temp dir of the test's own for the browser's, so that another test process's
	// browsers cannot confuse the check that nothing is left.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	began := time.Now()
	b, err := start()
	if err == nil {
		b.close()
		t.Fatal("start succeeded with a fake browser")
	}
	t.Logf("start error: %v", err)
	if !strings.Contains(err.Error(), "no display, no luck") {
		t.Errorf("start error = %v, want it to show the browser's output", err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("start took %v to fail, want promptly", d)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "keydesk-phonetest-*")); len(left) != 0 {
		t.Errorf("the failed start left %v", left)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends the goroutine, as
// the real one does, without failing the test that uses it.
type fatalRecorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestFindChromiumUsesOverride(t *testing.T) {
	exe, err := FindChromium()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvChromium, exe)
	if got, err := FindChromium(); err != nil || got != exe {
		t.Errorf("with %s=%s: FindChromium() = %q, %v", EnvChromium, exe, got, err)
	}
}
