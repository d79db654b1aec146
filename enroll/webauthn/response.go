package webauthn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-webauthn/webauthn/protocol"

	"github.com/keydesk/keydesk/platform"
)

// cborEnc encodes in CTAP2 canonical CBOR (CTAP 2.1 §8), the encoding of
// attestation objects: map keys sorted by length, then bytewise.
var cborEnc = func() cbor.EncMode {
	m, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// cborDec decodes what keys send, refusing duplicate map keys and
// indefinite lengths, which no canonical encoder produces.
var cborDec = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:   cbor.DupMapKeyEnforcedAPF,
		IndefLength: cbor.IndefLengthForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// emptyCBORMap is the attestation statement of the "none" format.
var emptyCBORMap = []byte{0xa0}

// Authenticator data flags.
//
// Specification: WebAuthn L3 §6.1. Authenticator Data (https://www.w3.org/TR/webauthn-3/#sctn-authenticator-data)
const (
	flagAT = 0x40 // attested credential data included
	flagED = 0x80 // extension data included
)

// Offsets in authenticator data: rpIdHash (32), flags (1), signCount (4),
// then the attested credential data's aaguid (16) and credentialIdLength
// (2).
const (
	authDataHeaderLength = 32 + 1 + 4
	aaguidOffset         = authDataHeaderLength
	aaguidLength         = 16
)

// authenticatorData is authenticator data split into the parts a client
// checks and reports.
//
// Specification: WebAuthn L3 §6.1. Authenticator Data (https://www.w3.org/TR/webauthn-3/#sctn-authenticator-data)
type authenticatorData struct {
	rpIDHash []byte
	flags    byte
	// The attested credential data (§6.5.1), when flag AT is set.
	aaguid              []byte
	credentialID        []byte
	credentialPublicKey []byte // a COSE_Key, raw CBOR
}

// keyError is a key's answer that does not add up.
func keyError(detail string, err error) error {
	return &Error{Kind: platform.ErrProtocol, Detail: detail, Err: err}
}

// parseAuthenticatorData splits b, refusing truncated data, trailing bytes
// and CBOR that is not well formed.
func parseAuthenticatorData(b []byte) (*authenticatorData, error) {
	if len(b) < authDataHeaderLength {
		return nil, keyError("the authenticator data is too short", nil)
	}
	ad := &authenticatorData{rpIDHash: b[:32], flags: b[32]}
	rest := b[authDataHeaderLength:]
	if ad.flags&flagAT != 0 {
		if len(rest) < aaguidLength+2 {
			return nil, keyError("the attested credential data is too short", nil)
		}
		ad.aaguid = rest[:aaguidLength]
		n := int(binary.BigEndian.Uint16(rest[aaguidLength:]))
		rest = rest[aaguidLength+2:]
		if n == 0 || n > MaxCredentialIDLength || len(rest) < n {
			return nil, keyError(fmt.Sprintf("the credential ID length %d is invalid", n), nil)
		}
		ad.credentialID, rest = rest[:n], rest[n:]
		var key cbor.RawMessage
		var err error
		if rest, err = cborDec.UnmarshalFirst(rest, &key); err != nil {
			return nil, keyError("the credential public key is not valid CBOR", err)
		}
		ad.credentialPublicKey = key
	}
	if ad.flags&flagED != 0 {
		var ext map[string]cbor.RawMessage
		var err error
		if rest, err = cborDec.UnmarshalFirst(rest, &ext); err != nil {
			return nil, keyError("the extension outputs are not a valid CBOR map", err)
		}
	}
	if len(rest) != 0 {
		return nil, keyError("the authenticator data has trailing bytes", nil)
	}
	return ad, nil
}

// checkRPIDHash checks that the key answered for the RP ID it was asked
// about.
func (ad *authenticatorData) checkRPIDHash(rpID string) error {
	want := sha256.Sum256([]byte(rpID))
	if !bytes.Equal(ad.rpIDHash, want[:]) {
		return keyError("the key answered for another site", nil)
	}
	return nil
}

// COSE key parameters and values.
//
// Specification: RFC 9053 §7. Key Object Parameters (https://www.rfc-editor.org/rfc/rfc9053#section-7)
const (
	coseKty    = 1
	coseAlg    = 3
	coseCrv    = -1 // also n of an RSA key
	coseX      = -2 // also e of an RSA key
	coseY      = -3
	ktyOKP     = 1
	ktyEC2     = 2
	ktyRSA     = 3
	crvP256    = 1
	crvEd25519 = 6
)

// publicKeyOf reads a credential public key (a COSE_Key) and returns its
// algorithm and its SubjectPublicKeyInfo, the form of
// getPublicKey(); the SPKI is nil for an algorithm Keydesk does not know.
//
// Specification: WebAuthn L3 §5.2.1.1. Easily accessing credential data (https://www.w3.org/TR/webauthn-3/#sctn-public-key-easy)
func publicKeyOf(coseKey []byte) (int, []byte, error) {
	var m map[int]cbor.RawMessage
	if err := cborDec.Unmarshal(coseKey, &m); err != nil {
		return 0, nil, keyError("the credential public key is not a COSE key", err)
	}
	var kty, alg int
	if err := cborDec.Unmarshal(m[coseKty], &kty); err != nil {
		return 0, nil, keyError("the credential public key has no key type", err)
	}
	if err := cborDec.Unmarshal(m[coseAlg], &alg); err != nil {
		return 0, nil, keyError("the credential public key has no algorithm", err)
	}
	var (
		pub any
		err error
	)
	switch alg {
	case platform.COSEAlgES256:
		pub, err = ec2Key(m, kty)
	case platform.COSEAlgEdDSA:
		pub, err = okpKey(m, kty)
	case platform.COSEAlgRS256:
		pub, err = rsaKey(m, kty)
	default:
		return alg, nil, nil
	}
	if err != nil {
		return 0, nil, keyError(fmt.Sprintf("the %s credential public key is invalid", algorithmName(alg)), err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return 0, nil, keyError("the credential public key cannot be encoded", err)
	}
	return alg, spki, nil
}

// coseBytes reads a byte-string parameter of a COSE key.
func coseBytes(m map[int]cbor.RawMessage, label int) ([]byte, error) {
	var b []byte
	if err := cborDec.Unmarshal(m[label], &b); err != nil || len(b) == 0 {
		return nil, fmt.Errorf("parameter %d is missing or not a byte string", label)
	}
	return b, nil
}

// ec2Key reads a P-256 key (the point is checked to be on the curve).
func ec2Key(m map[int]cbor.RawMessage, kty int) (*ecdsa.PublicKey, error) {
	var crv int
	if err := cborDec.Unmarshal(m[coseCrv], &crv); err != nil || kty != ktyEC2 || crv != crvP256 {
		return nil, errors.New("not an EC2 key on P-256")
	}
	x, err := coseBytes(m, coseX)
	if err != nil {
		return nil, err
	}
	y, err := coseBytes(m, coseY)
	if err != nil {
		return nil, err
	}
	if len(x) != 32 || len(y) != 32 {
		return nil, errors.New("coordinates are not 32 bytes")
	}
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), slices.Concat([]byte{4}, x, y))
}

// okpKey reads an Ed25519 key.
func okpKey(m map[int]cbor.RawMessage, kty int) (ed25519.PublicKey, error) {
	var crv int
	if err := cborDec.Unmarshal(m[coseCrv], &crv); err != nil || kty != ktyOKP || crv != crvEd25519 {
		return nil, errors.New("not an OKP key on Ed25519")
	}
	x, err := coseBytes(m, coseX)
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, errors.New("the key is not 32 bytes")
	}
	return ed25519.PublicKey(x), nil
}

// rsaKey reads an RSA key of 2048 bits or more.
func rsaKey(m map[int]cbor.RawMessage, kty int) (*rsa.PublicKey, error) {
	if kty != ktyRSA {
		return nil, errors.New("not an RSA key")
	}
	n, err := coseBytes(m, coseCrv)
	if err != nil {
		return nil, err
	}
	e, err := coseBytes(m, coseX)
	if err != nil {
		return nil, err
	}
	N := new(big.Int).SetBytes(n)
	E := new(big.Int).SetBytes(e)
	if N.BitLen() < 2048 || N.BitLen() > 16384 || !E.IsInt64() || E.Int64() < 3 || E.Int64() > 1<<31-1 || E.Bit(0) == 0 {
		return nil, errors.New("the modulus or exponent is out of range")
	}
	return &rsa.PublicKey{N: N, E: int(E.Int64())}, nil
}

// attestationObject is the attestation object: the three members in CTAP2
// canonical order ("fmt", "attStmt", "authData": by length, then
// bytewise), the statement kept as the key's own CBOR.
//
// Specification: WebAuthn L3 §6.5.4. Generating an Attestation Object (https://www.w3.org/TR/webauthn-3/#sctn-generating-an-attestation-object)
type attestationObject struct {
	Fmt      string          `cbor:"fmt"`
	AttStmt  cbor.RawMessage `cbor:"attStmt"`
	AuthData []byte          `cbor:"authData"`
}

// checkFormat checks an attestation statement format identifier: 1 to 32
// printable ASCII characters.
//
// Specification: WebAuthn L3 §8.1. Attestation Statement Format Identifiers (https://www.w3.org/TR/webauthn-3/#sctn-attstn-fmt-ids)
func checkFormat(f string) error {
	if f == "" || len(f) > 32 {
		return keyError("the attestation format name is empty or too long", nil)
	}
	for i := 0; i < len(f); i++ {
		if f[i] < 0x21 || f[i] > 0x7e {
			return keyError("the attestation format name is not printable ASCII", nil)
		}
	}
	return nil
}

// checkAttStmt checks that an attestation statement is one well-formed
// CBOR map and says whether it holds a certificate chain (x5c).
func checkAttStmt(attStmt []byte) (x5c bool, err error) {
	if len(attStmt) == 0 || attStmt[0]>>5 != 5 {
		return false, keyError("the attestation statement is not a CBOR map", nil)
	}
	var m map[string]cbor.RawMessage
	if err := cborDec.Unmarshal(attStmt, &m); err != nil {
		return false, keyError("the attestation statement is not a valid CBOR map", err)
	}
	_, x5c = m["x5c"]
	return x5c, nil
}

// Response turns the key's attestation into the service's response, the
// JSON of PublicKeyCredential.toJSON() (RegistrationResponseJSON). It
// checks that the key answered for this RP, with an algorithm that was
// asked for, and about the credential it names. Under attestation "none"
// the key's statement is replaced by the "none" format, unless it is
// self attestation, which identifies nothing.
//
// Specification: WebAuthn L3 §5.1.3. Create a New Credential, constructCredentialAlg (https://www.w3.org/TR/webauthn-3/#sctn-createCredential)
//
// Specification: WebAuthn L3 §5.1.8. Serialization (PublicKeyCredential's toJSON() Method) (https://www.w3.org/TR/webauthn-3/#dom-publickeycredential-tojson)
func (r *Registration) Response(att *platform.Attestation) ([]byte, error) {
	if att == nil {
		return nil, keyError("the key returned no attestation", nil)
	}
	ad, err := parseAuthenticatorData(att.AuthData)
	if err != nil {
		return nil, err
	}
	if err := ad.checkRPIDHash(r.Request.RP.ID); err != nil {
		return nil, err
	}
	if ad.flags&flagAT == 0 {
		return nil, keyError("the authenticator data holds no new credential", nil)
	}
	if len(att.CredentialID) > 0 && !bytes.Equal(att.CredentialID, ad.credentialID) {
		return nil, keyError("the credential ID differs from the one in the authenticator data", nil)
	}
	alg, spki, err := publicKeyOf(ad.credentialPublicKey)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(r.Request.Algorithms, alg) {
		return nil, keyError(fmt.Sprintf("the key used %s, which the service did not ask for", algorithmName(alg)), nil)
	}
	format, attStmt := att.Format, att.AttStmt
	if err := checkFormat(format); err != nil {
		return nil, err
	}
	if format == "none" && len(attStmt) == 0 {
		attStmt = emptyCBORMap
	}
	x5c, err := checkAttStmt(attStmt)
	if err != nil {
		return nil, err
	}
	authData := att.AuthData
	if r.Attestation == protocol.PreferNoAttestation {
		selfAttestation := format == "packed" && !x5c && isZero(ad.aaguid)
		if !selfAttestation {
			format, attStmt = "none", emptyCBORMap
			if r.BlindAAGUID {
				authData = slices.Clone(authData)
				clear(authData[aaguidOffset : aaguidOffset+aaguidLength])
			}
		}
	}
	attObj, err := cborEnc.Marshal(attestationObject{Fmt: format, AttStmt: attStmt, AuthData: authData})
	if err != nil {
		return nil, keyError("the attestation object cannot be encoded", err)
	}
	transports := r.Transports
	if transports == nil {
		transports = []string{}
	}
	out := registrationResponseJSON{
		ID:    b64(ad.credentialID),
		RawID: b64(ad.credentialID),
		Response: authenticatorAttestationResponseJSON{
			ClientDataJSON:     b64(r.ClientDataJSON),
			AuthenticatorData:  b64(authData),
			Transports:         transports,
			PublicKey:          b64(spki),
			PublicKeyAlgorithm: alg,
			AttestationObject:  b64(attObj),
		},
		AuthenticatorAttachment: string(protocol.CrossPlatform),
		Type:                    credentialTypePublicKey,
	}
	if r.CredProps {
		// The key had to store the credential when asked to (rk), and
		// was not asked otherwise: the client knows either way.
		out.ClientExtensionResults.CredProps = &credentialPropertiesOutput{RK: r.Request.ResidentKey}
	}
	return json.Marshal(out)
}

// Response turns one of the key's assertions into the service's response,
// the JSON of PublicKeyCredential.toJSON() (AuthenticationResponseJSON).
// It checks that the key answered for this RP, with a credential of the
// allow list, and names the account when the service must find it from
// the assertion (an empty allow list).
//
// Specification: WebAuthn L3 §5.1.4.2. Issuing a Credential Request to an Authenticator (https://www.w3.org/TR/webauthn-3/#sctn-issuing-cred-request-to-authenticator)
//
// Specification: WebAuthn L3 §5.1.8. Serialization (PublicKeyCredential's toJSON() Method) (https://www.w3.org/TR/webauthn-3/#dom-publickeycredential-tojson)
func (a *Authentication) Response(as platform.Assertion) ([]byte, error) {
	allow := a.Request.AllowList
	id := as.CredentialID
	// CTAP 2.1 §6.2: a key may leave out the credential when the allow
	// list held exactly one.
	if len(id) == 0 && len(allow) == 1 {
		id = allow[0]
	}
	if len(id) == 0 || len(id) > MaxCredentialIDLength {
		return nil, keyError("the key did not say which credential it used", nil)
	}
	if len(allow) > 0 && !slices.ContainsFunc(allow, func(c []byte) bool { return bytes.Equal(c, id) }) {
		return nil, keyError("the key used a credential the service did not ask for", nil)
	}
	ad, err := parseAuthenticatorData(as.AuthData)
	if err != nil {
		return nil, err
	}
	if err := ad.checkRPIDHash(a.Request.RPID); err != nil {
		return nil, err
	}
	if len(as.Signature) == 0 {
		return nil, keyError("the key returned no signature", nil)
	}
	var userHandle []byte
	if as.User != nil {
		userHandle = as.User.ID
	}
	if len(userHandle) > MaxUserIDLength {
		return nil, keyError("the user handle is longer than 64 bytes", nil)
	}
	if len(allow) == 0 && len(userHandle) == 0 {
		return nil, keyError("the key did not say which account the passkey belongs to", nil)
	}
	out := authenticationResponseJSON{
		ID:    b64(id),
		RawID: b64(id),
		Response: authenticatorAssertionResponseJSON{
			ClientDataJSON:    b64(a.ClientDataJSON),
			AuthenticatorData: b64(as.AuthData),
			Signature:         b64(as.Signature),
			UserHandle:        b64(userHandle),
		},
		AuthenticatorAttachment: string(protocol.CrossPlatform),
		Type:                    credentialTypePublicKey,
	}
	return json.Marshal(out)
}

// registrationResponseJSON is RegistrationResponseJSON, members in the
// IDL's order.
//
// Specification: WebAuthn L3 §5.1.8. Serialization, RegistrationResponseJSON (https://www.w3.org/TR/webauthn-3/#dictdef-registrationresponsejson)
type registrationResponseJSON struct {
	ID                      string                               `json:"id"`
	RawID                   string                               `json:"rawId"`
	Response                authenticatorAttestationResponseJSON `json:"response"`
	AuthenticatorAttachment string                               `json:"authenticatorAttachment"`
	ClientExtensionResults  clientExtensionResultsJSON           `json:"clientExtensionResults"`
	Type                    string                               `json:"type"`
}

// authenticatorAttestationResponseJSON is
// AuthenticatorAttestationResponseJSON; publicKey is left out for an
// algorithm Keydesk cannot describe, as the IDL allows.
//
// Specification: WebAuthn L3 §5.1.8. Serialization, AuthenticatorAttestationResponseJSON (https://www.w3.org/TR/webauthn-3/#dictdef-authenticatorattestationresponsejson)
type authenticatorAttestationResponseJSON struct {
	ClientDataJSON     string   `json:"clientDataJSON"`
	AuthenticatorData  string   `json:"authenticatorData"`
	Transports         []string `json:"transports"`
	PublicKey          string   `json:"publicKey,omitempty"`
	PublicKeyAlgorithm int      `json:"publicKeyAlgorithm"`
	AttestationObject  string   `json:"attestationObject"`
}

// authenticationResponseJSON is AuthenticationResponseJSON.
//
// Specification: WebAuthn L3 §5.1.8. Serialization, AuthenticationResponseJSON (https://www.w3.org/TR/webauthn-3/#dictdef-authenticationresponsejson)
type authenticationResponseJSON struct {
	ID                      string                             `json:"id"`
	RawID                   string                             `json:"rawId"`
	Response                authenticatorAssertionResponseJSON `json:"response"`
	AuthenticatorAttachment string                             `json:"authenticatorAttachment"`
	ClientExtensionResults  clientExtensionResultsJSON         `json:"clientExtensionResults"`
	Type                    string                             `json:"type"`
}

// authenticatorAssertionResponseJSON is AuthenticatorAssertionResponseJSON.
//
// Specification: WebAuthn L3 §5.1.8. Serialization, AuthenticatorAssertionResponseJSON (https://www.w3.org/TR/webauthn-3/#dictdef-authenticatorassertionresponsejson)
type authenticatorAssertionResponseJSON struct {
	ClientDataJSON    string `json:"clientDataJSON"`
	AuthenticatorData string `json:"authenticatorData"`
	Signature         string `json:"signature"`
	UserHandle        string `json:"userHandle,omitempty"`
}

// clientExtensionResultsJSON is AuthenticationExtensionsClientOutputsJSON
// with the one output Keydesk produces; it is {} without it.
//
// Specification: WebAuthn L3 §5.1.8. Serialization, AuthenticationExtensionsClientOutputsJSON (https://www.w3.org/TR/webauthn-3/#dictdef-authenticationextensionsclientoutputsjson)
type clientExtensionResultsJSON struct {
	CredProps *credentialPropertiesOutput `json:"credProps,omitempty"`
}

// credentialPropertiesOutput is the credProps extension's output.
//
// Specification: WebAuthn L3 §10.1.3. Credential Properties Extension (credProps) (https://www.w3.org/TR/webauthn-3/#sctn-authenticator-credential-properties-extension)
type credentialPropertiesOutput struct {
	RK bool `json:"rk"`
}

// b64 is base64url without padding, the encoding of every binary member
// of the JSON forms.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// hash is SHA-256.
func hash(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// isZero reports whether b is all zero bytes.
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
