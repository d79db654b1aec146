package libfido2

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/keydesk/keydesk/platform"
)

// Timings of Reset and Select.
const (
	// presencePoll is how often Reset looks for the key's device node
	// while waiting for it to be plugged back in.
	presencePoll = 200 * time.Millisecond
	// probeInterval is how often Reset retries authenticatorReset while
	// the key's path stays present (see Reset).
	probeInterval = 300 * time.Millisecond
	// touchAnnounceDelay is how long a probing authenticatorReset may go
	// unanswered before Reset concludes that the key waits for a touch: a
	// key outside its reset window answers NOT_ALLOWED at once.
	touchAnnounceDelay = 250 * time.Millisecond
	// selectPoll bounds each wait for Select's touch (libfido2 asks for
	// at most 5 Hz).
	selectPoll = 200 * time.Millisecond
)

// ctapKeepaliveCancel is CTAP2_ERR_KEEPALIVE_CANCEL, a key's answer to a
// request that CTAPHID_CANCEL ended.
const ctapKeepaliveCancel = 0x2D

// Reset erases the key (authenticatorReset, CTAP 2.1 §6.6). It reports
// StageTouch before asking; a key answers NOT_ALLOWED when more than ten
// seconds have passed since it was plugged in. Reset then reports
// StageReinsert and waits, until ctx ends, for the key to come back:
//
//   - When the key's device node disappears (a USB key's hidraw node does
//     on unplugging), Reset waits for it to reappear, reports StageTouch
//     and retries at once.
//   - While the path stays present, Reset retries every probeInterval
//     anyway, because a power cycle does not always remove the path: an
//     NFC reader's path stays while the key is taken off and put back,
//     and so does the in-process software key's when it power-cycles. A
//     probe that the key answers with NOT_ALLOWED is silent; one that
//     stays unanswered for touchAnnounceDelay means the key now waits for
//     its touch, and StageTouch is reported then.
//
// A retry that still meets NOT_ALLOWED after StageTouch reports
// StageReinsert again. The key is found again under the same path only:
// on Linux a re-plugged key gets the lowest free hidraw number, which is
// its old one unless another device took it meanwhile.
//
// Cancelling ctx while the key waits for the touch sends CTAPHID_CANCEL
// and fails with ErrCancelled; a refusal on the key is ErrOperationDenied
// and no touch in time ErrTimeout.
func (k *Key) Reset(ctx context.Context) error {
	const op = "reset"
	ctx = deduplicated(ctx)
	platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageTouch})
	_, err := k.resetOnce(ctx, op, 0)
	if !errors.Is(err, platform.ErrNotAllowed) {
		return err
	}
	platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageReinsert})

	// Only a device node can be watched for: other paths (NFC readers)
	// are probed.
	watchable := strings.HasPrefix(k.dev.Path, "/")
	away := false // the node was seen missing since the last attempt
	lastProbe := time.Now()
	tick := time.NewTicker(presencePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return &platform.Error{Op: op, Kind: platform.ErrCancelled, RetriesLeft: -1, Err: ctx.Err()}
		case <-tick.C:
		}
		if watchable && !present(k.dev.Path) {
			away = true
			continue
		}
		var announce time.Duration
		switch {
		case away: // plugged back in: this is the retry
			platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageTouch})
		case time.Since(lastProbe) >= probeInterval:
			announce = touchAnnounceDelay
		default:
			continue
		}
		announced, err := k.resetOnce(ctx, op, announce)
		lastProbe = time.Now()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, platform.ErrNotAllowed), errors.Is(err, platform.ErrDeviceRemoved):
			// Still too late, or unplugged mid-way: wait for the next
			// insertion. A node that is there but does not open (another
			// program holds the key) is not counted as away, so that the
			// user is not told to touch it every presencePoll.
			if away || announced {
				platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageReinsert})
			}
			away = watchable && !present(k.dev.Path)
		default:
			return err
		}
	}
}

// resetOnce opens the key and sends authenticatorReset, which CTAPHID_CANCEL
// interrupts when ctx ends. With announce > 0 it reports StageTouch once
// the request has gone unanswered that long, and says whether it did.
func (k *Key) resetOnce(ctx context.Context, op string, announce time.Duration) (announced bool, err error) {
	var (
		mu       sync.Mutex
		finished bool
	)
	err = k.session(ctx, op, func(d *device) error {
		if d.obs.observed {
			// The key says itself when it waits for the touch.
			defer func() { announced = announce > 0 && d.obs.askedForTouch() }()
		} else if announce > 0 {
			t := time.AfterFunc(announce, func() {
				mu.Lock()
				defer mu.Unlock()
				if !finished {
					announced = true
					platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageTouch})
				}
			})
			defer t.Stop()
		}
		var code int
		d.cancellable(ctx, func() { code = d.reset() })
		mu.Lock()
		finished = true
		mu.Unlock()
		return platform.FromCode(op, code)
	})
	mu.Lock()
	defer mu.Unlock()
	finished = true
	return announced, err
}

// Select waits for a touch on this key (authenticatorSelection, as
// libfido2 1.12 does it: fido_dev_get_touch_begin sends a request that a
// key answers once touched, and fido_dev_get_touch_status polls for the
// answer). It reports StageTouch first. Cancelling ctx sends
// CTAPHID_CANCEL and fails with ErrCancelled; a refusal is
// ErrOperationDenied and no touch in time (the key gives up after about 30
// seconds) ErrTimeout.
func (k *Key) Select(ctx context.Context) error {
	const op = "select"
	ctx = deduplicated(ctx)
	watchable := strings.HasPrefix(k.dev.Path, "/")
	return k.session(ctx, op, func(d *device) error {
		platform.Report(ctx, platform.ProgressEvent{Stage: platform.StageTouch})
		if code := d.touchBegin(); code != 0 {
			return platform.FromCode(op, code)
		}
		for {
			if err := ctx.Err(); err != nil {
				d.cancel()
				// Collect the key's answer (KEEPALIVE_CANCEL), so that it
				// has settled before the handle closes, and keep its code.
				_, code := d.touchStatus(int(selectPoll / time.Millisecond))
				if code != ctapKeepaliveCancel {
					code = 0
				}
				return &platform.Error{Op: op, Kind: platform.ErrCancelled, RetriesLeft: -1, Code: code, Err: err}
			}
			start := time.Now()
			touched, code := d.touchStatus(int(selectPoll / time.Millisecond))
			if code != 0 {
				return platform.FromCode(op, code)
			}
			if touched {
				return nil
			}
			// libfido2 reports a failed read as "not touched yet": a
			// removed key would otherwise be polled until ctx ends.
			if watchable && !present(k.dev.Path) {
				return &platform.Error{Op: op, Kind: platform.ErrDeviceRemoved, RetriesLeft: -1}
			}
			if time.Since(start) < selectPoll/2 {
				time.Sleep(selectPoll / 2) // do not spin on a key that answers nothing
			}
		}
	})
}
