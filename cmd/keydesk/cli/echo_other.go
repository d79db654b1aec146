//go:build !linux

package cli

// echoOff does nothing here: term.ReadPassword turns the echo off when it
// starts reading.
func echoOff(fd int) {}
