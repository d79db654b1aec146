// Command keydesk manages FIDO2 security keys and the accounts they
// protect. Until the desktop app lands it lists the connected keys.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/keydesk/keydesk/cmd/keydesk/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "keydesk:", err)
		os.Exit(1)
	}
}
