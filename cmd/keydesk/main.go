// Command keydesk manages FIDO2 security keys and the accounts they
// protect. With no command it opens the desktop app (package ui); see
// cli.Usage (or `keydesk help`) for the commands and the exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/keydesk/keydesk/cmd/keydesk/cli"
	_ "github.com/keydesk/keydesk/cmd/keydesk/internal/posixlocale" // before Fyne initializes
)

func main() {
	if len(os.Args) == 1 {
		// No command: the desktop app.
		if err := runGUI(); err != nil {
			fmt.Fprintln(os.Stderr, "keydesk:", err)
			os.Exit(cli.ExitOther)
		}
		return
	}
	if os.Args[1] == "gui-tour" {
		if err := tourCommand(os.Args[2:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "keydesk:", err)
			os.Exit(cli.ExitOther)
		}
		return
	}
	ctx, stop := context.Background(), func() {}
	if cli.MayWait(os.Args[1:]) {
		// Ctrl-C cancels the wait (CTAPHID_CANCEL) and puts the
		// terminal's echo back. Commands that never wait keep the default,
		// ending at once, and spare the process the thread that forwarding
		// signals costs: a listing of keys is no slower than fido2-token's.
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt)
	}
	err := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err == nil {
		return
	}
	code := cli.ExitOther
	var ee *cli.ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	}
	if !errors.Is(err, cli.ErrUsageShown) {
		fmt.Fprintln(os.Stderr, "keydesk:", err)
	}
	os.Exit(code)
}
