package softkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
)

// COSEAlgorithm is a COSE algorithm identifier from the IANA registry.
//
// Specification: §6.5.6. COSE Key Type (https://www.w3.org/TR/webauthn-3/#sctn-alg-identifier)
type COSEAlgorithm int

// The algorithms this key signs with. (Its PIN protocols' key agreement
// keys are package pinuvauth's.)
const (
	AlgES256          COSEAlgorithm = -7 // ECDSA with SHA-256 on P-256
	AlgEdDSA          COSEAlgorithm = -8 // EdDSA (Ed25519)
	coseKtyOKP                      = 1
	coseKtyEC2                      = 2
	coseCrvP256                     = 1
	coseCrvEd25519                  = 6
	coseKeyTypePublic               = "public-key"
)

// supportedAlgorithms is the order in which getInfo advertises algorithms.
var supportedAlgorithms = []COSEAlgorithm{AlgES256, AlgEdDSA}

// coseKey is a COSE_Key as CTAP exchanges it for ES256/EdDSA credential
// public keys.
//
// Specification: RFC 9052 §7 and CTAP 2.1 §6.5.6 getPublicKey()
type coseKey struct {
	Kty int           `cbor:"1,keyasint"`
	Alg COSEAlgorithm `cbor:"3,keyasint"`
	Crv int           `cbor:"-1,keyasint"`
	X   []byte        `cbor:"-2,keyasint"`
	Y   []byte        `cbor:"-3,keyasint,omitempty"`
}

// signer is a credential private key.
type signer struct {
	alg  COSEAlgorithm
	priv crypto.Signer
}

// newSigner creates a fresh credential key.
func newSigner(alg COSEAlgorithm) (*signer, error) {
	switch alg {
	case AlgES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return &signer{alg, k}, nil
	case AlgEdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return &signer{alg, k}, nil
	}
	return nil, ErrUnsupportedAlgorithm
}

// parseSigner restores a key saved with signer.raw.
func parseSigner(alg COSEAlgorithm, raw []byte) (*signer, error) {
	switch alg {
	case AlgES256:
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
		if err != nil {
			return nil, err
		}
		return &signer{alg, k}, nil
	case AlgEdDSA:
		if len(raw) != ed25519.SeedSize {
			return nil, fmt.Errorf("Ed25519 seed of %d bytes", len(raw))
		}
		return &signer{alg, ed25519.NewKeyFromSeed(raw)}, nil
	}
	return nil, fmt.Errorf("unknown algorithm %d", alg)
}

// raw returns the 32-byte private scalar (ES256) or seed (EdDSA), the
// smallest form, so that a credential ID can carry the key.
func (s *signer) raw() []byte {
	switch k := s.priv.(type) {
	case *ecdsa.PrivateKey:
		b, err := k.Bytes()
		if err != nil {
			panic("softkey: " + err.Error())
		}
		return b
	case ed25519.PrivateKey:
		return k.Seed()
	}
	panic("softkey: unexpected private key type")
}

// sign signs msg the way WebAuthn verifiers expect: ES256 over SHA-256 in
// ASN.1 DER, EdDSA over the message itself.
func (s *signer) sign(msg []byte) ([]byte, error) {
	if s.alg == AlgEdDSA {
		return s.priv.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	h := sha256.Sum256(msg)
	return s.priv.Sign(rand.Reader, h[:], crypto.SHA256)
}

// publicCOSE returns the credential public key as a COSE_Key.
func (s *signer) publicCOSE() coseKey {
	switch k := s.priv.Public().(type) {
	case *ecdsa.PublicKey:
		pk, err := k.ECDH()
		if err != nil {
			panic("softkey: " + err.Error())
		}
		raw := pk.Bytes() // 0x04 || X || Y
		return coseKey{Kty: coseKtyEC2, Alg: AlgES256, Crv: coseCrvP256, X: raw[1:33], Y: raw[33:65]}
	case ed25519.PublicKey:
		return coseKey{Kty: coseKtyOKP, Alg: AlgEdDSA, Crv: coseCrvEd25519, X: []byte(k)}
	}
	panic("softkey: unexpected public key type")
}
