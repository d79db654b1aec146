package inprocess

import (
	"context"
	"testing"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

func TestConfig(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		cfg   softkey.Config
		noPIN bool
		run   func(k *testKey) error
		want  error
		check func(t *testing.T, k *testKey, info *platform.Info)
	}{
		{
			name: "ShouldRaiseTheMinimumAndNameRPs",
			run: func(k *testKey) error {
				return k.SetMinPINLength(ctx, testPIN, 6, []string{"example.com", "other.org"})
			},
			check: func(t *testing.T, k *testKey, info *platform.Info) {
				// The 4-digit PIN is now too short: it must be changed, and
				// the new one must meet the minimum.
				if info.MinPINLength != 6 || !info.ForcePINChange {
					t.Errorf("min %d force %v", info.MinPINLength, info.ForcePINChange)
				}
				wantKind(t, k.ChangePIN(ctx, testPIN, "12345"), platform.ErrPINPolicy)
				wantKind(t, k.ChangePIN(ctx, testPIN, "123456"), nil)
			},
		},
		{
			name:  "ShouldRaiseTheMinimumOfAKeyWithoutPIN",
			noPIN: true,
			run:   func(k *testKey) error { return k.SetMinPINLength(ctx, "", 8, nil) },
			check: func(t *testing.T, k *testKey, info *platform.Info) {
				if info.MinPINLength != 8 || info.ForcePINChange {
					t.Errorf("min %d force %v", info.MinPINLength, info.ForcePINChange)
				}
			},
		},
		{
			name: "ShouldRefuseToLowerTheMinimum",
			run: func(k *testKey) error {
				if err := k.SetMinPINLength(ctx, testPIN, 5, nil); err != nil {
					return err
				}
				if err := k.ChangePIN(ctx, testPIN, "12345"); err != nil {
					return err
				}
				return k.SetMinPINLength(ctx, "12345", 4, nil)
			},
			want: platform.ErrPINPolicy,
		},
		{
			name: "ShouldRefuseAMinimumAbove63",
			run:  func(k *testKey) error { return k.SetMinPINLength(ctx, testPIN, 64, nil) },
			want: platform.ErrPINPolicy,
		},
		{
			name: "ShouldRefuseTooManyRPIDs",
			run: func(k *testKey) error {
				return k.SetMinPINLength(ctx, testPIN, 0, []string{"a.com", "b.com", "c.com", "d.com", "e.com"})
			},
			want: platform.ErrKeyStoreFull,
		},
		{
			name: "ShouldForceAPINChange",
			run:  func(k *testKey) error { return k.ForcePINChange(ctx, testPIN) },
			check: func(t *testing.T, k *testKey, info *platform.Info) {
				if !info.ForcePINChange {
					t.Error("forcePINChange not set")
				}
				_, err := k.Credentials(ctx, testPIN)
				wantKind(t, err, platform.ErrPINPolicy)
				wantKind(t, k.ChangePIN(ctx, testPIN, testPIN), platform.ErrPINPolicy)
				wantKind(t, k.ChangePIN(ctx, testPIN, "98765"), nil)
				if k.mustInfo(t).ForcePINChange {
					t.Error("forcePINChange still set after the change")
				}
			},
		},
		{
			name: "ShouldToggleAlwaysUV",
			run:  func(k *testKey) error { return k.ToggleAlwaysUV(ctx, testPIN) },
			check: func(t *testing.T, k *testKey, info *platform.Info) {
				if !info.HasOption("alwaysUv") || info.HasOption("makeCredUvNotRqd") {
					t.Errorf("options %v", info.Options)
				}
				wantKind(t, k.ToggleAlwaysUV(ctx, testPIN), nil)
				if k.mustInfo(t).HasOption("alwaysUv") {
					t.Error("alwaysUv still on after a second toggle")
				}
			},
		},
		{
			name: "ShouldEnableEnterpriseAttestation",
			run:  func(k *testKey) error { return k.EnableEnterpriseAttestation(ctx, testPIN) },
			check: func(t *testing.T, _ *testKey, info *platform.Info) {
				if info.EnterpriseAttestation() != platform.EnterpriseAttestationEnabled {
					t.Errorf("ep %v", info.EnterpriseAttestation())
				}
			},
		},
		{
			name: "ShouldReportEnterpriseAttestationUnsupported",
			cfg:  softkey.Config{NoEnterpriseAttestation: true},
			run:  func(k *testKey) error { return k.EnableEnterpriseAttestation(ctx, testPIN) },
			want: platform.ErrUnsupported,
		},
		{
			name: "ShouldFailWithAWrongPIN",
			run:  func(k *testKey) error { return k.ToggleAlwaysUV(ctx, "0000") },
			want: platform.ErrPINInvalid,
		},
		{
			name: "ShouldAskForThePIN",
			run:  func(k *testKey) error { return k.ToggleAlwaysUV(ctx, "") },
			want: platform.ErrPINRequired,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t, tc.cfg)
			if !tc.noPIN {
				if err := k.SetPIN(ctx, testPIN); err != nil {
					t.Fatal(err)
				}
			}
			err := tc.run(k)
			wantKind(t, err, tc.want)
			if tc.want == platform.ErrPINInvalid && retriesLeft(t, err) != 7 {
				t.Errorf("RetriesLeft %d, want 7", retriesLeft(t, err))
			}
			if tc.check != nil {
				tc.check(t, k, k.mustInfo(t))
			}
		})
	}
}
