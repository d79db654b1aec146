package libfido2

import (
	"context"
	"errors"
	"testing"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

func TestConfig(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		cfg  softkey.Config
		pin  string // set before run, unless ""
		run  func(t *testing.T, sk *softkeytest.Key, k *Key)
	}{
		{"ShouldRaiseTheMinimumAndForceAChangeOfAShorterPIN", softkey.Config{}, "1234", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			if err := k.SetMinPINLength(ctx, "1234", 6, nil); err != nil {
				t.Fatal(err)
			}
			info := mgmtInfo(t, k)
			if info.MinPINLength != 6 || !info.ForcePINChange {
				t.Fatalf("min length %d force change %v", info.MinPINLength, info.ForcePINChange)
			}
			if got := mgmtToolLine(t, mgmtTool(t, "", "-I", sk.Path), "minpinlen"); got != "6" {
				t.Errorf("fido2-token minpinlen %q", got)
			}
			// The key wants a new PIN of 6 or more before anything else.
			mgmtWantErr(t, k.ToggleAlwaysUV(ctx, "1234"), platform.ErrPINPolicy, "change the PIN")
			mgmtWantErr(t, k.ChangePIN(ctx, "1234", "12345"), platform.ErrPINPolicy, "at least 6")
			if err := k.ChangePIN(ctx, "1234", "123456"); err != nil {
				t.Fatal(err)
			}
			if mgmtInfo(t, k).ForcePINChange {
				t.Error("forcePINChange still set after the change")
			}
		}},
		{"ShouldNotForceAChangeOfALongEnoughPIN", softkey.Config{}, "123456", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			if err := k.SetMinPINLength(ctx, "123456", 6, nil); err != nil {
				t.Fatal(err)
			}
			if info := mgmtInfo(t, k); info.MinPINLength != 6 || info.ForcePINChange {
				t.Fatalf("min length %d force change %v", info.MinPINLength, info.ForcePINChange)
			}
		}},
		{"ShouldRefuseToLowerTheMinimum", softkey.Config{}, "", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			if err := k.SetMinPINLength(ctx, "", 6, nil); err != nil {
				t.Fatal(err)
			}
			e := mgmtWantErr(t, k.SetMinPINLength(ctx, "", 5, nil), platform.ErrPINPolicy, "it is 6 now")
			if e.Op != "set minimum PIN length" {
				t.Errorf("op %q", e.Op)
			}
			mgmtWantErr(t, k.SetMinPINLength(ctx, "", 64, nil), platform.ErrPINPolicy, "at most 63")
			if n := mgmtInfo(t, k).MinPINLength; n != 6 {
				t.Errorf("min length %d", n)
			}
		}},
		{"ShouldAcceptRPIDs", softkey.Config{}, "1234", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			if err := k.SetMinPINLength(ctx, "1234", 0, []string{"example.com", "login.example.org"}); err != nil {
				t.Fatal(err)
			}
			if info := mgmtInfo(t, k); info.MinPINLength != 4 || info.ForcePINChange {
				t.Fatalf("RP IDs alone changed the minimum: %d %v", info.MinPINLength, info.ForcePINChange)
			}
			if err := k.SetMinPINLength(ctx, "1234", 8, []string{"example.com"}); err != nil {
				t.Fatal(err)
			}
			if info := mgmtInfo(t, k); info.MinPINLength != 8 || !info.ForcePINChange {
				t.Fatalf("min length %d force change %v", info.MinPINLength, info.ForcePINChange)
			}
		}},
		{"ShouldSayWhenTheKeyCannotKeepSoManyRPIDs", softkey.Config{}, "1234", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			ids := []string{"a.example", "b.example", "c.example", "d.example", "e.example"}
			mgmtWantErr(t, k.SetMinPINLength(ctx, "1234", 6, ids), platform.ErrKeyStoreFull, "cannot keep 5 RP IDs")
			if n := mgmtInfo(t, k).MinPINLength; n != 4 {
				t.Errorf("min length %d", n)
			}
		}},
		{"ShouldForceAPINChange", softkey.Config{}, "1234", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			if err := k.ForcePINChange(ctx, "1234"); err != nil {
				t.Fatal(err)
			}
			if !mgmtInfo(t, k).ForcePINChange {
				t.Fatal("Info().ForcePINChange false")
			}
			mgmtWantErr(t, k.ChangePIN(ctx, "1234", "1234"), platform.ErrPINPolicy, "different from the current PIN")
			if err := k.ChangePIN(ctx, "1234", "4321"); err != nil {
				t.Fatal(err)
			}
			if mgmtInfo(t, k).ForcePINChange {
				t.Error("forcePINChange still set after the change")
			}
		}},
		{"ShouldNotForceAChangeWithoutAPIN", softkey.Config{}, "", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			mgmtWantErr(t, k.ForcePINChange(ctx, ""), platform.ErrPINNotSet, "")
		}},
		{"ShouldToggleAlwaysUV", softkey.Config{}, "1234", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			for _, want := range []bool{true, false} {
				if err := k.ToggleAlwaysUV(ctx, "1234"); err != nil {
					t.Fatal(err)
				}
				info := mgmtInfo(t, k)
				if v, ok := info.Options["alwaysUv"]; !ok || v != want {
					t.Fatalf("alwaysUv %v (listed %v), want %v", v, ok, want)
				}
			}
		}},
		{"ShouldToggleAlwaysUVOnAKeyWithoutPIN", softkey.Config{}, "", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			if err := k.ToggleAlwaysUV(ctx, ""); err != nil {
				t.Fatal(err)
			}
			if !mgmtInfo(t, k).HasOption("alwaysUv") {
				t.Fatal("alwaysUv not on")
			}
		}},
		{"ShouldEnableEnterpriseAttestation", softkey.Config{}, "1234", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			if ep := mgmtInfo(t, k).EnterpriseAttestation(); ep != platform.EnterpriseAttestationDisabled {
				t.Fatalf("ep %s before", ep)
			}
			if err := k.EnableEnterpriseAttestation(ctx, "1234"); err != nil {
				t.Fatal(err)
			}
			if ep := mgmtInfo(t, k).EnterpriseAttestation(); ep != platform.EnterpriseAttestationEnabled {
				t.Fatalf("ep %s after", ep)
			}
		}},
		{"ShouldSayEnterpriseAttestationIsUnsupported", softkey.Config{NoEnterpriseAttestation: true}, "1234", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			mgmtWantErr(t, k.EnableEnterpriseAttestation(ctx, "1234"), platform.ErrUnsupported, "")
		}},
		{"ShouldSayAttemptsLeftAfterAWrongPIN", softkey.Config{}, "1234", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			calls := []struct {
				op string
				f  func() error
			}{
				{"set minimum PIN length", func() error { return k.SetMinPINLength(ctx, "0000", 6, nil) }},
				{"toggle always-UV", func() error { return k.ToggleAlwaysUV(ctx, "0000") }},
			}
			for i, c := range calls {
				e := mgmtWantErr(t, c.f(), platform.ErrPINInvalid, "")
				if want := 7 - i; e.RetriesLeft != want || e.Op != c.op {
					t.Errorf("%s: retries %d op %q, want %d", c.op, e.RetriesLeft, e.Op, want)
				}
			}
			e := mgmtWantErr(t, k.EnableEnterpriseAttestation(ctx, "0000"), platform.ErrPINAuthBlocked, "")
			if e.RetriesLeft != 5 {
				t.Errorf("retries %d after the third wrong PIN", e.RetriesLeft)
			}
			info := mgmtInfo(t, k)
			if info.MinPINLength != 4 || info.HasOption("alwaysUv") || info.EnterpriseAttestation() != platform.EnterpriseAttestationDisabled {
				t.Errorf("a wrong PIN changed the configuration: %+v", info)
			}
		}},
		{"ShouldAskForThePIN", softkey.Config{}, "1234", func(t *testing.T, sk *softkeytest.Key, k *Key) {
			err := k.ToggleAlwaysUV(ctx, "")
			if !errors.Is(err, platform.ErrPINRequired) {
				t.Fatalf("no PIN: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk, k := mgmtKey(t, tt.cfg)
			if tt.pin != "" {
				if err := k.SetPIN(ctx, tt.pin); err != nil {
					t.Fatal(err)
				}
			}
			tt.run(t, sk, k)
		})
	}
}
