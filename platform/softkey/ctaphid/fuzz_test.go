package ctaphid

import (
	"bytes"
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// fuzzMaxMessage is below the protocol maximum so that the fuzzer can reach
// the MaxMessageSize boundary with short inputs.
const fuzzMaxMessage = 300

// FuzzFramer feeds arbitrary report sequences to a Port. The device must
// never panic, never send a report that is not 64 bytes, and never hand the
// handler a message larger than MaxMessageSize.
func FuzzFramer(f *testing.F) {
	nonce := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	initReq := packets(BroadcastCID, CmdInit, nonce)[0]
	// seqRand makes the first allocated channel 1.
	f.Add(initReq)
	f.Add(slices.Concat(initReq, packets(1, CmdCBOR, []byte{0x04})[0]))
	f.Add(slices.Concat(append([][]byte{initReq}, packets(1, CmdPing, pattern(250))...)...))
	f.Add(slices.Concat(append([][]byte{initReq}, packets(1, CmdPing, pattern(fuzzMaxMessage+1))...)...))
	f.Add(slices.Concat(initReq, packets(1, CmdMsg, []byte{0, 3, 0, 0, 0})[0],
		packets(1, CmdCancel, nil)[0], packets(1, CmdInit, nonce)[0]))
	f.Add(slices.Concat(initReq, packets(1, CmdLock, []byte{3})[0], initReq,
		packets(2, CmdPing, []byte{1})[0]))
	f.Add(slices.Concat(initReq, initPkt(1, CmdPing, 100, nil), contPkt(1, 1, nil), contPkt(1, 0, nil)))

	f.Fuzz(fuzzFramer)
}

// fuzzFramer splits data into 64-byte reports (zero padding the tail) and
// feeds them to a fresh Device.
func fuzzFramer(t *testing.T, data []byte) {
	var tooLarge atomic.Int32
	check := func(req []byte) {
		if len(req) > fuzzMaxMessage {
			tooLarge.Add(1)
		}
	}
	handler := &fuzzHandler{check: check}
	d := NewDevice(handler, Options{
		MaxMessageSize:     fuzzMaxMessage,
		TransactionTimeout: 5 * time.Millisecond,
		KeepaliveInterval:  time.Millisecond,
		Rand:               &seqRand{},
	})
	var badReports, lateReports atomic.Int32
	var closed atomic.Bool
	p := d.Attach(func(r []byte) {
		if len(r) != ReportSize {
			badReports.Add(1)
		}
		if closed.Load() {
			lateReports.Add(1)
		}
	})
	for len(data) > 0 {
		n := min(len(data), ReportSize)
		r := make([]byte, ReportSize) // a short tail is zero padded
		copy(r, data[:n])
		p.Receive(r)
		data = data[n:]
	}
	p.Close()
	closed.Store(true)
	d.Close()
	if n := badReports.Load(); n > 0 {
		t.Errorf("%d reports were not %d bytes", n, ReportSize)
	}
	if n := lateReports.Load(); n > 0 {
		t.Errorf("%d reports sent after Port.Close returned", n)
	}
	if n := tooLarge.Load(); n > 0 {
		t.Errorf("%d messages above MaxMessageSize reached the handler", n)
	}
}

// fuzzHandler answers at once, except that it waits for cancellation when
// the request starts with 0xff, so that CANCEL and resync paths are reached.
type fuzzHandler struct {
	check func([]byte)
}

func (h *fuzzHandler) CBOR(ctx context.Context, req []byte, keepalive func(byte)) []byte {
	h.check(req)
	keepalive(StatusUPNeeded)
	if len(req) > 0 && req[0] == 0xff {
		<-ctx.Done()
		return []byte{0x2D}
	}
	return append([]byte{0x00}, bytes.Repeat([]byte{0xa0}, len(req))...)
}

func (h *fuzzHandler) MSG(ctx context.Context, apdu []byte) []byte {
	h.check(apdu)
	return []byte{0x90, 0x00}
}

func (h *fuzzHandler) Wink() {}
