package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/platform"
)

// maxOptionsFile bounds what --options reads; the client refuses options
// past webauthn.MaxOptionsSize anyway, with a clearer message than a
// read of a huge file would end with.
const maxOptionsFile = webauthn.MaxOptionsSize + 1

// webauthnCmd is "keydesk webauthn create|get": a browser's
// navigator.credentials.create()/get() from a terminal, for RP developers
// testing a server with a real key, and for interoperability tests.
func (e *env) webauthnCmd(ctx context.Context, args []string) error {
	return e.sub("webauthn", args, map[string]func([]string) error{
		"create": func(args []string) error { return e.ceremony(ctx, "webauthn create", args, true) },
		"get":    func(args []string) error { return e.ceremony(ctx, "webauthn get", args, false) },
	})
}

// ceremony runs one registration (create) or authentication.
func (e *env) ceremony(ctx context.Context, name string, args []string, create bool) error {
	f := e.newFlags(name, false, true, true)
	originFlag := f.String("origin", "", "the web origin the ceremony runs for, such as https://login.example.com")
	optionsFile := f.String("options", "", "file of the options JSON, or - for standard input")
	user := f.String("user", "", "get: with several accounts on the key, the user name to sign in as")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	switch {
	case *originFlag == "":
		return usageError("%s: --origin is required", name)
	case *optionsFile == "":
		return usageError("%s: --options is required", name)
	case *optionsFile == "-" && f.pinStdin:
		return usageError("%s: --options - and --pin-stdin cannot both read standard input", name)
	case create && *user != "":
		return usageError("%s: --user is for webauthn get", name)
	}
	// The origin and the options are checked before any key is opened.
	origin, err := webauthn.ParseOrigin(*originFlag)
	if err != nil {
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("--origin: %w", err)}
	}
	options, err := e.readOptions(*optionsFile)
	if err != nil {
		return err
	}
	if err := checkOptions(origin, options, create); err != nil {
		return &ExitError{Code: ExitUsage, Err: err}
	}
	return e.withKey(ctx, f, func(key platform.Authenticator) error {
		info, err := key.Describe(ctx)
		if err != nil {
			return err
		}
		prompt, closePrompt := e.pinPrompt(ctx, f.pinStdin)
		defer closePrompt()
		opts := webauthn.CeremonyOptions{
			Capabilities: webauthn.CapabilitiesOf(info, key.Device()),
			PIN:          prompt,
			ChooseAccount: func(as []platform.Assertion) (int, error) {
				return e.chooseAccount(as, *user)
			},
		}
		var c webauthn.Client
		var out []byte
		if create {
			out, err = c.Create(ctx, key, origin, options, opts)
		} else {
			out, err = c.Get(ctx, key, origin, options, opts)
		}
		if err != nil {
			return ceremonyError(err)
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", out)
		return err
	})
}

// readOptions reads the options JSON from a file or standard input.
func (e *env) readOptions(path string) ([]byte, error) {
	var r io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError("--options: %v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxOptionsFile))
	if err != nil {
		return nil, fmt.Errorf("--options: %w", err)
	}
	return b, nil
}

// checkOptions parses the options and checks the RP ID against the
// origin, so that a mistake is a usage error before a key is opened (the
// client checks again on its own).
func checkOptions(origin webauthn.Origin, options []byte, create bool) error {
	rpID := ""
	if create {
		o, err := webauthn.ParseCreationOptions(options)
		if err != nil {
			return fmt.Errorf("--options: %w", err)
		}
		rpID = o.RP.ID
	} else {
		o, err := webauthn.ParseRequestOptions(options)
		if err != nil {
			return fmt.Errorf("--options: %w", err)
		}
		rpID = o.RPID
	}
	if rpID == "" {
		return nil // the origin's host, which always fits
	}
	return origin.CheckRPID(rpID)
}

// pinPrompt asks for the PIN when the key needs it: from the terminal
// without echo, or a line of standard input with --pin-stdin. A wrong PIN
// is said with the attempts left before the next ask. The terminal opened
// for the first ask stays open for the next ones, until done is called.
func (e *env) pinPrompt(ctx context.Context, fromStdin bool) (prompt webauthn.PINPrompt, done func()) {
	var r *pinReader
	done = func() {
		if r != nil {
			r.close()
		}
	}
	return func(_ context.Context, retriesLeft int) (string, error) {
		if retriesLeft >= 0 {
			fmt.Fprintf(e.stderr, "Wrong PIN: %d attempt(s) left before the key locks.\n", retriesLeft)
		}
		if r == nil {
			var err error
			if r, err = e.pinReader(ctx, fromStdin); err != nil {
				return "", err
			}
		}
		return r.read("PIN: ")
	}, done
}

// chooseAccount picks among the discoverable credentials the key offered:
// the one named by --user, else the first (the most recently created),
// saying on standard error which it took and which others there are.
func (e *env) chooseAccount(as []platform.Assertion, user string) (int, error) {
	name := func(a platform.Assertion) string {
		if a.User == nil {
			return ""
		}
		return a.User.Name
	}
	if user != "" {
		for i, a := range as {
			if name(a) == user {
				return i, nil
			}
		}
		return 0, &ExitError{Code: ExitOther, Err: fmt.Errorf("the key holds no account %q for this service", user)}
	}
	fmt.Fprintf(e.stderr, "The key holds %d accounts for this service; signing in as %q (choose with --user):\n", len(as), name(as[0]))
	for _, a := range as {
		fmt.Fprintf(e.stderr, "  %s\n", name(a))
	}
	return 0, nil
}

// ceremonyError gives a client error its exit code: what the service or
// the command line asked that cannot be done is a usage error; the key's
// own errors keep theirs.
func ceremonyError(err error) error {
	for _, kind := range []error{webauthn.ErrBadOrigin, webauthn.ErrInsecureOrigin, webauthn.ErrRPIDMismatch,
		webauthn.ErrBadOptions, webauthn.ErrUnsupportedAlgorithm} {
		if errors.Is(err, kind) {
			return &ExitError{Code: ExitUsage, Err: err}
		}
	}
	return err
}
