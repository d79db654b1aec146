package cli

import (
	"context"
	"fmt"

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

func (e *env) fingerprintsList(ctx context.Context, args []string) error {
	return e.listPIN(ctx, "fingerprints list", args, "No fingerprints enrolled on the key.",
		func(key platform.Authenticator, pin string) (any, [][]string, error) {
			fps, err := key.Fingerprints(ctx, pin)
			if err != nil {
				return nil, nil, err
			}
			out := fingerprintsJSON{Fingerprints: []fingerprintJSON{}}
			var rows [][]string
			for _, fp := range fps {
				j := fingerprintJSON{ID: b64(fp.ID), Name: fp.Name}
				out.Fingerprints = append(out.Fingerprints, j)
				rows = append(rows, []string{j.ID, j.Name})
			}
			return out, rows, nil
		})
}

func (e *env) fingerprintsAdd(ctx context.Context, args []string) error {
	f := e.newFlags("fingerprints add", false, true, true)
	var name string
	f.StringVar(&name, "name", "", "a name for the fingerprint")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	return e.withKeyAndPIN(ctx, f, func(key platform.Authenticator, pin string) error {
		// Each sample asks for a touch of the sensor.
		ctx := platform.WithProgress(ctx, func(ev platform.ProgressEvent) {
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
	})
}

func (e *env) fingerprintsRename(ctx context.Context, args []string) error {
	f := e.newFlags("fingerprints rename", false, true, true)
	id, pos, err := f.parseWithID(args, 2, "template", "fingerprints list")
	if err != nil {
		return err
	}
	return e.withKeyAndPIN(ctx, f, func(key platform.Authenticator, pin string) error {
		return e.done(key.RenameFingerprint(ctx, pin, id, pos[1]), "Fingerprint renamed.")
	})
}

func (e *env) fingerprintsDelete(ctx context.Context, args []string) error {
	f := e.newFlags("fingerprints delete", false, true, true)
	id, _, err := f.parseWithID(args, 1, "template", "fingerprints list")
	if err != nil {
		return err
	}
	return e.withKeyAndPIN(ctx, f, func(key platform.Authenticator, pin string) error {
		return e.done(key.DeleteFingerprint(ctx, pin, id), "Fingerprint deleted.")
	})
}
