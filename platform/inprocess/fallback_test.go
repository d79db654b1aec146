package inprocess_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/softkey"
)

// fixedKeys is an Enumerator of a fixed list, standing in for the USB
// stack: what it lists is what the fallback must see through.
type fixedKeys struct {
	devs   []platform.Device
	err    error
	opened []string
}

func (f *fixedKeys) Devices(context.Context) ([]platform.Device, error) { return f.devs, f.err }

func (f *fixedKeys) Open(_ context.Context, d platform.Device) (platform.Authenticator, error) {
	f.opened = append(f.opened, d.Path)
	return nil, errors.New("opened by the base")
}

func TestWithFallbackOffersTheVirtualKeyOnlyAlone(t *testing.T) {
	a, err := softkey.New(softkey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	k := inprocess.New(a)
	usb := platform.Device{Path: "/dev/hidraw3", Transport: platform.TransportUSB}
	broken := errors.New("hid: permission denied")
	for _, tt := range []struct {
		name string
		base *fixedKeys
		want []platform.Device
		err  error
	}{
		{"ShouldListTheVirtualKeyWhenNoneIsPlugged", &fixedKeys{}, []platform.Device{k.Device()}, nil},
		{"ShouldHideItBehindAHardwareKey", &fixedKeys{devs: []platform.Device{usb}}, []platform.Device{usb}, nil},
		{"ShouldNotHideAFailingListing", &fixedKeys{err: broken}, nil, broken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := inprocess.WithFallback(tt.base, k)
			got, err := e.Devices(t.Context())
			if !errors.Is(err, tt.err) || len(got) != len(tt.want) {
				t.Fatalf("Devices = %v, %v; want %v, %v", got, err, tt.want, tt.err)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("device %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
	base := &fixedKeys{}
	e := inprocess.WithFallback(base, k)
	if got, err := e.Open(t.Context(), k.Device()); err != nil || got != platform.Authenticator(k) {
		t.Errorf("Open(virtual) = %v, %v; want the virtual key", got, err)
	}
	if _, err := e.Open(t.Context(), usb); err == nil || len(base.opened) != 1 || base.opened[0] != usb.Path {
		t.Errorf("Open(usb) = %v after opening %v; want the base to open it", err, base.opened)
	}
}
