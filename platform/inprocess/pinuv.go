package inprocess

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// coseKey is the COSE_Key of a P-256 key agreement key, as
// getKeyAgreement returns it and the platform sends its own.
//
// Specification: CTAP 2.1 §6.5.6. getPublicKey() (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#pinProto1)
type coseKey struct {
	Kty int    `cbor:"1,keyasint"`
	Alg int    `cbor:"3,keyasint"`
	Crv int    `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint,omitempty"`
}

// COSE values of an ECDH-ES+HKDF-256 key on P-256.
const (
	coseKtyEC2       = 2
	coseCrvP256      = 1
	algECDHESHKDF256 = -25
)

// pinProtocol is the platform half of one PIN/UV auth protocol: the key
// agreement, the encryption of PINs and the MAC of pinUvAuthParams.
//
// Specification: CTAP 2.1 §6.5.6 PIN/UV Auth Protocol One and §6.5.7 PIN/UV Auth Protocol Two (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#pinProto1)
type pinProtocol struct {
	version int
}

// errBadKeyAgreement is a key agreement key that is not a P-256 point.
var errBadKeyAgreement = errors.New("key agreement key is not a P-256 point")

// encapsulate generates the platform's key agreement key and derives the
// shared secret with the authenticator's (§6.5.4 encapsulate()).
func (p pinProtocol) encapsulate(peer coseKey) (coseKey, []byte, error) {
	if peer.Kty != coseKtyEC2 || peer.Crv != coseCrvP256 || len(peer.X) != 32 || len(peer.Y) != 32 {
		return coseKey{}, nil, errBadKeyAgreement
	}
	raw := append(append([]byte{4}, peer.X...), peer.Y...)
	pub, err := ecdh.P256().NewPublicKey(raw)
	if err != nil {
		return coseKey{}, nil, errBadKeyAgreement
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return coseKey{}, nil, err
	}
	z, err := priv.ECDH(pub)
	if err != nil {
		return coseKey{}, nil, err
	}
	defer clear(z)
	own := priv.PublicKey().Bytes()
	platformKey := coseKey{Kty: coseKtyEC2, Alg: algECDHESHKDF256, Crv: coseCrvP256, X: own[1:33], Y: own[33:65]}
	if p.version == 1 {
		s := sha256.Sum256(z)
		return platformKey, s[:], nil
	}
	salt := make([]byte, 32)
	hmacKey, err := hkdf.Key(sha256.New, z, salt, "CTAP2 HMAC key", 32)
	if err != nil {
		return coseKey{}, nil, err
	}
	aesKey, err := hkdf.Key(sha256.New, z, salt, "CTAP2 AES key", 32)
	if err != nil {
		return coseKey{}, nil, err
	}
	return platformKey, append(hmacKey, aesKey...), nil
}

// aesKey and hmacKey pick the halves of a protocol 2 shared secret;
// protocol 1 uses the same 32 bytes for both, and a pinUvAuthToken (32
// bytes) is its own HMAC key in both.
func (p pinProtocol) aesKey(shared []byte) []byte {
	if p.version == 1 || len(shared) == 32 {
		return shared
	}
	return shared[32:]
}

func (p pinProtocol) hmacKey(key []byte) []byte {
	if p.version == 1 || len(key) == 32 {
		return key
	}
	return key[:32]
}

// encrypt is AES-256-CBC: protocol 1 with a zero IV, protocol 2 with a
// random IV prepended. plain must be whole blocks.
func (p pinProtocol) encrypt(shared, plain []byte) ([]byte, error) {
	block, err := aes.NewCipher(p.aesKey(shared))
	if err != nil {
		return nil, err
	}
	iv := make([]byte, aes.BlockSize)
	var out []byte
	if p.version == 2 {
		if _, err := rand.Read(iv); err != nil {
			return nil, err
		}
		out = append(out, iv...)
	}
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, plain)
	return append(out, ct...), nil
}

// errBadCiphertext is an encrypted answer that is not whole AES blocks.
var errBadCiphertext = errors.New("ciphertext is not whole AES blocks")

// decrypt reverses encrypt.
func (p pinProtocol) decrypt(shared, ct []byte) ([]byte, error) {
	block, err := aes.NewCipher(p.aesKey(shared))
	if err != nil {
		return nil, err
	}
	iv := make([]byte, aes.BlockSize)
	if p.version == 2 {
		if len(ct) < aes.BlockSize {
			return nil, errBadCiphertext
		}
		iv, ct = ct[:aes.BlockSize], ct[aes.BlockSize:]
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, errBadCiphertext
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	return plain, nil
}

// authenticate is the pinUvAuthParam of message under key: the first 16
// bytes of HMAC-SHA-256 for protocol 1, all 32 for protocol 2.
func (p pinProtocol) authenticate(key, message []byte) []byte {
	m := hmac.New(sha256.New, p.hmacKey(key))
	m.Write(message)
	sum := m.Sum(nil)
	if p.version == 1 {
		return sum[:16]
	}
	return sum
}

// pinHash is LEFT(SHA-256(pin), 16), what the key compares.
func pinHash(pin []byte) []byte {
	h := sha256.Sum256(pin)
	defer clear(h[:])
	return append([]byte(nil), h[:16]...)
}

// paddedPIN is the PIN in 64 zero-padded bytes, as newPinEnc carries it
// (§6.5.5.5); pins longer than 63 bytes are refused earlier by CheckPIN.
func paddedPIN(pin string) []byte {
	b := make([]byte, 64)
	copy(b, pin)
	return b
}
