package provision

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform"
)

// fakeKeys is an Enumerator whose keys the test plugs and unplugs.
type fakeKeys struct {
	mu    sync.Mutex
	paths []string
}

func (f *fakeKeys) set(paths ...string) { f.mu.Lock(); f.paths = paths; f.mu.Unlock() }

func (f *fakeKeys) Devices(context.Context) ([]platform.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ds []platform.Device
	for _, p := range f.paths {
		ds = append(ds, platform.Device{Path: p})
	}
	return ds, nil
}

// openedKey is a key Open returned; only its device is known.
type openedKey struct {
	platform.Authenticator
	dev platform.Device
}

func (k openedKey) Device() platform.Device { return k.dev }

func (f *fakeKeys) Open(_ context.Context, d platform.Device) (platform.Authenticator, error) {
	return openedKey{dev: d}, nil
}

// TestWatcherLeavesKeysPluggedInAtTheStart: a key plugged in before the
// run (the operator's own) is not provisioned unless plugged in again;
// keys plugged in during the run come in order.
func TestWatcherLeavesKeysPluggedInAtTheStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := &fakeKeys{}
	f.set("/dev/own")
	w, present := WatchKeys(ctx, f, time.Millisecond)
	if present != 1 {
		t.Fatalf("present = %d", present)
	}
	next := func() string {
		t.Helper()
		k, err := w.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return k.Device().Path
	}
	time.Sleep(20 * time.Millisecond) // the watch has seen /dev/own
	f.set("/dev/own", "/dev/a")
	if got := next(); got != "/dev/a" {
		t.Fatalf("first key %q, want /dev/a", got)
	}
	f.set("/dev/a") // own unplugged...
	time.Sleep(20 * time.Millisecond)
	f.set("/dev/a", "/dev/own") // ...and plugged back in: now it counts
	if got := next(); got != "/dev/own" {
		t.Fatalf("second key %q, want /dev/own", got)
	}
	cancel()
	if _, err := w.Next(ctx); err == nil {
		t.Fatal("Next after the end of the watch returned a key")
	}
}
