package libfido2

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

func TestMain(m *testing.M) { os.Exit(softkeytest.Preload(m)) }

func TestDevicesListsPresentConfiguredKeys(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{})
	e := New(Config{ExtraDevices: []string{k.Path, "/dev/keydesk-vhid97"}})
	devs, err := e.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// No hidraw device exists on these machines; the absent extra path is
	// not listed.
	if len(devs) != 1 || devs[0].Path != k.Path || !devs[0].Configured || devs[0].Transport != platform.TransportUSB {
		t.Fatalf("devices %+v", devs)
	}
}

func TestInfoThroughLibfido2(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{})
	key, err := New(Config{}).Open(context.Background(), platform.Device{Path: k.Path})
	if err != nil {
		t.Fatal(err)
	}
	info, err := key.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.AAGUID != softkey.AAGUID || info.Model == "" {
		t.Errorf("AAGUID %x model %q", info.AAGUID, info.Model)
	}
	if !info.SupportsFIDO21() || info.PINSet() || !info.HasOption("credMgmt") {
		t.Errorf("versions %v options %v", info.Versions, info.Options)
	}
	if info.PINRetries != 8 || info.UVRetries != 8 || info.RemainingDiscoverableCredentials != 25 ||
		info.MinPINLength != 4 || info.ForcePINChange || info.MaxMsgSize != 7609 {
		t.Errorf("counters %+v", info)
	}
	if info.EnterpriseAttestation() != platform.EnterpriseAttestationDisabled {
		t.Errorf("ep %s", info.EnterpriseAttestation())
	}
	if len(info.Algorithms) != 2 || info.Algorithms[0] != -7 || info.Algorithms[1] != -8 {
		t.Errorf("algorithms %v", info.Algorithms)
	}
	if len(info.PINProtocols) != 2 || info.PINProtocols[0] != 2 {
		t.Errorf("PIN protocols %v", info.PINProtocols)
	}
}

func TestInfoOfRemovedKey(t *testing.T) {
	key, err := New(Config{}).Open(context.Background(), platform.Device{Path: "/dev/keydesk-vhid98"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = key.Info(context.Background())
	if !errors.Is(err, platform.ErrDeviceRemoved) {
		t.Fatalf("Info of an absent key: %v", err)
	}
}

func TestInfoRefusesCancelledContext(t *testing.T) {
	k := softkeytest.Serve(t, softkey.Config{})
	key, _ := New(Config{}).Open(context.Background(), platform.Device{Path: k.Path})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := key.Info(ctx); !errors.Is(err, platform.ErrCancelled) {
		t.Fatalf("Info with a cancelled context: %v", err)
	}
}

func TestWatchReportsArrivalAndRemoval(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := softkeytest.Serve(t, softkey.Config{})
	events := platform.Watch(ctx, New(Config{ExtraDevices: []string{k.Path}}), 20*time.Millisecond)
	next := func() platform.Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
		return platform.Event{}
	}
	if ev := next(); ev.Kind != platform.Arrived || ev.Device.Path != k.Path {
		t.Fatalf("first event %+v", ev)
	}
	k.Stop() // unplugged
	if ev := next(); ev.Kind != platform.Removed || ev.Device.Path != k.Path {
		t.Fatalf("second event %+v", ev)
	}
	cancel()
	for range events { // the channel closes once the watch ends
	}
}
