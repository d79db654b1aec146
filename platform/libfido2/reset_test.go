package libfido2

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// mgmtClock is a software key's clock that tests move forward.
type mgmtClock struct {
	mu  sync.Mutex
	now time.Time
}

func newMgmtClock() *mgmtClock { return &mgmtClock{now: time.Now()} }

func (c *mgmtClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *mgmtClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// mgmtStages collects the progress an operation reports.
type mgmtStages struct {
	ch  chan platform.Stage
	mu  sync.Mutex
	all []platform.Stage
}

func newMgmtStages() *mgmtStages { return &mgmtStages{ch: make(chan platform.Stage, 64)} }

func (s *mgmtStages) ctx(ctx context.Context) context.Context {
	return platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
		s.mu.Lock()
		s.all = append(s.all, ev.Stage)
		s.mu.Unlock()
		s.ch <- ev.Stage
	})
}

// waitFor skips reported stages until want, within 5 s.
func (s *mgmtStages) waitFor(t *testing.T, want platform.Stage) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case st := <-s.ch:
			if st == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %s stage; reported %v", want, s.list())
		}
	}
}

func (s *mgmtStages) list() []platform.Stage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]platform.Stage(nil), s.all...)
}

func (s *mgmtStages) want(t *testing.T, want ...platform.Stage) {
	t.Helper()
	got := s.list()
	if len(got) != len(want) {
		t.Fatalf("stages %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("stages %v, want %v", got, want)
		}
	}
}

// mgmtAsync runs f in a goroutine; the returned function waits for its
// error (at most 5 s), saying how long it took after the wait began.
func mgmtAsync(f func() error) func(t *testing.T) (time.Duration, error) {
	done := make(chan error, 1)
	go func() { done <- f() }()
	return func(t *testing.T) (time.Duration, error) {
		t.Helper()
		start := time.Now()
		select {
		case err := <-done:
			return time.Since(start), err
		case <-time.After(5 * time.Second):
			t.Fatal("operation did not end")
		}
		return 0, nil
	}
}

func TestReset(t *testing.T) {
	const (
		touch    = platform.StageTouch
		reinsert = platform.StageReinsert
	)
	tests := []struct {
		name     string
		presence softkey.Presence // unless signal
		signal   time.Duration    // > 0: a Signal timing out after signal
		run      func(t *testing.T, sk *softkeytest.Key, k *Key, clock *mgmtClock, sig *softkey.Signal, st *mgmtStages)
	}{
		{"ShouldResetAFreshKeyOnATouch", softkey.ApproveAlways, 0, func(t *testing.T, sk *softkeytest.Key, k *Key, _ *mgmtClock, _ *softkey.Signal, st *mgmtStages) {
			if err := k.Reset(st.ctx(context.Background())); err != nil {
				t.Fatal(err)
			}
			st.want(t, touch)
			if info := mgmtInfo(t, k); info.PINSet() || info.PINRetries != 8 {
				t.Fatalf("after reset: PIN set %v, retries %d", info.PINSet(), info.PINRetries)
			}
		}},
		{"ShouldSayTheResetWasDeniedOnTheKey", softkey.DenyAlways, 0, func(t *testing.T, sk *softkeytest.Key, k *Key, _ *mgmtClock, _ *softkey.Signal, st *mgmtStages) {
			mgmtWantErr(t, k.Reset(st.ctx(context.Background())), platform.ErrOperationDenied, "refused")
			if !mgmtInfo(t, k).PINSet() {
				t.Fatal("a denied reset wiped the key")
			}
		}},
		{"ShouldSayNobodyTouchedTheKey", nil, 200 * time.Millisecond, func(t *testing.T, sk *softkeytest.Key, k *Key, _ *mgmtClock, _ *softkey.Signal, st *mgmtStages) {
			mgmtWantErr(t, k.Reset(st.ctx(context.Background())), platform.ErrTimeout, "not touched in time")
		}},
		{"ShouldCancelWhileWaitingForTheTouch", nil, 10 * time.Second, func(t *testing.T, sk *softkeytest.Key, k *Key, _ *mgmtClock, sig *softkey.Signal, st *mgmtStages) {
			ctx, cancel := context.WithCancel(st.ctx(context.Background()))
			defer cancel()
			waiting := sig.Waiting()
			wait := mgmtAsync(func() error { return k.Reset(ctx) })
			<-waiting
			cancel()
			took, err := wait(t)
			if e := mgmtWantErr(t, err, platform.ErrCancelled, "Cancelled."); e.Code != 0x2D {
				t.Errorf("code %#x, want CTAP2_ERR_KEEPALIVE_CANCEL from the key", e.Code)
			}
			if took > time.Second {
				t.Errorf("cancel took %v", took)
			}
			if !mgmtInfo(t, k).PINSet() {
				t.Fatal("a cancelled reset wiped the key")
			}
		}},
		{"ShouldAskToReinsertWhenTooLateThenResetAfterAPowerCycle", nil, 10 * time.Second, func(t *testing.T, sk *softkeytest.Key, k *Key, clock *mgmtClock, sig *softkey.Signal, st *mgmtStages) {
			clock.Advance(11 * time.Second)
			wait := mgmtAsync(func() error { return k.Reset(st.ctx(context.Background())) })
			st.waitFor(t, touch)
			st.waitFor(t, reinsert)
			time.Sleep(2 * probeInterval) // the key keeps answering NOT_ALLOWED meanwhile
			waiting := sig.Waiting()
			sk.Authenticator.PowerCycle()
			<-waiting            // the probe after the power cycle waits for the touch
			st.waitFor(t, touch) // and the user hears so
			if sig.Touch() != 1 {
				t.Fatal("nothing waited for the touch")
			}
			if _, err := wait(t); err != nil {
				t.Fatal(err)
			}
			// The probes the key refused meanwhile were silent.
			st.want(t, touch, reinsert, touch, platform.StageProcessing) // the key says it took the touch
			if mgmtInfo(t, k).PINSet() {
				t.Fatal("PIN still set after the reset")
			}
		}},
		{"ShouldRetryWhenTheReinsertedKeyReappears", softkey.ApproveAlways, 0, func(t *testing.T, sk *softkeytest.Key, k *Key, clock *mgmtClock, sig *softkey.Signal, st *mgmtStages) {
			clock.Advance(11 * time.Second)
			wait := mgmtAsync(func() error { return k.Reset(st.ctx(context.Background())) })
			st.waitFor(t, reinsert)
			sk.Stop() // unplugged: the path goes away
			sk.Authenticator.PowerCycle()
			time.Sleep(3 * presencePoll)
			again := softkeytest.ServeAuthenticator(t, sk.Authenticator) // plugged back in
			if again.Path != sk.Path {
				t.Fatalf("re-served at %s, not %s", again.Path, sk.Path)
			}
			if _, err := wait(t); err != nil {
				t.Fatal(err)
			}
			// StageTouch before the retry only comes from seeing the key
			// come back: a silent probe of an approving key reports none.
			st.want(t, touch, reinsert, touch)
			if mgmtInfo(t, k).PINSet() {
				t.Fatal("PIN still set after the reset")
			}
		}},
		{"ShouldCancelWhileWaitingForTheReinsertion", softkey.ApproveAlways, 0, func(t *testing.T, sk *softkeytest.Key, k *Key, clock *mgmtClock, sig *softkey.Signal, st *mgmtStages) {
			clock.Advance(11 * time.Second)
			ctx, cancel := context.WithCancel(st.ctx(context.Background()))
			defer cancel()
			wait := mgmtAsync(func() error { return k.Reset(ctx) })
			st.waitFor(t, reinsert)
			cancel()
			took, err := wait(t)
			mgmtWantErr(t, err, platform.ErrCancelled, "")
			if took > time.Second {
				t.Errorf("cancel took %v", took)
			}
			if !mgmtInfo(t, k).PINSet() {
				t.Fatal("a cancelled reset wiped the key")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newMgmtClock()
			presence, sig := tt.presence, (*softkey.Signal)(nil)
			if tt.signal > 0 {
				sig = softkey.NewSignal(tt.signal)
				presence = sig
			}
			sk, k := mgmtKey(t, softkey.Config{Presence: presence, Now: clock.Now})
			if err := k.SetPIN(context.Background(), "1234"); err != nil {
				t.Fatal(err)
			}
			tt.run(t, sk, k, clock, sig, newMgmtStages())
		})
	}
}

func TestResetOfARemovedKey(t *testing.T) {
	k, _ := New(Config{}).Open(context.Background(), platform.Device{Path: "/dev/keydesk-vhid96"})
	mgmtWantErr(t, k.Reset(context.Background()), platform.ErrDeviceRemoved, "")
}

func TestSelect(t *testing.T) {
	tests := []struct {
		name     string
		presence softkey.Presence // unless signal
		signal   time.Duration    // > 0: a Signal timing out after signal
		pin      bool
		run      func(t *testing.T, k *Key, sig *softkey.Signal, st *mgmtStages)
	}{
		{name: "ShouldSelectOnATouch", presence: softkey.ApproveAlways, run: func(t *testing.T, k *Key, _ *softkey.Signal, st *mgmtStages) {
			if err := k.Select(st.ctx(context.Background())); err != nil {
				t.Fatal(err)
			}
			st.want(t, platform.StageTouch)
		}},
		{name: "ShouldSelectAKeyWithAPINWithoutSpendingAnAttempt", presence: softkey.ApproveAlways, pin: true, run: func(t *testing.T, k *Key, _ *softkey.Signal, st *mgmtStages) {
			if err := k.Select(st.ctx(context.Background())); err != nil {
				t.Fatal(err)
			}
			if n := mgmtInfo(t, k).PINRetries; n != 8 {
				t.Errorf("retries %d", n)
			}
		}},
		{name: "ShouldWaitForTheTouch", signal: 10 * time.Second, run: func(t *testing.T, k *Key, sig *softkey.Signal, st *mgmtStages) {
			waiting := sig.Waiting()
			wait := mgmtAsync(func() error { return k.Select(st.ctx(context.Background())) })
			<-waiting
			st.waitFor(t, platform.StageTouch)
			sig.Touch()
			if _, err := wait(t); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "ShouldSayTheSelectionWasDenied", presence: softkey.DenyAlways, run: func(t *testing.T, k *Key, _ *softkey.Signal, st *mgmtStages) {
			mgmtWantErr(t, k.Select(st.ctx(context.Background())), platform.ErrOperationDenied, "")
		}},
		{name: "ShouldSayNobodyTouchedTheKey", signal: 200 * time.Millisecond, run: func(t *testing.T, k *Key, _ *softkey.Signal, st *mgmtStages) {
			mgmtWantErr(t, k.Select(st.ctx(context.Background())), platform.ErrTimeout, "")
		}},
		{name: "ShouldCancelWhileWaitingForTheTouch", signal: 10 * time.Second, run: func(t *testing.T, k *Key, sig *softkey.Signal, st *mgmtStages) {
			ctx, cancel := context.WithCancel(st.ctx(context.Background()))
			defer cancel()
			waiting := sig.Waiting()
			wait := mgmtAsync(func() error { return k.Select(ctx) })
			<-waiting
			cancel()
			took, err := wait(t)
			if e := mgmtWantErr(t, err, platform.ErrCancelled, ""); e.Code != 0x2D {
				t.Errorf("code %#x, want CTAP2_ERR_KEEPALIVE_CANCEL from the key", e.Code)
			}
			if took > time.Second {
				t.Errorf("cancel took %v", took)
			}
			// The key is free again: a second selection works.
			waiting = sig.Waiting()
			wait = mgmtAsync(func() error { return k.Select(context.Background()) })
			<-waiting
			sig.Touch()
			if _, err := wait(t); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			presence, sig := tt.presence, (*softkey.Signal)(nil)
			if tt.signal > 0 {
				sig = softkey.NewSignal(tt.signal)
				presence = sig
			}
			_, k := mgmtKey(t, softkey.Config{Presence: presence})
			if tt.pin {
				if err := k.SetPIN(context.Background(), "1234"); err != nil {
					t.Fatal(err)
				}
			}
			tt.run(t, k, sig, newMgmtStages())
		})
	}
}

func TestSelectAmongKeysUsesTheTouchedOne(t *testing.T) {
	idle := softkey.NewSignal(10 * time.Second)
	touched := softkey.NewSignal(10 * time.Second)
	e := New(Config{})
	var keys []platform.Authenticator
	for _, sig := range []*softkey.Signal{idle, touched} {
		k := softkeytest.Serve(t, softkey.Config{Presence: sig})
		a, err := e.Open(context.Background(), platform.Device{Path: k.Path})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, a)
	}
	idleWaiting, touchedWaiting := idle.Waiting(), touched.Waiting()
	go func() {
		<-idleWaiting // both keys blink before the user picks one
		<-touchedWaiting
		touched.Touch()
	}()
	start := time.Now()
	got, err := platform.SelectAmong(context.Background(), keys)
	if err != nil {
		t.Fatal(err)
	}
	if got != keys[1] {
		t.Fatalf("selected %s, want the touched %s", got.Device().Path, keys[1].Device().Path)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("selection took %v: the other key was not cancelled", time.Since(start))
	}
	// The untouched key stopped waiting: it answers at once again.
	again := idle.Waiting()
	go func() { <-again; idle.Touch() }()
	if err := keys[0].Select(context.Background()); err != nil {
		t.Fatalf("the other key after the selection: %v", err)
	}
}

func TestSelectAmongOneOrNone(t *testing.T) {
	if _, err := platform.SelectAmong(context.Background(), nil); !errors.Is(err, platform.ErrNoDevice) {
		t.Fatalf("no keys: %v", err)
	}
	k := softkeytest.Serve(t, softkey.Config{Presence: softkey.DenyAlways})
	a, _ := New(Config{}).Open(context.Background(), platform.Device{Path: k.Path})
	got, err := platform.SelectAmong(context.Background(), []platform.Authenticator{a})
	if err != nil || got != a {
		t.Fatalf("one key is chosen without a touch: %v", err)
	}
}
