package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/rp/api"
)

// accountKeyJSON is one of the account's keys in the output of "keydesk
// keys list --json".
type accountKeyJSON struct {
	// ID is the credential ID, base64url, for keys rename and revoke.
	ID       string `json:"id"`
	Nickname string `json:"nickname"`
	// Model is the authenticator model's name, "" when the service does
	// not know it; AAGUID identifies the model (a dashed UUID).
	Model      string     `json:"model"`
	AAGUID     string     `json:"aaguid"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"` // null: never used to sign in
	Revoked    bool       `json:"revoked"`
	RevokedAt  *time.Time `json:"revokedAt"` // null unless revoked
	// RevokeReason is "" unless revoked.
	RevokeReason string `json:"revokeReason"`
	// PluggedIn is set when a connected key holds this credential;
	// Device is that key's path ("" otherwise).
	PluggedIn bool   `json:"pluggedIn"`
	Device    string `json:"device"`
}

// accountKeysJSON is the output of "keydesk keys list --json".
type accountKeysJSON struct {
	Profile string           `json:"profile"`
	Keys    []accountKeyJSON `json:"keys"`
}

// keys is "keydesk keys list|enroll|rename|revoke": the account's keys at
// the profile's relying party.
func (e *env) keys(ctx context.Context, args []string) error {
	return e.sub("keys", args, map[string]func([]string) error{
		"list":   func(a []string) error { return e.keysList(ctx, a) },
		"enroll": func(a []string) error { return e.keysEnroll(ctx, a) },
		"rename": func(a []string) error { return e.keysRename(ctx, a) },
		"revoke": func(a []string) error { return e.keysRevoke(ctx, a) },
	})
}

// connectedKeys opens every connected key, to ask them silently which of
// the account's keys they are. A key that cannot be opened (busy with
// another program) is left out: the list is still worth having.
func (e *env) connectedKeys(ctx context.Context) []platform.Authenticator {
	devs, err := e.enum.Devices(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "Could not look for connected keys (%v); none is marked plugged in.\n", err)
		return nil
	}
	var keys []platform.Authenticator
	for _, d := range devs {
		if k, err := e.enum.Open(ctx, d); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

func (e *env) keysList(ctx context.Context, args []string) error {
	f := e.newFlags("keys list", true, false, false)
	name := profileFlag(f)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	acc, done, err := e.openSession(ctx, *name, false)
	if err != nil {
		return err
	}
	defer done()
	connected := e.connectedKeys(ctx)
	defer closeAll(connected)
	ks, err := acc.svc.Keys(ctx, connected)
	if err != nil {
		return acc.fail(err)
	}
	out := accountKeysJSON{Profile: acc.prof.Name, Keys: []accountKeyJSON{}}
	for _, k := range ks {
		out.Keys = append(out.Keys, keyJSON(k))
	}
	if f.json {
		return writeJSON(e.stdout, out)
	}
	if len(out.Keys) == 0 {
		fmt.Fprintf(e.stdout, "No keys are enrolled in your account at %s; enroll one with keydesk keys enroll --name NICKNAME\n", acc.prof.Name)
		return nil
	}
	for _, k := range out.Keys {
		fmt.Fprintln(e.stdout, strings.Join(keyRow(k), "\t"))
	}
	return nil
}

// keyJSON is k as keys list --json prints it.
func keyJSON(k enroll.Key) accountKeyJSON {
	j := accountKeyJSON{
		ID: k.ID, Nickname: k.Nickname, Model: k.Model, AAGUID: k.AAGUID, CreatedAt: k.CreatedAt,
		LastUsedAt: k.LastUsedAt, Revoked: k.RevokedAt != nil, RevokedAt: k.RevokedAt,
		RevokeReason: k.RevokeReason, PluggedIn: k.PluggedIn,
	}
	if k.PluggedIn {
		j.Device = k.Device.Path
	}
	return j
}

// keyRow is a key as keys list prints it: ID, nickname, model, when it
// was enrolled and last used, and where it is (revoked, plugged in).
func keyRow(k accountKeyJSON) []string {
	local := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04") }
	model := k.Model
	if model == "" {
		model = "unknown model"
	}
	used := "never used"
	if k.LastUsedAt != nil {
		used = "last used " + local(*k.LastUsedAt)
	}
	status := "not plugged in"
	switch {
	case k.Revoked:
		status = fmt.Sprintf("revoked %s (%s)", local(*k.RevokedAt), k.RevokeReason)
	case k.PluggedIn:
		status = "plugged in (" + k.Device + ")"
	}
	return []string{k.ID, k.Nickname, model, "enrolled " + local(k.CreatedAt), used, status}
}

func (e *env) keysEnroll(ctx context.Context, args []string) error {
	f := e.newFlags("keys enroll", false, true, true)
	name := profileFlag(f)
	nickname := f.String("name", "", "the key's nickname, such as \"blue key\"")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	if strings.TrimSpace(*nickname) == "" {
		return usageError("keys enroll: --name NICKNAME is required, to tell the key from your others")
	}
	// Checked before a key is opened: no touch for nothing.
	acc, done, err := e.openSession(ctx, *name, f.pinStdin)
	if err != nil {
		return err
	}
	defer done()
	var k *api.Key
	err = e.withKey(ctx, f, func(key platform.Authenticator) error {
		var err error
		k, err = acc.svc.Enroll(ctx, key, *nickname)
		return err
	})
	if err != nil {
		return acc.fail(err)
	}
	fmt.Fprintf(e.stdout, "Enrolled %q (%s) in your account at %s; its ID is %s\n", k.Nickname, modelName(k.Model), acc.prof.Name, k.ID)
	return nil
}

func modelName(m string) string {
	if m == "" {
		return "unknown model"
	}
	return m
}

func (e *env) keysRename(ctx context.Context, args []string) error {
	f := e.newFlags("keys rename", false, false, false)
	name := profileFlag(f)
	pos, err := f.parse(args, 2)
	if err != nil {
		return err
	}
	acc, done, err := e.openSession(ctx, *name, false)
	if err != nil {
		return err
	}
	defer done()
	k, err := acc.svc.Rename(ctx, pos[0], pos[1])
	if err != nil {
		return acc.fail(err)
	}
	fmt.Fprintf(e.stdout, "Renamed key %s to %q.\n", k.ID, k.Nickname)
	return nil
}

// keysRevoke revokes a lost key. The service wants a sign-in with a key
// within its step-up window (5 minutes on the reference server): when the
// session is that fresh, the revocation is made at once, with no key and
// no touch, as a script right after keydesk login expects; only when the
// service answers step_up_required is a key opened (--device, or the one
// touched) to sign in again first, which must be another key than the
// lost one. Stepping up every time would add nothing the service checks,
// and would ask for a touch right after the one of the sign-in.
func (e *env) keysRevoke(ctx context.Context, args []string) error {
	f := e.newFlags("keys revoke", false, true, true)
	name := profileFlag(f)
	reason := f.String("reason", "lost", "why the key is revoked, such as lost or stolen")
	pos, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usageError("keys revoke: --reason must say why the key is revoked, such as lost or stolen")
	}
	acc, done, err := e.openSession(ctx, *name, f.pinStdin)
	if err != nil {
		return err
	}
	defer done()
	id := pos[0]
	k, err := acc.svc.RevokeLost(ctx, id, *reason, nil)
	if errors.Is(err, rpclient.ErrStepUpRequired) {
		fmt.Fprintln(e.stderr, "Revoking a key needs a fresh sign-in: sign in with another of your keys.")
		err = e.withKey(ctx, f, func(key platform.Authenticator) error {
			var err error
			k, err = acc.svc.RevokeLost(ctx, id, *reason, key)
			return err
		})
	}
	if err != nil {
		return acc.fail(err)
	}
	fmt.Fprintf(e.stdout, "Revoked %q (ID %s): %s.\n", k.Nickname, k.ID, k.RevokeReason)
	return nil
}
