package webauthn

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
)

// CollectedClientData is the client's view of a ceremony, which the key
// signs over by its hash (clientDataHash) and the service checks: the
// ceremony type, the service's challenge and the origin. Keydesk is never
// embedded in another site, so crossOrigin is always false and topOrigin
// absent.
//
// Specification: WebAuthn L3 §5.8.1. Client Data Used in WebAuthn Signatures (dictionary CollectedClientData) (https://www.w3.org/TR/webauthn-3/#dictdef-collectedclientdata)
type CollectedClientData struct {
	// Type is protocol.CreateCeremony ("webauthn.create") or
	// protocol.AssertCeremony ("webauthn.get").
	Type protocol.CeremonyType
	// Challenge is the service's challenge, raw; it is serialized in
	// base64url without padding.
	Challenge []byte
	// Origin is the configured origin.
	Origin Origin
}

// JSON serializes the client data exactly as the specification's
// serialization does, member by member in its order, so that services
// that check the JSON's prefix byte for byte (§5.8.1.2, Limited
// Verification Algorithm) accept it; encoding/json would escape "<", ">"
// and "&" differently.
//
// Specification: WebAuthn L3 §5.8.1.1. Serialization (https://www.w3.org/TR/webauthn-3/#clientdatajson-serialization)
func (c CollectedClientData) JSON() []byte {
	b := make([]byte, 0, 128+base64.RawURLEncoding.EncodedLen(len(c.Challenge)))
	b = append(b, `{"type":`...)
	b = appendCCDString(b, string(c.Type))
	b = append(b, `,"challenge":`...)
	b = appendCCDString(b, base64.RawURLEncoding.EncodeToString(c.Challenge))
	b = append(b, `,"origin":`...)
	b = appendCCDString(b, c.Origin.String())
	b = append(b, `,"crossOrigin":false}`...)
	return b
}

// Hash is SHA-256 of the serialized client data: the clientDataHash the
// key signs.
//
// Specification: WebAuthn L3 §5.8.1. Client Data Used in WebAuthn Signatures, hash of the serialized client data (https://www.w3.org/TR/webauthn-3/#collectedclientdata-hash-of-the-serialized-client-data)
func (c CollectedClientData) Hash() []byte {
	h := sha256.Sum256(c.JSON())
	return h[:]
}

// appendCCDString is the specification's CCDToString: a JSON string in
// which only '"' and '\' are escaped with a backslash and code points below
// U+0020 as \u and four lowercase hex digits; everything else, U+007F and
// non-ASCII included, is copied as UTF-8.
//
// Specification: WebAuthn L3 §5.8.1.1. Serialization, CCDToString (https://www.w3.org/TR/webauthn-3/#clientdatajson-serialization)
func appendCCDString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, '\\', '"')
		case r == '\\':
			b = append(b, '\\', '\\')
		case r == 0x20 || r == 0x21 || (r >= 0x23 && r <= 0x5b) || (r >= 0x5d && r <= utf8.MaxRune):
			b = utf8.AppendRune(b, r)
		default:
			b = fmt.Appendf(b, `\u%04x`, r)
		}
	}
	return append(b, '"')
}
