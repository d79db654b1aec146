// Package cli holds the keydesk command tree, so that main stays thin and
// the commands can be tested in-process.
package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fxamacker/cbor/v2"
	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/keydesk/keydesk/platform/softkey"
)

// ExtraDevicesEnv lists device paths that udev does not enumerate (such as
// the software key behind the vhid shim), separated by ':'.
const ExtraDevicesEnv = "KEYDESK_EXTRA_DEVICES"

// Run runs the keydesk command line. With no arguments, or "devices", it
// lists the connected security keys.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("keydesk", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: keydesk [devices]")
		fmt.Fprintln(stderr, "  devices   list connected security keys (the default)")
	}
	if err := fl.Parse(args); err != nil {
		return err
	}
	switch fl.Arg(0) {
	case "", "devices":
		return listDevices(ctx, stdout)
	}
	fl.Usage()
	return fmt.Errorf("unknown command %q", fl.Arg(0))
}

// device is one key as the list shows it.
type device struct {
	path, transport, product string
	versions                 []string
	aaguid                   []byte
	err                      error
}

func listDevices(_ context.Context, w io.Writer) error {
	var devs []device
	locs, err := libfido2.DeviceLocations()
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	for _, l := range locs {
		devs = append(devs, probe(l.Path, strings.TrimSpace(l.Manufacturer+" "+l.Product)))
	}
	for _, p := range filepath.SplitList(os.Getenv(ExtraDevicesEnv)) {
		if p != "" {
			devs = append(devs, probe(p, "configured device"))
		}
	}
	if len(devs) == 0 {
		fmt.Fprintln(w, "No hardware security key found.")
		v, err := virtualKey()
		if err != nil {
			return err
		}
		devs = append(devs, v)
	}
	for _, d := range devs {
		if d.err != nil {
			fmt.Fprintf(w, "%s\t%s\t%s\terror: %v\n", d.path, d.transport, d.product, d.err)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\taaguid %s\n", d.path, d.transport, d.product, strings.Join(d.versions, ","), hex.EncodeToString(d.aaguid))
	}
	return nil
}

// probe reads a key's getInfo through libfido2.
func probe(path, product string) device {
	d := device{path: path, transport: "USB", product: product}
	if strings.HasPrefix(path, "nfc:") || strings.HasPrefix(path, "pcsc:") {
		d.transport = "NFC"
	}
	dev, err := libfido2.NewDevice(path)
	if err == nil {
		var info *libfido2.DeviceInfo
		if info, err = dev.Info(); err == nil {
			d.versions, d.aaguid = info.Versions, info.AAGUID
		}
	}
	d.err = err
	return d
}

// virtualKey describes the in-process software key offered when no
// hardware key is present, labelled so nobody mistakes it for one.
func virtualKey() (device, error) {
	k, err := softkey.New(softkey.Config{})
	if err != nil {
		return device{}, err
	}
	resp := k.CBOR(context.Background(), []byte{byte(softkey.CmdGetInfo)}, nil)
	if len(resp) == 0 || resp[0] != 0 {
		return device{}, errors.New("virtual key: getInfo failed")
	}
	var info struct {
		Versions []string `cbor:"1,keyasint"`
		AAGUID   []byte   `cbor:"3,keyasint"`
	}
	if err := cbor.Unmarshal(resp[1:], &info); err != nil {
		return device{}, fmt.Errorf("virtual key: %w", err)
	}
	return device{path: "(in-process)", transport: "virtual", product: "Keydesk virtual key (software, for trying Keydesk out)",
		versions: info.Versions, aaguid: info.AAGUID}, nil
}
