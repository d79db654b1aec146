package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keydesk/keydesk/platform"
)

// errNotConfirmed is a reset that was not confirmed: exit code 1.
var errNotConfirmed = &ExitError{Code: ExitOther, Err: errors.New("reset not confirmed; nothing was erased")}

func (e *env) reset(ctx context.Context, args []string) error {
	f := e.newFlags("reset", false, true, false)
	var yes bool
	f.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	if !yes {
		fmt.Fprint(e.stderr, "Every credential, fingerprint and the PIN on this key will be erased; type 'erase' to confirm: ")
		line := ""
		if e.stdin != nil {
			line, _ = bufio.NewReader(e.stdin).ReadString('\n')
		}
		if strings.TrimSpace(line) != "erase" {
			fmt.Fprintln(e.stderr)
			return errNotConfirmed
		}
	}
	// Run's progress prints the touch and re-plug prompts.
	return e.withKey(ctx, f, func(key platform.Authenticator) error {
		return e.done(key.Reset(ctx), "Key reset.")
	})
}
