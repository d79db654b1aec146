package ctaphid

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// listen creates a unixpacket listener in a short temporary directory:
// t.TempDir can exceed the 108-byte limit of unix socket paths.
func listen(t *testing.T) (*net.UnixListener, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "kd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	return ln, path
}

// serve runs Serve until the test ends and checks how it returned.
func serve(t *testing.T, d *Device) string {
	t.Helper()
	ln, path := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, d) }()
	t.Cleanup(func() {
		cancel()
		if err := recvTimeout(t, done, "Serve to return"); !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v, want context.Canceled", err)
		}
	})
	return path
}

// dial connects a host to the socket the way the libfido2 shim does: it
// writes 65-byte reports with report ID 0 and reads 64-byte datagrams.
func dial(t *testing.T, path string) (*host, *net.UnixConn) {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	h := &host{t: t, in: make(chan []byte, 1024)}
	h.deliver = func(r []byte) {
		if len(r) == ReportSize {
			r = append([]byte{0}, r...)
		}
		if _, err := c.Write(r); err != nil {
			t.Errorf("write: %v", err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 256)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if n != ReportSize {
				t.Errorf("received a %d-byte datagram", n)
			}
			h.in <- bytes.Clone(buf[:n])
		}
	}()
	t.Cleanup(func() {
		c.Close()
		wg.Wait()
	})
	return h, c
}

func TestServe(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, d *Device, handler *blocking, path string)
	}{
		{
			name: "INIT and a multi-packet PING work with 65-byte reports",
			run: func(t *testing.T, d *Device, handler *blocking, path string) {
				h, _ := dial(t, path)
				cid := h.open()
				h.request(cid, CmdPing, pattern(1000))
				h.expect(msg{cid, CmdPing, pattern(1000)})
			},
		},
		{
			name: "64-byte reports without report ID work too",
			run: func(t *testing.T, d *Device, handler *blocking, path string) {
				h, c := dial(t, path)
				h.deliver = func(r []byte) { c.Write(r) }
				cid := h.open()
				h.request(cid, CmdPing, pattern(100))
				h.expect(msg{cid, CmdPing, pattern(100)})
			},
		},
		{
			name: "datagrams of other sizes are dropped",
			run: func(t *testing.T, d *Device, handler *blocking, path string) {
				h, c := dial(t, path)
				cid := h.open()
				r := initPkt(cid, CmdPing, 1, []byte{1})
				for _, bad := range [][]byte{
					r[:63], append(r, 0, 0), append([]byte{7}, r...), make([]byte, 200),
				} {
					if _, err := c.Write(bad); err != nil {
						t.Fatal(err)
					}
				}
				h.request(cid, CmdPing, []byte{2})
				h.expect(msg{cid, CmdPing, []byte{2}})
				h.silent(false)
			},
		},
		{
			name: "responses go only to the connection that asked",
			run: func(t *testing.T, d *Device, handler *blocking, path string) {
				h1, _ := dial(t, path)
				h2, _ := dial(t, path)
				cid := h1.open()
				h1.request(cid, CmdPing, []byte{1})
				h1.expect(msg{cid, CmdPing, []byte{1}})
				h2.silent(false)
			},
		},
		{
			name: "connections share channels and the busy state",
			run: func(t *testing.T, d *Device, handler *blocking, path string) {
				h1, _ := dial(t, path)
				h2, _ := dial(t, path)
				a, b := h1.open(), h2.open()
				h1.request(a, CmdCBOR, []byte{4})
				recvTimeout(t, handler.started, "CBOR call")
				h2.request(b, CmdPing, []byte{1})
				h2.expect(errMsg(b, ErrChannelBusy))
				h2.request(a, CmdPing, []byte{1}) // a was allocated by h1
				h2.expect(errMsg(a, ErrChannelBusy))
				handler.release <- []byte{0}
				h1.expect(msg{a, CmdCBOR, []byte{0}})
				h2.silent(false)
			},
		},
		{
			name: "closing a connection cancels its request",
			run: func(t *testing.T, d *Device, handler *blocking, path string) {
				h1, c1 := dial(t, path)
				h2, _ := dial(t, path)
				a, b := h1.open(), h2.open()
				h1.request(a, CmdCBOR, []byte{4})
				recvTimeout(t, handler.started, "CBOR call")
				c1.Close()
				if err := recvTimeout(t, handler.finished, "handler return"); err != context.Canceled {
					t.Errorf("handler saw %v, want context.Canceled", err)
				}
				h2.request(b, CmdPing, []byte{1})
				h2.expect(msg{b, CmdPing, []byte{1}})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := newBlocking()
			d := newDevice(t, handler, Options{})
			tt.run(t, d, handler, serve(t, d))
		})
	}
}

func TestServeStops(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{
			name: "cancelling ctx closes the listener and connections and returns ctx.Err()",
			run: func(t *testing.T) {
				d := newDevice(t, &fakeHandler{}, Options{})
				ln, path := listen(t)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- Serve(ctx, ln, d) }()
				h, c := dial(t, path)
				h.open() // the connection is attached
				cancel()
				if err := recvTimeout(t, done, "Serve to return"); !errors.Is(err, context.Canceled) {
					t.Errorf("Serve returned %v", err)
				}
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				if _, err := c.Read(make([]byte, 64)); err == nil {
					t.Errorf("connection still open after Serve returned")
				}
				if _, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"}); err == nil {
					t.Errorf("listener still accepts after Serve returned")
				}
			},
		},
		{
			name: "a failing listener ends Serve with its error",
			run: func(t *testing.T) {
				d := newDevice(t, &fakeHandler{}, Options{})
				ln, _ := listen(t)
				ln.Close()
				err := Serve(context.Background(), ln, d)
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("Serve returned %v, want net.ErrClosed", err)
				}
			},
		},
		{
			name: "a stream listener is refused",
			run: func(t *testing.T) {
				d := newDevice(t, &fakeHandler{}, Options{})
				dir, err := os.MkdirTemp("", "kd")
				if err != nil {
					t.Fatal(err)
				}
				defer os.RemoveAll(dir)
				ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "s"), Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				if err := Serve(context.Background(), ln, d); err == nil {
					t.Errorf("Serve accepted a stream listener")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}
