package inprocess

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

func TestInfo(t *testing.T) {
	cases := []struct {
		name  string
		cfg   softkey.Config
		setup func(t *testing.T, k *testKey)
		check func(t *testing.T, info *platform.Info)
	}{
		{
			name: "ShouldReportAFreshKeyCompletely",
			check: func(t *testing.T, info *platform.Info) {
				if !slices.Equal(info.Versions, []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1"}) || !info.SupportsFIDO21() {
					t.Errorf("versions %v", info.Versions)
				}
				if !slices.Equal(info.Extensions, []string{"credProtect", "hmac-secret", "minPinLength"}) {
					t.Errorf("extensions %v", info.Extensions)
				}
				if info.AAGUID != softkey.AAGUID || info.Model != platform.ModelName(softkey.AAGUID) {
					t.Errorf("AAGUID %x model %q", info.AAGUID, info.Model)
				}
				if info.PINSet() || !info.HasOption("rk") || !info.HasOption("credMgmt") || info.EnterpriseAttestation() != platform.EnterpriseAttestationDisabled {
					t.Errorf("options %v", info.Options)
				}
				if !slices.Equal(info.Algorithms, []int{-7, -8}) {
					t.Errorf("algorithms %v", info.Algorithms)
				}
				if info.FirmwareVersion != 0x00010000 || info.MaxMsgSize != 7609 {
					t.Errorf("firmware %#x maxMsgSize %d", info.FirmwareVersion, info.MaxMsgSize)
				}
				if !slices.Equal(info.PINProtocols, []int{2, 1}) {
					t.Errorf("PIN protocols %v", info.PINProtocols)
				}
				if info.PINRetries != 8 || info.UVRetries != 8 {
					t.Errorf("retries PIN %d UV %d", info.PINRetries, info.UVRetries)
				}
				if info.RemainingDiscoverableCredentials != 25 || info.MinPINLength != 4 || info.ForcePINChange {
					t.Errorf("remaining %d min %d force %v", info.RemainingDiscoverableCredentials, info.MinPINLength, info.ForcePINChange)
				}
			},
		},
		{
			name: "ShouldLeaveUVRetriesUnknownWithoutASensor",
			cfg:  softkey.Config{NoBiometrics: true, NoEnterpriseAttestation: true, FirmwareVersion: 0x20304, MaxCredentials: 3},
			check: func(t *testing.T, info *platform.Info) {
				if info.UVRetries != -1 || info.PINRetries != 8 {
					t.Errorf("retries PIN %d UV %d", info.PINRetries, info.UVRetries)
				}
				if info.EnterpriseAttestation() != platform.EnterpriseAttestationUnsupported || info.FirmwareVersion != 0x20304 || info.RemainingDiscoverableCredentials != 3 {
					t.Errorf("ep %v firmware %#x remaining %d", info.EnterpriseAttestation(), info.FirmwareVersion, info.RemainingDiscoverableCredentials)
				}
			},
		},
		{
			name: "ShouldCountCredentialsAndPINAfterUse",
			setup: func(t *testing.T, k *testKey) {
				if err := k.SetPIN(context.Background(), testPIN); err != nil {
					t.Fatal(err)
				}
				k.makeCredential(t, "example.com", "alice", 0)
				_ = k.ChangePIN(context.Background(), "9999", "5678")
			},
			check: func(t *testing.T, info *platform.Info) {
				if !info.PINSet() || info.PINRetries != 7 || info.RemainingDiscoverableCredentials != 24 {
					t.Errorf("PIN set %v retries %d remaining %d", info.PINSet(), info.PINRetries, info.RemainingDiscoverableCredentials)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t, tc.cfg)
			if tc.setup != nil {
				tc.setup(t, k)
			}
			tc.check(t, k.mustInfo(t))
		})
	}
}

func TestDevice(t *testing.T) {
	t.Run("ShouldDescribeTheVirtualKey", func(t *testing.T) {
		k := newKey(t, softkey.Config{})
		want := platform.Device{Path: "(in-process)", Transport: platform.TransportVirtual, Product: "Keydesk virtual key"}
		if got := k.Device(); got != want {
			t.Errorf("Device() = %+v, want %+v", got, want)
		}
		if err := k.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	t.Run("ShouldFailWithCancelledOnADoneContext", func(t *testing.T) {
		k := newKey(t, softkey.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := k.Info(ctx)
		wantKind(t, err, platform.ErrCancelled)
		if !strings.HasPrefix(err.Error(), "read key information: ") {
			t.Errorf("message %q", err)
		}
	})
}
