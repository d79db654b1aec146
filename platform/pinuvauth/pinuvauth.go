// Package pinuvauth is the cryptography of CTAP 2.1's PIN/UV auth
// protocols one and two, shared by the authenticator (package softkey) and
// the platform (package inprocess) so that both sides run the same code.
package pinuvauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Protocol is a PIN/UV auth protocol, valued as the pinUvAuthProtocol
// number that requests carry. Its methods are the operations of §6.5.4;
// the authenticator's key agreement key and pinUvAuthToken stay with the
// caller, which owns their lifetime.
//
// Specification: §6.5.4. PIN/UV Auth Protocol Abstract Definition (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#pinProto)
type Protocol int

// The two protocols of CTAP 2.1.
const (
	// One derives SHA-256(Z), encrypts with a zero IV and truncates the
	// MAC to 16 bytes: what CTAP 2.0 keys speak.
	//
	// Specification: §6.5.6. PIN/UV Auth Protocol One (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#pinProto1)
	One Protocol = 1
	// Two derives separate HMAC and AES keys with HKDF-SHA-256, encrypts
	// with a random IV and keeps the whole MAC.
	//
	// Specification: §6.5.7. PIN/UV Auth Protocol Two (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#pinProto2)
	Two Protocol = 2
)

// Lengths of the clientPIN plaintexts (§6.5.5.5, §6.5.5.7).
const (
	// PaddedPINLength is the length of a PIN padded for newPinEnc.
	PaddedPINLength = 64
	// PINHashLength is the length of LEFT(SHA-256(PIN), 16) in pinHashEnc.
	PINHashLength = 16
)

// Errors that callers turn into their own (a CTAP status on the
// authenticator, a protocol error on the platform).
var (
	// ErrUnsupportedProtocol is a Protocol other than One and Two.
	ErrUnsupportedProtocol = errors.New("unsupported PIN/UV auth protocol")
	// ErrBadKeyAgreement is a peer key agreement key that is not a P-256
	// point. An off-curve point would leak the private key, so it is
	// refused before any arithmetic.
	ErrBadKeyAgreement = errors.New("key agreement key is not a P-256 point")
	// ErrBadCiphertext is a ciphertext that is not whole AES blocks (or,
	// in protocol two, lacks its IV): no conforming peer sends one.
	ErrBadCiphertext = errors.New("ciphertext is not whole AES blocks")
)

// COSE values of an ECDH-ES+HKDF-256 key on P-256 (§6.5.6 getPublicKey()).
const (
	coseKtyEC2       = 2
	coseCrvP256      = 1
	algECDHESHKDF256 = -25
)

// COSEKey is a P-256 key agreement key in the COSE_Key form that
// getKeyAgreement returns and the platform sends back as keyAgreement.
//
// Specification: §6.5.6. PIN/UV Auth Protocol One, getPublicKey() (https://fidoalliance.org/specs/fido-v2.1-ps-20210615/fido-client-to-authenticator-protocol-v2.1-ps-20210615.html#pinProto1)
type COSEKey struct {
	Kty int    `cbor:"1,keyasint"`
	Alg int    `cbor:"3,keyasint"`
	Crv int    `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint,omitempty"`
}

// PublicCOSEKey is getPublicKey(): the COSE_Key of a key agreement key.
func PublicCOSEKey(pub *ecdh.PublicKey) COSEKey {
	raw := pub.Bytes() // 0x04 || X || Y
	return COSEKey{Kty: coseKtyEC2, Alg: algECDHESHKDF256, Crv: coseCrvP256, X: raw[1:33], Y: raw[33:65]}
}

// publicKey validates the peer's key: EC2 on P-256 with 32-byte
// coordinates, on the curve.
func (k COSEKey) publicKey() (*ecdh.PublicKey, error) {
	if k.Kty != coseKtyEC2 || k.Crv != coseCrvP256 || len(k.X) != 32 || len(k.Y) != 32 {
		return nil, ErrBadKeyAgreement
	}
	raw := make([]byte, 0, 65)
	raw = append(raw, 4)
	raw = append(raw, k.X...)
	raw = append(raw, k.Y...)
	pub, err := ecdh.P256().NewPublicKey(raw)
	if err != nil {
		return nil, ErrBadKeyAgreement
	}
	return pub, nil
}

// check refuses a Protocol that is neither One nor Two.
func (p Protocol) check() error {
	if p != One && p != Two {
		return fmt.Errorf("%w %d", ErrUnsupportedProtocol, int(p))
	}
	return nil
}

// Encapsulate is the platform's encapsulate(peerCoseKey): it generates a
// key agreement key, returns it as the keyAgreement to send, and derives
// the shared secret with the authenticator's key peer.
func (p Protocol) Encapsulate(peer COSEKey) (COSEKey, []byte, error) {
	if err := p.check(); err != nil {
		return COSEKey{}, nil, err
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return COSEKey{}, nil, err
	}
	shared, err := p.Decapsulate(priv, peer)
	if err != nil {
		return COSEKey{}, nil, err
	}
	return PublicCOSEKey(priv.PublicKey()), shared, nil
}

// Decapsulate is the authenticator's decapsulate(peerCoseKey): the shared
// secret of its key agreement key priv and the platform's key peer.
func (p Protocol) Decapsulate(priv *ecdh.PrivateKey, peer COSEKey) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	pub, err := peer.publicKey()
	if err != nil {
		return nil, err
	}
	z, err := priv.ECDH(pub)
	if err != nil {
		return nil, ErrBadKeyAgreement
	}
	defer clear(z)
	return p.kdf(z)
}

// kdf turns the ECDH x-coordinate Z into the shared secret: SHA-256(Z)
// in protocol one; in protocol two, HKDF-SHA-256 with a zero salt gives
// the HMAC key then the AES key, 64 bytes in all.
func (p Protocol) kdf(z []byte) ([]byte, error) {
	if p == One {
		s := sha256.Sum256(z)
		defer clear(s[:])
		return append([]byte(nil), s[:]...), nil
	}
	salt := make([]byte, 32)
	hmacKey, err := hkdf.Key(sha256.New, z, salt, "CTAP2 HMAC key", 32)
	if err != nil {
		return nil, err
	}
	defer clear(hmacKey)
	aesKey, err := hkdf.Key(sha256.New, z, salt, "CTAP2 AES key", 32)
	if err != nil {
		return nil, err
	}
	defer clear(aesKey)
	return append(append(make([]byte, 0, 64), hmacKey...), aesKey...), nil
}

// aesKey is the AES-256 key of a shared secret: all 32 bytes in protocol
// one, the last 32 of the 64 in protocol two.
func (p Protocol) aesKey(shared []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	want := 32
	if p == Two {
		want = 64
	}
	if len(shared) != want {
		return nil, fmt.Errorf("protocol %d shared secret of %d bytes, want %d", int(p), len(shared), want)
	}
	return shared[want-32:], nil
}

// CiphertextLength is the length Encrypt gives n bytes of plaintext (n a
// whole number of blocks): n in protocol one, n plus the IV in two.
func (p Protocol) CiphertextLength(n int) int {
	if p == Two {
		return aes.BlockSize + n
	}
	return n
}

// Encrypt is encrypt(key, demPlaintext): AES-256-CBC under the shared
// secret's AES key, with a zero IV in protocol one and a random IV
// prepended in protocol two. plaintext must be whole blocks.
func (p Protocol) Encrypt(shared, plaintext []byte) ([]byte, error) {
	key, err := p.aesKey(shared)
	if err != nil {
		return nil, err
	}
	if len(plaintext)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("plaintext of %d bytes is not whole AES blocks", len(plaintext))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, p.CiphertextLength(len(plaintext)))
	iv := make([]byte, aes.BlockSize)
	if p == Two {
		iv = out[:aes.BlockSize]
		rand.Read(iv) // never fails (crypto/rand crashes the program instead)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out[len(out)-len(plaintext):], plaintext)
	return out, nil
}

// Decrypt is decrypt(key, demCiphertext), the reverse of Encrypt. A
// ciphertext that is empty or not whole blocks is ErrBadCiphertext.
func (p Protocol) Decrypt(shared, ciphertext []byte) ([]byte, error) {
	key, err := p.aesKey(shared)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, aes.BlockSize)
	if p == Two {
		if len(ciphertext) < aes.BlockSize {
			return nil, ErrBadCiphertext
		}
		iv, ciphertext = ciphertext[:aes.BlockSize], ciphertext[aes.BlockSize:]
	}
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, ErrBadCiphertext
	}
	plain := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ciphertext)
	return plain, nil
}

// Authenticate is authenticate(key, message), the pinUvAuthParam of
// message: HMAC-SHA-256 under key truncated to 16 bytes in protocol one;
// in protocol two under the first 32 bytes of key (the HMAC half of a
// shared secret, or a whole pinUvAuthToken), all 32 bytes of it. It is
// nil for an unsupported protocol.
func (p Protocol) Authenticate(key, message []byte) []byte {
	if p.check() != nil {
		return nil
	}
	if p == Two && len(key) > 32 {
		key = key[:32]
	}
	m := hmac.New(sha256.New, key)
	m.Write(message)
	sum := m.Sum(nil)
	if p == One {
		return sum[:16]
	}
	return sum
}

// Verify is verify(key, message, signature): whether signature is
// Authenticate(key, message), compared in constant time.
func (p Protocol) Verify(key, message, signature []byte) bool {
	want := p.Authenticate(key, message)
	return want != nil && subtle.ConstantTimeCompare(want, signature) == 1
}

// PINHash is LEFT(SHA-256(pin), 16), the form in which pinHashEnc carries
// a PIN and the authenticator compares it (§6.5.5.7).
func PINHash(pin []byte) []byte {
	h := sha256.Sum256(pin)
	defer clear(h[:])
	return append([]byte(nil), h[:PINHashLength]...)
}

// PaddedPIN is pin followed by zeros to PaddedPINLength bytes, the
// plaintext of newPinEnc (§6.5.5.5). Callers refuse PINs longer than 63
// bytes first; the caller clears the result after encrypting it.
func PaddedPIN(pin string) []byte {
	b := make([]byte, PaddedPINLength)
	copy(b, pin)
	return b
}
