package cli

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// infoOf runs keydesk info --json.
func infoOf(t *testing.T) infoJSON {
	t.Helper()
	var got infoJSON
	out := mustRun(t, "", "info", "--json")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return got
}

func listFingerprints(t *testing.T) []fingerprintJSON {
	t.Helper()
	var got fingerprintsJSON
	out := mustRun(t, "1234\n", "fingerprints", "list", "--pin-stdin", "--json")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return got.Fingerprints
}

func TestFingerprints(t *testing.T) {
	tests := []struct {
		name  string
		check func(t *testing.T, k *softkeytest.Key)
	}{
		{
			name: "ShouldAddAndListFingerprint",
			check: func(t *testing.T, k *softkeytest.Key) {
				r := run(t, "1234\n", "fingerprints", "add", "--pin-stdin", "--name", "thumb")
				if r.err != nil {
					t.Fatalf("exit %d: %v\n%s", r.code, r.err, r.stderr)
				}
				if !strings.Contains(r.stderr, "Touch the sensor") || !strings.Contains(r.stderr, "more)") {
					t.Errorf("no sample prompts on stderr:\n%s", r.stderr)
				}
				id := strings.TrimSpace(r.stdout)
				fps := listFingerprints(t)
				if len(fps) != 1 || fps[0].ID != id || fps[0].Name != "thumb" {
					t.Fatalf("fingerprints %+v, added %q", fps, id)
				}
				out := mustTool(t, "1234\n", "fido2-token", "-L", "-e", k.Path)
				if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 1 || !strings.Contains(out, "thumb") {
					t.Fatalf("fido2-token -L -e:\n%s", out)
				}
			},
		},
		{
			name: "ShouldRenameFingerprint",
			check: func(t *testing.T, k *softkeytest.Key) {
				id := strings.TrimSpace(mustRun(t, "1234\n", "fingerprints", "add", "--pin-stdin"))
				// "--": a random ID may start with "-".
				mustRun(t, "1234\n", "fingerprints", "rename", "--pin-stdin", "--", id, "index")
				if fps := listFingerprints(t); len(fps) != 1 || fps[0].Name != "index" {
					t.Fatalf("fingerprints %+v", fps)
				}
			},
		},
		{
			name: "ShouldDeleteFingerprint",
			check: func(t *testing.T, k *softkeytest.Key) {
				id := strings.TrimSpace(mustRun(t, "1234\n", "fingerprints", "add", "--pin-stdin"))
				mustRun(t, "1234\n", "fingerprints", "delete", "--pin-stdin", "--", id)
				if fps := listFingerprints(t); len(fps) != 0 {
					t.Fatalf("fingerprints %+v", fps)
				}
			},
		},
		{
			name: "ShouldRejectBadTemplateID",
			check: func(t *testing.T, k *softkeytest.Key) {
				if r := run(t, "1234\n", "fingerprints", "delete", "--pin-stdin", "not*base64"); r.code != ExitUsage {
					t.Fatalf("exit %d: %v", r.code, r.err)
				}
			},
		},
		{
			name: "ShouldReportWrongPIN",
			check: func(t *testing.T, k *softkeytest.Key) {
				if r := run(t, "0000\n", "fingerprints", "list", "--pin-stdin"); r.code != ExitPIN {
					t.Fatalf("exit %d: %v", r.code, r.err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := serveKeys(t, 1)[0]
			mustTool(t, "1234\n1234\n", "fido2-token", "-S", k.Path)
			tt.check(t, k)
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name   string
		setPIN bool
		check  func(t *testing.T, k *softkeytest.Key)
	}{
		{
			name: "ShouldRaiseMinPINLength", setPIN: true,
			check: func(t *testing.T, k *softkeytest.Key) {
				mustRun(t, "1234\n", "config", "min-pin-length", "--pin-stdin", "--rp-id", "example.com", "--rp-id", "example.org", "6")
				if got := infoOf(t); got.MinPINLength != 6 {
					t.Fatalf("minPinLength %d", got.MinPINLength)
				}
				if got := infoLine(t, mustTool(t, "", "fido2-token", "-I", k.Path), "minpinlen"); got != "6" {
					t.Fatalf("fido2-token minpinlen %q", got)
				}
			},
		},
		{
			name: "ShouldRefuseLowerMinPINLength", setPIN: true,
			check: func(t *testing.T, k *softkeytest.Key) {
				mustRun(t, "1234\n", "config", "min-pin-length", "--pin-stdin", "6")
				if r := run(t, "1234\n", "config", "min-pin-length", "--pin-stdin", "5"); r.code != ExitPIN {
					t.Fatalf("exit %d: %v", r.code, r.err)
				}
				if got := infoOf(t); got.MinPINLength != 6 {
					t.Fatalf("minPinLength %d", got.MinPINLength)
				}
			},
		},
		{
			name: "ShouldRejectBadMinPINLength", setPIN: true,
			check: func(t *testing.T, k *softkeytest.Key) {
				if r := run(t, "1234\n", "config", "min-pin-length", "--pin-stdin", "six"); r.code != ExitUsage {
					t.Fatalf("exit %d: %v", r.code, r.err)
				}
			},
		},
		{
			name: "ShouldForcePINChange", setPIN: true,
			check: func(t *testing.T, k *softkeytest.Key) {
				mustRun(t, "1234\n", "config", "force-pin-change", "--pin-stdin")
				if got := infoOf(t); !got.ForcePINChange {
					t.Fatal("forcePinChange false")
				}
			},
		},
		{
			name: "ShouldToggleAlwaysUV", setPIN: true,
			check: func(t *testing.T, k *softkeytest.Key) {
				before := infoOf(t).Options["alwaysUv"]
				out := mustRun(t, "1234\n", "config", "always-uv", "--pin-stdin")
				after := infoOf(t).Options["alwaysUv"]
				want := "alwaysUv is now off."
				if after {
					want = "alwaysUv is now on."
				}
				if after == before || strings.TrimSpace(out) != want {
					t.Fatalf("alwaysUv %v -> %v, output %q", before, after, out)
				}
			},
		},
		{
			name: "ShouldToggleAlwaysUVWithoutPIN",
			check: func(t *testing.T, k *softkeytest.Key) {
				// No PIN set: none is asked for (stdin is empty).
				before := infoOf(t).Options["alwaysUv"]
				mustRun(t, "", "config", "always-uv")
				if after := infoOf(t).Options["alwaysUv"]; after == before {
					t.Fatalf("alwaysUv stayed %v", after)
				}
			},
		},
		{
			name: "ShouldEnableEnterpriseAttestation", setPIN: true,
			check: func(t *testing.T, k *softkeytest.Key) {
				mustRun(t, "1234\n", "config", "enterprise-attestation", "--pin-stdin")
				if got := infoOf(t); got.EnterpriseAttestation != "enabled" {
					t.Fatalf("enterpriseAttestation %q", got.EnterpriseAttestation)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := serveKeys(t, 1)[0]
			if tt.setPIN {
				mustTool(t, "1234\n1234\n", "fido2-token", "-S", k.Path)
			}
			tt.check(t, k)
		})
	}
}

func TestReset(t *testing.T) {
	tests := []struct {
		name     string
		presence softkey.Presence
		stdin    string
		args     []string
		wantCode int
		wantPIN  bool // the PIN is still set afterwards
	}{
		{name: "ShouldWipeWithYes", args: []string{"reset", "--yes"}},
		{name: "ShouldWipeWhenConfirmed", stdin: "erase\n", args: []string{"reset"}},
		{name: "ShouldKeepEverythingWithoutConfirmation", stdin: "no\n", args: []string{"reset"}, wantCode: ExitOther, wantPIN: true},
		{name: "ShouldKeepEverythingOnEmptyInput", args: []string{"reset"}, wantCode: ExitOther, wantPIN: true},
		{name: "ShouldExitCancelledWhenRefusedOnKey", presence: softkey.DenyAlways, args: []string{"reset", "--yes"}, wantCode: ExitCancelled, wantPIN: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := softkeytest.Serve(t, softkey.Config{Presence: tt.presence})
			t.Setenv(platform.ExtraDevicesEnv, k.Path)
			mustTool(t, "1234\n1234\n", "fido2-token", "-S", k.Path)
			r := run(t, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %v\n%s", r.code, tt.wantCode, r.err, r.stderr)
			}
			if got := infoOf(t); got.PINSet != tt.wantPIN {
				t.Fatalf("pinSet %v after reset, want %v", got.PINSet, tt.wantPIN)
			}
			if tt.wantCode == ExitOK && !strings.Contains(r.stderr, "Touch your security key") {
				t.Errorf("no touch prompt on stderr:\n%s", r.stderr)
			}
		})
	}
}

// testClock is a software key's clock that a test moves forward.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestResetTooLongAfterPlugIn resets a key plugged in more than ten
// seconds ago, which CTAP refuses until the key is plugged in again.
func TestResetTooLongAfterPlugIn(t *testing.T) {
	const (
		unplug = "Unplug the key and plug it back in…"
		touch  = "Touch your security key…"
	)
	tests := []struct {
		name string
		// then runs once keydesk asked for the key to be plugged in again.
		then     func(t *testing.T, sk *softkeytest.Key, sig *softkey.Signal, s *started, cancel context.CancelFunc)
		wantCode int
		wantPIN  bool // the PIN is still set afterwards
	}{
		{
			name: "ShouldResetOnATouchAfterTheKeyIsPluggedInAgain",
			then: func(t *testing.T, sk *softkeytest.Key, sig *softkey.Signal, s *started, _ context.CancelFunc) {
				sk.Stop() // unplugged: the path goes away
				sk.Authenticator.PowerCycle()
				waiting := sig.Waiting()
				time.Sleep(500 * time.Millisecond) // out for a moment: keydesk looks for the key every 200 ms
				if again := softkeytest.ServeAuthenticator(t, sk.Authenticator); again.Path != sk.Path {
					t.Fatalf("plugged back in at %s, not %s", again.Path, sk.Path)
				}
				select {
				case <-waiting:
				case <-time.After(waitTimeout):
					t.Fatalf("the key plugged in again was not asked for a touch\nstderr: %s", s.stderr.String())
				}
				s.waitStderr(t, "touch prompt after the re-plug prompt", func(stderr string) bool {
					i := strings.Index(stderr, unplug)
					return i >= 0 && strings.Contains(stderr[i:], touch)
				})
				if sig.Touch() != 1 {
					t.Fatal("nothing waited for the touch")
				}
			},
		},
		{
			name: "ShouldExitCancelledOnCtrlCWhileWaitingForTheKey", wantCode: ExitCancelled, wantPIN: true,
			then: func(t *testing.T, _ *softkeytest.Key, _ *softkey.Signal, _ *started, cancel context.CancelFunc) {
				cancel()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &testClock{now: time.Now()}
			sig := softkey.NewSignal(waitTimeout)
			sk := softkeytest.Serve(t, softkey.Config{Presence: sig, Now: clock.Now})
			t.Setenv(platform.ExtraDevicesEnv, sk.Path)
			mustTool(t, "1234\n1234\n", "fido2-token", "-S", sk.Path)
			clock.Advance(11 * time.Second)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := start(t, ctx, strings.NewReader(""), "reset", "--yes")
			s.waitStderr(t, "re-plug prompt", func(stderr string) bool { return strings.Contains(stderr, unplug) })
			tt.then(t, sk, sig, s, cancel)
			r := s.wait(t)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %v\nstderr: %s", r.code, tt.wantCode, r.err, r.stderr)
			}
			if tt.wantCode == ExitOK && strings.TrimSpace(r.stdout) != "Key reset." {
				t.Errorf("stdout %q", r.stdout)
			}
			if got := infoOf(t); got.PINSet != tt.wantPIN {
				t.Fatalf("pinSet %v after reset, want %v", got.PINSet, tt.wantPIN)
			}
		})
	}
}
