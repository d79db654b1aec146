package stacktest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// benchOp is one operation measured three ways: through go-libfido2, the
// shim, the socket and CTAPHID (stack); the same through a libfido2
// handle kept open (handle, nil where go-libfido2 is the only way here);
// and as a direct call of the engine with the same CTAP request
// (inProcess).
type benchOp struct {
	stack     func() error
	handle    func() error
	inProcess func() []byte
	// open, when set, opens and closes a libfido2 handle: the part of a
	// go-libfido2 call (connect, CTAPHID_INIT, getInfo, close) that comes
	// before and after the operation itself.
	open func() error
}

// BenchmarkTransportOverhead interleaves the two paths in one loop, so the
// ratio it reports comes from one run on one machine state. go-libfido2
// opens the device for every call (CTAPHID_INIT and a getInfo before the
// operation), and that is part of what a Keydesk call costs.
func BenchmarkTransportOverhead(b *testing.B) {
	k := softkeytest.Serve(b, softkey.Config{})
	key := k.Authenticator
	dev, err := libfido2.NewDevice(k.Path)
	if err != nil {
		b.Fatal(err)
	}
	cdh := sha256.Sum256([]byte("bench"))
	rp := libfido2.RelyingParty{ID: "example.com", Name: "Example"}
	user := libfido2.User{ID: []byte("bench-user"), Name: "bench"}
	att, err := dev.MakeCredential(cdh[:], rp, user, libfido2.ES256, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	credID := att.CredentialID

	enc := func(cmd byte, v any) []byte {
		raw, err := cbor.CTAP2EncOptions().EncMode()
		if err != nil {
			b.Fatal(err)
		}
		body, err := raw.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		return append([]byte{cmd}, body...)
	}
	makeCredReq := enc(0x01, map[int]any{
		1: cdh[:],
		2: map[string]any{"id": "example.com", "name": "Example"},
		3: map[string]any{"id": []byte("bench-user"), "name": "bench"},
		4: []any{map[string]any{"alg": -7, "type": "public-key"}},
	})
	getAssertReq := enc(0x02, map[int]any{
		1: "example.com",
		2: cdh[:],
		3: []any{map[string]any{"id": credID, "type": "public-key"}},
	})
	ctx := context.Background()
	// The held handle gets a key of its own: a libfido2 handle holds its
	// device exclusively (flock), as it holds a hidraw node, so go-libfido2
	// could not open the same key meanwhile.
	held := softkeytest.Serve(b, softkey.Config{})
	h, err := openLibfido2(held.Path)
	if err != nil {
		b.Fatal(err)
	}
	defer h.close()
	ops := map[string]benchOp{
		"getInfo": {
			stack:     func() error { _, err := dev.Info(); return err },
			handle:    h.getInfo,
			inProcess: func() []byte { return key.CBOR(ctx, []byte{0x04}, nil) },
		},
		"makeCredential": {
			stack: func() error {
				_, err := dev.MakeCredential(cdh[:], rp, user, libfido2.ES256, "", nil)
				return err
			},
			handle:    h.makeCredential,
			inProcess: func() []byte { return key.CBOR(ctx, makeCredReq, nil) },
			open: func() error {
				o, err := openLibfido2(k.Path)
				if err == nil {
					o.close()
				}
				return err
			},
		},
		"getAssertion": {
			stack: func() error {
				_, err := dev.Assertion("example.com", cdh[:], [][]byte{credID}, "", nil)
				return err
			},
			inProcess: func() []byte { return key.CBOR(ctx, getAssertReq, nil) },
		},
	}
	for _, name := range []string{"getInfo", "makeCredential", "getAssertion"} {
		op := ops[name]
		b.Run(name, func(b *testing.B) {
			var stack, handle, inProc, open time.Duration
			for i := 0; i < b.N; i++ {
				if op.open != nil {
					t := time.Now()
					if err := op.open(); err != nil {
						b.Fatal(err)
					}
					open += time.Since(t)
				}
				t0 := time.Now()
				if err := op.stack(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if op.handle != nil {
					if err := op.handle(); err != nil {
						b.Fatal(err)
					}
				}
				t2 := time.Now()
				if resp := op.inProcess(); len(resp) == 0 || resp[0] != 0 {
					b.Fatalf("in-process %s: status %x", name, resp)
				}
				inProc += time.Since(t2)
				handle += t2.Sub(t1)
				stack += t1.Sub(t0)
			}
			n := float64(b.N)
			b.ReportMetric(n/stack.Seconds(), "golibfido2-ops/s")
			b.ReportMetric(n/inProc.Seconds(), "inproc-ops/s")
			b.ReportMetric(float64(stack)/float64(inProc), "golibfido2/inproc")
			if op.open != nil {
				b.ReportMetric(float64(open)/float64(inProc), "open+close/inproc")
			}
			if op.handle != nil {
				b.ReportMetric(n/handle.Seconds(), "handle-ops/s")
				b.ReportMetric(float64(handle)/float64(inProc), "handle/inproc")
			}
		})
	}
}
