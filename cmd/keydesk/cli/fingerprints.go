package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/keydesk/keydesk/platform"
)

// fingerprintJSON is one template in "keydesk fingerprints list --json".
// IDs are base64url without padding.
type fingerprintJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// fingerprintsJSON is the output of "keydesk fingerprints list --json".
type fingerprintsJSON struct {
	Fingerprints []fingerprintJSON `json:"fingerprints"`
}

func (e *env) fingerprints(ctx context.Context, args []string) error {
	return e.sub("fingerprints", args, map[string]func([]string) error{
		"list":   func(a []string) error { return e.fingerprintsList(ctx, a) },
		"add":    func(a []string) error { return e.fingerprintsAdd(ctx, a) },
		"rename": func(a []string) error { return e.fingerprintsRename(ctx, a) },
		"delete": func(a []string) error { return e.fingerprintsDelete(ctx, a) },
	})
}

// templateID decodes a template ID as "keydesk fingerprints list" prints it.
func templateID(s string) ([]byte, error) {
	id, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(id) == 0 {
		return nil, usageError("template ID %q is not base64url (as keydesk fingerprints list prints it)", s)
	}
	return id, nil
}

func (e *env) fingerprintsList(ctx context.Context, args []string) error {
	f := e.newFlags("fingerprints list", true, true, true)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	key, pin, err := e.keyAndPIN(ctx, f)
	if err != nil {
		return err
	}
	defer key.Close()
	fps, err := key.Fingerprints(ctx, pin)
	if err != nil {
		return err
	}
	out := fingerprintsJSON{Fingerprints: []fingerprintJSON{}}
	for _, fp := range fps {
		out.Fingerprints = append(out.Fingerprints, fingerprintJSON{ID: b64(fp.ID), Name: fp.Name})
	}
	if f.json {
		return writeJSON(e.stdout, out)
	}
	if len(out.Fingerprints) == 0 {
		fmt.Fprintln(e.stdout, "No fingerprints enrolled on the key.")
		return nil
	}
	for _, fp := range out.Fingerprints {
		fmt.Fprintf(e.stdout, "%s\t%s\n", fp.ID, fp.Name)
	}
	return nil
}

func (e *env) fingerprintsAdd(ctx context.Context, args []string) error {
	f := e.newFlags("fingerprints add", false, true, true)
	var name string
	f.StringVar(&name, "name", "", "a name for the fingerprint")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	key, pin, err := e.keyAndPIN(ctx, f)
	if err != nil {
		return err
	}
	defer key.Close()
	// Each sample asks for a touch of the sensor.
	ctx = platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
		switch ev.Stage {
		case platform.StageTouch:
			fmt.Fprintln(e.stderr, "Touch the sensor")
		case platform.StageSample:
			if ev.Remaining > 0 {
				fmt.Fprintf(e.stderr, "Touch the sensor (%d more)\n", ev.Remaining)
			}
		}
	})
	fp, err := key.EnrollFingerprint(ctx, pin, name)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, b64(fp.ID))
	return nil
}

func (e *env) fingerprintsRename(ctx context.Context, args []string) error {
	f := e.newFlags("fingerprints rename", false, true, true)
	pos, err := f.parse(args, 2)
	if err != nil {
		return err
	}
	id, err := templateID(pos[0])
	if err != nil {
		return err
	}
	key, pin, err := e.keyAndPIN(ctx, f)
	if err != nil {
		return err
	}
	defer key.Close()
	if err := key.RenameFingerprint(ctx, pin, id, pos[1]); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "Fingerprint renamed.")
	return nil
}

func (e *env) fingerprintsDelete(ctx context.Context, args []string) error {
	f := e.newFlags("fingerprints delete", false, true, true)
	pos, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	id, err := templateID(pos[0])
	if err != nil {
		return err
	}
	key, pin, err := e.keyAndPIN(ctx, f)
	if err != nil {
		return err
	}
	defer key.Close()
	if err := key.DeleteFingerprint(ctx, pin, id); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "Fingerprint deleted.")
	return nil
}
