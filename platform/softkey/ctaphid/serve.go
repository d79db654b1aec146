package ctaphid

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
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
		spawn := func(f func()) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f()
			}()
		}
		spawn(func() {
			serveConn(c, d, spawn, func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			})
		})
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

// handoffAfter is how long a request may run on the connection's reading
// goroutine before reading moves to a new goroutine. Most requests are
// answered well within it, without any other thread waking up; one that
// waits for a touch still gets its CANCEL read.
const handoffAfter = time.Millisecond

// serveConn relays reports between one connection and a Port of d until the
// connection fails or is closed; spawn starts tracked goroutines and done
// runs once the connection is finished with.
func serveConn(c *net.UnixConn, d *Device, spawn func(func()), done func()) {
	// Moving the deadline on every message would reset a runtime timer
	// each time, which wakes the network poller: on these VMs that doubled
	// the round-trip time. The deadline is renewed only when less than half
	// of writeTimeout is left, so a stuck host is still dropped within
	// writeTimeout/2 to writeTimeout. sendAll calls are sequential.
	var deadline time.Time
	w := newReportWriter(c)
	p := d.AttachBatch(func(reports [][]byte) {
		if now := time.Now(); deadline.Sub(now) < writeTimeout/2 {
			deadline = now.Add(writeTimeout)
			c.SetWriteDeadline(deadline)
		}
		if err := w.write(reports); err != nil {
			c.Close()
		}
	})
	r := &connReader{c: c, p: p, spawn: spawn, done: done}
	r.loop()
}

// connReader is the reading side of one connection. Exactly one goroutine
// runs loop at a time; a request that runs long passes the loop on.
type connReader struct {
	c     *net.UnixConn
	p     *Port
	spawn func(func())
	done  func()
}

func (r *connReader) loop() {
	// Larger than any valid report, so that an oversized datagram (which
	// the kernel truncates to the buffer) is recognised and dropped.
	buf := make([]byte, 2*ReportSize)
	for {
		n, err := r.c.Read(buf)
		if err != nil {
			break
		}
		run := r.p.ReceiveInline(buf[:n])
		if run == nil {
			continue
		}
		// 0: running here; 1: reading moved on; 2: finished here first.
		var state atomic.Int32
		t := time.AfterFunc(handoffAfter, func() {
			if state.CompareAndSwap(0, 1) {
				r.spawn(r.loop)
			}
		})
		run()
		t.Stop()
		if !state.CompareAndSwap(0, 2) {
			return // another goroutine reads this connection now
		}
	}
	r.c.Close()
	r.p.Close()
	r.done()
}
