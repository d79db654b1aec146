package softkey

import (
	"bytes"
	"crypto/sha256"

	"github.com/fxamacker/cbor/v2"
)

// authenticatorCredentialManagementRequest holds the parameters of
// authenticatorCredentialManagement (0x0A, and 0x41 in FIDO_2_1_PRE).
//
// Specification: §6.8. authenticatorCredentialManagement (0x0A) (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#authenticatorCredentialManagement)
type authenticatorCredentialManagementRequest struct {
	SubCommand        *uint64         `cbor:"1,keyasint"`
	SubCommandParams  cbor.RawMessage `cbor:"2,keyasint"`
	PinUvAuthProtocol *uint64         `cbor:"3,keyasint"`
	PinUvAuthParam    *[]byte         `cbor:"4,keyasint"`
}

// credMgmtParams are the subCommandParams of credential management.
type credMgmtParams struct {
	RPIDHash     *[]byte               `cbor:"1,keyasint"`
	CredentialID *credentialDescriptor `cbor:"2,keyasint"`
	User         *userEntity           `cbor:"3,keyasint"`
}

// authenticatorCredentialManagementResponse is the response of credential management.
type authenticatorCredentialManagementResponse struct {
	ExistingResidentCredentialsCount             *uint                    `cbor:"1,keyasint,omitempty"`
	MaxPossibleRemainingResidentCredentialsCount *uint                    `cbor:"2,keyasint,omitempty"`
	RP                                           *rpEntityOut             `cbor:"3,keyasint,omitempty"`
	RPIDHash                                     []byte                   `cbor:"4,keyasint,omitempty"`
	TotalRPs                                     uint                     `cbor:"5,keyasint,omitempty"`
	User                                         *userEntityOut           `cbor:"6,keyasint,omitempty"`
	CredentialID                                 *credentialDescriptorOut `cbor:"7,keyasint,omitempty"`
	PublicKey                                    *coseKey                 `cbor:"8,keyasint,omitempty"`
	TotalCredentials                             uint                     `cbor:"9,keyasint,omitempty"`
	CredProtect                                  uint                     `cbor:"10,keyasint,omitempty"`
}

// rpEntityOut is an RP entity as credential management returns it.
type rpEntityOut struct {
	ID   string `cbor:"id"`
	Name string `cbor:"name,omitempty"`
}

// credEnumeration is the state of an RP or credential enumeration between
// its Begin and GetNext subcommands.
type credEnumeration struct {
	rps   []*residentCred // one credential per RP
	creds []*residentCred
}

func (a *Authenticator) credentialManagement(cmd Command, params []byte) (any, error) {
	// Only a GetNext right after its Begin or GetNext continues an
	// enumeration (§6.8.3, §6.8.4); any other request ends it, even one
	// that fails to decode.
	e := a.credEnum
	a.credEnum = nil
	var req authenticatorCredentialManagementRequest
	if err := decodeParams(params, &req); err != nil {
		return nil, err
	}
	if req.SubCommand == nil {
		return nil, ErrMissingParameter
	}
	sub := *req.SubCommand
	var sp credMgmtParams
	if len(req.SubCommandParams) > 0 {
		if err := unmarshal(req.SubCommandParams, &sp); err != nil {
			return nil, err
		}
	}
	// The GetNext subcommands carry no authentication: they continue the
	// enumeration begun, and authenticated, by the previous command.
	switch sub {
	case CredMgmtEnumerateRPsGetNextRP, CredMgmtEnumerateCredentialsGetNextCredential:
		if e == nil || a.lastCmd != cmd {
			return nil, ErrNotAllowed
		}
		if sub == CredMgmtEnumerateRPsGetNextRP && len(e.rps) > 0 {
			c := e.rps[0]
			e.rps = e.rps[1:]
			a.credEnum = e
			return rpResponse(c, 0), nil
		}
		if sub == CredMgmtEnumerateCredentialsGetNextCredential && len(e.creds) > 0 {
			c := e.creds[0]
			e.creds = e.creds[1:]
			a.credEnum = e
			return a.credResponse(c, 0)
		}
		return nil, ErrNotAllowed
	}
	if sub < CredMgmtGetCredsMetadata || sub > CredMgmtUpdateUserInformation {
		return nil, ErrInvalidSubcommand
	}
	msg := append([]byte{byte(sub)}, req.SubCommandParams...)
	p, err := a.checkSubcommandToken(req.PinUvAuthProtocol, req.PinUvAuthParam, msg, PermCredentialMgmt)
	if err != nil {
		return nil, err
	}
	// A token with a permissions RP ID manages that RP's credentials only;
	// CTAP 2.1 §6.8.2-6.8.6 answer any other use with PIN_AUTH_INVALID.
	boundRP := p.token.rpID

	switch sub {
	case CredMgmtGetCredsMetadata:
		if boundRP != "" {
			return nil, ErrPINAuthInvalid
		}
		existing := uint(len(a.st.Credentials))
		// A key reopened with a lower MaxCredentials can hold more.
		remaining := uint(max(a.cfg.MaxCredentials-len(a.st.Credentials), 0))
		return &authenticatorCredentialManagementResponse{
			ExistingResidentCredentialsCount:             &existing,
			MaxPossibleRemainingResidentCredentialsCount: &remaining,
		}, nil
	case CredMgmtEnumerateRPsBegin:
		if boundRP != "" {
			return nil, ErrPINAuthInvalid
		}
		var rps []*residentCred
		seen := map[string]bool{}
		for _, c := range a.st.Credentials {
			if !seen[c.RPID] {
				seen[c.RPID] = true
				rps = append(rps, c)
			}
		}
		if len(rps) == 0 {
			return nil, ErrNoCredentials
		}
		a.credEnum = &credEnumeration{rps: rps[1:]}
		return rpResponse(rps[0], uint(len(rps))), nil
	case CredMgmtEnumerateCredentialsBegin:
		if sp.RPIDHash == nil {
			return nil, ErrMissingParameter
		}
		// Checked before the lookup, so that a token bound to one RP
		// cannot learn which other RPs have credentials.
		if boundRP != "" {
			if h := sha256.Sum256([]byte(boundRP)); !bytes.Equal(h[:], *sp.RPIDHash) {
				return nil, ErrPINAuthInvalid
			}
		}
		var creds []*residentCred
		for _, c := range a.st.Credentials {
			h := sha256.Sum256([]byte(c.RPID))
			if bytes.Equal(h[:], *sp.RPIDHash) {
				creds = append(creds, c)
			}
		}
		if len(creds) == 0 {
			return nil, ErrNoCredentials
		}
		a.credEnum = &credEnumeration{creds: creds[1:]}
		return a.credResponse(creds[0], uint(len(creds)))
	case CredMgmtDeleteCredential, CredMgmtUpdateUserInformation:
		if sp.CredentialID == nil || sp.CredentialID.ID == nil {
			return nil, ErrMissingParameter
		}
		idx := -1
		for i, c := range a.st.Credentials {
			if bytes.Equal(c.ID, *sp.CredentialID.ID) {
				idx = i
			}
		}
		if idx < 0 {
			return nil, ErrNoCredentials
		}
		c := a.st.Credentials[idx]
		if boundRP != "" && boundRP != c.RPID {
			return nil, ErrPINAuthInvalid
		}
		if sub == CredMgmtDeleteCredential {
			a.st.Credentials = append(a.st.Credentials[:idx:idx], a.st.Credentials[idx+1:]...)
			a.dirty = true
			return nil, nil
		}
		if sp.User == nil || sp.User.ID == nil {
			return nil, ErrMissingParameter
		}
		if !bytes.Equal(*sp.User.ID, c.UserID) {
			return nil, ErrInvalidParameter
		}
		c.UserName = truncate(sp.User.Name)
		c.UserDisplayName = truncate(sp.User.DisplayName)
		a.dirty = true
		return nil, nil
	}
	return nil, ErrInvalidSubcommand
}

func rpResponse(c *residentCred, total uint) *authenticatorCredentialManagementResponse {
	h := sha256.Sum256([]byte(c.RPID))
	return &authenticatorCredentialManagementResponse{
		RP:       &rpEntityOut{ID: c.RPID, Name: c.RPName},
		RPIDHash: h[:],
		TotalRPs: total,
	}
}

func (a *Authenticator) credResponse(c *residentCred, total uint) (any, error) {
	h := sha256.Sum256([]byte(c.RPID))
	src := a.openCredential(h[:], c.ID)
	if src == nil {
		return nil, ErrOther
	}
	pub := src.key.publicCOSE()
	return &authenticatorCredentialManagementResponse{
		User:             &userEntityOut{ID: c.UserID, Name: c.UserName, DisplayName: c.UserDisplayName},
		CredentialID:     &credentialDescriptorOut{ID: c.ID, Type: coseKeyTypePublic},
		PublicKey:        &pub,
		TotalCredentials: total,
		CredProtect:      uint(c.CredProtect),
	}, nil
}
