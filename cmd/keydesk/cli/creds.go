package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
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
	})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (e *env) credsList(ctx context.Context, args []string) error {
	f := e.newFlags("creds list", true, true, true)
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	key, pin, err := e.keyAndPIN(ctx, f)
	if err != nil {
		return err
	}
	defer key.Close()
	rps, err := key.Credentials(ctx, pin)
	if err != nil {
		return err
	}
	out := credentialsJSON{Credentials: []credentialJSON{}}
	for _, rp := range rps {
		for _, c := range rp.Credentials {
			out.Credentials = append(out.Credentials, credentialJSON{
				RPID: rp.ID, RPName: rp.Name, ID: b64(c.ID), UserID: b64(c.User.ID),
				UserName: c.User.Name, UserDisplayName: c.User.DisplayName, Protection: c.Protection,
			})
		}
	}
	if f.json {
		return writeJSON(e.stdout, out)
	}
	if len(out.Credentials) == 0 {
		fmt.Fprintln(e.stdout, "No discoverable credentials on the key.")
		return nil
	}
	for _, c := range out.Credentials {
		fmt.Fprintf(e.stdout, "%s\t%s\t%s\t%s\n", c.RPID, c.ID, c.UserName, c.UserDisplayName)
	}
	return nil
}

func (e *env) credsDelete(ctx context.Context, args []string) error {
	f := e.newFlags("creds delete", false, true, true)
	pos, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	id, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(pos[0], "="))
	if err != nil || len(id) == 0 {
		return usageError("credential ID %q is not base64url (as keydesk creds list prints it)", pos[0])
	}
	key, pin, err := e.keyAndPIN(ctx, f)
	if err != nil {
		return err
	}
	defer key.Close()
	if err := key.DeleteCredential(ctx, pin, id); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "Credential deleted.")
	return nil
}
