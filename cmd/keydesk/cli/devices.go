package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey/identity"
)

// deviceJSON is one key in the output of "keydesk devices --json".
type deviceJSON struct {
	Index        int      `json:"index"`
	Path         string   `json:"path"`
	Transport    string   `json:"transport"`
	Manufacturer string   `json:"manufacturer"`
	Product      string   `json:"product"`
	Model        string   `json:"model"`
	AAGUID       string   `json:"aaguid"`
	Versions     []string `json:"versions"`
	PINSet       bool     `json:"pinSet"`
	Error        string   `json:"error,omitempty"`
}

// devicesJSON is the output of "keydesk devices --json".
type devicesJSON struct {
	Devices []deviceJSON `json:"devices"`
	// VirtualKeyOffered is true when no key was found, when the text
	// output offers the in-process virtual key instead.
	VirtualKeyOffered bool `json:"virtualKeyOffered"`
}

func (e *env) devices(ctx context.Context, args []string) error {
	f := e.newFlags("devices", true, false, false)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	found, err := e.enum.Devices(ctx)
	if err != nil {
		return err
	}
	out := devicesJSON{Devices: []deviceJSON{}}
	for i, d := range found {
		out.Devices = append(out.Devices, e.probe(ctx, i, d))
	}
	out.VirtualKeyOffered = len(found) == 0
	if f.json {
		return writeJSON(e.stdout, out)
	}
	if len(found) == 0 {
		fmt.Fprintln(e.stdout, "No hardware security key found.")
		printDevice(e.stdout, "-", virtualKey())
		return nil
	}
	for _, d := range out.Devices {
		printDevice(e.stdout, strconv.Itoa(d.Index), d)
	}
	return nil
}

// printDevice prints one key as a tab-separated line: index, path,
// transport, name, then versions, AAGUID and PIN state, or the error.
func printDevice(w io.Writer, index string, d deviceJSON) {
	name := d.Model
	if name == "" {
		name = strings.TrimSpace(d.Manufacturer + " " + d.Product)
	}
	transport := strings.ToUpper(d.Transport)
	if d.Transport == string(platform.TransportVirtual) {
		transport = d.Transport
	}
	if d.Error != "" {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\terror: %s\n", index, d.Path, transport, name, d.Error)
		return
	}
	pin := "no PIN"
	if d.PINSet {
		pin = "PIN set"
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\taaguid %s\t%s\n", index, d.Path, transport, name, strings.Join(d.Versions, ","), d.AAGUID, pin)
}

// probe reads a key's getInfo.
func (e *env) probe(ctx context.Context, i int, d platform.Device) deviceJSON {
	out := deviceJSON{Index: i, Path: d.Path, Transport: string(d.Transport),
		Manufacturer: d.Manufacturer, Product: d.Product, Versions: []string{}}
	key, err := e.enum.Open(ctx, d)
	if err == nil {
		var info *platform.Info
		if info, err = key.Describe(ctx); err == nil {
			out.Model, out.AAGUID, out.PINSet = info.Model, hex.EncodeToString(info.AAGUID[:]), info.PINSet()
			if info.Versions != nil {
				out.Versions = info.Versions
			}
		}
		key.Close()
	}
	if err != nil {
		out.Error = message(err)
	}
	return out
}

// message is an error's plain-language message.
func message(err error) string {
	var pe *platform.Error
	if errors.As(err, &pe) {
		return pe.Message()
	}
	return err.Error()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// virtualKey describes the in-process software key offered when no
// hardware key is present, labelled so nobody mistakes it for one. It
// is described, not started: a listing need not create a key.
func virtualKey() deviceJSON {
	return deviceJSON{Path: "(in-process)", Transport: string(platform.TransportVirtual),
		Model:    "Keydesk virtual key (software, for trying Keydesk out)",
		Versions: append([]string(nil), identity.Versions...), AAGUID: hex.EncodeToString(identity.AAGUID[:])}
}
