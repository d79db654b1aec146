package libfido2

import (
	"bytes"
	"context"

	"github.com/keydesk/keydesk/platform"
)

// Discoverable credential management (CTAP 2.1 §6.8,
// authenticatorCredentialManagement) through libfido2's credman API. Each
// operation opens the key once; every libfido2 call that needs it gets a
// PIN token of its own, as libfido2 does.

// cmNeedPIN refuses an empty PIN before the key sees it: libfido2 would
// send it, and the key would count a wrong PIN.
func cmNeedPIN(op, pin string) error {
	if pin == "" {
		return &platform.Error{Op: op, Kind: platform.ErrPINRequired, RetriesLeft: -1}
	}
	return nil
}

// cmCancelled is the error of an operation whose context ended.
func cmCancelled(ctx context.Context, op string, code int) error {
	return &platform.Error{Op: op, Kind: platform.ErrCancelled, RetriesLeft: -1, Code: code, Err: ctx.Err()}
}

// CredentialsMetadata counts the discoverable credentials and the room
// left (getCredsMetadata).
func (k *Key) CredentialsMetadata(ctx context.Context, pin string) (platform.CredentialsMetadata, error) {
	const op = "count credentials"
	var md platform.CredentialsMetadata
	if err := cmNeedPIN(op, pin); err != nil {
		return md, err
	}
	err := k.session(ctx, op, func(d *device) error {
		var code int
		md, code = d.credmanMetadata(pin)
		return pinCodeError(op, code, d)
	})
	return md, err
}

// Credentials lists the discoverable credentials grouped by relying
// party, in the key's order: enumerateRPs, then enumerateCredentials for
// each RP, on one open device. An empty key gives an empty list.
func (k *Key) Credentials(ctx context.Context, pin string) ([]platform.RelyingParty, error) {
	const op = "list credentials"
	if err := cmNeedPIN(op, pin); err != nil {
		return nil, err
	}
	var rps []platform.RelyingParty
	err := k.session(ctx, op, func(d *device) error {
		var err error
		rps, err = d.cmList(ctx, op, pin, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rps, nil
}

// cmList enumerates the RPs and their credentials. With stop set it ends
// as soon as stop returns true for a credential, returning what it has.
func (d *device) cmList(ctx context.Context, op, pin string, stop func(platform.Credential) bool) ([]platform.RelyingParty, error) {
	list, code := d.credmanRPs(pin)
	if code == cmCodeNoCredentials {
		// enumerateRPsBegin on a key without discoverable credentials
		// (CTAP 2.1 §6.8.3).
		return []platform.RelyingParty{}, nil
	}
	if code != cmCodeOK {
		return nil, pinCodeError(op, code, d)
	}
	rps := make([]platform.RelyingParty, 0, len(list))
	for _, rp := range list {
		if ctx.Err() != nil {
			return nil, cmCancelled(ctx, op, 0)
		}
		if !rp.idOK {
			// Credentials are listed by RP ID: without one there is no
			// asking for them.
			return nil, &platform.Error{Op: op, Kind: platform.ErrProtocol, RetriesLeft: -1}
		}
		creds, code := d.credmanRKs(rp.id, pin)
		switch code {
		case cmCodeOK:
		case cmCodeNoCredentials: // deleted since enumerateRPs
			creds = []platform.Credential{}
		default:
			return nil, pinCodeError(op, code, d)
		}
		rps = append(rps, platform.RelyingParty{ID: rp.id, Name: rp.name, Credentials: creds})
		if stop != nil {
			for _, c := range creds {
				if stop(c) {
					return rps, nil
				}
			}
		}
	}
	return rps, nil
}

// DeleteCredential deletes the discoverable credential credentialID
// (deleteCredential); an unknown ID fails with ErrNoCredentials.
func (k *Key) DeleteCredential(ctx context.Context, pin string, credentialID []byte) error {
	const op = "delete credential"
	if err := cmNeedPIN(op, pin); err != nil {
		return err
	}
	if len(credentialID) == 0 {
		return &platform.Error{Op: op, Kind: platform.ErrNoCredentials, RetriesLeft: -1}
	}
	return k.session(ctx, op, func(d *device) error {
		return pinCodeError(op, d.credmanDelete(credentialID, pin), d)
	})
}

// UpdateUser replaces the user name and display name stored with the
// discoverable credential credentialID (updateUserInformation). The user
// ID stays: user.ID is ignored, and the stored one, found by listing the
// credentials on the same open device, is sent back, as CTAP 2.1 §6.8.6
// requires. An unknown ID fails with ErrNoCredentials; an empty name or
// display name removes it from the credential.
func (k *Key) UpdateUser(ctx context.Context, pin string, credentialID []byte, user platform.User) error {
	const op = "update credential user"
	if err := cmNeedPIN(op, pin); err != nil {
		return err
	}
	if len(credentialID) == 0 {
		return &platform.Error{Op: op, Kind: platform.ErrNoCredentials, RetriesLeft: -1}
	}
	return k.session(ctx, op, func(d *device) error {
		var stored *platform.Credential
		_, err := d.cmList(ctx, op, pin, func(c platform.Credential) bool {
			if bytes.Equal(c.ID, credentialID) {
				stored = &c
				return true
			}
			return false
		})
		if err != nil {
			return err
		}
		if stored == nil {
			return &platform.Error{Op: op, Kind: platform.ErrNoCredentials, RetriesLeft: -1}
		}
		if ctx.Err() != nil {
			return cmCancelled(ctx, op, 0)
		}
		u := platform.User{ID: stored.User.ID, Name: user.Name, DisplayName: user.DisplayName}
		return pinCodeError(op, d.credmanUpdateUser(credentialID, u, pin), d)
	})
}
