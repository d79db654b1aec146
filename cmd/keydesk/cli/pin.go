package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/keydesk/keydesk/platform"
)

// errPINsDiffer is the two new PINs not matching: exit code 4.
var errPINsDiffer = &ExitError{Code: ExitPIN, Err: errors.New("the new PINs do not match; nothing was changed")}

func (e *env) pin(ctx context.Context, args []string) error {
	return e.sub("pin", args, map[string]func([]string) error{
		"set":    func(a []string) error { return e.setPIN(ctx, false, a) },
		"change": func(a []string) error { return e.setPIN(ctx, true, a) },
	})
}

// setPIN runs "pin set", or with change "pin change", which first reads
// the current PIN. The new PIN is read twice.
func (e *env) setPIN(ctx context.Context, change bool, args []string) error {
	name := "pin set"
	if change {
		name = "pin change"
	}
	f := e.newFlags(name, false, true, true)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	return e.withKey(ctx, f, func(key platform.Authenticator) error {
		r, err := e.pinReader(ctx, f.pinStdin)
		if err != nil {
			return err
		}
		defer r.close()
		var old string
		if change {
			if old, err = r.read("Current PIN: "); err != nil {
				return err
			}
		}
		pin, err := r.newPIN()
		if err != nil {
			return err
		}
		if change {
			return e.done(key.ChangePIN(ctx, old, pin), "PIN changed.")
		}
		return e.done(key.SetPIN(ctx, pin), "PIN set.")
	})
}

// pinReader reads PINs, or another secret (an enrollment code): from
// standard input one a line (--pin-stdin), or from the terminal without
// echo, prompting on stderr.
type pinReader struct {
	ctx    context.Context
	secret secretKind
	lines  *bufio.Reader // --pin-stdin
	tty    *os.File      // the terminal otherwise
	ownTTY bool          // tty was opened here
	prompt io.Writer
}

// secretKind names a secret read by a pinReader, for its messages: what
// it is, and the flag that reads it from standard input instead of the
// terminal.
type secretKind struct{ what, stdinFlag string }

// The secrets keydesk reads. Neither is ever taken from the command line,
// where other users could read it (ps) and the shell would keep it.
var (
	secretPIN  = secretKind{what: "PIN", stdinFlag: "--pin-stdin"}
	secretCode = secretKind{what: "enrollment code", stdinFlag: "--code-stdin"}
)

func (e *env) pinReader(ctx context.Context, fromStdin bool) (*pinReader, error) {
	return e.secretReader(ctx, secretPIN, fromStdin)
}

// secretReader is pinReader for the secret s.
func (e *env) secretReader(ctx context.Context, s secretKind, fromStdin bool) (*pinReader, error) {
	if fromStdin {
		if e.stdin == nil {
			return nil, usageError("%s: no standard input", s.stdinFlag)
		}
		return &pinReader{ctx: ctx, secret: s, lines: bufio.NewReader(e.stdin)}, nil
	}
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &pinReader{ctx: ctx, secret: s, tty: f, prompt: e.stderr}, nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return nil, usageError("no terminal to read the %s from; use %s to read it from standard input", s.what, s.stdinFlag)
	}
	return &pinReader{ctx: ctx, secret: s, tty: tty, ownTTY: true, prompt: tty}, nil
}

func (r *pinReader) close() {
	if r.ownTTY {
		r.tty.Close()
	}
}

// read reads one PIN.
func (r *pinReader) read(prompt string) (string, error) {
	if r.lines != nil {
		line, err := r.lines.ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			if err == io.EOF {
				label := strings.TrimSuffix(prompt, ": ")
				if strings.EqualFold(label, r.secret.what) {
					return "", usageError("%s: standard input ended before the %s", r.secret.stdinFlag, r.secret.what)
				}
				return "", usageError("%s: standard input ended before the %s (%s)", r.secret.stdinFlag, r.secret.what, label)
			}
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fd := int(r.tty.Fd())
	state, _ := term.GetState(fd)
	if state != nil {
		defer term.Restore(fd, state)
		echoOff(fd)
	}
	fmt.Fprint(r.prompt, prompt)
	type read struct {
		b   []byte
		err error
	}
	done := make(chan read, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		done <- read{b, err}
	}()
	select {
	case <-r.ctx.Done():
		// Ctrl-C: the read cannot be interrupted; the deferred restore
		// puts the echo back, and the command ends with the reader.
		fmt.Fprintln(r.prompt)
		return "", &platform.Error{Op: "read the " + r.secret.what, Kind: platform.ErrCancelled, RetriesLeft: -1, Err: r.ctx.Err()}
	case res := <-done:
		fmt.Fprintln(r.prompt)
		if res.err != nil {
			return "", fmt.Errorf("read the %s: %w", r.secret.what, res.err)
		}
		return string(res.b), nil
	}
}

// newPIN reads a new PIN twice; the two must match.
func (r *pinReader) newPIN() (string, error) {
	pin, err := r.read("New PIN: ")
	if err != nil {
		return "", err
	}
	again, err := r.read("Confirm new PIN: ")
	if err != nil {
		return "", err
	}
	if pin != again {
		return "", errPINsDiffer
	}
	return pin, nil
}

// readPIN reads the current PIN for an operation that needs it.
func (e *env) readPIN(ctx context.Context, fromStdin bool) (string, error) {
	r, err := e.pinReader(ctx, fromStdin)
	if err != nil {
		return "", err
	}
	defer r.close()
	return r.read("PIN: ")
}
