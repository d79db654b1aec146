package softkey

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"time"

	"github.com/keydesk/keydesk/platform/pinuvauth"
)

// pinUvAuthProtocol is the authenticator's state of one of the two PIN/UV
// auth protocols: its own key agreement key and pinUvAuthToken, as the
// specification models them. The cryptography is package pinuvauth's.
//
// Specification: §6.5. PIN/UV Auth Protocol Abstract Definition (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#pinProto)
type pinUvAuthProtocol struct {
	proto pinuvauth.Protocol
	key   *ecdh.PrivateKey
	token pinUvAuthToken
}

// pinUvAuthToken is the token state of §6.5.2.1: the token itself, its
// permissions and RP binding, and how it was obtained.
type pinUvAuthToken struct {
	value        []byte
	inUse        bool
	permissions  byte
	rpID         string // "" when no RP ID is associated
	userVerified bool
	userPresent  bool
	issued       time.Time
}

// tokenMaxUsage bounds a pinUvAuthToken's life (§6.5.2.1 suggests at most
// ten minutes for a token obtained with a PIN).
const tokenMaxUsage = 10 * time.Minute

func newPinUvAuthProtocol(proto pinuvauth.Protocol) *pinUvAuthProtocol {
	p := &pinUvAuthProtocol{proto: proto}
	p.regenerate()
	p.resetToken()
	return p
}

// regenerate replaces the key agreement key (§6.5.4 regenerate()).
func (p *pinUvAuthProtocol) regenerate() {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic("softkey: ECDH key generation: " + err.Error())
	}
	p.key = k
}

// resetToken issues a fresh token with no permissions (§6.5.4 resetPinUvAuthToken()).
func (p *pinUvAuthProtocol) resetToken() {
	p.token = pinUvAuthToken{value: randomBytes(32)}
}

// beginUsingToken arms the token after a successful PIN or UV check.
func (p *pinUvAuthProtocol) beginUsingToken(now time.Time, perms byte, rpID string, uv bool) {
	p.token.inUse = true
	p.token.permissions = perms
	p.token.rpID = rpID
	p.token.userVerified = uv
	p.token.issued = now
}

// tokenValid reports whether the token can still be used.
func (p *pinUvAuthProtocol) tokenValid(now time.Time) bool {
	if !p.token.inUse {
		return false
	}
	if now.Sub(p.token.issued) > tokenMaxUsage {
		p.token = pinUvAuthToken{value: p.token.value}
		return false
	}
	return true
}

// sharedSecret is decapsulate(): the secret shared with the platform's
// key agreement key, or INVALID_PARAMETER for a key that is not a P-256
// point.
func (p *pinUvAuthProtocol) sharedSecret(platform pinuvauth.COSEKey) ([]byte, error) {
	shared, err := p.proto.Decapsulate(p.key, platform)
	return shared, pinUvAuthStatus(err)
}

// encrypt is encrypt() with a failure (which a conforming caller cannot
// cause) as CTAP1_ERR_OTHER.
func (p *pinUvAuthProtocol) encrypt(shared, plain []byte) ([]byte, error) {
	ct, err := p.proto.Encrypt(shared, plain)
	if err != nil {
		return nil, ErrOther
	}
	return ct, nil
}

// decrypt is decrypt(); a ciphertext that is not whole blocks is an
// invalid parameter, as it cannot have come from a conforming platform.
func (p *pinUvAuthProtocol) decrypt(shared, ct []byte) ([]byte, error) {
	plain, err := p.proto.Decrypt(shared, ct)
	return plain, pinUvAuthStatus(err)
}

// pinUvAuthStatus is the CTAP status of a pinuvauth error: INVALID_PARAMETER for
// what the platform sent, CTAP1_ERR_OTHER for anything else.
func pinUvAuthStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pinuvauth.ErrBadKeyAgreement), errors.Is(err, pinuvauth.ErrBadCiphertext):
		return ErrInvalidParameter
	}
	return ErrOther
}

// verifyToken checks a pinUvAuthParam made with the current token.
func (p *pinUvAuthProtocol) verifyToken(now time.Time, message, param []byte) bool {
	if !p.tokenValid(now) {
		return false
	}
	return p.proto.Verify(p.token.value, message, param)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("softkey: random: " + err.Error())
	}
	return b
}
