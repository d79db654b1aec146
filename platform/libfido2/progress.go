package libfido2

import (
	"context"
	"sync"

	"github.com/keydesk/keydesk/platform"
)

// CTAPHID_KEEPALIVE statuses (CTAP 2.1 §11.2.9.1.7).
const (
	keepaliveProcessing = 1 // STATUS_PROCESSING
	keepaliveUPNeeded   = 2 // STATUS_UPNEEDED
)

// observer turns the keep-alives of one open device into progress:
// STATUS_UPNEEDED is StageTouch, STATUS_PROCESSING StageProcessing, each
// reported when a request's status changes. The key itself says when it
// waits for a touch, so a prompt appears exactly then, on any operation.
type observer struct {
	ctx context.Context
	// observed is set when the device's I/O passes keep-alives here;
	// otherwise operations announce their touches themselves.
	observed bool

	mu      sync.Mutex
	touched bool // STATUS_UPNEEDED was seen
}

func (o *observer) keepalive(status byte) {
	switch status {
	case keepaliveUPNeeded:
		o.mu.Lock()
		o.touched = true
		o.mu.Unlock()
		platform.Report(o.ctx, platform.ProgressEvent{Stage: platform.StageTouch})
	case keepaliveProcessing:
		platform.Report(o.ctx, platform.ProgressEvent{Stage: platform.StageProcessing})
	}
}

// askedForTouch reports whether the key said it waits for a touch.
func (o *observer) askedForTouch() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.touched
}

type dedupKey struct{}

// deduplicated returns ctx with its Progress wrapped so that an event
// equal to the one reported just before is dropped: an operation that
// announces a touch before its request hears the key ask for it again.
// Wrapping twice keeps the first wrapper, so that one operation's
// sessions share it.
func deduplicated(ctx context.Context) context.Context {
	if ctx.Value(dedupKey{}) != nil {
		return ctx
	}
	var (
		mu   sync.Mutex
		last *platform.ProgressEvent
	)
	parent := ctx
	ctx = platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
		mu.Lock()
		defer mu.Unlock() // keeps reports from two goroutines in order
		if last != nil && *last == ev {
			return
		}
		last = &ev
		platform.Report(parent, ev)
	})
	return context.WithValue(ctx, dedupKey{}, true)
}
