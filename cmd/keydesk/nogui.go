//go:build nogui

package main

import (
	"errors"
	"io"
)

// errNoGUI is what a build without the desktop app (go build -tags
// nogui) answers for it. Such a build is the commands alone: Fyne and the
// embedded service are not linked, so that a script's keydesk starts as
// fast as before there was a window (the desktop app's packages cost
// about 3.5 ms of initialization in every process).
var errNoGUI = errors.New("this keydesk was built without the desktop app (-tags nogui): keydesk help lists its commands")

func runGUI() error { return errNoGUI }

func tourCommand([]string, io.Writer, io.Writer) error { return errNoGUI }
