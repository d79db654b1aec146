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
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/libfido2"
	"github.com/keydesk/keydesk/platform/softkey"
)

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

func listDevices(ctx context.Context, w io.Writer) error {
	e := libfido2.New(libfido2.Config{ExtraDevices: platform.ExtraDevicesFromEnv()})
	found, err := e.Devices(ctx)
	if err != nil {
		return err
	}
	var devs []device
	for _, d := range found {
		devs = append(devs, probe(ctx, e, d))
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

// probe reads a key's getInfo.
func probe(ctx context.Context, e platform.Enumerator, d platform.Device) device {
	out := device{path: d.Path, transport: strings.ToUpper(string(d.Transport)), product: strings.TrimSpace(d.Manufacturer + " " + d.Product)}
	key, err := e.Open(ctx, d)
	if err == nil {
		var info *platform.Info
		if info, err = key.Info(ctx); err == nil {
			out.versions, out.aaguid = info.Versions, info.AAGUID[:]
			if info.Model != "" {
				out.product = info.Model
			}
		}
		key.Close()
	}
	out.err = err
	return out
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
