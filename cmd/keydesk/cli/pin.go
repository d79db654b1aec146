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

// pinReader reads PINs: from standard input one a line (--pin-stdin), or
// from the terminal without echo, prompting on stderr.
type pinReader struct {
	ctx    context.Context
	lines  *bufio.Reader // --pin-stdin
	tty    *os.File      // the terminal otherwise
	ownTTY bool          // tty was opened here
	prompt io.Writer
}

func (e *env) pinReader(ctx context.Context, fromStdin bool) (*pinReader, error) {
	if fromStdin {
		if e.stdin == nil {
			return nil, usageError("--pin-stdin: no standard input")
		}
		return &pinReader{ctx: ctx, lines: bufio.NewReader(e.stdin)}, nil
	}
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &pinReader{ctx: ctx, tty: f, prompt: e.stderr}, nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return nil, usageError("no terminal to read the PIN from; use --pin-stdin to read it from standard input")
	}
	return &pinReader{ctx: ctx, tty: tty, ownTTY: true, prompt: tty}, nil
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
				return "", usageError("--pin-stdin: standard input ended before the PIN (%s)", strings.TrimSuffix(prompt, ": "))
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
		return "", &platform.Error{Op: "read the PIN", Kind: platform.ErrCancelled, RetriesLeft: -1, Err: r.ctx.Err()}
	case res := <-done:
		fmt.Fprintln(r.prompt)
		if res.err != nil {
			return "", fmt.Errorf("read the PIN: %w", res.err)
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
