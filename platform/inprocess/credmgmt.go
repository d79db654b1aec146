package inprocess

import (
	"bytes"
	"context"
	"errors"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// credMgmtResponse is the response of authenticatorCredentialManagement.
//
// Specification: CTAP 2.1 §6.8. authenticatorCredentialManagement (0x0A) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorCredentialManagement)
type credMgmtResponse struct {
	Existing         *uint64         `cbor:"1,keyasint"`
	Remaining        *uint64         `cbor:"2,keyasint"`
	RP               *rpEntity       `cbor:"3,keyasint"`
	RPIDHash         []byte          `cbor:"4,keyasint"`
	TotalRPs         uint64          `cbor:"5,keyasint"`
	User             *userEntity     `cbor:"6,keyasint"`
	CredentialID     *descriptor     `cbor:"7,keyasint"`
	PublicKey        cbor.RawMessage `cbor:"8,keyasint"`
	TotalCredentials uint64          `cbor:"9,keyasint"`
	CredProtect      uint64          `cbor:"10,keyasint"`
}

// rpEntity is PublicKeyCredentialRpEntity.
//
// Specification: WebAuthn §5.4.2. Relying Party Parameters for Credential Generation (https://www.w3.org/TR/webauthn-3/#dictionary-rp-credential-params)
type rpEntity struct {
	ID   string `cbor:"id"`
	Name string `cbor:"name,omitempty"`
}

// userEntity is PublicKeyCredentialUserEntity.
//
// Specification: WebAuthn §5.4.3. User Account Parameters for Credential Generation (https://www.w3.org/TR/webauthn-3/#dictionary-user-credential-params)
type userEntity struct {
	ID          []byte `cbor:"id"`
	Name        string `cbor:"name,omitempty"`
	DisplayName string `cbor:"displayName,omitempty"`
}

// descriptor is PublicKeyCredentialDescriptor.
//
// Specification: WebAuthn §5.8.3. Credential Descriptor (https://www.w3.org/TR/webauthn-3/#dictionary-credential-descriptor)
type descriptor struct {
	ID   []byte `cbor:"id"`
	Type string `cbor:"type"`
}

// credMgmt sends one credential management subcommand. With a token its
// pinUvAuthParam is authenticate(token, subCommand || subCommandParams);
// the GetNext subcommands go without one.
func (k *Key) credMgmt(ctx context.Context, op string, tok *token, sub byte, params any, out *credMgmtResponse) error {
	req, err := subcommandRequest(op, tok, map[int]any{1: sub}, []byte{sub}, 2, params)
	if err != nil {
		return err
	}
	var o any
	if out != nil {
		o = out
	}
	return k.call(ctx, op, softkey.CmdCredentialManagement, req, o)
}

// cmToken reads the key's information and gets a token with the cm
// permission, for operation op.
func (k *Key) cmToken(ctx context.Context, op, pin string) (*token, error) {
	info, err := k.info(ctx, op)
	if err != nil {
		return nil, err
	}
	if !info.HasOption("credMgmt") {
		return nil, unsupported(op)
	}
	return k.pinToken(ctx, op, info, pin, softkey.PermCredentialMgmt, "")
}

// CredentialsMetadata counts the discoverable credentials and the room
// left (getCredsMetadata).
func (k *Key) CredentialsMetadata(ctx context.Context, pin string) (platform.CredentialsMetadata, error) {
	const op = "list credentials"
	k.mu.Lock()
	defer k.mu.Unlock()
	tok, err := k.cmToken(ctx, op, pin)
	if err != nil {
		return platform.CredentialsMetadata{}, err
	}
	defer tok.close()
	var r credMgmtResponse
	if err := k.credMgmt(ctx, op, tok, softkey.CredMgmtGetCredsMetadata, nil, &r); err != nil {
		return platform.CredentialsMetadata{}, err
	}
	if r.Existing == nil || r.Remaining == nil {
		return platform.CredentialsMetadata{}, protocolError(op, errors.New("getCredsMetadata without counts"))
	}
	return platform.CredentialsMetadata{Existing: int(*r.Existing), Remaining: int(*r.Remaining)}, nil
}

// Credentials lists the discoverable credentials grouped by RP; a key
// with none gives an empty slice.
func (k *Key) Credentials(ctx context.Context, pin string) ([]platform.RelyingParty, error) {
	const op = "list credentials"
	k.mu.Lock()
	defer k.mu.Unlock()
	tok, err := k.cmToken(ctx, op, pin)
	if err != nil {
		return nil, err
	}
	defer tok.close()
	return k.credentials(ctx, op, tok)
}

// credentials enumerates the RPs, then each RP's credentials. The RPs
// are read first: a GetNext must follow its Begin directly.
func (k *Key) credentials(ctx context.Context, op string, tok *token) ([]platform.RelyingParty, error) {
	var r credMgmtResponse
	err := k.credMgmt(ctx, op, tok, softkey.CredMgmtEnumerateRPsBegin, nil, &r)
	if errors.Is(err, platform.ErrNoCredentials) {
		return []platform.RelyingParty{}, nil
	}
	if err != nil {
		return nil, err
	}
	type rp struct {
		entity rpEntity
		hash   []byte
	}
	var rps []rp
	total := r.TotalRPs
	for i := uint64(0); ; i++ {
		if r.RP == nil || len(r.RPIDHash) == 0 {
			return nil, protocolError(op, errors.New("RP without ID or hash"))
		}
		rps = append(rps, rp{*r.RP, r.RPIDHash})
		if i+1 >= total {
			break
		}
		r = credMgmtResponse{}
		if err := k.credMgmt(ctx, op, nil, softkey.CredMgmtEnumerateRPsGetNextRP, nil, &r); err != nil {
			return nil, err
		}
	}
	out := make([]platform.RelyingParty, 0, len(rps))
	for _, p := range rps {
		group := platform.RelyingParty{ID: p.entity.ID, Name: p.entity.Name, Credentials: []platform.Credential{}}
		var c credMgmtResponse
		err := k.credMgmt(ctx, op, tok, softkey.CredMgmtEnumerateCredentialsBegin, map[int]any{1: p.hash}, &c)
		if errors.Is(err, platform.ErrNoCredentials) {
			out = append(out, group)
			continue
		}
		if err != nil {
			return nil, err
		}
		total := c.TotalCredentials
		for i := uint64(0); ; i++ {
			if c.CredentialID == nil || c.User == nil {
				return nil, protocolError(op, errors.New("credential without ID or user"))
			}
			group.Credentials = append(group.Credentials, platform.Credential{
				ID:         c.CredentialID.ID,
				User:       platform.User{ID: c.User.ID, Name: c.User.Name, DisplayName: c.User.DisplayName},
				Protection: int(c.CredProtect),
			})
			if i+1 >= total {
				break
			}
			c = credMgmtResponse{}
			if err := k.credMgmt(ctx, op, nil, softkey.CredMgmtEnumerateCredentialsGetNextCredential, nil, &c); err != nil {
				return nil, err
			}
		}
		out = append(out, group)
	}
	return out, nil
}

// credentialDescriptor is the descriptor of a credential ID as the key
// expects it in subCommandParams.
func credentialDescriptor(id []byte) map[string]any {
	return map[string]any{"id": id, "type": "public-key"}
}

// DeleteCredential deletes a discoverable credential; an ID the key does
// not hold fails with ErrNoCredentials.
func (k *Key) DeleteCredential(ctx context.Context, pin string, credentialID []byte) error {
	const op = "delete credential"
	k.mu.Lock()
	defer k.mu.Unlock()
	tok, err := k.cmToken(ctx, op, pin)
	if err != nil {
		return err
	}
	defer tok.close()
	return k.credMgmt(ctx, op, tok, softkey.CredMgmtDeleteCredential, map[int]any{2: credentialDescriptor(credentialID)}, nil)
}

// UpdateUser replaces the user name and display name of a credential.
// The key insists on the stored user ID: when user.ID is empty it is
// looked up, so callers need not carry it.
func (k *Key) UpdateUser(ctx context.Context, pin string, credentialID []byte, user platform.User) error {
	const op = "update user"
	k.mu.Lock()
	defer k.mu.Unlock()
	tok, err := k.cmToken(ctx, op, pin)
	if err != nil {
		return err
	}
	defer tok.close()
	if len(user.ID) == 0 {
		rps, err := k.credentials(ctx, op, tok)
		if err != nil {
			return err
		}
	find:
		for _, rp := range rps {
			for _, c := range rp.Credentials {
				if bytes.Equal(c.ID, credentialID) {
					user.ID = c.User.ID
					break find
				}
			}
		}
		if len(user.ID) == 0 {
			return platform.FromCode(op, int(softkey.ErrNoCredentials))
		}
	}
	u := map[string]any{"id": user.ID}
	if user.Name != "" {
		u["name"] = user.Name
	}
	if user.DisplayName != "" {
		u["displayName"] = user.DisplayName
	}
	return k.credMgmt(ctx, op, tok, softkey.CredMgmtUpdateUserInformation, map[int]any{2: credentialDescriptor(credentialID), 3: u}, nil)
}
