// Command keydesk manages FIDO2 security keys and the accounts they
// protect. See cli.Usage (or `keydesk help`) for the commands and the
// exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/keydesk/keydesk/cmd/keydesk/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
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
