package provision

import (
	"context"
	"errors"
	"time"

	"github.com/keydesk/keydesk/platform"
)

// Watcher is a KeySource over a platform.Enumerator: each key as it is
// plugged in, once per plugging, in arrival order. Keys already plugged in
// when it starts are not provisioned until they are unplugged and plugged
// in again: the operator's own key, say, must not be reset because it
// happened to be in the computer.
type Watcher struct {
	e      platform.Enumerator
	events <-chan platform.Event
	// present are the paths plugged in at the start and not removed
	// since.
	present map[string]bool
}

// WatchKeys watches e, polling every interval, until ctx ends. It returns
// the number of keys plugged in already, which it leaves alone.
func WatchKeys(ctx context.Context, e platform.Enumerator, interval time.Duration) (*Watcher, int) {
	w := &Watcher{e: e, present: map[string]bool{}}
	if devs, err := e.Devices(ctx); err == nil {
		for _, d := range devs {
			w.present[d.Path] = true
		}
	}
	w.events = platform.Watch(ctx, e, interval)
	return w, len(w.present)
}

// errWatchEnded is a Watcher whose context ended.
var errWatchEnded = errors.New("provision: stopped watching for keys")

// Next waits for the next key plugged in and opens it.
func (w *Watcher) Next(ctx context.Context) (platform.Authenticator, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev, ok := <-w.events:
			if !ok {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				return nil, errWatchEnded
			}
			switch {
			case ev.Kind == platform.Removed:
				delete(w.present, ev.Device.Path)
				continue
			case ev.Kind != platform.Arrived || w.present[ev.Device.Path]:
				// A failed listing is tried again at the next poll.
				continue
			}
			k, err := w.e.Open(ctx, ev.Device)
			if err != nil {
				// A key pulled out as it arrived: wait for the next.
				continue
			}
			return k, nil
		}
	}
}
