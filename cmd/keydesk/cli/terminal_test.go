//go:build linux

package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal: keydesk reads the slave side as its terminal,
// the test types on the master side and reads back what the terminal
// shows (the echo).
type pty struct {
	master, slave *os.File
	shown         syncBuffer // what the master side read
	copied        chan struct{}
}

func openPTY(t *testing.T) *pty {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	// The non-blocking descriptor makes the master pollable, so that
	// closing it ends a pending read.
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN) // ptsname
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	p := &pty{master: master, slave: slave, copied: make(chan struct{})}
	go func() {
		defer close(p.copied)
		io.Copy(&p.shown, master) // ends with EIO once the slave is closed
	}()
	return p
}

// echoOff reports whether the terminal echoes what is typed.
func (p *pty) echoOff(t *testing.T) bool {
	t.Helper()
	var tio *unix.Termios
	var err error
	conn, cerr := p.slave.SyscallConn()
	if cerr != nil {
		t.Fatal(cerr)
	}
	conn.Control(func(fd uintptr) { tio, err = unix.IoctlGetTermios(int(fd), unix.TCGETS) })
	if err != nil {
		t.Fatalf("tcgetattr: %v", err)
	}
	return tio.Lflag&unix.ECHO == 0
}

// typeAfter waits for stderr to end with prompt, longer than it was
// (since), checks that the terminal no longer echoes, and types pin. It
// returns the length of stderr then.
func (p *pty) typeAfter(t *testing.T, s *started, prompt string, since int, pin string) int {
	t.Helper()
	var n int
	s.waitStderr(t, fmt.Sprintf("prompt %q", prompt), func(stderr string) bool {
		n = len(stderr)
		return n > since && strings.HasSuffix(stderr, prompt)
	})
	// keydesk turns echo off before it prompts, so that nothing typed
	// ahead of the prompt shows either.
	if !p.echoOff(t) {
		t.Fatalf("the terminal still echoes at the prompt %q", prompt)
	}
	if _, err := p.master.Write([]byte(pin + "\r")); err != nil {
		t.Fatal(err)
	}
	return n
}

// closeAndShown closes the slave side and returns all the terminal showed.
func (p *pty) closeAndShown(t *testing.T) string {
	t.Helper()
	p.slave.Close()
	select {
	case <-p.copied:
	case <-time.After(waitTimeout):
		t.Fatal("the pseudo-terminal's master side did not end")
	}
	return p.shown.String()
}

func TestPINTypedAtTheTerminal(t *testing.T) {
	type typed struct{ prompt, pin string }
	tests := []struct {
		name     string
		setFirst string // a PIN set with fido2-token before the run
		args     []string
		typed    []typed
		wantCode int
		wantPIN  string // the key's PIN afterwards, checked with fido2-token; "" for none
	}{
		{
			name: "ShouldSetPINTypedWithoutEcho", args: []string{"pin", "set"},
			typed:   []typed{{"New PIN: ", "1234"}, {"Confirm new PIN: ", "1234"}},
			wantPIN: "1234",
		},
		{
			name: "ShouldChangePINTypedWithoutEcho", setFirst: "1234", args: []string{"pin", "change"},
			typed:   []typed{{"Current PIN: ", "1234"}, {"New PIN: ", "5678"}, {"Confirm new PIN: ", "5678"}},
			wantPIN: "5678",
		},
		{
			name: "ShouldExitPINErrorWhenTypedPINsDiffer", args: []string{"pin", "set"},
			typed:    []typed{{"New PIN: ", "1234"}, {"Confirm new PIN: ", "5678"}},
			wantCode: ExitPIN,
		},
		{
			name: "ShouldReadThePINForACredentialList", setFirst: "1234", args: []string{"creds", "list"},
			typed:   []typed{{"PIN: ", "1234"}},
			wantPIN: "1234",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := serveKeys(t, 1)[0]
			if tt.setFirst != "" {
				mustTool(t, tt.setFirst+"\n"+tt.setFirst+"\n", "fido2-token", "-S", k.Path)
			}
			p := openPTY(t)
			s := start(t, context.Background(), p.slave, tt.args...)
			since := 0
			for _, ty := range tt.typed {
				since = p.typeAfter(t, s, ty.prompt, since, ty.pin)
			}
			r := s.wait(t)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %v\nstderr: %s", r.code, tt.wantCode, r.err, r.stderr)
			}
			// The echo is back on: a line typed now shows, where the PINs
			// did not.
			if p.echoOff(t) {
				t.Error("the terminal does not echo after keydesk ended")
			}
			if _, err := p.master.Write([]byte("echo-check\r")); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(waitTimeout)
			for !strings.Contains(p.shown.String(), "echo-check") && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			shown := p.closeAndShown(t)
			if strings.TrimSpace(shown) != "echo-check" {
				t.Errorf("the terminal showed %q, want only the line typed after keydesk ended", shown)
			}
			for _, ty := range tt.typed {
				if strings.Contains(shown+r.stdout+r.stderr, ty.pin) {
					t.Errorf("the PIN typed after %q was shown or printed", ty.prompt)
				}
			}
			info := mustTool(t, "", "fido2-token", "-I", k.Path)
			if tt.wantPIN == "" {
				if !strings.Contains(infoLine(t, info, "options"), "noclientPin") {
					t.Errorf("a PIN was set:\n%s", info)
				}
				return
			}
			if got := infoLine(t, info, "pin retries"); got != "8" {
				t.Errorf("pin retries %q", got)
			}
			// The PIN works, exactly as typed (no stray carriage return).
			mustTool(t, tt.wantPIN+"\n", "fido2-token", "-I", "-c", k.Path)
		})
	}
}
