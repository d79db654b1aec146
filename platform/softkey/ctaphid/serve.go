package ctaphid

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// writeTimeout bounds how long a report may wait for a host that stopped
// reading. Such a host is disconnected: its port holds the device's single
// transaction slot, and a wedged reader must not keep other hosts out.
const writeTimeout = 5 * time.Second

// Serve accepts SOCK_SEQPACKET unix connections ("unixpacket" in package net) and
// attaches each to d until ctx is done or the listener fails; each received
// datagram is one report. Datagrams that are neither 64 bytes nor 65 bytes
// starting with a zero report ID are dropped; every report sent is one
// 64-byte datagram.
//
// Serve closes ln and every accepted connection before it returns, and
// returns ctx.Err() when stopped by ctx, otherwise the Accept error. It does
// not close d.
func Serve(ctx context.Context, ln *net.UnixListener, d *Device) error {
	if network := ln.Addr().Network(); network != "unixpacket" {
		// A stream socket has no datagram boundaries, so reports could not
		// be told apart.
		return fmt.Errorf("ctaphid: listener network is %q, want unixpacket", network)
	}
	var (
		mu       sync.Mutex
		conns    = make(map[*net.UnixConn]struct{})
		stopping bool
		wg       sync.WaitGroup
	)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-done:
		}
		ln.Close() // unblocks AcceptUnix
	}()

	var err error
	for {
		c, aerr := ln.AcceptUnix()
		if aerr != nil {
			err = aerr
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			break
		}
		mu.Lock()
		if stopping {
			mu.Unlock()
			c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(c, d)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}

	close(done)
	mu.Lock()
	stopping = true
	for c := range conns {
		c.Close() // unblocks the connection's Read
	}
	mu.Unlock()
	wg.Wait()
	return err
}

// serveConn relays reports between one connection and a Port of d until the
// connection fails or is closed.
func serveConn(c *net.UnixConn, d *Device) {
	// Moving the deadline on every report would reset a runtime timer
	// each time, which wakes the network poller: on these VMs that doubled
	// the round-trip time. The deadline is renewed only when less than half
	// of writeTimeout is left, so a stuck host is still dropped within
	// writeTimeout/2 to writeTimeout. send calls are sequential.
	var deadline time.Time
	p := d.Attach(func(report []byte) {
		if now := time.Now(); deadline.Sub(now) < writeTimeout/2 {
			deadline = now.Add(writeTimeout)
			c.SetWriteDeadline(deadline)
		}
		if _, err := c.Write(report); err != nil {
			c.Close()
		}
	})
	// Larger than any valid report, so that an oversized datagram (which
	// the kernel truncates to the buffer) is recognised and dropped.
	buf := make([]byte, 2*ReportSize)
	for {
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		p.Receive(buf[:n])
	}
	c.Close()
	p.Close()
}
