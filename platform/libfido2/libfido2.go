// Package libfido2 reaches USB and NFC security keys through the libfido2
// C library: it is the platform.Enumerator and platform.Authenticator for
// real keys (and for the software key behind the vhid shim). It is the only
// package with cgo; it wraps go-libfido2 where that suffices and calls
// libfido2 itself for what go-libfido2 lacks.
package libfido2

import (
	"context"
	"fmt"

	gofido2 "github.com/keys-pub/go-libfido2"

	"github.com/keydesk/keydesk/platform"
)

// Config configures an Enumerator.
type Config struct {
	// ExtraDevices are paths the operating system does not list, such as
	// platform.ExtraDevicesFromEnv().
	ExtraDevices []string
}

// Enumerator lists and opens keys through libfido2.
type Enumerator struct {
	cfg Config
}

// New returns an Enumerator.
func New(cfg Config) *Enumerator { return &Enumerator{cfg: cfg} }

var _ platform.Enumerator = (*Enumerator)(nil)

// Devices lists the keys libfido2 finds, then the configured extra paths
// that have a device behind them right now.
func (e *Enumerator) Devices(ctx context.Context) ([]platform.Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	locs, err := gofido2.DeviceLocations()
	if err != nil {
		return nil, &platform.Error{Op: "list security keys", Kind: platform.ErrProtocol, RetriesLeft: -1, Err: err}
	}
	devs := make([]platform.Device, 0, len(locs)+len(e.cfg.ExtraDevices))
	seen := map[string]bool{}
	for _, l := range locs {
		seen[l.Path] = true
		devs = append(devs, platform.Device{
			Path: l.Path, Transport: platform.TransportOf(l.Path),
			Manufacturer: l.Manufacturer, Product: l.Product,
			VendorID: uint16(l.VendorID), ProductID: uint16(l.ProductID),
		})
	}
	for _, p := range e.cfg.ExtraDevices {
		if seen[p] || !present(p) {
			continue
		}
		seen[p] = true
		devs = append(devs, platform.Device{Path: p, Transport: platform.TransportOf(p), Configured: true})
	}
	return devs, nil
}

// Open returns the key at d. Nothing is held open between operations: a
// key open in Keydesk stays usable by other programs (libfido2 locks a key
// for the duration of each operation).
func (e *Enumerator) Open(ctx context.Context, d platform.Device) (platform.Authenticator, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Key{dev: d}, nil
}

// Key is one security key reached through libfido2.
type Key struct {
	dev platform.Device
}

var _ platform.Authenticator = (*Key)(nil)

// Device returns the key's enumeration record.
func (k *Key) Device() platform.Device { return k.dev }

// Close releases nothing: the key is opened for each operation.
func (k *Key) Close() error { return nil }

// session opens the key for one operation and runs f with it.
func (k *Key) session(ctx context.Context, op string, f func(d *device) error) error {
	if err := ctx.Err(); err != nil {
		return &platform.Error{Op: op, Kind: platform.ErrCancelled, RetriesLeft: -1, Err: err}
	}
	ctx = deduplicated(ctx)
	var err error
	call(func() {
		d, code := openDevice(k.dev.Path, &observer{ctx: ctx})
		if code != 0 {
			err = openError(op, k.dev.Path, code)
			return
		}
		defer d.close()
		if !d.isFIDO2() {
			err = &platform.Error{Op: op, Kind: platform.ErrNotFIDO2, RetriesLeft: -1}
			return
		}
		err = f(d)
	})
	return err
}

// openError explains a failed open: most often the key went away.
func openError(op, path string, code int) error {
	if accessDenied(path) {
		// The commonest failure on Linux: the key is plugged in, but its
		// hidraw node is not the user's. Say how to fix it rather than
		// show an empty or failing list.
		return &platform.Error{Op: op, Kind: platform.ErrPermission, RetriesLeft: -1, Code: code,
			Detail: fmt.Sprintf("%s needs to be readable and writable by you. udev normally grants that to the person at the computer "+
				"(systemd's 60-fido-id.rules, or libfido2's 70-u2f.rules): install one, then unplug and re-plug the key. "+
				"Over a remote session, ask an administrator to add you to the group that owns %s (see ls -l), then sign in again.", path, path)}
	}
	e := platform.FromCode(op, code).(*platform.Error)
	if e.Kind == platform.ErrProtocol {
		e.Kind = platform.ErrDeviceRemoved
	}
	e.Err = fmt.Errorf("open %s: %w", path, e.Err)
	return e
}

// Info reads authenticatorGetInfo and the PIN and UV retry counters.
func (k *Key) Info(ctx context.Context) (*platform.Info, error) { return k.readInfo(ctx, true) }

// Describe reads authenticatorGetInfo only.
func (k *Key) Describe(ctx context.Context) (*platform.Info, error) { return k.readInfo(ctx, false) }

func (k *Key) readInfo(ctx context.Context, counters bool) (*platform.Info, error) {
	var ri *rawInfo
	err := k.session(ctx, "read key information", func(d *device) error {
		var code int
		ri, code = d.getInfo(counters)
		return platform.FromCode("read key information", code)
	})
	if err != nil {
		return nil, err
	}
	info := &platform.Info{
		Versions: ri.versions, Extensions: ri.extensions, Options: ri.options,
		Algorithms: ri.algorithms, FirmwareVersion: ri.fwVersion, MaxMsgSize: ri.maxMsgSize,
		PINProtocols: ri.protocols, PINRetries: ri.pinRetries, UVRetries: ri.uvRetries,
		RemainingDiscoverableCredentials: ri.rkRemaining, MinPINLength: ri.minPINLen,
		ForcePINChange: ri.forcePINChange,
	}
	copy(info.AAGUID[:], ri.aaguid)
	info.Model = platform.ModelName(info.AAGUID)
	return info, nil
}
