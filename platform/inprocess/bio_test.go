package inprocess

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

func TestFingerprints(t *testing.T) {
	ctx := context.Background()
	t.Run("ShouldEnrollReportingEachSample", func(t *testing.T) {
		k := newKeyWithPIN(t, softkey.Config{})
		var rec recorder
		fp, err := k.EnrollFingerprint(platform.WithProgress(ctx, rec.report), testPIN, "right thumb")
		if err != nil {
			t.Fatal(err)
		}
		touch := platform.ProgressEvent{Stage: platform.StageTouch}
		sample := func(n int) platform.ProgressEvent {
			return platform.ProgressEvent{Stage: platform.StageSample, Remaining: n}
		}
		want := []platform.ProgressEvent{touch, sample(3), touch, sample(2), touch, sample(1), touch, sample(0)}
		if got := rec.stages(); !slices.Equal(got, want) {
			t.Errorf("progress %v, want %v", got, want)
		}
		if len(fp.ID) == 0 || fp.Name != "right thumb" {
			t.Errorf("enrolled %+v", fp)
		}
		info := k.mustInfo(t)
		if !info.HasOption("uv") || !info.HasOption("bioEnroll") || info.UVRetries != 8 {
			t.Errorf("options %v UV retries %d", info.Options, info.UVRetries)
		}
	})

	cases := []struct {
		name  string
		run   func(k *testKey, fp platform.Fingerprint) error
		want  error
		check func(t *testing.T, fps []platform.Fingerprint, fp platform.Fingerprint)
	}{
		{
			name: "ShouldList",
			run:  func(*testKey, platform.Fingerprint) error { return nil },
			check: func(t *testing.T, fps []platform.Fingerprint, fp platform.Fingerprint) {
				if len(fps) != 1 || !slices.Equal(fps[0].ID, fp.ID) || fps[0].Name != "thumb" {
					t.Errorf("list %+v", fps)
				}
			},
		},
		{
			name: "ShouldRename",
			run: func(k *testKey, fp platform.Fingerprint) error {
				return k.RenameFingerprint(ctx, testPIN, fp.ID, "index")
			},
			check: func(t *testing.T, fps []platform.Fingerprint, _ platform.Fingerprint) {
				if len(fps) != 1 || fps[0].Name != "index" {
					t.Errorf("list %+v", fps)
				}
			},
		},
		{
			name: "ShouldDeleteAndListNoneAsAnEmptySlice",
			run: func(k *testKey, fp platform.Fingerprint) error {
				return k.DeleteFingerprint(ctx, testPIN, fp.ID)
			},
			check: func(t *testing.T, fps []platform.Fingerprint, _ platform.Fingerprint) {
				if fps == nil || len(fps) != 0 {
					t.Errorf("list %#v, want empty", fps)
				}
			},
		},
		{
			name: "ShouldFailToRenameAnUnknownID",
			run: func(k *testKey, _ platform.Fingerprint) error {
				return k.RenameFingerprint(ctx, testPIN, []byte("nope"), "x")
			},
			want: platform.ErrNoCredentials,
		},
		{
			name: "ShouldFailToDeleteAnUnknownID",
			run: func(k *testKey, _ platform.Fingerprint) error {
				return k.DeleteFingerprint(ctx, testPIN, []byte("nope"))
			},
			want: platform.ErrNoCredentials,
		},
		{
			name: "ShouldFailToListWithAWrongPIN",
			run: func(k *testKey, _ platform.Fingerprint) error {
				_, err := k.Fingerprints(ctx, "0000")
				return err
			},
			want: platform.ErrPINInvalid,
		},
		{
			name: "ShouldFailToRenameWithAWrongPIN",
			run: func(k *testKey, fp platform.Fingerprint) error {
				return k.RenameFingerprint(ctx, "0000", fp.ID, "x")
			},
			want: platform.ErrPINInvalid,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKeyWithPIN(t, softkey.Config{})
			fp, err := k.EnrollFingerprint(ctx, testPIN, "thumb")
			if err != nil {
				t.Fatal(err)
			}
			err = tc.run(k, fp)
			wantKind(t, err, tc.want)
			if tc.want == platform.ErrPINInvalid && retriesLeft(t, err) != 7 {
				t.Errorf("RetriesLeft %d, want 7", retriesLeft(t, err))
			}
			if tc.check != nil {
				fps, err := k.Fingerprints(ctx, testPIN)
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, fps, fp)
			}
		})
	}

	t.Run("ShouldCancelMidWay", func(t *testing.T) {
		sig := softkey.NewSignal(10 * time.Second)
		k := newKeyWithPIN(t, softkey.Config{Presence: sig})
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		waiting := sig.Waiting()
		done := make(chan error, 1)
		go func() {
			_, err := k.EnrollFingerprint(cctx, testPIN, "thumb")
			done <- err
		}()
		for range 2 { // two samples taken
			<-waiting
			waiting = sig.Waiting()
			sig.Touch()
		}
		<-waiting // the third one is asked for
		cancel()
		wantKind(t, <-done, platform.ErrCancelled)
		fps, err := k.Fingerprints(ctx, testPIN)
		if err != nil || len(fps) != 0 {
			t.Fatalf("after cancel: %+v, %v", fps, err)
		}
		// The key can enroll again: four touches, each while it waits.
		waiting = sig.Waiting()
		go func() {
			_, err := k.EnrollFingerprint(ctx, testPIN, "again")
			done <- err
		}()
		for range 4 {
			<-waiting
			waiting = sig.Waiting()
			sig.Touch()
		}
		if err := <-done; err != nil {
			t.Fatalf("enroll after cancel: %v", err)
		}
	})
	t.Run("ShouldTimeOutWhenNoFingerComes", func(t *testing.T) {
		k := newKeyWithPIN(t, softkey.Config{Presence: softkey.DenyAlways})
		_, err := k.EnrollFingerprint(ctx, testPIN, "thumb")
		wantKind(t, err, platform.ErrTimeout)
		fps, err := k.Fingerprints(ctx, testPIN)
		if err != nil || len(fps) != 0 {
			t.Fatalf("after timeout: %+v, %v", fps, err)
		}
	})
	t.Run("ShouldReportUnsupportedWithoutASensor", func(t *testing.T) {
		k := newKeyWithPIN(t, softkey.Config{NoBiometrics: true})
		_, err := k.Fingerprints(ctx, testPIN)
		wantKind(t, err, platform.ErrUnsupported)
	})
}
