package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform/softkey"
)

// shortDir returns a directory short enough for a unix socket path.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "kd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	ch chan []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.ch <- append([]byte(nil), p...)
	return len(p), nil
}

// serve starts run in the background and waits until it listens.
func serve(t *testing.T, args ...string) (sock string, stop func() error) {
	t.Helper()
	dir := shortDir(t)
	sock = filepath.Join(dir, "k.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := &syncBuffer{ch: make(chan []byte, 16)}
	go func() { done <- run(ctx, append([]string{"--socket", sock}, args...), out) }()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case line := <-out.ch:
			if strings.Contains(string(line), "serving on") {
				return sock, func() error { cancel(); return <-done }
			}
		case err := <-done:
			t.Fatalf("run ended early: %v", err)
		case <-deadline:
			t.Fatal("softkey did not start")
		}
	}
}

// initChannel sends CTAPHID_INIT and returns the response report.
func initChannel(t *testing.T, sock string) []byte {
	t.Helper()
	c, err := net.Dial("unixpacket", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := make([]byte, 65) // report id 0, as libfido2 writes
	copy(req[1:], []byte{0xff, 0xff, 0xff, 0xff, 0x86, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8})
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp := make([]byte, 128)
	n, err := c.Read(resp)
	if err != nil {
		t.Fatal(err)
	}
	return resp[:n]
}

func TestServesCTAPHID(t *testing.T) {
	sock, stop := serve(t)
	resp := initChannel(t, sock)
	if len(resp) != 64 || !bytes.Equal(resp[:7], []byte{0xff, 0xff, 0xff, 0xff, 0x86, 0, 17}) || !bytes.Equal(resp[7:15], []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("INIT response % x", resp)
	}
	if err := stop(); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("socket left behind")
	}
}

func TestStateKeyFileCreatedPrivate(t *testing.T) {
	dir := shortDir(t)
	state := filepath.Join(dir, "key.state")
	_, stop := serve(t, "--state", state)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(state + ".key")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	// The same state opens again with its key file.
	_, stop = serve(t, "--state", state)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Without its key file, the state is not silently replaced.
	os.Remove(state + ".key")
	err = run(context.Background(), []string{"--socket", filepath.Join(dir, "x.sock"), "--state", state}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "key file") {
		t.Fatalf("state without key: %v", err)
	}
}

func TestRefusesBadInput(t *testing.T) {
	dir := shortDir(t)
	corrupt := filepath.Join(dir, "bad.state")
	os.WriteFile(corrupt, []byte("garbage"), 0o600)
	os.WriteFile(corrupt+".key", []byte(strings.Repeat("ab", 32)), 0o600)
	notSock := filepath.Join(dir, "file")
	os.WriteFile(notSock, nil, 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "ShouldRequireSocket", args: nil, want: "--socket is required"},
		{name: "ShouldRejectBadPresence", args: []string{"--socket", filepath.Join(dir, "a.sock"), "--presence", "maybe"}, want: "presence policy"},
		{name: "ShouldRefuseCorruptState", args: []string{"--socket", filepath.Join(dir, "b.sock"), "--state", corrupt}, want: softkey.ErrStateCorrupt.Error()},
		{name: "ShouldNotReplaceAFile", args: []string{"--socket", notSock}, want: "not a socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRefusesSocketInUse(t *testing.T) {
	sock, stop := serve(t)
	defer stop()
	err := run(context.Background(), []string{"--socket", sock}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server on a live socket: %v", err)
	}
	initChannel(t, sock) // the first server is unharmed
}

// ctapClient speaks just enough CTAPHID to send one-packet CBOR requests.
type ctapClient struct {
	t   *testing.T
	c   net.Conn
	cid []byte
}

func dialKey(t *testing.T, sock string) *ctapClient {
	t.Helper()
	c, err := net.Dial("unixpacket", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &ctapClient{t: t, c: c}
	resp := cl.roundTrip([]byte{0xff, 0xff, 0xff, 0xff, 0x86, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8})
	cl.cid = append([]byte(nil), resp[15:19]...)
	return cl
}

// send writes one 64-byte report.
func (cl *ctapClient) send(report []byte) {
	buf := make([]byte, 64)
	copy(buf, report)
	if _, err := cl.c.Write(buf); err != nil {
		cl.t.Fatal(err)
	}
}

// next reads the next report that is not a keep-alive, calling onKeepalive
// with the status of each keep-alive seen before it.
func (cl *ctapClient) next(onKeepalive func(status byte)) []byte {
	cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 128)
	for {
		n, err := cl.c.Read(buf)
		if err != nil {
			cl.t.Fatal(err)
		}
		if buf[4] == 0xbb && onKeepalive != nil {
			onKeepalive(buf[7])
			continue
		}
		return buf[:n]
	}
}

func (cl *ctapClient) roundTrip(report []byte) []byte {
	cl.send(report)
	return cl.next(nil)
}

// cbor sends a CTAP2 command without parameters and returns its status.
func (cl *ctapClient) cbor(cmd byte, onKeepalive func(byte)) byte {
	cl.send(append(append([]byte{}, cl.cid...), 0x90, 0, 1, cmd))
	return cl.next(onKeepalive)[7]
}

func TestSignalsTouchAndReplug(t *testing.T) {
	sock, stop := serve(t, "--presence", "signal")
	defer stop()
	cl := dialKey(t, sock)

	// SIGUSR1 is the touch the key waits for.
	if st := cl.cbor(0x0b, func(status byte) {
		if status == 2 {
			syscall.Kill(os.Getpid(), syscall.SIGUSR1)
		}
	}); st != 0 {
		t.Fatalf("selection touched by SIGUSR1: status 0x%02x", st)
	}
	// SIGUSR2 unplugs the key: the wait ends as cancelled.
	if st := cl.cbor(0x0b, func(status byte) {
		if status == 2 {
			syscall.Kill(os.Getpid(), syscall.SIGUSR2)
		}
	}); st != 0x2d {
		t.Fatalf("selection during a re-plug: status 0x%02x, want CTAP2_ERR_KEEPALIVE_CANCEL", st)
	}
}
