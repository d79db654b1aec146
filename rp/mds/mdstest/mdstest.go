// Package mdstest builds FIDO Metadata Service v3 BLOBs for tests: a
// signing PKI shaped like FIDO's, metadata entries, and signed or
// deliberately broken BLOBs that package mds loads.
//
// Everything here is for tests only: keys are generated on the fly (or
// fixed, for fuzz seeds), failures end the test through testing.TB, and
// nothing is hardened.
package mdstest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/golang-jwt/jwt/v5"

	"github.com/keydesk/keydesk/platform/softkey"
)

// SoftkeyAAGUID is the Keydesk software key's AAGUID ([softkey.AAGUID])
// in the form metadata entries carry.
const SoftkeyAAGUID = "ef185f03-0d9a-4909-8ff0-93c535aa9ecd"

// PKI is a BLOB signing hierarchy like FIDO's: a root, an intermediate,
// and the signing certificate, with the BLOB's x5c header
// [Signer, Intermediate] (see [PKI.X5C]).
type PKI struct {
	// Root is the self-signed trust anchor; RootKey its key.
	Root    *x509.Certificate
	RootKey *ecdsa.PrivateKey
	// Intermediate is the CA Root issued; IntermediateKey its key. It
	// issues Signer and the CRLs of [PKI.CRLRevokingSigner].
	Intermediate    *x509.Certificate
	IntermediateKey *ecdsa.PrivateKey
	// Signer is the BLOB signing certificate; SignerKey signs BLOBs.
	Signer    *x509.Certificate
	SignerKey *ecdsa.PrivateKey
}

// NewPKI returns a PKI with fresh keys whose certificates are named after
// name ("<name> MDS root", "<name> MDS intermediate", "<name> MDS
// signer") and valid from an hour ago until notAfter.
func NewPKI(tb testing.TB, name string, notAfter time.Time) *PKI {
	tb.Helper()
	return NewPKIWithKeys(tb, name, notAfter, nil, nil, nil)
}

// NewPKIWithKeys is [NewPKI] with the given keys (nil: a fresh one) for
// the root, intermediate and signer. Fixed keys (see [FixedKey]) give
// every fuzz worker the same trust anchor, so a seed BLOB signed in one
// verifies in all.
func NewPKIWithKeys(tb testing.TB, name string, notAfter time.Time, rootKey, interKey, signerKey *ecdsa.PrivateKey) *PKI {
	tb.Helper()
	p := &PKI{}
	p.Root, p.RootKey = NewCert(tb, name+" MDS root", true, rootKey, nil, nil, notAfter)
	p.Intermediate, p.IntermediateKey = NewCert(tb, name+" MDS intermediate", true, interKey, p.Root, p.RootKey, notAfter)
	p.Signer, p.SignerKey = NewCert(tb, name+" MDS signer", false, signerKey, p.Intermediate, p.IntermediateKey, notAfter)
	return p
}

// FixedKey returns the P-256 key whose private scalar is n: the same key
// in every process.
func FixedKey(tb testing.TB, n byte) *ecdsa.PrivateKey {
	tb.Helper()
	d := make([]byte, 32)
	d[31] = n
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// NewCert issues a certificate with common name cn for key (nil: a fresh
// P-256 key) from parent and parentKey (nil: self-signed), valid from an
// hour ago until notAfter, and returns it with its key. A ca certificate
// may sign certificates and CRLs.
func NewCert(tb testing.TB, cn string, ca bool, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			tb.Fatal(err)
		}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: ca,
	}
	if ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c, key
}

// Pool returns a pool holding p's root, for mds.Options.Roots.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Root)
	return pool
}

// RootPEM returns p's root as a PEM CERTIFICATE block, the form of a
// roots file that mds.ParseRoots reads.
func (p *PKI) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.Raw})
}

// X5C returns the x5c header value of p's BLOBs: the signing and
// intermediate certificates, base64 (not base64url) DER.
func (p *PKI) X5C() []any {
	return []any{B64(p.Signer.Raw), B64(p.Intermediate.Raw)}
}

// CRLRevokingSigner returns a current CRL from p's intermediate revoking
// p's signing certificate.
func (p *PKI) CRLRevokingSigner(tb testing.TB) *x509.RevocationList {
	tb.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: p.Signer.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)}},
	}, p.Intermediate, p.IntermediateKey)
	if err != nil {
		tb.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		tb.Fatal(err)
	}
	return crl
}

// Blob returns a valid BLOB signed by p holding entries: number 42, next
// update a month from today.
func (p *PKI) Blob(tb testing.TB, entries ...metadata.EntryJSON) []byte {
	tb.Helper()
	return Sign(tb, p.SignerKey, map[string]any{"x5c": p.X5C()}, Payload(42, time.Now().AddDate(0, 1, 0), entries...))
}

// B64 is standard base64 with padding, the encoding of x5c members and
// of attestationRootCertificates.
func B64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

// Entry returns a metadata entry for a FIDO2 model with aaguid attesting
// with "packed" basic_full under the given roots (DER), with the given
// status history, each report in effect since yesterday. No statuses
// means FIDO_CERTIFIED_L1.
func Entry(aaguid string, roots [][]byte, statuses ...metadata.AuthenticatorStatus) metadata.EntryJSON {
	var rs []string
	for _, r := range roots {
		rs = append(rs, B64(r))
	}
	if len(statuses) == 0 {
		statuses = []metadata.AuthenticatorStatus{metadata.FidoCertifiedL1}
	}
	yesterday := time.Now().AddDate(0, 0, -1).Format(time.DateOnly)
	var reports []metadata.StatusReportJSON
	for _, s := range statuses {
		reports = append(reports, metadata.StatusReportJSON{Status: s, EffectiveDate: yesterday})
	}
	return metadata.EntryJSON{
		AaGUID: aaguid,
		MetadataStatement: metadata.StatementJSON{
			LegalHeader: "Test metadata.", AaGUID: aaguid, Description: "Keydesk Software Key (test)",
			AuthenticatorVersion: 1, ProtocolFamily: "fido2", Schema: 3,
			Upv:                         []metadata.Version{{Major: 1, Minor: 1}},
			AuthenticationAlgorithms:    []metadata.AuthenticationAlgorithm{metadata.ALG_SIGN_SECP256R1_ECDSA_SHA256_RAW},
			PublicKeyAlgAndEncodings:    []metadata.PublicKeyAlgAndEncoding{metadata.ALG_KEY_COSE},
			AttestationTypes:            metadata.AuthenticatorAttestationTypes{metadata.BasicFull},
			KeyProtection:               []string{"software"},
			MatcherProtection:           []string{"software"},
			AttachmentHint:              []string{"external"},
			AttestationRootCertificates: rs,
		},
		StatusReports:          reports,
		TimeOfLastStatusChange: yesterday,
	}
}

// Payload returns a BLOB payload with serial number no, the date of
// nextUpdate as its next update, and entries.
func Payload(no int, nextUpdate time.Time, entries ...metadata.EntryJSON) metadata.PayloadJSON {
	return metadata.PayloadJSON{
		LegalHeader: "Test BLOB, not from the FIDO Alliance.", Number: no,
		NextUpdate: nextUpdate.Format(time.DateOnly), Entries: entries,
	}
}

// Sign returns the JWS compact serialization of claims (as JSON) with the
// given header members, signed with ES256 by key. The header has typ
// "JWT" and alg "ES256" unless header sets them; header may be nil (then
// the BLOB has no x5c).
func Sign(tb testing.TB, key *ecdsa.PrivateKey, header map[string]any, claims any) []byte {
	tb.Helper()
	h := map[string]any{"alg": "ES256", "typ": "JWT"}
	for k, v := range header {
		h[k] = v
	}
	hj, err := json.Marshal(h)
	if err != nil {
		tb.Fatal(err)
	}
	cj, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hj) + "." + enc.EncodeToString(cj)
	sig, err := jwt.SigningMethodES256.Sign(input, key)
	if err != nil {
		tb.Fatal(err)
	}
	return []byte(input + "." + enc.EncodeToString(sig))
}

// FlipSignature returns a copy of blob with one byte of its signature
// changed, so that the signature no longer verifies.
func FlipSignature(blob []byte) []byte {
	out := append([]byte(nil), blob...)
	i := bytes.LastIndexByte(out, '.') + 5
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

// WriteFile writes data to a new file under tb.TempDir and returns its
// path, for mds.Load or a server's BLOB or roots setting.
func WriteFile(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// SoftkeyBlob returns a BLOB with one entry, for [SoftkeyAAGUID], whose
// attestation root is a's AttestationCA and whose status history is
// statuses (none: FIDO_CERTIFIED_L1), and the roots that verify it
// (mds.Options.Roots). The signing PKI is fresh and valid for a day.
func SoftkeyBlob(tb testing.TB, a *softkey.Authenticator, statuses ...metadata.AuthenticatorStatus) (blob []byte, roots *x509.CertPool) {
	tb.Helper()
	p := NewPKI(tb, "softkey", time.Now().Add(24*time.Hour))
	return p.Blob(tb, Entry(SoftkeyAAGUID, [][]byte{a.AttestationCA()}, statuses...)), p.Pool()
}
