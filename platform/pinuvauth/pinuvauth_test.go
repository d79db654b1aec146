package pinuvauth

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// vectors are the known answers of testdata/vectors.json, computed with a
// second implementation (pyca/cryptography) by testdata/vectors.py.
type vectors struct {
	AuthenticatorPrivate hexBytes `json:"authenticatorPrivate"`
	PlatformX            hexBytes `json:"platformX"`
	PlatformY            hexBytes `json:"platformY"`
	Z                    hexBytes `json:"z"`
	Plaintext            hexBytes `json:"plaintext"`
	Message              hexBytes `json:"message"`
	Token                hexBytes `json:"token"`
	Protocols            []struct {
		Protocol     Protocol `json:"protocol"`
		SharedSecret hexBytes `json:"sharedSecret"`
		Ciphertext   hexBytes `json:"ciphertext"`
		MAC          hexBytes `json:"mac"`
		TokenMAC     hexBytes `json:"tokenMac"`
	} `json:"protocols"`
	PINHash1234 hexBytes `json:"pinHash1234"`
}

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

func loadVectors(t *testing.T) *vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("vectors.json: %v", err)
	}
	if len(v.Protocols) != 2 {
		t.Fatalf("vectors.json has %d protocols, want 2", len(v.Protocols))
	}
	return &v
}

func TestKnownAnswers(t *testing.T) {
	v := loadVectors(t)
	priv, err := ecdh.P256().NewPrivateKey(v.AuthenticatorPrivate)
	if err != nil {
		t.Fatal(err)
	}
	platformKey := COSEKey{Kty: coseKtyEC2, Alg: algECDHESHKDF256, Crv: coseCrvP256, X: v.PlatformX, Y: v.PlatformY}
	pub, err := platformKey.publicKey()
	if err != nil {
		t.Fatalf("platform key: %v", err)
	}
	// RFC 5903 §8.1 gives the shared x-coordinate as girx.
	if z, err := priv.ECDH(pub); err != nil || !bytes.Equal(z, v.Z) {
		t.Fatalf("Z = %x (%v), want RFC 5903 girx %x", z, err, []byte(v.Z))
	}
	type knownAnswer struct {
		name string
		run  func() ([]byte, error)
		want []byte
	}
	for _, pv := range v.Protocols {
		p := pv.Protocol
		tests := []knownAnswer{
			{name: "ShouldDeriveSharedSecretWithKDF", run: func() ([]byte, error) { return p.kdf(v.Z) }, want: pv.SharedSecret},
			{name: "ShouldDecapsulateSharedSecret", run: func() ([]byte, error) { return p.Decapsulate(priv, platformKey) }, want: pv.SharedSecret},
			{name: "ShouldDecryptCiphertext", run: func() ([]byte, error) { return p.Decrypt(pv.SharedSecret, pv.Ciphertext) }, want: v.Plaintext},
			{name: "ShouldAuthenticateWithSharedSecret", run: func() ([]byte, error) { return p.Authenticate(pv.SharedSecret, v.Message), nil }, want: pv.MAC},
			{name: "ShouldAuthenticateWithWholeToken", run: func() ([]byte, error) { return p.Authenticate(v.Token, v.Message), nil }, want: pv.TokenMAC},
		}
		if p == One {
			// Protocol one's zero IV makes encryption deterministic.
			tests = append(tests, knownAnswer{name: "ShouldEncryptWithZeroIV", run: func() ([]byte, error) { return p.Encrypt(pv.SharedSecret, v.Plaintext) }, want: pv.Ciphertext})
		}
		for _, tt := range tests {
			t.Run(tt.name+"/"+p.name(), func(t *testing.T) {
				got, err := tt.run()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tt.want) {
					t.Fatalf("got %x, want %x", got, tt.want)
				}
			})
		}
		t.Run("ShouldVerifyKnownMACs/"+p.name(), func(t *testing.T) {
			if !p.Verify(pv.SharedSecret, v.Message, pv.MAC) || !p.Verify(v.Token, v.Message, pv.TokenMAC) {
				t.Fatal("known MAC refused")
			}
		})
	}
	t.Run("ShouldHashPIN", func(t *testing.T) {
		if got := PINHash([]byte("1234")); !bytes.Equal(got, v.PINHash1234) {
			t.Fatalf("PINHash = %x, want %x", got, []byte(v.PINHash1234))
		}
	})
}

func (p Protocol) name() string {
	switch p {
	case One:
		return "One"
	case Two:
		return "Two"
	}
	return "Unsupported"
}

// TestInteroperation runs each protocol between its two halves: the
// platform's Encapsulate against an authenticator's key agreement key,
// then each side decrypting and verifying what the other made.
func TestInteroperation(t *testing.T) {
	tests := []struct {
		name       string
		p          Protocol
		secretLen  int
		macLen     int
		overheadIV int
	}{
		{name: "ShouldInteroperateWithProtocolOne", p: One, secretLen: 32, macLen: 16},
		{name: "ShouldInteroperateWithProtocolTwo", p: Two, secretLen: 64, macLen: 32, overheadIV: 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authKey, err := ecdh.P256().GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			platformKey, platformShared, err := tt.p.Encapsulate(PublicCOSEKey(authKey.PublicKey()))
			if err != nil {
				t.Fatalf("Encapsulate: %v", err)
			}
			if platformKey.Kty != 2 || platformKey.Alg != -25 || platformKey.Crv != 1 {
				t.Fatalf("platform keyAgreement %+v is not ECDH-ES+HKDF-256 on P-256", platformKey)
			}
			authShared, err := tt.p.Decapsulate(authKey, platformKey)
			if err != nil {
				t.Fatalf("Decapsulate: %v", err)
			}
			if !bytes.Equal(authShared, platformShared) || len(authShared) != tt.secretLen {
				t.Fatalf("shared secrets differ or are not %d bytes", tt.secretLen)
			}

			// The platform sends newPinEnc; the authenticator recovers the PIN.
			padded := PaddedPIN("hunter22")
			newPinEnc, err := tt.p.Encrypt(platformShared, padded)
			if err != nil {
				t.Fatal(err)
			}
			if len(newPinEnc) != PaddedPINLength+tt.overheadIV || len(newPinEnc) != tt.p.CiphertextLength(PaddedPINLength) {
				t.Fatalf("newPinEnc of %d bytes", len(newPinEnc))
			}
			if got, err := tt.p.Decrypt(authShared, newPinEnc); err != nil || !bytes.Equal(got, padded) {
				t.Fatalf("authenticator decrypts %x (%v)", got, err)
			}
			param := tt.p.Authenticate(platformShared, newPinEnc)
			if len(param) != tt.macLen || !tt.p.Verify(authShared, newPinEnc, param) {
				t.Fatalf("pinUvAuthParam of %d bytes not verified", len(param))
			}
			tampered := append([]byte{}, newPinEnc...)
			tampered[len(tampered)-1] ^= 1
			if tt.p.Verify(authShared, tampered, param) {
				t.Fatal("pinUvAuthParam verified over a changed message")
			}

			// The authenticator sends a pinUvAuthToken; the platform uses it.
			token := make([]byte, 32)
			rand.Read(token)
			tokenEnc, err := tt.p.Encrypt(authShared, token)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tt.p.Decrypt(platformShared, tokenEnc)
			if err != nil || !bytes.Equal(got, token) {
				t.Fatalf("platform decrypts token %x (%v)", got, err)
			}
			if !tt.p.Verify(token, []byte("clientDataHash"), tt.p.Authenticate(got, []byte("clientDataHash"))) {
				t.Fatal("token pinUvAuthParam not verified")
			}
		})
	}
}

func TestProtocolTwoUsesFreshIVs(t *testing.T) {
	shared := bytes.Repeat([]byte{7}, 64)
	plain := make([]byte, 32)
	a, errA := Two.Encrypt(shared, plain)
	b, errB := Two.Encrypt(shared, plain)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if bytes.Equal(a[:16], b[:16]) {
		t.Fatal("two encryptions share an IV")
	}
}

func TestRefusals(t *testing.T) {
	authKey, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := PublicCOSEKey(authKey.PublicKey())
	withKey := func(f func(*COSEKey)) COSEKey {
		k := good
		k.X, k.Y = append([]byte{}, good.X...), append([]byte{}, good.Y...)
		f(&k)
		return k
	}
	shared1, shared2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 64)
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{name: "ShouldRefuseOffCurveKey", run: func() error {
			_, err := Two.Decapsulate(authKey, withKey(func(k *COSEKey) { k.Y[0] ^= 1 }))
			return err
		}, want: ErrBadKeyAgreement},
		{name: "ShouldRefuseOKPKey", run: func() error {
			_, _, err := One.Encapsulate(withKey(func(k *COSEKey) { k.Kty = 1 }))
			return err
		}, want: ErrBadKeyAgreement},
		{name: "ShouldRefuseOtherCurve", run: func() error {
			_, err := One.Decapsulate(authKey, withKey(func(k *COSEKey) { k.Crv = 2 }))
			return err
		}, want: ErrBadKeyAgreement},
		{name: "ShouldRefuseShortCoordinate", run: func() error {
			_, err := Two.Decapsulate(authKey, withKey(func(k *COSEKey) { k.X = k.X[1:] }))
			return err
		}, want: ErrBadKeyAgreement},
		{name: "ShouldRefuseMissingY", run: func() error {
			_, err := Two.Decapsulate(authKey, withKey(func(k *COSEKey) { k.Y = nil }))
			return err
		}, want: ErrBadKeyAgreement},
		{name: "ShouldRefuseUnsupportedProtocolInEncapsulate", run: func() error {
			_, _, err := Protocol(3).Encapsulate(good)
			return err
		}, want: ErrUnsupportedProtocol},
		{name: "ShouldRefuseUnsupportedProtocolInDecapsulate", run: func() error {
			_, err := Protocol(0).Decapsulate(authKey, good)
			return err
		}, want: ErrUnsupportedProtocol},
		{name: "ShouldRefuseUnsupportedProtocolInEncrypt", run: func() error {
			_, err := Protocol(3).Encrypt(shared2, make([]byte, 16))
			return err
		}, want: ErrUnsupportedProtocol},
		{name: "ShouldRefuseUnsupportedProtocolInDecrypt", run: func() error {
			_, err := Protocol(3).Decrypt(shared2, make([]byte, 32))
			return err
		}, want: ErrUnsupportedProtocol},
		{name: "ShouldRefuseEmptyCiphertext", run: func() error {
			_, err := One.Decrypt(shared1, nil)
			return err
		}, want: ErrBadCiphertext},
		{name: "ShouldRefusePartialBlock", run: func() error {
			_, err := One.Decrypt(shared1, make([]byte, 17))
			return err
		}, want: ErrBadCiphertext},
		{name: "ShouldRefuseCiphertextShorterThanIV", run: func() error {
			_, err := Two.Decrypt(shared2, make([]byte, 15))
			return err
		}, want: ErrBadCiphertext},
		{name: "ShouldRefuseIVWithoutCiphertext", run: func() error {
			_, err := Two.Decrypt(shared2, make([]byte, 16))
			return err
		}, want: ErrBadCiphertext},
		{name: "ShouldRefuseProtocolTwoPartialBlock", run: func() error {
			_, err := Two.Decrypt(shared2, make([]byte, 40))
			return err
		}, want: ErrBadCiphertext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRefusalsWithoutSentinel(t *testing.T) {
	tests := []struct {
		name string
		run  func() error
	}{
		{name: "ShouldRefuseProtocolOneSecretInProtocolTwo", run: func() error {
			_, err := Two.Encrypt(make([]byte, 32), make([]byte, 16))
			return err
		}},
		{name: "ShouldRefuseProtocolTwoSecretInProtocolOne", run: func() error {
			_, err := One.Decrypt(make([]byte, 64), make([]byte, 16))
			return err
		}},
		{name: "ShouldRefusePlaintextOfPartialBlock", run: func() error {
			_, err := One.Encrypt(make([]byte, 32), make([]byte, 20))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.run() == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestVerify(t *testing.T) {
	key, msg := bytes.Repeat([]byte{9}, 64), []byte("message")
	tests := []struct {
		name string
		p    Protocol
		sig  []byte
		want bool
	}{
		{name: "ShouldAcceptProtocolOneMAC", p: One, sig: One.Authenticate(key[:32], msg), want: true},
		{name: "ShouldAcceptProtocolTwoMAC", p: Two, sig: Two.Authenticate(key, msg), want: true},
		{name: "ShouldRefuseTruncatedProtocolTwoMAC", p: Two, sig: Two.Authenticate(key, msg)[:16]},
		{name: "ShouldRefuseEmptySignature", p: Two, sig: []byte{}},
		{name: "ShouldRefuseUnsupportedProtocolEvenWithEmptySignature", p: Protocol(3), sig: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := key
			if tt.p == One {
				k = key[:32]
			}
			if got := tt.p.Verify(k, msg, tt.sig); got != tt.want {
				t.Fatalf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPaddedPIN(t *testing.T) {
	tests := []struct {
		name string
		pin  string
	}{
		{name: "ShouldPadShortPIN", pin: "1234"},
		{name: "ShouldPadLongestPIN", pin: string(bytes.Repeat([]byte{'9'}, 63))},
		{name: "ShouldPadMultibytePIN", pin: "pässwörd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PaddedPIN(tt.pin)
			if len(got) != PaddedPINLength || string(got[:len(tt.pin)]) != tt.pin || bytes.ContainsFunc(got[len(tt.pin):], func(r rune) bool { return r != 0 }) {
				t.Fatalf("PaddedPIN(%q) = %x", tt.pin, got)
			}
		})
	}
}

// FuzzDecrypt checks that no ciphertext makes Decrypt panic, and that
// what it accepts has the length Encrypt would give.
func FuzzDecrypt(f *testing.F) {
	f.Add(uint8(1), make([]byte, 32))
	f.Add(uint8(2), make([]byte, 48))
	f.Add(uint8(2), make([]byte, 15))
	f.Add(uint8(3), []byte{})
	f.Fuzz(func(t *testing.T, version uint8, ct []byte) {
		p := Protocol(version)
		shared := make([]byte, 32)
		if p == Two {
			shared = make([]byte, 64)
		}
		plain, err := p.Decrypt(shared, ct)
		if err == nil && p.CiphertextLength(len(plain)) != len(ct) {
			t.Fatalf("%d-byte plaintext from %d-byte ciphertext", len(plain), len(ct))
		}
	})
}
