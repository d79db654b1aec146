package softkey

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"sort"
)

// Credential IDs carry the credential itself, sealed with the key's
// wrapping key and bound to the RP ID hash, so non-discoverable credentials
// need no storage and a credential ID presented for another RP does not open.
const (
	credIDVersion  = 1
	credFlagRK     = 0x01
	credPlainLen   = 4 + 32
	credIDNonceLen = 12
)

// credentialSource is an opened credential: what a credential ID unseals
// to, plus the stored entry for discoverable ones.
//
// Specification: WebAuthn §6.2.2. public key credential source (https://www.w3.org/TR/webauthn-3/#public-key-credential-source)
type credentialSource struct {
	id          []byte
	rpIDHash    []byte
	key         *signer
	credProtect int
	resident    *residentCred // nil for non-discoverable credentials
}

// sealCredentialID creates the ID of a new credential.
func (a *Authenticator) sealCredentialID(rpIDHash []byte, key *signer, credProtect int, rk bool) []byte {
	plain := make([]byte, 0, credPlainLen)
	var flags byte
	if rk {
		flags |= credFlagRK
	}
	algByte := byte(0)
	if key.alg == AlgEdDSA {
		algByte = 1
	}
	plain = append(plain, credIDVersion, flags, algByte, byte(credProtect))
	plain = append(plain, key.raw()...)
	nonce := randomBytes(credIDNonceLen)
	id := append([]byte{credIDVersion}, nonce...)
	return a.wrap.Seal(id, nonce, plain, rpIDHash)
}

// openCredential finds the credential an ID names for rpIDHash, or returns
// nil: an ID from another key, another RP, before a reset, or of a deleted
// discoverable credential is simply not this key's.
func (a *Authenticator) openCredential(rpIDHash, id []byte) *credentialSource {
	if len(id) != 1+credIDNonceLen+credPlainLen+a.wrap.Overhead() || id[0] != credIDVersion {
		return nil
	}
	nonce := id[1 : 1+credIDNonceLen]
	plain, err := a.wrap.Open(nil, nonce, id[1+credIDNonceLen:], rpIDHash)
	if err != nil || len(plain) != credPlainLen || plain[0] != credIDVersion {
		return nil
	}
	alg := AlgES256
	if plain[2] == 1 {
		alg = AlgEdDSA
	}
	key, err := parseSigner(alg, plain[4:])
	if err != nil {
		return nil
	}
	src := &credentialSource{id: id, rpIDHash: rpIDHash, key: key, credProtect: int(plain[3])}
	if plain[1]&credFlagRK != 0 {
		src.resident = a.findResident(id)
		if src.resident == nil {
			return nil
		}
	}
	return src
}

// findResident returns the stored discoverable credential with this ID.
func (a *Authenticator) findResident(id []byte) *residentCred {
	for _, c := range a.st.Credentials {
		if bytes.Equal(c.ID, id) {
			return c
		}
	}
	return nil
}

// residentsFor returns an RP's discoverable credentials, newest first, as
// §6.2.2 step 9 orders them.
func (a *Authenticator) residentsFor(rpID string) []*residentCred {
	var out []*residentCred
	for _, c := range a.st.Credentials {
		if c.RPID == rpID {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return out
}

// nextCreated gives each new discoverable credential a higher number.
func (a *Authenticator) nextCreated() uint64 {
	var max uint64
	for _, c := range a.st.Credentials {
		if c.Created > max {
			max = c.Created
		}
	}
	return max + 1
}

// credRandom derives a credential's two hmac-secret CredRandom values,
// with and without user verification (§12.5 hmac-secret), from the
// wrapping key, so nothing more has to be stored.
func (a *Authenticator) credRandom(id []byte, uv bool) []byte {
	m := hmac.New(sha256.New, a.st.WrapKey)
	m.Write([]byte("hmac-secret"))
	if uv {
		m.Write([]byte{1})
	} else {
		m.Write([]byte{0})
	}
	m.Write(id)
	return m.Sum(nil)
}

// Authenticator data flags (WebAuthn §6.1).
const (
	flagUP byte = 0x01
	flagUV byte = 0x04
	flagAT byte = 0x40
	flagED byte = 0x80
)

// authenticatorData assembles authenticator data: rpIdHash, flags, the
// signature counter, then optional attested credential data and extensions.
//
// Specification: WebAuthn §6.1. Authenticator Data (https://www.w3.org/TR/webauthn-3/#sctn-authenticator-data)
func authenticatorData(aaguid [16]byte, rpIDHash []byte, flags byte, signCount uint32, credID []byte, pub *coseKey, extensions map[string]any) []byte {
	out := make([]byte, 0, 37+16+2+len(credID)+80)
	out = append(out, rpIDHash...)
	if credID != nil {
		flags |= flagAT
	}
	if len(extensions) > 0 {
		flags |= flagED
	}
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, signCount)
	if credID != nil {
		out = append(out, aaguid[:]...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(credID)))
		out = append(out, credID...)
		out = append(out, marshal(pub)...)
	}
	if len(extensions) > 0 {
		out = append(out, marshal(extensions)...)
	}
	return out
}

// nextSignCount advances the key's global signature counter.
func (a *Authenticator) nextSignCount() uint32 {
	a.st.SignCount++
	a.dirty = true
	return a.st.SignCount
}
