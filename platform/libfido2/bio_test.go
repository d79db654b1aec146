package libfido2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// bioRecorder stands in front of a software key and keeps the subcommand
// and answer of every authenticatorBioEnrollment request.
type bioRecorder struct {
	*softkey.Authenticator
	mu   sync.Mutex
	reqs []string // "sub=status", such as "3=00"
}

func (r *bioRecorder) CBOR(ctx context.Context, req []byte, keepalive func(byte)) []byte {
	resp := r.Authenticator.CBOR(ctx, req, keepalive)
	if len(req) > 0 && (req[0] == 0x09 || req[0] == 0x40) {
		var p struct {
			Sub uint64 `cbor:"2,keyasint"`
		}
		cbor.Unmarshal(req[1:], &p)
		r.mu.Lock()
		r.reqs = append(r.reqs, fmt.Sprintf("%d=%02x", p.Sub, resp[0]))
		r.mu.Unlock()
	}
	return resp
}

// last returns the last request recorded, "" when none.
func (r *bioRecorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		return ""
	}
	return r.reqs[len(r.reqs)-1]
}

// bioOpenRecorded is bioOpen with a bioRecorder in front of the key.
func bioOpenRecorded(t *testing.T, cfg softkey.Config) (*Key, *bioRecorder) {
	t.Helper()
	a, err := softkey.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &bioRecorder{Authenticator: a}
	sk := softkeytest.ServeHandler(t, a, rec)
	key, err := New(Config{}).Open(context.Background(), platform.Device{Path: sk.Path})
	if err != nil {
		t.Fatal(err)
	}
	cmSetPIN(t, sk.Path, cmTestPIN)
	return key.(*Key), rec
}

// bioEvents records the progress an operation reports.
type bioEvents struct {
	mu  sync.Mutex
	evs []platform.ProgressEvent
}

func (b *bioEvents) ctx(ctx context.Context) context.Context {
	return platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.evs = append(b.evs, ev)
	})
}

func (b *bioEvents) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s []string
	for _, ev := range b.evs {
		if ev.Stage == platform.StageSample {
			s = append(s, fmt.Sprintf("%s%d", ev.Stage, ev.Remaining))
		} else {
			s = append(s, string(ev.Stage))
		}
	}
	return strings.Join(s, " ")
}

// bioOpen serves a software key with cfg and a PIN, opened through libfido2.
func bioOpen(t *testing.T, cfg softkey.Config) *Key {
	t.Helper()
	sk, key := cmOpen(t, cfg)
	cmSetPIN(t, sk.Path, cmTestPIN)
	return key
}

// bioEnroll enrolls a fingerprint that must succeed.
func bioEnroll(t *testing.T, key *Key, name string) platform.Fingerprint {
	t.Helper()
	fp, err := key.EnrollFingerprint(context.Background(), cmTestPIN, name)
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	return fp
}

// bioList lists the fingerprints, which must succeed.
func bioList(t *testing.T, key *Key) []platform.Fingerprint {
	t.Helper()
	fps, err := key.Fingerprints(context.Background(), cmTestPIN)
	if err != nil {
		t.Fatalf("list fingerprints: %v", err)
	}
	return fps
}

func TestFingerprints(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		cfg  softkey.Config
		run  func(t *testing.T, key *Key)
	}{
		{"ShouldEnrollReportingEachSample", softkey.Config{}, func(t *testing.T, key *Key) {
			var evs bioEvents
			fp, err := key.EnrollFingerprint(evs.ctx(ctx), cmTestPIN, "left thumb")
			if err != nil {
				t.Fatal(err)
			}
			// The software key takes four samples.
			if want := "touch sample3 touch sample2 touch sample1 touch sample0"; evs.String() != want {
				t.Errorf("progress %q, want %q", evs.String(), want)
			}
			if len(fp.ID) == 0 || fp.Name != "left thumb" {
				t.Fatalf("enrolled %+v", fp)
			}
			fps := bioList(t, key)
			if len(fps) != 1 || !bytes.Equal(fps[0].ID, fp.ID) || fps[0].Name != "left thumb" {
				t.Fatalf("listed %+v, enrolled %+v", fps, fp)
			}
		}},
		{"ShouldEnrollWithoutName", softkey.Config{}, func(t *testing.T, key *Key) {
			fp := bioEnroll(t, key, "")
			if fps := bioList(t, key); len(fps) != 1 || !bytes.Equal(fps[0].ID, fp.ID) || fps[0].Name != "" {
				t.Fatalf("listed %+v, enrolled %+v", fps, fp)
			}
		}},
		{"ShouldListNothingWithoutTemplates", softkey.Config{}, func(t *testing.T, key *Key) {
			// The key answers INVALID_OPTION (CTAP 2.1 §6.7.6).
			if fps := bioList(t, key); fps == nil || len(fps) != 0 {
				t.Fatalf("fingerprints of an empty key: %#v", fps)
			}
		}},
		{"ShouldRenameFingerprint", softkey.Config{}, func(t *testing.T, key *Key) {
			a, b := bioEnroll(t, key, "a"), bioEnroll(t, key, "b")
			if err := key.RenameFingerprint(ctx, cmTestPIN, b.ID, "right index"); err != nil {
				t.Fatal(err)
			}
			names := map[string]string{}
			for _, fp := range bioList(t, key) {
				names[string(fp.ID)] = fp.Name
			}
			if len(names) != 2 || names[string(a.ID)] != "a" || names[string(b.ID)] != "right index" {
				t.Fatalf("after rename: %q", names)
			}
		}},
		{"ShouldDeleteFingerprint", softkey.Config{}, func(t *testing.T, key *Key) {
			a, b := bioEnroll(t, key, "a"), bioEnroll(t, key, "b")
			if err := key.DeleteFingerprint(ctx, cmTestPIN, a.ID); err != nil {
				t.Fatal(err)
			}
			if fps := bioList(t, key); len(fps) != 1 || !bytes.Equal(fps[0].ID, b.ID) {
				t.Fatalf("after delete: %+v", fps)
			}
		}},
		{"ShouldFailRenameAndDeleteOfUnknownID", softkey.Config{}, func(t *testing.T, key *Key) {
			bioEnroll(t, key, "a")
			for name, err := range map[string]error{
				"rename": key.RenameFingerprint(ctx, cmTestPIN, []byte("unknown!"), "x"),
				"delete": key.DeleteFingerprint(ctx, cmTestPIN, []byte("unknown!")),
			} {
				var pe *platform.Error
				// INVALID_OPTION, reported as no matching credential.
				if !errors.Is(err, platform.ErrNoCredentials) || !errors.As(err, &pe) || pe.Code != 0x2C {
					t.Errorf("%s of an unknown ID: %v", name, err)
				}
			}
			if fps := bioList(t, key); len(fps) != 1 || fps[0].Name != "a" {
				t.Fatalf("after the failures: %+v", fps)
			}
		}},
		{"ShouldRejectWrongPINWithRetriesLeft", softkey.Config{}, func(t *testing.T, key *Key) {
			var evs bioEvents
			_, err := key.EnrollFingerprint(evs.ctx(ctx), "9999", "x")
			cmWantPINInvalid(t, err, 7)
			bioEnroll(t, key, "a") // the right PIN restores the attempts
			_, err = key.Fingerprints(ctx, "9999")
			cmWantPINInvalid(t, err, 7)
			fp := bioEnroll(t, key, "b")
			cmWantPINInvalid(t, key.RenameFingerprint(ctx, "9999", fp.ID, "c"), 7)
			bioList(t, key)
			cmWantPINInvalid(t, key.DeleteFingerprint(ctx, "9999", fp.ID), 7)
			if fps := bioList(t, key); len(fps) != 2 {
				t.Fatalf("after the wrong PINs: %+v", fps)
			}
		}},
		{"ShouldFailWithoutSensor", softkey.Config{NoBiometrics: true}, func(t *testing.T, key *Key) {
			if _, err := key.Fingerprints(ctx, cmTestPIN); !errors.Is(err, platform.ErrUnsupported) {
				t.Fatalf("fingerprints of a key without a sensor: %v", err)
			}
			if _, err := key.EnrollFingerprint(ctx, cmTestPIN, ""); !errors.Is(err, platform.ErrUnsupported) {
				t.Fatalf("enroll on a key without a sensor: %v", err)
			}
			// No PIN attempt was spent on it.
			if info, err := key.Info(ctx); err != nil || info.PINRetries != 8 {
				t.Fatalf("PIN retries after the refusals: %+v %v", info, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, bioOpen(t, tt.cfg)) })
	}
}

func TestEnrollFingerprintTimeout(t *testing.T) {
	tests := []struct {
		name     string
		presence softkey.Presence
	}{
		// The software key answers a refused sample, or one not given in
		// time, with USER_ACTION_TIMEOUT.
		{"ShouldTimeOutWhenSampleRefused", softkey.DenyAlways},
		{"ShouldTimeOutWhenNoSampleIsGiven", softkey.NewSignal(50 * time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, rec := bioOpenRecorded(t, softkey.Config{Presence: tt.presence})
			_, err := key.EnrollFingerprint(context.Background(), cmTestPIN, "x")
			var pe *platform.Error
			if !errors.Is(err, platform.ErrTimeout) || !errors.As(err, &pe) || pe.Code != 0x2F {
				t.Fatalf("enroll without a sample: %v", err)
			}
			// The enrollment the key kept is cancelled.
			if got := rec.last(); got != "3=00" {
				t.Errorf("last bio request %q, want cancelCurrentEnrollment answered OK", got)
			}
			if fps := bioList(t, key); len(fps) != 0 {
				t.Fatalf("a template was stored: %+v", fps)
			}
		})
	}
}

func TestEnrollFingerprintCancel(t *testing.T) {
	tests := []struct {
		name string
		// cancelAt is the sample, counted from 1, during whose wait the
		// context ends; 0 cancels after the first sample, before the key
		// is asked for the next.
		cancelAt int
	}{
		{"ShouldCancelDuringSecondSample", 2},
		{"ShouldCancelDuringFirstSample", 1},
		{"ShouldCancelBetweenSamples", 0},
	}
	// A key cancelled while it waits for a sample ends the enrollment
	// itself (the software key does), and answers the
	// cancelCurrentEnrollment that follows with INVALID_PARAMETER;
	// between samples the enrollment is still open and is cancelled.
	wantCancel := map[int]string{2: "3=02", 1: "3=02", 0: "3=00"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := softkey.NewSignal(10 * time.Second)
			key, rec := bioOpenRecorded(t, softkey.Config{Presence: sig})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var evs bioEvents
			pctx := evs.ctx(ctx)
			if tt.cancelAt == 0 {
				pctx = platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
					if ev.Stage == platform.StageSample {
						cancel()
					}
				})
			}

			waiting := sig.Waiting()
			done := make(chan error, 1)
			var fp platform.Fingerprint
			go func() {
				var err error
				fp, err = key.EnrollFingerprint(pctx, cmTestPIN, "x")
				done <- err
			}()
			wait := func(ch <-chan struct{}) {
				t.Helper()
				select {
				case <-ch:
				case err := <-done:
					t.Fatalf("enrollment ended before its sample: %v", err)
				case <-time.After(5 * time.Second):
					t.Fatal("the key never asked for a sample")
				}
			}
			wait(waiting) // the first sample
			switch tt.cancelAt {
			case 1:
				cancel()
			case 0:
				if n := sig.Touch(); n != 1 {
					t.Errorf("touch reached %d waiters", n)
				}
			default:
				waiting = sig.Waiting()
				if n := sig.Touch(); n != 1 {
					t.Errorf("touch reached %d waiters", n)
				}
				wait(waiting) // the second sample
				cancel()
			}

			select {
			case err := <-done:
				if !errors.Is(err, platform.ErrCancelled) || len(fp.ID) != 0 {
					t.Fatalf("enroll cancelled at sample %d: %v, %+v", tt.cancelAt, err, fp)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("cancelling did not end the enrollment")
			}
			if got := rec.last(); got != wantCancel[tt.cancelAt] {
				t.Errorf("last bio request %q, want %q", got, wantCancel[tt.cancelAt])
			}
			if tt.cancelAt == 2 && evs.String() != "touch processing sample3 touch processing" {
				t.Errorf("progress %q", evs.String())
			}
			if fps := bioList(t, key); len(fps) != 0 {
				t.Fatalf("a template was stored: %+v", fps)
			}
			// The key is left ready for another enrollment.
			stop := make(chan struct{})
			defer close(stop)
			// Each wait's channel is taken before the touch that lets the
			// key go on to the next wait, so no wait is missed; taking it
			// inside the goroutine would miss a wait that began first.
			waiting = sig.Waiting()
			go func(waiting <-chan struct{}) {
				for {
					select {
					case <-waiting:
						waiting = sig.Waiting()
						sig.Touch()
					case <-stop:
						return
					}
				}
			}(waiting)
			if fp := bioEnroll(t, key, "y"); len(bioList(t, key)) != 1 || fp.Name != "y" {
				t.Fatalf("enrollment after the cancel: %+v", fp)
			}
		})
	}
}
