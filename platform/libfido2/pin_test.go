package libfido2

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// mgmtKey serves a software key with cfg and opens it through libfido2.
func mgmtKey(t *testing.T, cfg softkey.Config) (*softkeytest.Key, *Key) {
	t.Helper()
	sk := softkeytest.Serve(t, cfg)
	a, err := New(Config{}).Open(context.Background(), platform.Device{Path: sk.Path})
	if err != nil {
		t.Fatal(err)
	}
	return sk, a.(*Key)
}

// mgmtInfo reads the key's Info or fails the test.
func mgmtInfo(t *testing.T, k *Key) *platform.Info {
	t.Helper()
	info, err := k.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// mgmtTool runs fido2-token in a new session, without a controlling
// terminal, so that it reads PINs from stdin; the shim is inherited from
// the test process.
func mgmtTool(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("fido2-token", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		t.Fatalf("fido2-token %v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errb.String())
	}
	return out.String()
}

// mgmtToolLine returns the value of "label: value" in fido2-token -I output.
func mgmtToolLine(t *testing.T, out, label string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `: (.*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q line in:\n%s", label, out)
	}
	return m[1]
}

// mgmtWantErr checks err's kind and, when set, that its Detail or message
// contains want.
func mgmtWantErr(t *testing.T, err, kind error, want string) *platform.Error {
	t.Helper()
	var e *platform.Error
	if !errors.Is(err, kind) || !errors.As(err, &e) {
		t.Fatalf("error %v, want kind %v", err, kind)
	}
	if want != "" && !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	return e
}

func TestSetPIN(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T, k *Key)
		pin   string
		kind  error  // nil: success
		say   string // in the error's message
	}{
		{name: "ShouldSetAFirstPIN", pin: "1234"},
		{name: "ShouldSetAUnicodePINCountingCodePoints", pin: "ñøçé"},
		{name: "ShouldRefuseAPINShorterThanFour", pin: "123", kind: platform.ErrPINPolicy, say: "at least 4 characters; the PIN has 3"},
		{
			name: "ShouldRefuseAPINShorterThanARaisedMinimum",
			setup: func(t *testing.T, k *Key) {
				if err := k.SetMinPINLength(ctx, "", 6, nil); err != nil {
					t.Fatal(err)
				}
			},
			pin: "12345", kind: platform.ErrPINPolicy, say: "at least 6 characters; the PIN has 5",
		},
		{name: "ShouldRefuseA64BytePIN", pin: strings.Repeat("7", 64), kind: platform.ErrPINPolicy, say: "at most 63 bytes"},
		{name: "ShouldRefuseInvalidUTF8", pin: "12\xff345", kind: platform.ErrPINPolicy, say: "not text"},
		{
			name: "ShouldRefuseASecondPIN",
			setup: func(t *testing.T, k *Key) {
				if err := k.SetPIN(ctx, "1234"); err != nil {
					t.Fatal(err)
				}
			},
			pin: "5678", kind: platform.ErrNotAllowed, say: "The key already has a PIN; change it instead.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk, k := mgmtKey(t, softkey.Config{})
			if tt.setup != nil {
				tt.setup(t, k)
			}
			pinBefore := mgmtInfo(t, k).PINSet()
			err := k.SetPIN(ctx, tt.pin)
			if tt.kind != nil {
				e := mgmtWantErr(t, err, tt.kind, tt.say)
				if e.Op != "set PIN" || e.Detail == "" {
					t.Errorf("op %q detail %q", e.Op, e.Detail)
				}
				if info := mgmtInfo(t, k); info.PINSet() != pinBefore || info.PINRetries != 8 {
					t.Errorf("refused PIN changed the key: %+v", info)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !mgmtInfo(t, k).PINSet() {
				t.Fatal("Info().PINSet() false after SetPIN")
			}
			out := mgmtTool(t, "", "-I", sk.Path)
			if got := mgmtToolLine(t, out, "pin retries"); got != "8" {
				t.Errorf("fido2-token pin retries %q", got)
			}
			if opts := mgmtToolLine(t, out, "options"); !strings.Contains(", "+opts+",", ", clientPin,") {
				t.Errorf("fido2-token options %q", opts)
			}
			// The PIN works: fido2-token reads credential metadata with it.
			if out := mgmtTool(t, tt.pin+"\n", "-I", "-c", sk.Path); !strings.Contains(out, "existing rk(s): 0") {
				t.Errorf("fido2-token -I -c with the PIN:\n%s", out)
			}
		})
	}
}

func TestChangePIN(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, sk *softkeytest.Key, k *Key)
	}{
		{"ShouldChangeThePIN", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			if err := k.ChangePIN(ctx, "1234", "98765"); err != nil {
				t.Fatal(err)
			}
			if out := mgmtTool(t, "98765\n", "-I", "-c", sk.Path); !strings.Contains(out, "existing rk(s): 0") {
				t.Errorf("fido2-token -I -c with the new PIN:\n%s", out)
			}
		}},
		{"ShouldSayAttemptsLeftAfterAWrongOldPIN", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			err := k.ChangePIN(ctx, "0000", "98765")
			e := mgmtWantErr(t, err, platform.ErrPINInvalid, "7 attempts left")
			if e.RetriesLeft != 7 || e.Op != "change PIN" {
				t.Errorf("retries %d op %q", e.RetriesLeft, e.Op)
			}
			if got := mgmtToolLine(t, mgmtTool(t, "", "-I", sk.Path), "pin retries"); got != "7" {
				t.Errorf("fido2-token pin retries %q", got)
			}
		}},
		{"ShouldBlockUntilPowerCycleAfterThreeWrongInARow", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			for i, kind := range []error{platform.ErrPINInvalid, platform.ErrPINInvalid, platform.ErrPINAuthBlocked} {
				if err := k.ChangePIN(ctx, "0000", "98765"); !errors.Is(err, kind) {
					t.Fatalf("wrong PIN %d: %v, want %v", i+1, err, kind)
				}
			}
			if err := k.ChangePIN(ctx, "1234", "98765"); !errors.Is(err, platform.ErrPINAuthBlocked) {
				t.Fatalf("right PIN before the power cycle: %v", err)
			}
			sk.Authenticator.PowerCycle()
			if err := k.ChangePIN(ctx, "1234", "98765"); err != nil {
				t.Fatalf("right PIN after the power cycle: %v", err)
			}
			if n := mgmtInfo(t, k).PINRetries; n != 8 {
				t.Errorf("retries %d after the right PIN", n)
			}
		}},
		{"ShouldBlockThePINAfterEightWrong", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			var err error
			for i := 1; i <= 8; i++ {
				err = k.ChangePIN(ctx, "0000", "98765")
				if i%3 == 0 {
					sk.Authenticator.PowerCycle()
				}
			}
			if e := mgmtWantErr(t, err, platform.ErrPINBlocked, "Only a reset"); e.RetriesLeft != 0 {
				t.Errorf("retries %d once blocked", e.RetriesLeft)
			}
			if err := k.ChangePIN(ctx, "1234", "98765"); !errors.Is(err, platform.ErrPINBlocked) {
				t.Fatalf("right PIN once blocked: %v", err)
			}
		}},
		{"ShouldRefuseATooShortNewPINWithoutSpendingAnAttempt", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			mgmtWantErr(t, k.ChangePIN(ctx, "0000", "987"), platform.ErrPINPolicy, "at least 4")
			mgmtWantErr(t, k.ChangePIN(ctx, "0000", strings.Repeat("x", 64)), platform.ErrPINPolicy, "at most 63")
			if n := mgmtInfo(t, k).PINRetries; n != 8 {
				t.Errorf("retries %d", n)
			}
		}},
		{"ShouldSayWhenTheKeyHasNoPIN", func(t *testing.T, _ *softkeytest.Key, _ *Key) {
			_, bare := mgmtKey(t, softkey.Config{})
			mgmtWantErr(t, bare.ChangePIN(ctx, "1234", "98765"), platform.ErrPINNotSet, "")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk, k := mgmtKey(t, softkey.Config{})
			if err := k.SetPIN(ctx, "1234"); err != nil {
				t.Fatal(err)
			}
			tt.run(t, sk, k)
		})
	}
}
