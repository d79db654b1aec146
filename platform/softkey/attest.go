package softkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"github.com/keydesk/keydesk/platform/softkey/identity"
)

// AAGUID identifies the Keydesk software key model (ef185f03-0d9a-4909-8ff0-93c535aa9ecd).
// Every software key shares it, as every key of one hardware model does.
var AAGUID = identity.AAGUID

// oidFIDOGenCeAAGUID is the attestation certificate extension that names
// the authenticator model (id-fido-gen-ce-aaguid).
var oidFIDOGenCeAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// attestation holds the key's attestation CA and the leaf that signs
// "packed" attestation statements. Each software key has its own CA,
// created with its state, so a relying party trusts a key by trusting its
// CA certificate.
type attestation struct {
	caCert  *x509.Certificate
	caDER   []byte
	key     *ecdsa.PrivateKey
	leafDER []byte
}

// newAttestation creates a CA and a leaf meeting WebAuthn §8.2.1 "Packed
// Attestation Statement Certificate Requirements".
func newAttestation(now time.Time, aaguid [16]byte) (*attestation, *ecdsa.PrivateKey, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial := func() *big.Int { return new(big.Int).SetBytes(randomBytes(16)) }
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"Keydesk"}, CommonName: "Keydesk Software Key Attestation CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(30, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	aaguidExt, err := asn1.Marshal(aaguid[:])
	if err != nil {
		return nil, nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject: pkix.Name{
			Country:            []string{"US"},
			Organization:       []string{"Keydesk"},
			OrganizationalUnit: []string{"Authenticator Attestation"},
			CommonName:         "Keydesk Software Key",
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(30, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  false,
		ExtraExtensions:       []pkix.Extension{{Id: oidFIDOGenCeAAGUID, Value: aaguidExt}},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	return &attestation{caCert: caCert, caDER: caDER, key: key, leafDER: leafDER}, caKey, nil
}

// loadAttestation restores the attestation material from state.
func loadAttestation(st *state) (*attestation, error) {
	caCert, err := x509.ParseCertificate(st.AttCACert)
	if err != nil {
		return nil, fmt.Errorf("attestation CA certificate: %w", err)
	}
	k, err := x509.ParseECPrivateKey(st.AttKey)
	if err != nil {
		return nil, fmt.Errorf("attestation key: %w", err)
	}
	if _, err := x509.ParseCertificate(st.AttCert); err != nil {
		return nil, fmt.Errorf("attestation certificate: %w", err)
	}
	return &attestation{caCert: caCert, caDER: st.AttCACert, key: k, leafDER: st.AttCert}, nil
}

// x5c is the certificate chain of a packed attestation statement: the
// leaf first, then the CA that issued it.
func (a *attestation) x5c() [][]byte { return [][]byte{a.leafDER, a.caDER} }
