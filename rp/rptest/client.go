// Package rptest drives the reference RP in tests and benchmarks the way
// a real client does: registrations and assertions come from the software
// key (platform/softkey), in-process, turned into WebAuthn JSON by a
// small WebAuthn client, never from canned bytes.
package rptest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/keydesk/keydesk/platform/softkey"
)

// Key is a software security key with a WebAuthn client in front: it
// answers creation and request options as a browser with this key plugged
// in would, for Origin.
type Key struct {
	Authenticator *softkey.Authenticator
	// Origin is the web origin put in clientDataJSON.
	Origin string
	// Tamper, when set, may change what the client sends: the JSON
	// response as a map, before it is encoded (for bad-input tests).
	Tamper func(resp map[string]any)
	// UV asks the key for its built-in user verification (the simulated
	// fingerprint) whenever the options' userVerification is "required"
	// or "preferred", as a phone's passkey prompt does; the key must have
	// a fingerprint enrolled (NewUVKey).
	UV bool
}

// NewKey returns a key that approves every touch, has no PIN, and
// attests with its built-in certificate chain.
func NewKey(origin string) (*Key, error) {
	a, err := softkey.New(softkey.Config{Presence: softkey.ApproveAlways})
	if err != nil {
		return nil, err
	}
	return &Key{Authenticator: a, Origin: origin}, nil
}

var ctapEnc = func() cbor.EncMode {
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// B64 is WebAuthn JSON's base64url without padding: the type of the
// binary members of the JSON a Key produces, for Tamper functions.
type B64 []byte

func (b B64) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.RawURLEncoding.EncodeToString(b))
}

func (b *B64) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		// Some servers pad; accept it.
		v, err = base64.URLEncoding.DecodeString(s)
	}
	*b = v
	return err
}

type descriptor struct {
	Type string `json:"type"`
	ID   B64    `json:"id"`
}

// creationOptions is PublicKeyCredentialCreationOptionsJSON, the part a
// client needs.
type creationOptions struct {
	Challenge B64 `json:"challenge"`
	RP        struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"rp"`
	User struct {
		ID          B64    `json:"id"`
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
	} `json:"user"`
	PubKeyCredParams []struct {
		Type string `json:"type"`
		Alg  int    `json:"alg"`
	} `json:"pubKeyCredParams"`
	ExcludeCredentials     []descriptor `json:"excludeCredentials"`
	AuthenticatorSelection struct {
		ResidentKey      string `json:"residentKey"`
		UserVerification string `json:"userVerification"`
	} `json:"authenticatorSelection"`
}

// requestOptions is PublicKeyCredentialRequestOptionsJSON, the part a
// client needs.
type requestOptions struct {
	Challenge        B64          `json:"challenge"`
	RPID             string       `json:"rpId"`
	AllowCredentials []descriptor `json:"allowCredentials"`
	UserVerification string       `json:"userVerification"`
}

// wantsUV reports whether a browser with k would verify the user for
// options asking userVerification.
func (k *Key) wantsUV(userVerification string) bool {
	return k.UV && (userVerification == "required" || userVerification == "preferred")
}

// ErrStatus is a CTAP error status from the key.
type ErrStatus byte

func (e ErrStatus) Error() string { return fmt.Sprintf("CTAP status 0x%02x", byte(e)) }

// ctap sends a command to the key and decodes its response into out.
func (k *Key) ctap(cmd softkey.Command, params any, out any) error {
	req, err := ctapEnc.Marshal(params)
	if err != nil {
		return err
	}
	resp := k.Authenticator.CBOR(context.Background(), append([]byte{byte(cmd)}, req...), func(byte) {})
	if len(resp) == 0 {
		return errors.New("empty CTAP response")
	}
	if resp[0] != 0 {
		return ErrStatus(resp[0])
	}
	return cbor.Unmarshal(resp[1:], out)
}

// clientData builds clientDataJSON (WebAuthn §5.8.1) and its hash.
func (k *Key) clientData(typ string, challenge []byte) ([]byte, []byte) {
	cd, _ := json.Marshal(map[string]any{
		"type": typ, "challenge": base64.RawURLEncoding.EncodeToString(challenge),
		"origin": k.Origin, "crossOrigin": false,
	})
	h := sha256.Sum256(cd)
	return cd, h[:]
}

// Create answers creation options (the "publicKey" member) with
// RegistrationResponseJSON, as navigator.credentials.create() would.
func (k *Key) Create(publicKey []byte) ([]byte, error) {
	var o creationOptions
	if err := json.Unmarshal(publicKey, &o); err != nil {
		return nil, fmt.Errorf("creation options: %w", err)
	}
	cdj, cdh := k.clientData("webauthn.create", o.Challenge)
	params := map[int]any{
		1: cdh,
		2: map[string]any{"id": o.RP.ID, "name": o.RP.Name},
		3: map[string]any{"id": []byte(o.User.ID), "name": o.User.Name, "displayName": o.User.DisplayName},
	}
	var algs []map[string]any
	for _, p := range o.PubKeyCredParams {
		algs = append(algs, map[string]any{"alg": p.Alg, "type": p.Type})
	}
	params[4] = algs
	if len(o.ExcludeCredentials) > 0 {
		params[5] = descriptorsCBOR(o.ExcludeCredentials)
	}
	options := map[string]bool{}
	if o.AuthenticatorSelection.ResidentKey == "required" || o.AuthenticatorSelection.ResidentKey == "preferred" {
		options["rk"] = true
	}
	if k.wantsUV(o.AuthenticatorSelection.UserVerification) {
		options["uv"] = true
	}
	if len(options) > 0 {
		params[7] = options
	}
	var r struct {
		Fmt      string          `cbor:"1,keyasint"`
		AuthData []byte          `cbor:"2,keyasint"`
		AttStmt  cbor.RawMessage `cbor:"3,keyasint"`
	}
	if err := k.ctap(softkey.CmdMakeCredential, params, &r); err != nil {
		return nil, err
	}
	attObj, err := ctapEnc.Marshal(map[string]any{"fmt": r.Fmt, "authData": r.AuthData, "attStmt": r.AttStmt})
	if err != nil {
		return nil, err
	}
	// authData: rpIdHash(32) flags(1) signCount(4) aaguid(16) L(2) credentialId(L)...
	if len(r.AuthData) < 55 {
		return nil, errors.New("authenticator data too short")
	}
	l := int(r.AuthData[53])<<8 | int(r.AuthData[54])
	if len(r.AuthData) < 55+l {
		return nil, errors.New("authenticator data too short for its credential ID")
	}
	id := r.AuthData[55 : 55+l]
	resp := map[string]any{
		"id": B64(id), "rawId": B64(id), "type": "public-key", "authenticatorAttachment": "cross-platform",
		"response": map[string]any{
			"clientDataJSON": B64(cdj), "attestationObject": B64(attObj), "transports": []string{"usb"},
		},
		"clientExtensionResults": map[string]any{},
	}
	return k.encode(resp)
}

// Get answers request options with AuthenticationResponseJSON, as
// navigator.credentials.get() would; a discoverable request takes the
// newest credential for the RP.
func (k *Key) Get(publicKey []byte) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(publicKey, &o); err != nil {
		return nil, fmt.Errorf("request options: %w", err)
	}
	cdj, cdh := k.clientData("webauthn.get", o.Challenge)
	params := map[int]any{1: o.RPID, 2: cdh}
	if len(o.AllowCredentials) > 0 {
		params[3] = descriptorsCBOR(o.AllowCredentials)
	}
	if k.wantsUV(o.UserVerification) {
		params[5] = map[string]bool{"uv": true}
	}
	var r struct {
		Credential struct {
			ID []byte `cbor:"id"`
		} `cbor:"1,keyasint"`
		AuthData  []byte `cbor:"2,keyasint"`
		Signature []byte `cbor:"3,keyasint"`
		User      *struct {
			ID []byte `cbor:"id"`
		} `cbor:"4,keyasint"`
	}
	if err := k.ctap(softkey.CmdGetAssertion, params, &r); err != nil {
		return nil, err
	}
	response := map[string]any{
		"clientDataJSON": B64(cdj), "authenticatorData": B64(r.AuthData), "signature": B64(r.Signature),
	}
	if r.User != nil {
		response["userHandle"] = B64(r.User.ID)
	}
	resp := map[string]any{
		"id": B64(r.Credential.ID), "rawId": B64(r.Credential.ID), "type": "public-key",
		"authenticatorAttachment": "cross-platform", "response": response, "clientExtensionResults": map[string]any{},
	}
	return k.encode(resp)
}

func (k *Key) encode(resp map[string]any) ([]byte, error) {
	if k.Tamper != nil {
		k.Tamper(resp)
	}
	return json.Marshal(resp)
}

func descriptorsCBOR(ds []descriptor) []map[string]any {
	var out []map[string]any
	for _, d := range ds {
		out = append(out, map[string]any{"id": []byte(d.ID), "type": d.Type})
	}
	return out
}
