// Command keydesk-rp is Keydesk's reference relying-party server. See
// rpcli.Usage (or `keydesk-rp help`) for the commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/keydesk/keydesk/cmd/keydesk-rp/rpcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := rpcli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keydesk-rp:", err)
		os.Exit(1)
	}
}
