package inprocess

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

func TestSetPIN(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(t *testing.T, k *testKey)
		pin    string
		want   error
		detail string
	}{
		{name: "ShouldSetAFirstPIN", pin: "1234"},
		{name: "ShouldSetAUnicodePIN", pin: "ñandú"},
		{name: "ShouldSetA63BytePIN", pin: strings.Repeat("7", 63)},
		{name: "ShouldRefuseAPINShorterThan4", pin: "123", want: platform.ErrPINPolicy, detail: "at least 4"},
		{name: "ShouldRefuseA64BytePIN", pin: strings.Repeat("7", 64), want: platform.ErrPINPolicy, detail: "at most 63"},
		{name: "ShouldRefuseInvalidUTF8", pin: "12\xff34", want: platform.ErrPINPolicy, detail: "not text"},
		{
			name: "ShouldRefuseAPINShorterThanARaisedMinimum",
			setup: func(t *testing.T, k *testKey) {
				if err := k.SetMinPINLength(context.Background(), "", 6, nil); err != nil {
					t.Fatal(err)
				}
			},
			pin: "12345", want: platform.ErrPINPolicy, detail: "at least 6",
		},
		{
			name: "ShouldRefuseWhenAPINExists",
			setup: func(t *testing.T, k *testKey) {
				if err := k.SetPIN(context.Background(), testPIN); err != nil {
					t.Fatal(err)
				}
			},
			pin: "5678", want: platform.ErrNotAllowed, detail: "change it instead",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t, softkey.Config{})
			if tc.setup != nil {
				tc.setup(t, k)
			}
			err := k.SetPIN(context.Background(), tc.pin)
			wantKind(t, err, tc.want)
			if err != nil {
				if !strings.Contains(err.Error(), tc.detail) || !strings.HasPrefix(err.Error(), "set PIN: ") {
					t.Errorf("message %q, want set PIN: ...%s", err, tc.detail)
				}
				return
			}
			if !k.mustInfo(t).PINSet() {
				t.Error("no PIN after SetPIN")
			}
		})
	}
}

func TestChangePIN(t *testing.T) {
	cases := []struct {
		name    string
		noPIN   bool
		old     string
		new     string
		want    error
		retries int
	}{
		{name: "ShouldChangeThePIN", old: testPIN, new: "56789"},
		{name: "ShouldReportAttemptsLeftAfterAWrongPIN", old: "0000", new: "56789", want: platform.ErrPINInvalid, retries: 7},
		{name: "ShouldRefuseAShortNewPINBeforeAskingTheKey", old: "0000", new: "567", want: platform.ErrPINPolicy, retries: -1},
		{name: "ShouldRefuseWithoutAPIN", noPIN: true, old: testPIN, new: "56789", want: platform.ErrPINNotSet, retries: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t, softkey.Config{})
			if !tc.noPIN {
				if err := k.SetPIN(context.Background(), testPIN); err != nil {
					t.Fatal(err)
				}
			}
			err := k.ChangePIN(context.Background(), tc.old, tc.new)
			wantKind(t, err, tc.want)
			if err != nil {
				if got := retriesLeft(t, err); got != tc.retries {
					t.Errorf("RetriesLeft %d, want %d", got, tc.retries)
				}
				if info := k.mustInfo(t); tc.want == platform.ErrPINPolicy && info.PINRetries != 8 {
					t.Errorf("a policy failure cost an attempt: %d left", info.PINRetries)
				}
				return
			}
			// The new PIN works, the old one does not.
			if _, err := k.CredentialsMetadata(context.Background(), tc.new); err != nil {
				t.Errorf("new PIN: %v", err)
			}
			_, err = k.CredentialsMetadata(context.Background(), tc.old)
			wantKind(t, err, platform.ErrPINInvalid)
		})
	}
}

func TestPINBlocking(t *testing.T) {
	t.Run("ShouldBlockAfterThreeInARowAndForGoodAfterEight", func(t *testing.T) {
		k := newKeyWithPIN(t, softkey.Config{})
		ctx := context.Background()
		steps := []struct {
			powerCycleFirst bool
			want            error
			retries         int
		}{
			{false, platform.ErrPINInvalid, 7},
			{false, platform.ErrPINInvalid, 6},
			{false, platform.ErrPINAuthBlocked, 5},
			{false, platform.ErrPINAuthBlocked, 5}, // no attempt while blocked
			{true, platform.ErrPINInvalid, 4},
			{false, platform.ErrPINInvalid, 3},
			{false, platform.ErrPINAuthBlocked, 2},
			{true, platform.ErrPINInvalid, 1},
			{false, platform.ErrPINBlocked, 0},
		}
		for i, s := range steps {
			if s.powerCycleFirst {
				k.engine.PowerCycle()
			}
			err := k.ChangePIN(ctx, "0000", "56789")
			if !errors.Is(err, s.want) || retriesLeft(t, err) != s.retries {
				t.Fatalf("attempt %d: got %v (retries %d), want %v with %d", i+1, err, retriesLeft(t, err), s.want, s.retries)
			}
		}
		// Even the right PIN is refused now.
		wantKind(t, k.ChangePIN(ctx, testPIN, "56789"), platform.ErrPINBlocked)
		if info := k.mustInfo(t); info.PINRetries != 0 {
			t.Errorf("PINRetries %d", info.PINRetries)
		}
	})
	t.Run("ShouldClearTheInARowBlockOnPowerCycle", func(t *testing.T) {
		k := newKeyWithPIN(t, softkey.Config{})
		ctx := context.Background()
		for range 3 {
			_ = k.ChangePIN(ctx, "0000", "56789")
		}
		wantKind(t, k.ChangePIN(ctx, testPIN, "56789"), platform.ErrPINAuthBlocked)
		k.engine.PowerCycle()
		wantKind(t, k.ChangePIN(ctx, testPIN, "56789"), nil)
		if info := k.mustInfo(t); info.PINRetries != 8 {
			t.Errorf("PINRetries %d after a right PIN", info.PINRetries)
		}
	})
}
