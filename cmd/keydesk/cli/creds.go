package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"

	"github.com/keydesk/keydesk/platform"
)

// credentialJSON is one discoverable credential in the output of
// "keydesk creds list --json". IDs are base64url without padding.
type credentialJSON struct {
	RPID            string `json:"rpId"`
	RPName          string `json:"rpName"`
	ID              string `json:"id"`
	UserID          string `json:"userId"`
	UserName        string `json:"userName"`
	UserDisplayName string `json:"userDisplayName"`
	// Protection is the credProtect level (1-3), 0 when the key did not say.
	Protection int `json:"protection"`
}

// credentialsJSON is the output of "keydesk creds list --json".
type credentialsJSON struct {
	Credentials []credentialJSON `json:"credentials"`
}

func (e *env) creds(ctx context.Context, args []string) error {
	return e.sub("creds", args, map[string]func([]string) error{
		"list":   func(a []string) error { return e.credsList(ctx, a) },
		"delete": func(a []string) error { return e.credsDelete(ctx, a) },
		"update": func(a []string) error { return e.credsUpdate(ctx, a) },
	})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (e *env) credsList(ctx context.Context, args []string) error {
	return e.listPIN(ctx, "creds list", args, "No discoverable credentials on the key.",
		func(key platform.Authenticator, pin string) (any, [][]string, error) {
			rps, err := key.Credentials(ctx, pin)
			if err != nil {
				return nil, nil, err
			}
			out := credentialsJSON{Credentials: []credentialJSON{}}
			var rows [][]string
			for _, rp := range rps {
				for _, c := range rp.Credentials {
					j := credentialJSON{
						RPID: rp.ID, RPName: rp.Name, ID: b64(c.ID), UserID: b64(c.User.ID),
						UserName: c.User.Name, UserDisplayName: c.User.DisplayName, Protection: c.Protection,
					}
					out.Credentials = append(out.Credentials, j)
					rows = append(rows, []string{j.RPID, j.ID, j.UserName, j.UserDisplayName})
				}
			}
			return out, rows, nil
		})
}

func (e *env) credsDelete(ctx context.Context, args []string) error {
	f := e.newFlags("creds delete", false, true, true)
	id, _, err := f.parseWithID(args, 1, "credential", "creds list")
	if err != nil {
		return err
	}
	return e.withKeyAndPIN(ctx, f, func(key platform.Authenticator, pin string) error {
		return e.done(key.DeleteCredential(ctx, pin, id), "Credential deleted.")
	})
}

// credsUpdate changes the user name and/or display name of a credential.
// The user is read from the key first, so that the user ID and the name
// not given stay as they are.
func (e *env) credsUpdate(ctx context.Context, args []string) error {
	f := e.newFlags("creds update", false, true, true)
	var name, displayName string
	f.StringVar(&name, "name", "", `the new user name ("" removes it)`)
	f.StringVar(&displayName, "display-name", "", `the new user display name ("" removes it)`)
	id, _, err := f.parseWithID(args, 1, "credential", "creds list")
	if err != nil {
		return err
	}
	given := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	if !given["name"] && !given["display-name"] {
		f.Usage()
		return usageError("creds update: give --name, --display-name or both")
	}
	return e.withKeyAndPIN(ctx, f, func(key platform.Authenticator, pin string) error {
		rps, err := key.Credentials(ctx, pin)
		if err != nil {
			return err
		}
		for _, rp := range rps {
			for _, c := range rp.Credentials {
				if !bytes.Equal(c.ID, id) {
					continue
				}
				user := c.User
				if given["name"] {
					user.Name = name
				}
				if given["display-name"] {
					user.DisplayName = displayName
				}
				return e.done(key.UpdateUser(ctx, pin, id, user), "Credential updated.")
			}
		}
		return &platform.Error{Op: "update credential user", Kind: platform.ErrNoCredentials, RetriesLeft: -1}
	})
}
