// Command rpbench is the reference RP's load generator (make bench-rp):
// complete login ceremonies over loopback HTTP against SQLite and
// PostgreSQL, next to go-webauthn's bare login validation. See
// bench.Usage for the flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/keydesk/keydesk/cmd/rpbench/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := bench.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpbench:", err)
		os.Exit(1)
	}
}
