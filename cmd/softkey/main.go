// Command softkey serves the Keydesk software FIDO2 key on a unix socket,
// so that programs linked with libfido2 reach it through the vhid shim:
//
//	softkey --socket /tmp/kd.sock --state key.state &
//	LD_PRELOAD=build/vhid.so KEYDESK_VHID_SOCKET=/tmp/kd.sock fido2-token -I /dev/keydesk-vhid0
//
// Signals drive the simulated user: SIGUSR1 touches the key (with
// --presence signal) and SIGUSR2 unplugs and re-plugs it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "softkey:", err)
		os.Exit(1)
	}
}
