// Package mds loads a FIDO Metadata Service v3 BLOB from a local file,
// verifies it offline, and hands go-webauthn the metadata provider that
// registration checks attestation statements against.
//
// The RP never downloads the BLOB: an operator (or a timer job) fetches
// https://mds.fidoalliance.org/ to a file, and [Load] reads that file at
// start-up and on reload. Nothing here touches the network, which is why
// the BLOB's signature and chain are checked here rather than by
// go-webauthn's metadata.Decoder: that one asks the network (CRL, OCSP and
// issuer URLs of every chain certificate, through http.DefaultClient) and
// the wall clock. The entries are still parsed, and registrations checked,
// by go-webauthn.
package mds

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/metadata/providers/memory"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// MaxBlobSize bounds the file [Load] reads. The production BLOB is a few
// megabytes; anything this large is not one.
const MaxBlobSize = 64 << 20

// maxChain bounds the x5c header: the production chain has two
// certificates.
const maxChain = 8

// Errors a caller can branch on with errors.Is. Every error [Load] and
// [Parse] return for a bad BLOB wraps one of these.
var (
	// ErrMalformed means the file is not an MDS3 BLOB: not a JWS, bad
	// base64 or JSON, an unusable x5c header, an entry go-webauthn cannot
	// parse when [Options.StrictEntries] is set.
	ErrMalformed = errors.New("malformed metadata BLOB")
	// ErrSignature means the BLOB's signature does not verify with its
	// signing certificate, or uses an algorithm MDS3 does not.
	ErrSignature = errors.New("metadata BLOB signature is invalid")
	// ErrUntrusted means the x5c chain does not lead to one of
	// [Options.Roots] at [Options.Now] (unknown root, expired or
	// not-yet-valid certificate).
	ErrUntrusted = errors.New("metadata BLOB signing chain is not trusted")
	// ErrRevoked means a certificate of the signing chain is listed in one
	// of [Options.CRLs].
	ErrRevoked = errors.New("metadata BLOB signing certificate is revoked")
	// ErrExpired means the BLOB's nextUpdate has passed: FIDO has (or
	// should have) published a newer one, which may revoke models this one
	// still trusts. [Options.AllowExpired] loads it anyway.
	ErrExpired = errors.New("metadata BLOB expired")
)

// Options configures [Load] and [Parse]. The zero value verifies against
// the FIDO Alliance production root at the current time and refuses an
// expired BLOB.
type Options struct {
	// Roots are the trust anchors of the BLOB signing chain. Nil means
	// go-webauthn's metadata.ProductionMDSRoot (GlobalSign Root R46 in
	// v0.18.2; FIDO moved there from Root CA - R3 in August 2026). Pass
	// your own (see [ParseRoots]) for tests, conformance BLOBs, or when
	// FIDO moves again before go-webauthn follows.
	Roots *x509.CertPool
	// Now is the clock for certificate validity and nextUpdate; nil means
	// time.Now.
	Now func() time.Time
	// AllowExpired loads a BLOB past its nextUpdate with a warning to Logf
	// and Info.Expired set, instead of refusing it with [ErrExpired]: an
	// operator's choice when the download job has failed and refusing all
	// registrations would be worse.
	AllowExpired bool
	// CRLs are certificate revocation lists for the signing chain, read by
	// the caller from local files. Revocation cannot be checked online
	// here, so without them only the chain and nextUpdate bound the
	// BLOB's trust. A list applies to the chain certificate whose issuer
	// signed it.
	CRLs []*x509.RevocationList
	// StrictEntries refuses the whole BLOB when go-webauthn cannot parse
	// one of its entries. By default such entries are left out (so that
	// model cannot register under a verified-attestation policy), counted
	// in Info.Skipped and reported to Logf.
	StrictEntries bool
	// ProviderOptions are appended to the options this package gives
	// go-webauthn's memory provider, to turn on more of its checks (for
	// example memory.WithValidateBackupEligibility) or change the refused
	// statuses (memory.WithStatusUndesired).
	ProviderOptions []memory.Option
	// Logf receives warnings (an expired BLOB loaded anyway, skipped
	// entries); nil discards them.
	Logf func(format string, args ...any)
}

// Info describes a loaded BLOB, for logs and readiness checks.
type Info struct {
	// Number is the BLOB's serial number ("no"). FIDO increments it with
	// every BLOB, so a reload should keep the BLOB it has unless the new
	// one's number is higher (MDS3 §3.2 step 4).
	Number int
	// NextUpdate is the date by which FIDO publishes the next BLOB.
	NextUpdate time.Time
	// Entries is how many entries the provider holds.
	Entries int
	// Skipped is how many entries go-webauthn could not parse and were
	// left out.
	Skipped int
	// Expired is set when the BLOB was past NextUpdate and loaded because
	// [Options.AllowExpired] was set.
	Expired bool
	// Signer is the subject of the certificate that signed the BLOB.
	Signer string
}

// Load reads the BLOB at path (at most [MaxBlobSize] bytes) and returns
// what [Parse] returns for it; errors name the file.
func Load(path string, opts Options) (metadata.Provider, *Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("mds: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > MaxBlobSize {
		return nil, nil, fmt.Errorf("mds: %s: %w: larger than %d bytes", path, ErrMalformed, MaxBlobSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxBlobSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("mds: read %s: %w", path, err)
	}
	if len(data) > MaxBlobSize {
		return nil, nil, fmt.Errorf("mds: %s: %w: larger than %d bytes", path, ErrMalformed, MaxBlobSize)
	}
	p, info, err := Parse(data, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("mds: %s: %w", path, err)
	}
	return p, info, nil
}

// blobClaims is the BLOB payload as the JWT parser decodes it: the
// MetadataBLOBPayload members go-webauthn declares, plus the registered
// claims the jwt.Claims interface needs (MDS3 sets none of them).
type blobClaims struct {
	metadata.PayloadJSON
	jwt.RegisteredClaims
}

// signingMethods are the JWS algorithms a BLOB may be signed with: the
// ECDSA and RSA ones FIDO's PKI can produce. "none" and HMAC are refused.
var signingMethods = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// Parse verifies a BLOB held in memory and returns a provider for
// webauthn.Config.MDS (it is also a metadata.ExtendedProvider) with the
// BLOB's description. It follows the
// processing rules of FIDO MDS3 §3.2 "Metadata BLOB object processing
// rules", offline. The provider requires an entry for every attested
// AAGUID (or, for U2F keys, attestation key identifier), verifies the
// attestation chain against the entry's attestationRootCertificates,
// checks the attestation type, and refuses the statuses go-webauthn
// deems undesired (REVOKED, USER_KEY_PHYSICAL_COMPROMISE,
// ATTESTATION_KEY_COMPROMISE, …).
func Parse(blob []byte, opts Options) (metadata.Provider, *Info, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	at := now()
	roots := opts.Roots
	if roots == nil {
		var err error
		if roots, err = productionRoots(); err != nil {
			return nil, nil, err
		}
	}

	var (
		signer *x509.Certificate
		kerr   error // signingCert's error, returned without the parser's wrapping
	)
	keyfunc := func(tok *jwt.Token) (any, error) {
		if signer, kerr = signingCert(tok, roots, at, opts.CRLs); kerr != nil {
			return nil, kerr
		}
		// Step 4. The JWT parser verifies the signature with this key.
		return signer.PublicKey, nil
	}
	var claims blobClaims
	parser := jwt.NewParser(jwt.WithValidMethods(signingMethods), jwt.WithoutClaimsValidation())
	if _, err := parser.ParseWithClaims(string(blob), &claims, keyfunc); err != nil {
		if kerr != nil {
			return nil, nil, kerr
		}
		if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return nil, nil, fmt.Errorf("%w: %w", ErrSignature, err)
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}

	// Step 6. Parse the entries with go-webauthn, which turns the JSON
	// into the typed entries its provider checks against.
	opt := []metadata.DecoderOption{metadata.WithIgnoreEntryParsingErrors()}
	if opts.StrictEntries {
		opt = nil
	}
	dec, err := metadata.NewDecoder(opt...)
	if err != nil {
		return nil, nil, err
	}
	md, err := dec.Parse(&claims.PayloadJSON)
	if err != nil {
		if md != nil && len(md.Unparsed) > 0 {
			err = fmt.Errorf("%w; the first: %w", err, md.Unparsed[0].Error)
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	info := &Info{
		Number: md.Parsed.Number, NextUpdate: md.Parsed.NextUpdate,
		Entries: len(md.Parsed.Entries), Skipped: len(md.Unparsed),
		Signer: signer.Subject.String(),
	}
	// Step 1 says when to fetch: by nextUpdate at the latest. Past it,
	// the BLOB may miss revocations FIDO has since published.
	if at.After(info.NextUpdate) {
		if !opts.AllowExpired {
			return nil, nil, fmt.Errorf("%w: BLOB no %d had nextUpdate %s; download a current one from %s",
				ErrExpired, info.Number, info.NextUpdate.Format(time.DateOnly), metadata.ProductionMDSURL)
		}
		info.Expired = true
		logf(opts.Logf, "mds: using expired metadata BLOB no %d (nextUpdate %s): download a current one from %s",
			info.Number, info.NextUpdate.Format(time.DateOnly), metadata.ProductionMDSURL)
	}
	for _, u := range md.Unparsed {
		logf(opts.Logf, "mds: BLOB no %d: left out an entry go-webauthn cannot parse: %v", info.Number, u.Error)
	}

	popts := append([]memory.Option{
		memory.WithMetadata(md.ToMap()),
		memory.WithMetadataKeyIdentifiers(md.ToKeyIdentifierMap()),
		memory.WithValidateEntry(true),
		memory.WithValidateEntryPermitZeroAAGUID(false),
		memory.WithValidateEntryKeyIdentifier(true),
		memory.WithValidateTrustAnchor(true),
		memory.WithValidateStatus(true),
		memory.WithValidateAttestationTypes(true),
		memory.WithValidateAAGUID(true),
	}, opts.ProviderOptions...)
	p, err := memory.New(popts...)
	if err != nil {
		return nil, nil, fmt.Errorf("mds: metadata provider: %w", err)
	}
	ext, ok := p.(metadata.ExtendedProvider)
	if !ok {
		return p, info, nil
	}
	var models []uuid.UUID
	for id := range md.ToMap() {
		models = append(models, id)
	}
	slices.SortFunc(models, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return &listingProvider{ExtendedProvider: ext, models: models}, info, nil
}

// listingProvider is go-webauthn's provider, which cannot list its
// entries, with the list of the models it describes. It embeds the
// extended interface, which go-webauthn asserts to run its further
// checks, so that it checks registrations exactly as the bare provider.
type listingProvider struct {
	metadata.ExtendedProvider
	models []uuid.UUID
}

// Models lists the AAGUIDs of the models described by a provider that
// [Parse] or [Load] returned, sorted, so that a server can tell clients
// about every model without a client naming the one it holds; ok is
// false for a provider from elsewhere.
func Models(p metadata.Provider) (aaguids []uuid.UUID, ok bool) {
	lp, ok := p.(*listingProvider)
	if !ok {
		return nil, false
	}
	return slices.Clone(lp.models), true
}

// signingCert finds the BLOB's signing certificate in its header and
// checks that it chains to roots at time at and is not revoked.
func signingCert(tok *jwt.Token, roots *x509.CertPool, at time.Time, crls []*x509.RevocationList) (*x509.Certificate, error) {
	// Step 2. An x5u header would make us fetch the chain; a BLOB
	// stored for offline use must carry it.
	if _, ok := tok.Header[metadata.HeaderX509URI]; ok {
		return nil, fmt.Errorf("%w: x5u header (fetching a chain is not supported offline)", ErrMalformed)
	}
	// Step 3. Take the chain from x5c. (With no x5c either, the spec makes
	// the trust anchor itself the signing certificate; FIDO's BLOBs always
	// carry x5c, so that form is refused.)
	chain, err := x5c(tok.Header[metadata.HeaderX509Certificate])
	if err != nil {
		return nil, err
	}
	// The chain must lead to a trust anchor (RFC 5280 path validation) at
	// the clock's time ...
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	paths, err := chain[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	// ... and no certificate on it may be revoked: checked against the
	// CRLs the caller supplied, since fetching them is not allowed.
	if err := checkRevoked(paths, crls); err != nil {
		return nil, err
	}
	return chain[0], nil
}

// x5c decodes the x5c JWS header (RFC 7515 §4.1.6): standard base64 DER
// certificates, the signing certificate first.
func x5c(h any) ([]*x509.Certificate, error) {
	list, ok := h.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("%w: no x5c certificate chain in the header", ErrMalformed)
	}
	if len(list) > maxChain {
		return nil, fmt.Errorf("%w: x5c holds %d certificates, at most %d", ErrMalformed, len(list), maxChain)
	}
	var chain []*x509.Certificate
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: x5c[%d] is not a string", ErrMalformed, i)
		}
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d]: %w", ErrMalformed, i, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d]: %w", ErrMalformed, i, err)
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// checkRevoked fails unless some verified path has no certificate listed
// in a CRL signed by that certificate's issuer on the path.
func checkRevoked(paths [][]*x509.Certificate, crls []*x509.RevocationList) error {
	if len(crls) == 0 {
		return nil
	}
	var revoked *x509.Certificate
	for _, path := range paths {
		ok := true
		for i := 0; i+1 < len(path) && ok; i++ {
			for _, crl := range crls {
				if crl.CheckSignatureFrom(path[i+1]) != nil {
					continue
				}
				for _, e := range crl.RevokedCertificateEntries {
					if e.SerialNumber.Cmp(path[i].SerialNumber) == 0 {
						ok, revoked = false, path[i]
					}
				}
			}
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("%w: %s (serial %s)", ErrRevoked, revoked.Subject, revoked.SerialNumber)
}

// productionRoots is go-webauthn's copy of the root FIDO's production
// BLOB chains to.
func productionRoots() (*x509.CertPool, error) {
	der, err := base64.StdEncoding.DecodeString(metadata.ProductionMDSRoot)
	if err != nil {
		return nil, fmt.Errorf("mds: production root: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mds: production root: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return pool, nil
}

// ParseRoots reads PEM "CERTIFICATE" blocks into a pool for
// [Options.Roots], failing on a file that holds none or a bad one, which
// x509.CertPool.AppendCertsFromPEM would silently skip.
func ParseRoots(pemData []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, pemData = pem.Decode(pemData)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("mds: root certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("mds: no PEM CERTIFICATE block in the root file")
	}
	return pool, nil
}

func logf(f func(string, ...any), format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}
