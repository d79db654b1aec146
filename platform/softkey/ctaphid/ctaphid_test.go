package ctaphid

import (
	"bytes"
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"
)

func TestInit(t *testing.T) {
	nonce := []byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04}
	tests := []struct {
		name    string
		handler Handler
		opts    Options
		run     func(t *testing.T, h *host)
	}{
		{
			name: "broadcast INIT allocates a channel and echoes the nonce",
			opts: Options{Version: [3]byte{5, 4, 3}},
			run: func(t *testing.T, h *host) {
				h.request(BroadcastCID, CmdInit, nonce)
				m := h.next()
				if m.cid != BroadcastCID || m.cmd != CmdInit || len(m.data) != 17 {
					t.Fatalf("response %+v", m)
				}
				if !bytes.Equal(m.data[:8], nonce) {
					t.Errorf("nonce % x, want % x", m.data[:8], nonce)
				}
				if cid := binary.BigEndian.Uint32(m.data[8:]); cid != 1 {
					t.Errorf("new CID %08x, want 00000001 (first value of Rand)", cid)
				}
				want := []byte{2, 5, 4, 3, CapWink | CapCBOR | CapNMSG}
				if !bytes.Equal(m.data[12:], want) {
					t.Errorf("version and capabilities % x, want % x", m.data[12:], want)
				}
			},
		},
		{
			name:    "NMSG is not advertised when the handler implements MSG",
			handler: &u2fHandler{},
			run: func(t *testing.T, h *host) {
				h.request(BroadcastCID, CmdInit, nonce)
				if caps := h.next().data[16]; caps != CapWink|CapCBOR {
					t.Errorf("capabilities %#x, want %#x", caps, CapWink|CapCBOR)
				}
			},
		},
		{
			name: "every INIT gets a different channel",
			run: func(t *testing.T, h *host) {
				seen := map[uint32]bool{}
				for range 5 {
					cid := h.open()
					if seen[cid] || cid == 0 || cid == BroadcastCID {
						t.Fatalf("channel %08x allocated twice or reserved", cid)
					}
					seen[cid] = true
				}
			},
		},
		{
			name: "reserved and already allocated values from Rand are skipped",
			opts: Options{Rand: &bytesRand{b: []byte{
				0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 10}}},
			run: func(t *testing.T, h *host) {
				if cid := h.open(); cid != 9 {
					t.Errorf("first channel %08x, want 00000009", cid)
				}
				if cid := h.open(); cid != 10 {
					t.Errorf("second channel %08x, want 0000000a", cid)
				}
			},
		},
		{
			name: "INIT fails with ERR_OTHER when Rand fails",
			opts: Options{Rand: &bytesRand{}},
			run: func(t *testing.T, h *host) {
				h.request(BroadcastCID, CmdInit, nonce)
				h.expect(errMsg(BroadcastCID, ErrOther))
			},
		},
		{
			name: "broadcast INIT with a 7-byte nonce fails with ERR_INVALID_LEN",
			run: func(t *testing.T, h *host) {
				h.request(BroadcastCID, CmdInit, nonce[:7])
				h.expect(errMsg(BroadcastCID, ErrInvalidLen))
			},
		},
		{
			name: "broadcast INIT with a 9-byte payload fails with ERR_INVALID_LEN",
			run: func(t *testing.T, h *host) {
				h.request(BroadcastCID, CmdInit, append(nonce, 9))
				h.expect(errMsg(BroadcastCID, ErrInvalidLen))
			},
		},
		{
			name: "broadcast INIT with an empty payload fails with ERR_INVALID_LEN",
			run: func(t *testing.T, h *host) {
				h.request(BroadcastCID, CmdInit, nil)
				h.expect(errMsg(BroadcastCID, ErrInvalidLen))
			},
		},
		{
			name: "multi-packet broadcast INIT fails at once and its continuation is ignored",
			run: func(t *testing.T, h *host) {
				h.request(BroadcastCID, CmdInit, pattern(100))
				h.expect(errMsg(BroadcastCID, ErrInvalidLen))
				h.silent(false)
			},
		},
		{
			name: "INIT on an allocated channel resyncs it and answers with the same CID",
			run: func(t *testing.T, h *host) {
				cid := h.open()
				h.request(cid, CmdInit, nonce)
				m := h.next()
				if m.cid != cid || m.cmd != CmdInit || !bytes.Equal(m.data[:8], nonce) {
					t.Fatalf("response %+v", m)
				}
				if got := binary.BigEndian.Uint32(m.data[8:]); got != cid {
					t.Errorf("resync answered CID %08x, want %08x", got, cid)
				}
			},
		},
		{
			name: "INIT on an allocated channel with a bad length fails with ERR_INVALID_LEN",
			run: func(t *testing.T, h *host) {
				cid := h.open()
				h.request(cid, CmdInit, nonce[:4])
				h.expect(errMsg(cid, ErrInvalidLen))
			},
		},
		{
			name: "INIT with a 65-byte report carrying report ID 0 works",
			run: func(t *testing.T, h *host) {
				h.raw(append([]byte{0}, initPkt(BroadcastCID, CmdInit, 8, nonce)...))
				if m := h.next(); m.cmd != CmdInit || !bytes.Equal(m.data[:8], nonce) {
					t.Fatalf("response %+v", m)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := tt.handler
			if handler == nil {
				handler = &fakeHandler{}
			}
			tt.run(t, attach(t, newDevice(t, handler, tt.opts)))
		})
	}
}

func TestInvalidChannel(t *testing.T) {
	const unallocated = 0x12345678
	tests := []struct {
		name string
		send func(h *host, cid uint32)
		want func(cid uint32) []msg
	}{
		{
			name: "PING on CID 0 fails with ERR_INVALID_CHANNEL",
			send: func(h *host, _ uint32) { h.request(0, CmdPing, []byte{1}) },
			want: func(uint32) []msg { return []msg{errMsg(0, ErrInvalidChannel)} },
		},
		{
			name: "INIT on CID 0 fails with ERR_INVALID_CHANNEL",
			send: func(h *host, _ uint32) { h.request(0, CmdInit, pattern(8)) },
			want: func(uint32) []msg { return []msg{errMsg(0, ErrInvalidChannel)} },
		},
		{
			name: "PING on the broadcast CID fails with ERR_INVALID_CHANNEL",
			send: func(h *host, _ uint32) { h.request(BroadcastCID, CmdPing, []byte{1}) },
			want: func(uint32) []msg { return []msg{errMsg(BroadcastCID, ErrInvalidChannel)} },
		},
		{
			name: "CBOR on the broadcast CID fails with ERR_INVALID_CHANNEL",
			send: func(h *host, _ uint32) { h.request(BroadcastCID, CmdCBOR, []byte{4}) },
			want: func(uint32) []msg { return []msg{errMsg(BroadcastCID, ErrInvalidChannel)} },
		},
		{
			name: "PING on a never allocated CID fails with ERR_INVALID_CHANNEL",
			send: func(h *host, _ uint32) { h.request(unallocated, CmdPing, []byte{1}) },
			want: func(uint32) []msg { return []msg{errMsg(unallocated, ErrInvalidChannel)} },
		},
		{
			name: "INIT on a never allocated CID fails with ERR_INVALID_CHANNEL",
			send: func(h *host, _ uint32) { h.request(unallocated, CmdInit, pattern(8)) },
			want: func(uint32) []msg { return []msg{errMsg(unallocated, ErrInvalidChannel)} },
		},
		{
			name: "invalid channel is reported before an invalid command",
			send: func(h *host, _ uint32) { h.request(unallocated, 0x55, nil) },
			want: func(uint32) []msg { return []msg{errMsg(unallocated, ErrInvalidChannel)} },
		},
		{
			name: "continuation on a never allocated CID is ignored",
			send: func(h *host, _ uint32) { h.raw(contPkt(unallocated, 0, pattern(59))) },
		},
		{
			name: "CANCEL on a never allocated CID is ignored",
			send: func(h *host, _ uint32) { h.request(unallocated, CmdCancel, nil) },
		},
		{
			name: "the allocated channel still works after errors on others",
			send: func(h *host, cid uint32) {
				h.request(unallocated, CmdPing, []byte{1})
				h.request(cid, CmdPing, []byte{2})
			},
			want: func(cid uint32) []msg {
				return []msg{errMsg(unallocated, ErrInvalidChannel), {cid, CmdPing, []byte{2}}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := attach(t, newDevice(t, &fakeHandler{}, Options{}))
			cid := h.open()
			tt.send(h, cid)
			if tt.want != nil {
				for _, w := range tt.want(cid) {
					h.expect(w)
				}
			}
			h.silent(false)
		})
	}
}

func TestChannelEviction(t *testing.T) {
	tests := []struct {
		name      string
		useFirst  bool
		wantFirst bool
	}{
		{name: "the least recently used channel is forgotten when the table is full", wantFirst: false},
		{name: "a channel in use survives eviction", useFirst: true, wantFirst: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDevice(t, &fakeHandler{}, Options{})
			d.maxChannels = 3
			h := attach(t, d)
			first := h.open()
			h.open()
			h.open()
			if tt.useFirst {
				h.request(first, CmdPing, nil)
				h.next()
			}
			h.open() // table full: evicts one
			h.request(first, CmdPing, nil)
			m := h.next()
			if alive := m.cmd == CmdPing; alive != tt.wantFirst {
				t.Errorf("first channel alive = %v, want %v (response %+v)", alive, tt.wantFirst, m)
			}
		})
	}
}

func TestFraming(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		send func(h *host, cid uint32)
		want func(cid uint32) []msg
	}{
		{
			name: "empty PING is echoed",
			send: func(h *host, cid uint32) { h.request(cid, CmdPing, nil) },
			want: func(cid uint32) []msg { return []msg{{cid, CmdPing, nil}} },
		},
		{
			name: "PING filling exactly the init packet is echoed",
			send: func(h *host, cid uint32) { h.request(cid, CmdPing, pattern(57)) },
			want: func(cid uint32) []msg { return []msg{{cid, CmdPing, pattern(57)}} },
		},
		{
			name: "PING one byte longer than the init packet uses a continuation packet",
			send: func(h *host, cid uint32) { h.request(cid, CmdPing, pattern(58)) },
			want: func(cid uint32) []msg { return []msg{{cid, CmdPing, pattern(58)}} },
		},
		{
			name: "PING of 1000 bytes spanning 16 continuation packets is echoed",
			send: func(h *host, cid uint32) { h.request(cid, CmdPing, pattern(1000)) },
			want: func(cid uint32) []msg { return []msg{{cid, CmdPing, pattern(1000)}} },
		},
		{
			name: "PING of the default MaxMessageSize (7609 bytes, 128 continuations) is echoed",
			send: func(h *host, cid uint32) { h.request(cid, CmdPing, pattern(7609)) },
			want: func(cid uint32) []msg { return []msg{{cid, CmdPing, pattern(7609)}} },
		},
		{
			name: "PING of a custom MaxMessageSize is echoed",
			opts: Options{MaxMessageSize: 200},
			send: func(h *host, cid uint32) { h.request(cid, CmdPing, pattern(200)) },
			want: func(cid uint32) []msg { return []msg{{cid, CmdPing, pattern(200)}} },
		},
		{
			name: "BCNT above the default MaxMessageSize fails with ERR_INVALID_LEN",
			send: func(h *host, cid uint32) { h.raw(initPkt(cid, CmdPing, 7610, pattern(57))) },
			want: func(cid uint32) []msg { return []msg{errMsg(cid, ErrInvalidLen)} },
		},
		{
			name: "BCNT above a custom MaxMessageSize fails and the continuations are ignored",
			opts: Options{MaxMessageSize: 200},
			send: func(h *host, cid uint32) { h.request(cid, CmdPing, pattern(201)) },
			want: func(cid uint32) []msg { return []msg{errMsg(cid, ErrInvalidLen)} },
		},
		{
			name: "MaxMessageSize above what reports can carry is clamped to 7609",
			opts: Options{MaxMessageSize: 65535},
			send: func(h *host, cid uint32) { h.raw(initPkt(cid, CmdPing, 7610, nil)) },
			want: func(cid uint32) []msg { return []msg{errMsg(cid, ErrInvalidLen)} },
		},
		{
			name: "skipped sequence number fails with ERR_INVALID_SEQ and drops the message",
			send: func(h *host, cid uint32) {
				p := packets(cid, CmdPing, pattern(200))
				h.raw(p[0], p[2], p[1], p[3]) // p[1] and p[3] are then spurious
				h.request(cid, CmdPing, []byte{7})
			},
			want: func(cid uint32) []msg {
				return []msg{errMsg(cid, ErrInvalidSeq), {cid, CmdPing, []byte{7}}}
			},
		},
		{
			name: "repeated sequence number fails with ERR_INVALID_SEQ",
			send: func(h *host, cid uint32) {
				p := packets(cid, CmdPing, pattern(200))
				h.raw(p[0], p[1], p[1])
			},
			want: func(cid uint32) []msg { return []msg{errMsg(cid, ErrInvalidSeq)} },
		},
		{
			name: "spurious continuation packet without a message is ignored",
			send: func(h *host, cid uint32) {
				h.raw(contPkt(cid, 0, pattern(59)), contPkt(cid, 5, nil))
				h.request(cid, CmdPing, []byte{1})
			},
			want: func(cid uint32) []msg { return []msg{{cid, CmdPing, []byte{1}}} },
		},
		{
			name: "continuation packet for another channel is ignored during assembly",
			send: func(h *host, cid uint32) {
				p := packets(cid, CmdPing, pattern(100))
				other := h.open()
				h.raw(p[0], contPkt(other, 0, pattern(59)), p[1])
			},
			want: func(cid uint32) []msg { return []msg{{cid, CmdPing, pattern(100)}} },
		},
		{
			name: "init packet on the channel being assembled fails with ERR_INVALID_SEQ",
			send: func(h *host, cid uint32) {
				p := packets(cid, CmdPing, pattern(100))
				h.raw(p[0], initPkt(cid, CmdPing, 1, []byte{9}), p[1])
				h.request(cid, CmdPing, []byte{2})
			},
			want: func(cid uint32) []msg {
				return []msg{errMsg(cid, ErrInvalidSeq), {cid, CmdPing, []byte{2}}}
			},
		},
		{
			name: "INIT on the channel being assembled resyncs it and drops the message",
			send: func(h *host, cid uint32) {
				p := packets(cid, CmdPing, pattern(100))
				h.raw(p[0], initPkt(cid, CmdInit, 8, pattern(8)), p[1])
			},
			want: func(cid uint32) []msg {
				return []msg{{cid, CmdInit, append(pattern(8), 0, 0, 0, byte(cid), 2, 0, 0, 0, 0x0d)}}
			},
		},
		{
			name: "CANCEL on the channel being assembled is ignored",
			send: func(h *host, cid uint32) {
				p := packets(cid, CmdPing, pattern(100))
				h.raw(p[0], initPkt(cid, CmdCancel, 0, nil), p[1])
			},
			want: func(cid uint32) []msg { return []msg{{cid, CmdPing, pattern(100)}} },
		},
		{
			name: "other channel's request during assembly fails with ERR_CHANNEL_BUSY",
			send: func(h *host, cid uint32) {
				other := h.open()
				p := packets(cid, CmdPing, pattern(100))
				h.raw(p[0])
				h.request(other, CmdPing, []byte{1})
				h.raw(p[1])
			},
			want: func(cid uint32) []msg {
				return []msg{errMsg(2, ErrChannelBusy), {cid, CmdPing, pattern(100)}}
			},
		},
		{
			name: "broadcast INIT during assembly still allocates",
			send: func(h *host, cid uint32) {
				p := packets(cid, CmdPing, pattern(100))
				h.raw(p[0])
				h.request(BroadcastCID, CmdInit, pattern(8))
				h.raw(p[1])
			},
			want: func(cid uint32) []msg {
				return []msg{
					{BroadcastCID, CmdInit, append(pattern(8), 0, 0, 0, 2, 2, 0, 0, 0, 0x0d)},
					{cid, CmdPing, pattern(100)},
				}
			},
		},
		{
			name: "gap between packets above TransactionTimeout fails with ERR_MSG_TIMEOUT",
			opts: Options{TransactionTimeout: 20 * time.Millisecond},
			send: func(h *host, cid uint32) {
				p := packets(cid, CmdPing, pattern(100))
				h.raw(p[0])
				h.expect(errMsg(cid, ErrMsgTimeout))
				h.raw(p[1]) // now spurious
				h.request(cid, CmdPing, []byte{3})
			},
			want: func(cid uint32) []msg { return []msg{{cid, CmdPing, []byte{3}}} },
		},
		{
			name: "65-byte reports with report ID 0 are accepted",
			send: func(h *host, cid uint32) {
				for _, r := range packets(cid, CmdPing, pattern(150)) {
					h.raw(append([]byte{0}, r...))
				}
			},
			want: func(cid uint32) []msg { return []msg{{cid, CmdPing, pattern(150)}} },
		},
		{
			name: "65-byte report with a non-zero report ID is ignored",
			send: func(h *host, cid uint32) {
				h.raw(append([]byte{1}, initPkt(cid, CmdPing, 1, []byte{1})...))
			},
		},
		{
			name: "reports of other sizes are ignored",
			send: func(h *host, cid uint32) {
				r := initPkt(cid, CmdPing, 1, []byte{1})
				h.raw(nil, r[:7], r[:63], append(r, 0, 0), append(append([]byte{0}, r...), 0))
			},
		},
		{
			name: "unknown command fails with ERR_INVALID_CMD",
			send: func(h *host, cid uint32) { h.request(cid, 0x55, pattern(10)) },
			want: func(cid uint32) []msg { return []msg{errMsg(cid, ErrInvalidCmd)} },
		},
		{
			name: "long unknown command fails at once and its continuations are ignored",
			send: func(h *host, cid uint32) { h.request(cid, 0x40, pattern(300)) },
			want: func(cid uint32) []msg { return []msg{errMsg(cid, ErrInvalidCmd)} },
		},
		{
			name: "KEEPALIVE sent by the host fails with ERR_INVALID_CMD",
			send: func(h *host, cid uint32) { h.request(cid, CmdKeepalive, []byte{1}) },
			want: func(cid uint32) []msg { return []msg{errMsg(cid, ErrInvalidCmd)} },
		},
		{
			name: "ERROR sent by the host fails with ERR_INVALID_CMD",
			send: func(h *host, cid uint32) { h.request(cid, CmdError, []byte{1}) },
			want: func(cid uint32) []msg { return []msg{errMsg(cid, ErrInvalidCmd)} },
		},
		{
			name: "MSG without an MSGHandler fails with ERR_INVALID_CMD",
			send: func(h *host, cid uint32) { h.request(cid, CmdMsg, []byte{0, 3, 0, 0}) },
			want: func(cid uint32) []msg { return []msg{errMsg(cid, ErrInvalidCmd)} },
		},
		{
			name: "CBOR without a command byte fails with ERR_INVALID_LEN",
			send: func(h *host, cid uint32) { h.request(cid, CmdCBOR, nil) },
			want: func(cid uint32) []msg { return []msg{errMsg(cid, ErrInvalidLen)} },
		},
		{
			name: "CBOR request gets the handler's answer",
			send: func(h *host, cid uint32) { h.request(cid, CmdCBOR, []byte{0x04}) },
			want: func(cid uint32) []msg { return []msg{{cid, CmdCBOR, []byte{0x00, 0xa0}}} },
		},
		{
			name: "WINK answers with an empty WINK",
			send: func(h *host, cid uint32) { h.request(cid, CmdWink, nil) },
			want: func(cid uint32) []msg { return []msg{{cid, CmdWink, nil}} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := attach(t, newDevice(t, &fakeHandler{}, tt.opts))
			cid := h.open()
			tt.send(h, cid)
			if tt.want != nil {
				for _, w := range tt.want(cid) {
					h.expect(w)
				}
			}
			h.silent(false)
		})
	}
}

// TestTransactionTimeoutRestarts drives the deadline with a fake clock, so
// that scheduling delays of a loaded machine cannot turn a short gap into a
// timeout; real timers still fire and re-check it.
func TestTransactionTimeoutRestarts(t *testing.T) {
	const timeout = 20 * time.Millisecond
	tests := []struct {
		name string
		gap  time.Duration // clock advance before each continuation packet
		want func(cid uint32) msg
	}{
		{
			name: "packets closer than TransactionTimeout keep a long message alive",
			gap:  15 * time.Millisecond, // 5 gaps: 75 ms in total
			want: func(cid uint32) msg { return msg{cid, CmdPing, pattern(300)} },
		},
		{
			name: "one gap longer than TransactionTimeout ends the message",
			gap:  timeout + time.Millisecond,
			want: func(cid uint32) msg { return errMsg(cid, ErrMsgTimeout) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDevice(t, &fakeHandler{}, Options{TransactionTimeout: timeout})
			clk := &fakeClock{t: time.Unix(1000, 0)}
			d.now = clk.now
			h := attach(t, d)
			cid := h.open()
			p := packets(cid, CmdPing, pattern(300)) // 6 packets
			h.raw(p[0])
			for _, r := range p[1:] {
				// Let the real timer fire and re-arm against the fake clock.
				time.Sleep(timeout / 2)
				clk.advance(tt.gap)
				if tt.gap > timeout {
					break
				}
				h.raw(r)
			}
			h.expect(tt.want(cid))
			h.silent(false)
		})
	}
}

func TestWinkCallsHandler(t *testing.T) {
	handler := &fakeHandler{}
	h := attach(t, newDevice(t, handler, Options{}))
	cid := h.open()
	h.request(cid, CmdWink, nil)
	h.expect(msg{cid, CmdWink, nil})
	if n := handler.winks.Load(); n != 1 {
		t.Errorf("Wink called %d times, want 1", n)
	}
}

func TestMSGHandler(t *testing.T) {
	h := attach(t, newDevice(t, &u2fHandler{}, Options{}))
	cid := h.open()
	apdu := []byte{0x00, 0x03, 0x00, 0x00, 0x00}
	h.request(cid, CmdMsg, apdu)
	h.expect(msg{cid, CmdMsg, append(apdu, 0x90, 0x00)})
}

func TestResponseSize(t *testing.T) {
	tests := []struct {
		name string
		res  []byte
		want func(cid uint32) msg
	}{
		{
			name: "response of 7609 bytes is sent in 129 reports",
			res:  pattern(7609),
			want: func(cid uint32) msg { return msg{cid, CmdCBOR, pattern(7609)} },
		},
		{
			name: "response too long for 128 continuations becomes ERR_OTHER",
			res:  pattern(7610),
			want: func(cid uint32) msg { return errMsg(cid, ErrOther) },
		},
		{
			name: "empty response becomes ERR_OTHER",
			res:  nil,
			want: func(cid uint32) msg { return errMsg(cid, ErrOther) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handler := &fakeHandler{cbor: func(context.Context, []byte, func(byte)) []byte { return tt.res }}
			h := attach(t, newDevice(t, handler, Options{}))
			cid := h.open()
			h.request(cid, CmdCBOR, []byte{0x04})
			h.expect(tt.want(cid))
		})
	}
}

func TestFragment(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		reports int
	}{
		{"empty message is one report", 0, 1},
		{"57 bytes fit the init packet", 57, 1},
		{"58 bytes need one continuation", 58, 2},
		{"116 bytes fill one continuation", 116, 2},
		{"117 bytes need two continuations", 117, 3},
		{"7609 bytes need 128 continuations", 7609, 129},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := fragment(message{cid: 0x01020304, cmd: CmdPing, data: pattern(tt.n)})
			if len(rs) != tt.reports {
				t.Fatalf("%d reports, want %d", len(rs), tt.reports)
			}
			var got []byte
			for i, r := range rs {
				if len(r) != ReportSize || cap(r) != ReportSize {
					t.Fatalf("report %d has len %d cap %d", i, len(r), cap(r))
				}
				if i == 0 {
					if r[4] != CmdPing|0x80 || int(binary.BigEndian.Uint16(r[5:])) != tt.n {
						t.Fatalf("init header % x", r[:7])
					}
					got = append(got, r[7:]...)
				} else {
					if r[4] != byte(i-1) {
						t.Fatalf("report %d has seq %d", i, r[4])
					}
					got = append(got, r[5:]...)
				}
			}
			if !bytes.Equal(got[:tt.n], pattern(tt.n)) || !allZero(got[tt.n:]) {
				t.Errorf("payload or padding wrong")
			}
		})
	}
}

func TestLock(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, h *host, clk *fakeClock, a, b uint32)
	}{
		{
			name: "LOCK gives the channel exclusive access; others get ERR_CHANNEL_BUSY",
			run: func(t *testing.T, h *host, clk *fakeClock, a, b uint32) {
				h.request(a, CmdLock, []byte{5})
				h.expect(msg{a, CmdLock, nil})
				h.request(b, CmdPing, []byte{1})
				h.expect(errMsg(b, ErrChannelBusy))
				h.request(b, CmdInit, pattern(8))
				h.expect(errMsg(b, ErrChannelBusy))
				h.request(a, CmdPing, []byte{2})
				h.expect(msg{a, CmdPing, []byte{2}})
			},
		},
		{
			name: "broadcast INIT still allocates while locked",
			run: func(t *testing.T, h *host, clk *fakeClock, a, b uint32) {
				h.request(a, CmdLock, []byte{5})
				h.expect(msg{a, CmdLock, nil})
				h.open()
			},
		},
		{
			name: "LOCK 0 releases the lock",
			run: func(t *testing.T, h *host, clk *fakeClock, a, b uint32) {
				h.request(a, CmdLock, []byte{5})
				h.expect(msg{a, CmdLock, nil})
				h.request(a, CmdLock, []byte{0})
				h.expect(msg{a, CmdLock, nil})
				h.request(b, CmdPing, []byte{1})
				h.expect(msg{b, CmdPing, []byte{1}})
			},
		},
		{
			name: "lock expires after its time",
			run: func(t *testing.T, h *host, clk *fakeClock, a, b uint32) {
				h.request(a, CmdLock, []byte{2})
				h.expect(msg{a, CmdLock, nil})
				clk.advance(1999 * time.Millisecond)
				h.request(b, CmdPing, []byte{1})
				h.expect(errMsg(b, ErrChannelBusy))
				clk.advance(time.Millisecond)
				h.request(b, CmdPing, []byte{1})
				h.expect(msg{b, CmdPing, []byte{1}})
			},
		},
		{
			name: "LOCK of more than 10 seconds fails with ERR_INVALID_PAR",
			run: func(t *testing.T, h *host, clk *fakeClock, a, b uint32) {
				h.request(a, CmdLock, []byte{11})
				h.expect(errMsg(a, ErrInvalidPar))
				h.request(b, CmdPing, []byte{1})
				h.expect(msg{b, CmdPing, []byte{1}})
			},
		},
		{
			name: "LOCK without exactly one byte fails with ERR_INVALID_LEN",
			run: func(t *testing.T, h *host, clk *fakeClock, a, b uint32) {
				h.request(a, CmdLock, nil)
				h.expect(errMsg(a, ErrInvalidLen))
				h.request(a, CmdLock, []byte{1, 1})
				h.expect(errMsg(a, ErrInvalidLen))
			},
		},
		{
			name: "closing the locking port releases the lock",
			run: func(t *testing.T, h *host, clk *fakeClock, a, b uint32) {
				other := attach(t, h.p.d)
				other.request(a, CmdLock, []byte{10})
				other.expect(msg{a, CmdLock, nil})
				other.p.Close()
				h.request(b, CmdPing, []byte{1})
				h.expect(msg{b, CmdPing, []byte{1}})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDevice(t, &fakeHandler{}, Options{})
			clk := &fakeClock{t: time.Unix(1000, 0)}
			d.now = clk.now
			h := attach(t, d)
			a, b := h.open(), h.open()
			tt.run(t, h, clk, a, b)
			h.silent(false)
		})
	}
}

// TestTransactions covers the single transaction slot: busy channels,
// CANCEL, keep-alives and resync while a CBOR request runs.
func TestTransactions(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, e *txnEnv)
	}{
		{
			name: "other channel gets ERR_CHANNEL_BUSY while a CBOR request runs",
			run: func(t *testing.T, e *txnEnv) {
				e.h.request(e.b, CmdPing, []byte{1})
				e.h.expect(errMsg(e.b, ErrChannelBusy))
				e.h.request(e.b, CmdCBOR, []byte{4})
				e.h.expect(errMsg(e.b, ErrChannelBusy))
				e.h.request(e.b, CmdInit, pattern(8))
				e.h.expect(errMsg(e.b, ErrChannelBusy))
				e.finish([]byte{0, 1})
			},
		},
		{
			name: "another port gets ERR_CHANNEL_BUSY while a CBOR request runs",
			run: func(t *testing.T, e *txnEnv) {
				other := attach(t, e.d)
				other.request(e.b, CmdPing, []byte{1})
				other.expect(errMsg(e.b, ErrChannelBusy))
				e.finish([]byte{0, 1})
			},
		},
		{
			name: "new request on the busy channel itself gets ERR_CHANNEL_BUSY",
			run: func(t *testing.T, e *txnEnv) {
				e.h.request(e.a, CmdPing, []byte{1})
				e.h.expect(errMsg(e.a, ErrChannelBusy))
				e.finish([]byte{0, 1})
			},
		},
		{
			name: "broadcast INIT still allocates while busy",
			run: func(t *testing.T, e *txnEnv) {
				if cid := e.h.open(); cid != 3 {
					t.Errorf("allocated %08x, want 00000003", cid)
				}
				e.finish([]byte{0, 1})
			},
		},
		{
			name: "the device is free again after the response",
			run: func(t *testing.T, e *txnEnv) {
				e.finish([]byte{0, 1})
				e.h.request(e.b, CmdPing, []byte{1})
				e.h.expect(msg{e.b, CmdPing, []byte{1}})
			},
		},
		{
			name: "CANCEL cancels the handler's context and its answer is sent",
			run: func(t *testing.T, e *txnEnv) {
				e.h.request(e.a, CmdCancel, nil)
				if err := recvTimeout(t, e.handler.finished, "handler return"); err != context.Canceled {
					t.Errorf("handler saw ctx.Err() = %v, want context.Canceled", err)
				}
				e.h.expect(msg{e.a, CmdCBOR, []byte{0x2D}})
				e.h.silent(false)
			},
		},
		{
			name: "CANCEL from another channel is ignored",
			run: func(t *testing.T, e *txnEnv) {
				e.h.request(e.b, CmdCancel, nil)
				e.h.silent(true)
				e.finish([]byte{0, 1})
			},
		},
		{
			name: "CANCEL with no request running is ignored",
			run: func(t *testing.T, e *txnEnv) {
				e.finish([]byte{0, 1})
				e.h.request(e.a, CmdCancel, nil)
				e.h.silent(false)
			},
		},
		{
			name: "keep-alives carry STATUS_PROCESSING, then STATUS_UPNEEDED once reported",
			run: func(t *testing.T, e *txnEnv) {
				for range 2 {
					if m := e.h.next(); m.cid != e.a || m.cmd != CmdKeepalive || !bytes.Equal(m.data, []byte{StatusProcessing}) {
						t.Fatalf("got %+v, want KEEPALIVE(STATUS_PROCESSING)", m)
					}
				}
				e.handler.status <- StatusUPNeeded
				for m := e.h.next(); !bytes.Equal(m.data, []byte{StatusUPNeeded}); m = e.h.next() {
					if m.cmd != CmdKeepalive || !bytes.Equal(m.data, []byte{StatusProcessing}) {
						t.Fatalf("got %+v while waiting for STATUS_UPNEEDED", m)
					}
				}
				for range 2 {
					if m := e.h.next(); m.cmd != CmdKeepalive || !bytes.Equal(m.data, []byte{StatusUPNeeded}) {
						t.Fatalf("got %+v, want KEEPALIVE(STATUS_UPNEEDED)", m)
					}
				}
				e.handler.release <- []byte{0, 1}
				for {
					m := e.h.next()
					if m.cmd == CmdKeepalive {
						continue
					}
					if m.cmd != CmdCBOR || !bytes.Equal(m.data, []byte{0, 1}) {
						t.Fatalf("response %+v", m)
					}
					break
				}
				e.h.silent(false)
			},
		},
		{
			name: "keep-alives go only to the requesting port",
			run: func(t *testing.T, e *txnEnv) {
				other := attach(t, e.d)
				if m := e.h.next(); m.cmd != CmdKeepalive {
					t.Fatalf("got %+v, want a keep-alive", m)
				}
				other.silent(false)
				e.finish([]byte{0, 1})
				other.silent(false)
			},
		},
		{
			name: "INIT resync on the busy channel cancels the request and drops its answer",
			run: func(t *testing.T, e *txnEnv) {
				e.h.request(e.a, CmdInit, pattern(8))
				e.h.expect(msg{e.a, CmdInit, append(pattern(8), 0, 0, 0, byte(e.a), 2, 0, 0, 0, 0x0d)})
				if err := recvTimeout(t, e.handler.finished, "handler return"); err != context.Canceled {
					t.Errorf("handler saw ctx.Err() = %v, want context.Canceled", err)
				}
				e.h.silent(false)
				e.h.request(e.a, CmdCBOR, []byte{4})
				recvTimeout(t, e.handler.started, "second CBOR call")
				e.handler.release <- []byte{0, 2}
				e.h.expect(msg{e.a, CmdCBOR, []byte{0, 2}})
				if n := e.handler.overlaps.Load(); n != 0 {
					t.Errorf("handler ran concurrently %d times", n)
				}
			},
		},
		{
			name: "closing the requesting port cancels the request and frees the device",
			run: func(t *testing.T, e *txnEnv) {
				other := attach(t, e.d)
				e.h.p.Close()
				if err := recvTimeout(t, e.handler.finished, "handler return"); err != context.Canceled {
					t.Errorf("handler saw ctx.Err() = %v, want context.Canceled", err)
				}
				other.request(e.b, CmdPing, []byte{1})
				other.expect(msg{e.b, CmdPing, []byte{1}})
				e.h.silent(true) // only keep-alives sent before Close
			},
		},
		{
			name: "closing another port leaves the request running",
			run: func(t *testing.T, e *txnEnv) {
				other := attach(t, e.d)
				other.p.Close()
				e.finish([]byte{0, 1})
			},
		},
		{
			name: "closing the device cancels the request and waits for the handler",
			run: func(t *testing.T, e *txnEnv) {
				e.d.Close()
				select {
				case err := <-e.handler.finished:
					if err != context.Canceled {
						t.Errorf("handler saw ctx.Err() = %v, want context.Canceled", err)
					}
				default:
					t.Fatalf("Close returned before the handler")
				}
				// Keep-alives sent before Close may still be queued.
				e.h.silent(true)
				// After Close the device ignores the host.
				e.h.request(e.b, CmdPing, []byte{1})
				e.h.silent(false)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &txnEnv{t: t, handler: newBlocking()}
			e.d = newDevice(t, e.handler, Options{KeepaliveInterval: 10 * time.Millisecond})
			e.h = attach(t, e.d)
			e.a, e.b = e.h.open(), e.h.open()
			e.h.request(e.a, CmdCBOR, []byte{0x01, 0xa0})
			if req := recvTimeout(t, e.handler.started, "CBOR call"); !bytes.Equal(req, []byte{0x01, 0xa0}) {
				t.Fatalf("handler got % x", req)
			}
			tt.run(t, e)
		})
	}
}

// txnEnv has a CBOR request from channel a blocked in the handler.
type txnEnv struct {
	t       *testing.T
	d       *Device
	h       *host
	handler *blocking
	a, b    uint32
}

// finish lets the handler answer and checks that the answer arrives.
func (e *txnEnv) finish(res []byte) {
	e.t.Helper()
	e.handler.release <- res
	e.h.expect(msg{e.a, CmdCBOR, res})
}

func TestDeviceCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	handler := newBlocking()
	d := NewDevice(handler, Options{Rand: &seqRand{}, KeepaliveInterval: time.Millisecond, TransactionTimeout: time.Hour})
	h := attach(t, d)
	a, b := h.open(), h.open()
	h.request(a, CmdCBOR, []byte{1})
	recvTimeout(t, handler.started, "CBOR call")
	h.raw(packets(b, CmdPing, pattern(100))[0]) // busy, so refused
	d.Close()
	d.Close() // idempotent

	late := d.Attach(func([]byte) { t.Errorf("send on a port attached after Close") })
	late.Receive(initPkt(BroadcastCID, CmdInit, 8, pattern(8)))
	late.Close()

	waitGoroutines(t, before)
}

// waitGoroutines fails unless the goroutine count drops to before. It
// polls because a goroutine lingers for a moment after its last statement.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s",
				before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAssemblyTimerStoppedByClose(t *testing.T) {
	before := runtime.NumGoroutine()
	d := NewDevice(&fakeHandler{}, Options{Rand: &seqRand{}, TransactionTimeout: time.Hour})
	h := attach(t, d)
	cid := h.open()
	h.raw(packets(cid, CmdPing, pattern(100))[0])
	d.Close()
	h.silent(false)
	waitGoroutines(t, before)
}
