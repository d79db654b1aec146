package softkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"time"
)

// pinUvAuthProtocol is one of the two PIN/UV auth protocols. Each holds its
// own key agreement key and pinUvAuthToken, as the specification models them.
//
// Specification: §6.5. PIN/UV Auth Protocol Abstract Definition (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#pinProto)
type pinUvAuthProtocol struct {
	version int
	key     *ecdh.PrivateKey
	token   pinUvAuthToken
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

// Permission bits of getPinUvAuthTokenUsing{Pin,Uv}WithPermissions.
const (
	permMakeCredential   byte = 0x01 // mc
	permGetAssertion     byte = 0x02 // ga
	permCredentialMgmt   byte = 0x04 // cm
	permBioEnrollment    byte = 0x08 // be
	permLargeBlobWrite   byte = 0x10 // lbw
	permAuthenticatorCfg byte = 0x20 // acfg
)

// tokenMaxUsage bounds a pinUvAuthToken's life (§6.5.2.1 suggests at most
// ten minutes for a token obtained with a PIN).
const tokenMaxUsage = 10 * time.Minute

func newPinUvAuthProtocol(version int) *pinUvAuthProtocol {
	p := &pinUvAuthProtocol{version: version}
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

// sharedSecret derives the protocol's shared secret from the platform's
// key agreement key (§6.5.6 and §6.5.7 ecdh()).
func (p *pinUvAuthProtocol) sharedSecret(platform coseKey) ([]byte, error) {
	pub, err := platform.ecdhPublic()
	if err != nil {
		return nil, err
	}
	z, err := p.key.ECDH(pub)
	if err != nil {
		return nil, ErrInvalidParameter
	}
	if p.version == 1 {
		s := sha256.Sum256(z)
		return s[:], nil
	}
	salt := make([]byte, 32)
	hmacKey, err := hkdf.Key(sha256.New, z, salt, "CTAP2 HMAC key", 32)
	if err != nil {
		return nil, ErrOther
	}
	aesKey, err := hkdf.Key(sha256.New, z, salt, "CTAP2 AES key", 32)
	if err != nil {
		return nil, ErrOther
	}
	return append(hmacKey, aesKey...), nil
}

// aesKey and hmacKey pick the halves of a protocol 2 shared secret;
// protocol 1 uses the same 32 bytes for both.
func (p *pinUvAuthProtocol) aesKey(shared []byte) []byte {
	if p.version == 1 {
		return shared
	}
	return shared[32:]
}

func (p *pinUvAuthProtocol) hmacKey(shared []byte) []byte {
	if p.version == 1 || len(shared) == 32 {
		return shared
	}
	return shared[:32]
}

// encrypt is AES-256-CBC: protocol 1 with a zero IV, protocol 2 with a
// random IV prepended.
func (p *pinUvAuthProtocol) encrypt(shared, plain []byte) []byte {
	block, err := aes.NewCipher(p.aesKey(shared))
	if err != nil {
		panic("softkey: " + err.Error())
	}
	iv := make([]byte, aes.BlockSize)
	var out []byte
	if p.version == 2 {
		iv = randomBytes(aes.BlockSize)
		out = append(out, iv...)
	}
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, plain)
	return append(out, ct...)
}

// decrypt reverses encrypt; a ciphertext that is not whole blocks is an
// invalid parameter, as it cannot have come from a conforming platform.
func (p *pinUvAuthProtocol) decrypt(shared, ct []byte) ([]byte, error) {
	block, err := aes.NewCipher(p.aesKey(shared))
	if err != nil {
		return nil, ErrOther
	}
	iv := make([]byte, aes.BlockSize)
	if p.version == 2 {
		if len(ct) < aes.BlockSize {
			return nil, ErrInvalidParameter
		}
		iv, ct = ct[:aes.BlockSize], ct[aes.BlockSize:]
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, ErrInvalidParameter
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	return plain, nil
}

// authenticate computes the MAC of message under key: the first 16 bytes
// of HMAC-SHA-256 for protocol 1, all 32 for protocol 2.
func (p *pinUvAuthProtocol) authenticate(key, message []byte) []byte {
	m := hmac.New(sha256.New, p.hmacKey(key))
	m.Write(message)
	sum := m.Sum(nil)
	if p.version == 1 {
		return sum[:16]
	}
	return sum
}

// verify checks signature in constant time (§6.5.4 verify()).
func (p *pinUvAuthProtocol) verify(key, message, signature []byte) bool {
	return subtle.ConstantTimeCompare(p.authenticate(key, message), signature) == 1
}

// verifyToken checks a pinUvAuthParam made with the current token.
func (p *pinUvAuthProtocol) verifyToken(now time.Time, message, param []byte) bool {
	if !p.tokenValid(now) {
		return false
	}
	return p.verify(p.token.value, message, param)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("softkey: random: " + err.Error())
	}
	return b
}
