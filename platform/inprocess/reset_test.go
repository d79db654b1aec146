package inprocess

import (
	"context"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

func TestReset(t *testing.T) {
	ctx := context.Background()
	t.Run("ShouldEraseTheKeyOnATouch", func(t *testing.T) {
		sig := softkey.NewSignal(10 * time.Second)
		k := newKeyWithPIN(t, softkey.Config{Presence: sig})
		var rec recorder
		waiting := sig.Waiting()
		done := make(chan error, 1)
		go func() { done <- k.Reset(platform.WithProgress(ctx, rec.report)) }()
		<-waiting
		sig.Touch()
		wantKind(t, <-done, nil)
		if !rec.has(platform.StageTouch) || rec.has(platform.StageReinsert) {
			t.Errorf("progress %v", rec.stages())
		}
		info := k.mustInfo(t)
		if info.PINSet() {
			t.Error("PIN survived the reset")
		}
	})
	t.Run("ShouldFailWhenDenied", func(t *testing.T) {
		k := newKeyWithPIN(t, softkey.Config{Presence: softkey.DenyAlways})
		wantKind(t, k.Reset(ctx), platform.ErrOperationDenied)
		if !k.mustInfo(t).PINSet() {
			t.Error("a denied reset erased the key")
		}
	})
	t.Run("ShouldAskForAReplugWhenTooLateThenSucceed", func(t *testing.T) {
		k := newKeyWithPIN(t, softkey.Config{})
		k.makeCredential(t, "example.com", "alice", 0)
		k.clock.advance(11 * time.Second)
		reinsert := make(chan struct{}, 1)
		rec := recorder{on: func(ev platform.ProgressEvent) {
			if ev.Stage == platform.StageReinsert {
				reinsert <- struct{}{}
			}
		}}
		done := make(chan error, 1)
		go func() { done <- k.Reset(platform.WithProgress(ctx, rec.report)) }()
		select {
		case <-reinsert:
		case err := <-done:
			t.Fatalf("Reset returned %v before asking for a re-plug", err)
		}
		k.engine.PowerCycle()
		wantKind(t, <-done, nil)
		if info := k.mustInfo(t); info.PINSet() || info.RemainingDiscoverableCredentials != 25 {
			t.Errorf("after reset: PIN %v, room for %d credentials", info.PINSet(), info.RemainingDiscoverableCredentials)
		}
		if !rec.has(platform.StageTouch) {
			t.Errorf("progress %v", rec.stages())
		}
	})
	t.Run("ShouldStopWaitingForAReplugWhenCancelled", func(t *testing.T) {
		k := newKeyWithPIN(t, softkey.Config{})
		k.clock.advance(11 * time.Second)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		rec := recorder{on: func(ev platform.ProgressEvent) {
			if ev.Stage == platform.StageReinsert {
				cancel()
			}
		}}
		wantKind(t, k.Reset(platform.WithProgress(cctx, rec.report)), platform.ErrCancelled)
	})
}

func TestSelect(t *testing.T) {
	ctx := context.Background()
	t.Run("ShouldSucceedOnATouch", func(t *testing.T) {
		k := newKey(t, softkey.Config{})
		var rec recorder
		wantKind(t, k.Select(platform.WithProgress(ctx, rec.report)), nil)
		if !rec.has(platform.StageTouch) {
			t.Errorf("progress %v", rec.stages())
		}
	})
	t.Run("ShouldFailWhenDenied", func(t *testing.T) {
		k := newKey(t, softkey.Config{Presence: softkey.DenyAlways})
		wantKind(t, k.Select(ctx), platform.ErrOperationDenied)
	})
	t.Run("ShouldFailWhenCancelledWhileWaiting", func(t *testing.T) {
		sig := softkey.NewSignal(10 * time.Second)
		k := newKey(t, softkey.Config{Presence: sig})
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		waiting := sig.Waiting()
		done := make(chan error, 1)
		go func() { done <- k.Select(cctx) }()
		<-waiting
		cancel()
		wantKind(t, <-done, platform.ErrCancelled)
	})
	t.Run("ShouldTimeOutWhenNobodyTouches", func(t *testing.T) {
		k := newKey(t, softkey.Config{Presence: softkey.NewSignal(50 * time.Millisecond)})
		wantKind(t, k.Select(ctx), platform.ErrTimeout)
	})
}
