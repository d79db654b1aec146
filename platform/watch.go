package platform

import (
	"context"
	"time"
)

// EventKind says what happened to a key.
type EventKind string

// The events Watch reports.
const (
	Arrived EventKind = "arrived"
	Removed EventKind = "removed"
	// ListFailed reports a failed listing; the watch goes on.
	ListFailed EventKind = "list-failed"
)

// Event is a key plugged in or pulled out, for the GUI to update live.
type Event struct {
	Kind   EventKind
	Device Device
	Err    error // for ListFailed
}

// Watch lists keys every interval and reports arrivals and removals until
// ctx ends, then closes the channel. The first listing reports every key
// present as arrived. Polling is enough: a listing costs little, and it
// works the same for hidraw, NFC and configured paths.
func Watch(ctx context.Context, e Enumerator, interval time.Duration) <-chan Event {
	out := make(chan Event)
	go func() {
		defer close(out)
		known := map[string]Device{}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			devs, err := e.Devices(ctx)
			var events []Event
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				events = append(events, Event{Kind: ListFailed, Err: err})
			} else {
				now := make(map[string]Device, len(devs))
				for _, d := range devs {
					now[d.Path] = d
					if _, ok := known[d.Path]; !ok {
						events = append(events, Event{Kind: Arrived, Device: d})
					}
				}
				for p, d := range known {
					if _, ok := now[p]; !ok {
						events = append(events, Event{Kind: Removed, Device: d})
					}
				}
				known = now
			}
			for _, ev := range events {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
