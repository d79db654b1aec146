package cli

import "golang.org/x/sys/unix"

// echoOff turns the terminal's echo off before the PIN prompt is shown,
// so that a PIN typed ahead of the prompt is not displayed either
// (term.ReadPassword turns it off only once it starts reading). The
// caller restores the terminal's state.
func echoOff(fd int) {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return
	}
	t.Lflag &^= unix.ECHO
	unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
