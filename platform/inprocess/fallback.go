package inprocess

import (
	"context"

	"github.com/keydesk/keydesk/platform"
)

// WithFallback is base, listing the virtual key k as well whenever base
// finds no key: the desktop app offers its software key for trying
// Keydesk out only while no hardware key is plugged in, so that nobody
// enrolls the virtual key by mistake when a real one is there. A failing
// listing of base fails the same way, without the virtual key, so that a
// broken USB stack is not hidden behind it.
func WithFallback(base platform.Enumerator, k *Key) platform.Enumerator {
	return &fallback{base: base, key: k}
}

type fallback struct {
	base platform.Enumerator
	key  *Key
}

func (f *fallback) Devices(ctx context.Context) ([]platform.Device, error) {
	devs, err := f.base.Devices(ctx)
	if err != nil || len(devs) > 0 {
		return devs, err
	}
	return []platform.Device{f.key.Device()}, nil
}

// Open opens the virtual key by its label, anything else through base.
func (f *fallback) Open(ctx context.Context, d platform.Device) (platform.Authenticator, error) {
	if d.Transport == platform.TransportVirtual && d.Path == f.key.Device().Path {
		return f.key, nil
	}
	return f.base.Open(ctx, d)
}
