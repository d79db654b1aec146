package libfido2

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/ctaphid"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// slowInfo is a key whose authenticatorGetInfo first runs script, which
// may send keep-alives, as a real key does while it works or waits.
type slowInfo struct {
	*softkey.Authenticator
	script func(keepalive func(status byte))
}

func (s *slowInfo) CBOR(ctx context.Context, req []byte, keepalive func(status byte)) []byte {
	if len(req) == 1 && req[0] == byte(softkey.CmdGetInfo) && s.script != nil {
		s.script(keepalive)
	}
	return s.Authenticator.CBOR(ctx, req, keepalive)
}

func TestKeepalives(t *testing.T) {
	const (
		touch      = platform.StageTouch
		processing = platform.StageProcessing
	)
	tests := []struct {
		name   string
		script func(keepalive func(status byte))
		op     func(ctx context.Context, k *Key) error
		want   []platform.Stage
	}{
		{
			name: "ShouldReportTouchWhenTheKeyAsksForIt",
			script: func(keepalive func(byte)) {
				keepalive(ctaphid.StatusUPNeeded)
				time.Sleep(30 * time.Millisecond)
				keepalive(ctaphid.StatusProcessing)
				time.Sleep(30 * time.Millisecond)
			},
			// libfido2 sends one getInfo when it opens the key, Info
			// another: each asks.
			want: []platform.Stage{touch, processing, touch, processing},
		},
		{
			// The key repeats its status every 100 ms: one report each.
			name:   "ShouldReportASlowRequestOnce",
			script: func(func(byte)) { time.Sleep(450 * time.Millisecond) },
			want:   []platform.Stage{processing},
		},
		{
			name:   "ShouldReportNothingForAQuickRequest",
			script: func(func(byte)) {},
			want:   nil,
		},
		{
			// Both getInfo requests ask, and nothing comes between: the
			// prompt is still up.
			name: "ShouldNotRepeatAPromptStillShown",
			script: func(keepalive func(byte)) {
				keepalive(ctaphid.StatusUPNeeded)
				time.Sleep(30 * time.Millisecond)
			},
			want: []platform.Stage{touch},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := softkey.New(softkey.Config{})
			if err != nil {
				t.Fatal(err)
			}
			sk := softkeytest.ServeHandler(t, a, &slowInfo{Authenticator: a, script: tt.script})
			k := &Key{dev: platform.Device{Path: sk.Path}}
			var got []platform.Stage
			ctx := platform.WithProgress(context.Background(), func(ev platform.ProgressEvent) { got = append(got, ev.Stage) })
			if _, err := k.Info(ctx); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("stages %v, want %v", got, tt.want)
			}
		})
	}
}

// TestKeepaliveAfterAnAnnouncedTouch checks that an operation which
// announces its touch before the request is not announced twice when the
// key then asks, and that the key's word that it took the touch follows.
func TestKeepaliveAfterAnAnnouncedTouch(t *testing.T) {
	sig := softkey.NewSignal(10 * time.Second)
	sk := softkeytest.Serve(t, softkey.Config{Presence: sig})
	k := &Key{dev: platform.Device{Path: sk.Path}}
	st := newMgmtStages()
	waiting := sig.Waiting()
	wait := mgmtAsync(func() error { return k.Select(st.ctx(context.Background())) })
	<-waiting
	time.Sleep(150 * time.Millisecond) // a keep-alive or two go by
	if got := st.list(); !slices.Equal(got, []platform.Stage{platform.StageTouch}) {
		t.Fatalf("stages while waiting %v, want one touch", got)
	}
	sig.Touch()
	if _, err := wait(t); err != nil {
		t.Fatal(err)
	}
	st.want(t, platform.StageTouch, platform.StageProcessing)
}
