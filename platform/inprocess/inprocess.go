// Package inprocess is the platform.Authenticator of the in-process
// software key (package softkey): the GUI's "virtual key" when no hardware
// key is present, and the second implementation that tests run the same
// cases against as the libfido2 one.
//
// It speaks real CTAP 2.1 to the key engine, playing the platform's part
// of the PIN/UV auth protocols itself, so that what it exercises is what a
// hardware key would see; it never reaches into the engine's state.
package inprocess

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// Key is the in-process software key seen as a platform.Authenticator.
// Its methods are safe for concurrent use: operations, which take several
// CTAP commands (a token, then the command it authorises), run one at a
// time so that one cannot invalidate another's token.
type Key struct {
	a  engine
	mu sync.Mutex // held for the whole of one operation
}

// engine is what Key needs of the key engine: its CTAP2 entry point. It is
// an interface so that a test can stand in front of a real engine, to
// record requests or to make the key look like an older model.
type engine interface {
	CBOR(ctx context.Context, req []byte, keepalive func(status byte)) []byte
}

var _ platform.Authenticator = (*Key)(nil)

// New wraps the key engine a; the engine stays the caller's, who may power
// cycle it (a simulated re-plug) or inspect it.
func New(a *softkey.Authenticator) *Key { return &Key{a: a} }

// Device describes the virtual key: it has no path in the operating
// system, so the path is a label the GUI can show.
func (k *Key) Device() platform.Device {
	return platform.Device{Path: "(in-process)", Transport: platform.TransportVirtual, Product: "Keydesk virtual key"}
}

// Close releases nothing: the engine belongs to the caller.
func (k *Key) Close() error { return nil }

// resetRetryInterval is how often Reset tries again while the key's reset
// window is closed, waiting for the user to re-plug it.
const resetRetryInterval = 300 * time.Millisecond

// keepaliveUPNeeded is the CTAPHID keep-alive status of a key waiting for
// a touch (CTAP 2.1 §11.2.9.1.2 STATUS_UPNEEDED).
const keepaliveUPNeeded = 2

// encMode encodes requests in CTAP2 canonical CBOR (§8), which the key
// requires.
var encMode = func() cbor.EncMode {
	m, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// cancelled is the error of an operation whose context ended.
func cancelled(op string, err error) error {
	return &platform.Error{Op: op, Kind: platform.ErrCancelled, RetriesLeft: -1, Err: err}
}

// protocolError is an answer that could not be understood.
func protocolError(op string, err error) error {
	return &platform.Error{Op: op, Kind: platform.ErrProtocol, RetriesLeft: -1, Err: err}
}

// unsupported is an operation the key does not offer.
func unsupported(op string) error {
	return &platform.Error{Op: op, Kind: platform.ErrUnsupported, RetriesLeft: -1}
}

// call sends one command with params (nil for none) and decodes the
// response into out (nil to ignore it). A keep-alive asking for a touch
// becomes a StageTouch report.
func (k *Key) call(ctx context.Context, op string, cmd softkey.Command, params, out any) error {
	return k.send(ctx, op, cmd, params, out, false)
}

// touchCall is call for a command that waits for a touch: StageTouch is
// reported before it is sent, and not again for its keep-alives.
func (k *Key) touchCall(ctx context.Context, op string, cmd softkey.Command, params, out any) error {
	return k.send(ctx, op, cmd, params, out, true)
}

func (k *Key) send(ctx context.Context, op string, cmd softkey.Command, params, out any, touch bool) error {
	if err := ctx.Err(); err != nil {
		return cancelled(op, err)
	}
	req := []byte{byte(cmd)}
	if params != nil {
		b, err := encMode.Marshal(params)
		if err != nil {
			return protocolError(op, err)
		}
		req = append(req, b...)
	}
	if touch {
		platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageTouch})
	}
	reported := touch
	resp := k.a.CBOR(ctx, req, func(status byte) {
		if status == keepaliveUPNeeded && !reported {
			reported = true
			platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageTouch})
		}
	})
	if len(resp) == 0 {
		return protocolError(op, errors.New("empty response"))
	}
	if resp[0] != 0 {
		return platform.FromCode(op, int(resp[0]))
	}
	if out != nil && len(resp) > 1 {
		if err := cbor.Unmarshal(resp[1:], out); err != nil {
			return protocolError(op, err)
		}
	}
	return nil
}

// Reset erases the key. Outside the ten seconds after power-up the key
// answers NOT_ALLOWED: the user hears StageReinsert and Reset tries again
// every 300 ms until the key is re-plugged (PowerCycle) or ctx ends.
func (k *Key) Reset(ctx context.Context) error {
	const op = "reset"
	k.mu.Lock()
	defer k.mu.Unlock()
	touch, reinsert := true, false
	for {
		err := k.send(ctx, op, softkey.CmdReset, nil, nil, touch)
		if !errors.Is(err, platform.ErrNotAllowed) {
			return err
		}
		// After the re-plug the key's keep-alive announces the touch.
		touch = false
		if !reinsert {
			reinsert = true
			platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageReinsert})
		}
		t := time.NewTimer(resetRetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return cancelled(op, ctx.Err())
		case <-t.C:
		}
	}
}

// Select waits for a touch (authenticatorSelection, CTAP 2.1 §6.9), so the
// user can pick this key among several.
func (k *Key) Select(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.touchCall(ctx, "select", softkey.CmdSelection, nil, nil)
}

// subcommandRequest builds the request of a command with subcommands
// (credential management, bio enrollment, config): head holds the fixed
// members, the encoded params go at key paramsKey, and with a token the
// protocol and pinUvAuthParam follow at paramsKey+1 and paramsKey+2. The
// pinUvAuthParam authenticates prefix || subCommandParams, the message
// each command defines.
func subcommandRequest(op string, tok *token, head map[int]any, prefix []byte, paramsKey int, params any) (map[int]any, error) {
	msg := prefix
	if params != nil {
		raw, err := encMode.Marshal(params)
		if err != nil {
			return nil, protocolError(op, err)
		}
		head[paramsKey] = cbor.RawMessage(raw)
		msg = append(msg, raw...)
	}
	if tok != nil {
		head[paramsKey+1] = tok.proto
		head[paramsKey+2] = tok.auth(msg)
	}
	return head, nil
}
