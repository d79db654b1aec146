//go:build !nogui

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// x11SocketDir is where an X server on this machine listens.
const x11SocketDir = "/tmp/.X11-unix"

// displayTimeout bounds the check that the display answers.
const displayTimeout = 2 * time.Second

// checkDisplay makes sure the window has somewhere to go before GLFW is
// asked, which panics when the X server cannot be reached (a DISPLAY left
// over from an ended session, an SSH forwarding that is gone). The window
// is an X11 one on Linux and the BSDs (XWayland under Wayland); macOS and
// Windows always have their own.
func checkDisplay() error {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		return nil
	}
	d := os.Getenv("DISPLAY")
	if d == "" {
		return errNoDisplay
	}
	if err := dialDisplay(d, x11SocketDir); err != nil {
		return fmt.Errorf("cannot reach the display DISPLAY=%s (%v): is its X server running, or the SSH session that forwarded it still open? "+
			"The commands work without a display: keydesk help lists them", d, err)
	}
	return nil
}

// dialDisplay connects to the X server display names, as Xlib would: a
// local display (":0", "unix:0") through its socket in socketDir, a
// remote one ("host:10") over TCP port 6000+N, a socket path
// ("/private/tmp/...:0", as XQuartz sets) directly.
func dialDisplay(display, socketDir string) error {
	host, rest, ok := strings.Cut(display, ":")
	if strings.HasPrefix(display, "/") {
		i := strings.LastIndex(display, ":")
		if i < 0 {
			return fmt.Errorf("not a display name")
		}
		return dial("unix", display[:i])
	}
	if !ok {
		return fmt.Errorf("not a display name")
	}
	// "host::0" is DECnet, which nobody runs.
	num, _, _ := strings.Cut(strings.TrimPrefix(rest, ":"), ".")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > 65535-6000 {
		return fmt.Errorf("not a display name")
	}
	if host == "" || host == "unix" {
		path := filepath.Join(socketDir, "X"+num)
		err := dial("unix", path)
		if err != nil && runtime.GOOS == "linux" {
			// Linux X servers also listen on an abstract socket, which
			// is all a sandbox without /tmp/.X11-unix may see.
			if dial("unix", "@"+path) == nil {
				return nil
			}
		}
		return err
	}
	return dial("tcp", net.JoinHostPort(host, strconv.Itoa(6000+n)))
}

func dial(network, addr string) error {
	c, err := net.DialTimeout(network, addr, displayTimeout)
	if err != nil {
		// "dial unix /tmp/.X11-unix/X7: connect: no such file or
		// directory" says less to a person than its last part.
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			return op.Err
		}
		return err
	}
	return c.Close()
}
