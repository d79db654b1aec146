//go:build !nogui

package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDialDisplay reaches X servers the ways Xlib does, and says why one
// cannot be reached, so that the window fails with words instead of a
// GLFW panic.
func TestDialDisplay(t *testing.T) {
	// Unix socket paths are limited to 108 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "x11")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	local, err := net.Listen("unix", filepath.Join(dir, "X7"))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	remote, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	port := remote.Addr().(*net.TCPAddr).Port
	if port <= 6000 {
		t.Fatalf("port %d", port)
	}
	tests := []struct {
		display string
		wantErr string
	}{
		{":7", ""},
		{":7.0", ""},
		{"unix:7", ""},
		{filepath.Join(dir, "X7") + ":0", ""},
		{"127.0.0.1:" + strconv.Itoa(port-6000), ""},
		{":8", "no such file or directory"},
		{"127.0.0.1:" + strconv.Itoa(port-6000+1), "connection refused"},
		{"garbage", "not a display name"},
		{":x", "not a display name"},
		{":99999", "not a display name"},
	}
	for _, tt := range tests {
		t.Run(tt.display, func(t *testing.T) {
			err := dialDisplay(tt.display, dir)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("dialDisplay(%q) = %v", tt.display, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("dialDisplay(%q) = %v, want %q", tt.display, err, tt.wantErr)
			}
		})
	}
}

// TestCheckDisplaySaysWhatToDo: no DISPLAY, or one that does not answer,
// is an error naming it and pointing at the commands.
func TestCheckDisplaySaysWhatToDo(t *testing.T) {
	t.Setenv("DISPLAY", "")
	if err := checkDisplay(); !errors.Is(err, errNoDisplay) {
		t.Fatalf("no DISPLAY: %v", err)
	}
	t.Setenv("DISPLAY", ":65000")
	err := checkDisplay()
	if err == nil || !strings.Contains(err.Error(), "DISPLAY=:65000") || !strings.Contains(err.Error(), "keydesk help") {
		t.Fatalf("a display nobody serves: %v", err)
	}
}
