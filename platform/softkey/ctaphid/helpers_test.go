package ctaphid

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeHandler stands in for the CTAP2 engine, which is tested elsewhere.
type fakeHandler struct {
	cbor  func(ctx context.Context, req []byte, keepalive func(byte)) []byte
	winks atomic.Int32
}

func (h *fakeHandler) CBOR(ctx context.Context, req []byte, keepalive func(byte)) []byte {
	if h.cbor != nil {
		return h.cbor(ctx, req, keepalive)
	}
	return []byte{0x00, 0xa0} // success, empty map
}

func (h *fakeHandler) Wink() { h.winks.Add(1) }

// u2fHandler also speaks CTAPHID_MSG.
type u2fHandler struct{ fakeHandler }

func (h *u2fHandler) MSG(ctx context.Context, apdu []byte) []byte {
	return append(bytes.Clone(apdu), 0x90, 0x00)
}

// seqRand yields the channel IDs 1, 2, 3, ... so tests know them in advance.
type seqRand struct {
	mu      sync.Mutex
	n       uint32
	pending []byte
}

func (r *seqRand) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.pending) < len(p) {
		r.n++
		r.pending = binary.BigEndian.AppendUint32(r.pending, r.n)
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// bytesRand yields fixed bytes, then fails.
type bytesRand struct{ b []byte }

func (r *bytesRand) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, errors.New("entropy exhausted")
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// fakeClock drives CTAPHID_LOCK expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newDevice(t testing.TB, h Handler, opts Options) *Device {
	t.Helper()
	if opts.Rand == nil {
		opts.Rand = &seqRand{}
	}
	d := NewDevice(h, opts)
	t.Cleanup(d.Close)
	return d
}

// msg is a reassembled device-to-host message.
type msg struct {
	cid  uint32
	cmd  byte
	data []byte
}

func errMsg(cid uint32, code byte) msg { return msg{cid, CmdError, []byte{code}} }

// host plays the role of libfido2 on one Port.
type host struct {
	t       testing.TB
	p       *Port               // nil for a socket client
	deliver func(report []byte) // host-to-device path
	in      chan []byte         // device-to-host reports
}

func attach(t testing.TB, d *Device) *host {
	h := &host{t: t, in: make(chan []byte, 1024)}
	h.p = d.Attach(func(r []byte) {
		if len(r) != ReportSize {
			t.Errorf("device sent a %d-byte report", len(r))
		}
		select {
		case h.in <- bytes.Clone(r):
		default:
			t.Errorf("report buffer full")
		}
	})
	h.deliver = h.p.Receive
	t.Cleanup(h.p.Close)
	return h
}

func initPkt(cid uint32, cmd byte, bcnt int, data []byte) []byte {
	r := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(r, cid)
	r[4] = cmd | 0x80
	binary.BigEndian.PutUint16(r[5:], uint16(bcnt))
	copy(r[7:], data)
	return r
}

func contPkt(cid uint32, seq byte, data []byte) []byte {
	r := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(r, cid)
	r[4] = seq
	copy(r[5:], data)
	return r
}

// packets encodes a request the way libfido2 does (without report ID).
func packets(cid uint32, cmd byte, data []byte) [][]byte {
	first := data[:min(len(data), 57)]
	out := [][]byte{initPkt(cid, cmd, len(data), first)}
	for rest, seq := data[len(first):], 0; len(rest) > 0; seq++ {
		n := min(len(rest), 59)
		out = append(out, contPkt(cid, byte(seq), rest[:n]))
		rest = rest[n:]
	}
	return out
}

func (h *host) raw(reports ...[]byte) {
	for _, r := range reports {
		h.deliver(r)
	}
}

func (h *host) request(cid uint32, cmd byte, data []byte) {
	h.raw(packets(cid, cmd, data)...)
}

func (h *host) report() []byte {
	h.t.Helper()
	select {
	case r := <-h.in:
		return r
	case <-time.After(3 * time.Second):
		h.t.Fatalf("no report from the device")
		return nil
	}
}

// next reassembles the next message, checking sequence numbers and padding.
func (h *host) next() msg {
	h.t.Helper()
	r := h.report()
	if r[4]&0x80 == 0 {
		h.t.Fatalf("message starts with a continuation packet: % x", r[:8])
	}
	m := msg{cid: binary.BigEndian.Uint32(r), cmd: r[4] &^ 0x80}
	n := int(binary.BigEndian.Uint16(r[5:]))
	m.data = append([]byte{}, r[7:7+min(n, 57)]...)
	last, used := r, 7+min(n, 57)
	for seq := 0; len(m.data) < n; seq++ {
		r = h.report()
		if got := binary.BigEndian.Uint32(r); got != m.cid || int(r[4]) != seq {
			h.t.Fatalf("continuation cid %08x seq %d, want %08x seq %d", got, r[4], m.cid, seq)
		}
		k := min(n-len(m.data), 59)
		m.data = append(m.data, r[5:5+k]...)
		last, used = r, 5+k
	}
	if !allZero(last[used:]) {
		h.t.Errorf("report is not zero padded: % x", last)
	}
	return m
}

// response returns the next message that is not a keep-alive.
func (h *host) response() msg {
	h.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if m := h.next(); m.cmd != CmdKeepalive {
			return m
		}
	}
	h.t.Fatalf("only keep-alives from the device")
	return msg{}
}

// silent checks that the device sends nothing (keep-alives aside if
// allowKeepalive) for a short while.
func (h *host) silent(allowKeepalive bool) {
	h.t.Helper()
	deadline := time.After(40 * time.Millisecond)
	for {
		select {
		case r := <-h.in:
			if allowKeepalive && r[4] == CmdKeepalive|0x80 {
				continue
			}
			h.t.Fatalf("unexpected report: % x", r[:12])
		case <-deadline:
			return
		}
	}
}

// open allocates a channel like fido_dev_open.
func (h *host) open() uint32 {
	h.t.Helper()
	nonce := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	h.request(BroadcastCID, CmdInit, nonce)
	m := h.response()
	if m.cmd != CmdInit || len(m.data) != 17 || !bytes.Equal(m.data[:8], nonce) {
		h.t.Fatalf("INIT response %+v", m)
	}
	return binary.BigEndian.Uint32(m.data[8:])
}

func (h *host) expect(want msg) {
	h.t.Helper()
	got := h.response()
	if got.cid != want.cid || got.cmd != want.cmd || !bytes.Equal(got.data, want.data) {
		h.t.Fatalf("got cid %08x cmd %#x data % x; want cid %08x cmd %#x data % x",
			got.cid, got.cmd, trunc(got.data), want.cid, want.cmd, trunc(want.data))
	}
}

func trunc(b []byte) []byte { return b[:min(len(b), 24)] }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// blocking is a handler whose CBOR call waits for release or cancellation,
// reporting progress to the test.
type blocking struct {
	fakeHandler
	started  chan []byte // request of each call
	status   chan byte   // statuses to report through keepalive
	release  chan []byte // response to return
	finished chan error  // ctx.Err() when the call returns
	calls    atomic.Int32
	inCBOR   atomic.Int32
	overlaps atomic.Int32
}

func newBlocking() *blocking {
	b := &blocking{
		started:  make(chan []byte, 16),
		status:   make(chan byte, 16),
		release:  make(chan []byte, 16),
		finished: make(chan error, 16),
	}
	b.cbor = func(ctx context.Context, req []byte, keepalive func(byte)) []byte {
		if b.inCBOR.Add(1) > 1 {
			b.overlaps.Add(1)
		}
		defer b.inCBOR.Add(-1)
		b.calls.Add(1)
		b.started <- req
		for {
			select {
			case s := <-b.status:
				keepalive(s)
			case res := <-b.release:
				b.finished <- ctx.Err()
				return res
			case <-ctx.Done():
				b.finished <- ctx.Err()
				return []byte{0x2D} // CTAP2_ERR_KEEPALIVE_CANCEL
			}
		}
	}
	return b
}

func recvTimeout[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(3 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
