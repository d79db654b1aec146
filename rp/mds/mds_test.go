package mds_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/keydesk/keydesk/rp/mds"
	"github.com/keydesk/keydesk/rp/mds/mdstest"
	"github.com/keydesk/keydesk/rp/rptest"
)

const origin = "https://localhost"

func TestLoad(t *testing.T) {
	yearOut := time.Now().AddDate(1, 0, 0)
	good := mdstest.NewPKI(t, "good", yearOut)
	other := mdstest.NewPKI(t, "other", yearOut)
	someCA := good.Root.Raw // any DER certificate will do as an entry's root here
	valid := good.Blob(t, mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{someCA}))

	tests := []struct {
		name    string
		file    func(t *testing.T) []byte
		opts    func(o *mds.Options)
		wantErr error  // nil: loads
		wantMsg string // in the error text, when set
		check   func(t *testing.T, info *mds.Info, logs []string)
	}{
		{
			name: "ShouldLoadAValidBlob",
			file: func(*testing.T) []byte { return valid },
			check: func(t *testing.T, info *mds.Info, logs []string) {
				if info.Number != 42 || info.Entries != 1 || info.Skipped != 0 || info.Expired {
					t.Errorf("info = %+v, want no 42, 1 entry, none skipped, not expired", info)
				}
				if got, want := info.NextUpdate.Format(time.DateOnly), time.Now().AddDate(0, 1, 0).Format(time.DateOnly); got != want {
					t.Errorf("NextUpdate = %s, want %s", got, want)
				}
				if !strings.Contains(info.Signer, "good MDS signer") {
					t.Errorf("Signer = %q", info.Signer)
				}
				if len(logs) != 0 {
					t.Errorf("unexpected warnings: %q", logs)
				}
			},
		},
		{
			name: "ShouldLoadASignerChainedDirectlyToTheRoot",
			file: func(t *testing.T) []byte {
				signer, key := mdstest.NewCert(t, "direct signer", false, nil, good.Root, good.RootKey, yearOut)
				return mdstest.Sign(t, key, map[string]any{"x5c": []any{mdstest.B64(signer.Raw)}}, mdstest.Payload(7, yearOut))
			},
			check: func(t *testing.T, info *mds.Info, _ []string) {
				if info.Number != 7 || info.Entries != 0 {
					t.Errorf("info = %+v", info)
				}
			},
		},
		{
			name:    "ShouldRefuseABadSignature",
			file:    func(*testing.T) []byte { return mdstest.FlipSignature(valid) },
			wantErr: mds.ErrSignature,
		},
		{
			name: "ShouldRefuseAPayloadChangedAfterSigning",
			file: func(t *testing.T) []byte {
				parts := strings.Split(string(valid), ".")
				evil := mdstest.Sign(t, good.SignerKey, map[string]any{"x5c": good.X5C()}, mdstest.Payload(43, yearOut))
				parts[1] = strings.Split(string(evil), ".")[1]
				return []byte(strings.Join(parts, "."))
			},
			wantErr: mds.ErrSignature,
		},
		{
			name: "ShouldRefuseABlobSignedUnderAnUntrustedRoot",
			file: func(t *testing.T) []byte {
				return other.Blob(t, mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{someCA}))
			},
			wantErr: mds.ErrUntrusted,
			wantMsg: "unknown authority",
		},
		{
			name: "ShouldRefuseAChainNamingATrustedCertButSignedByAnotherKey",
			file: func(t *testing.T) []byte {
				return mdstest.Sign(t, other.SignerKey, map[string]any{"x5c": good.X5C()}, mdstest.Payload(1, yearOut))
			},
			wantErr: mds.ErrSignature,
		},
		{
			name: "ShouldRefuseAnExpiredSigningCertificate",
			file: func(*testing.T) []byte { return valid },
			opts: func(o *mds.Options) {
				o.Now = func() time.Time { return yearOut.AddDate(0, 0, 1) }
				o.AllowExpired = true
			},
			wantErr: mds.ErrUntrusted,
			wantMsg: "expired",
		},
		{
			name: "ShouldRefuseARevokedSigningCertificate",
			file: func(*testing.T) []byte { return valid },
			opts: func(o *mds.Options) {
				o.CRLs = []*x509.RevocationList{other.CRLRevokingSigner(t), good.CRLRevokingSigner(t)}
			},
			wantErr: mds.ErrRevoked,
			wantMsg: "good MDS signer",
		},
		{
			name: "ShouldIgnoreCRLsOfOtherIssuers",
			file: func(*testing.T) []byte { return valid },
			opts: func(o *mds.Options) {
				o.CRLs = []*x509.RevocationList{other.CRLRevokingSigner(t)}
			},
		},
		{
			name:    "ShouldRefuseATruncatedFile",
			file:    func(*testing.T) []byte { return valid[:len(valid)/2] },
			wantErr: mds.ErrMalformed,
		},
		{
			name:    "ShouldRefuseAFileCutInsideTheSignature",
			file:    func(*testing.T) []byte { return valid[:len(valid)-10] },
			wantErr: mds.ErrSignature,
		},
		{
			name:    "ShouldRefuseGarbage",
			file:    func(*testing.T) []byte { return []byte("\x00\xffnot a JWT at all\n") },
			wantErr: mds.ErrMalformed,
		},
		{
			name:    "ShouldRefuseAnEmptyFile",
			file:    func(*testing.T) []byte { return nil },
			wantErr: mds.ErrMalformed,
		},
		{
			name: "ShouldRefuseAnExpiredBlob",
			file: func(t *testing.T) []byte {
				return mdstest.Sign(t, good.SignerKey, map[string]any{"x5c": good.X5C()}, mdstest.Payload(9, time.Now().AddDate(0, 0, -2)))
			},
			wantErr: mds.ErrExpired,
			wantMsg: "expired",
		},
		{
			name: "ShouldLoadAnExpiredBlobWithAWarningWhenAllowed",
			file: func(t *testing.T) []byte {
				return mdstest.Sign(t, good.SignerKey, map[string]any{"x5c": good.X5C()}, mdstest.Payload(9, time.Now().AddDate(0, 0, -2)))
			},
			opts: func(o *mds.Options) { o.AllowExpired = true },
			check: func(t *testing.T, info *mds.Info, logs []string) {
				if !info.Expired {
					t.Error("Info.Expired not set")
				}
				if len(logs) != 1 || !strings.Contains(logs[0], "expired") {
					t.Errorf("warnings = %q, want one about expiry", logs)
				}
			},
		},
		{
			name: "ShouldRefuseABlobWithoutX5C",
			file: func(t *testing.T) []byte {
				return mdstest.Sign(t, good.SignerKey, nil, mdstest.Payload(1, yearOut))
			},
			wantErr: mds.ErrMalformed,
			wantMsg: "x5c",
		},
		{
			name: "ShouldRefuseAnX5UHeader",
			file: func(t *testing.T) []byte {
				return mdstest.Sign(t, good.SignerKey, map[string]any{"x5c": good.X5C(), "x5u": "https://example.com/chain"}, mdstest.Payload(1, yearOut))
			},
			wantErr: mds.ErrMalformed,
			wantMsg: "x5u",
		},
		{
			name: "ShouldRefuseAnUnsignedBlob",
			file: func(t *testing.T) []byte {
				parts := strings.Split(string(valid), ".")
				h, _ := json.Marshal(map[string]any{"alg": "none", "x5c": good.X5C()})
				return []byte(base64.RawURLEncoding.EncodeToString(h) + "." + parts[1] + ".")
			},
			wantErr: mds.ErrSignature,
		},
		{
			name: "ShouldRefuseAnX5CEntryThatIsNotACertificate",
			file: func(t *testing.T) []byte {
				return mdstest.Sign(t, good.SignerKey, map[string]any{"x5c": []any{"bm90IGEgY2VydA=="}}, mdstest.Payload(1, yearOut))
			},
			wantErr: mds.ErrMalformed,
		},
		{
			name: "ShouldRefuseABadNextUpdate",
			file: func(t *testing.T) []byte {
				p := mdstest.Payload(1, yearOut)
				p.NextUpdate = "soon"
				return mdstest.Sign(t, good.SignerKey, map[string]any{"x5c": good.X5C()}, p)
			},
			wantErr: mds.ErrMalformed,
		},
		{
			name: "ShouldSkipAnEntryGoWebAuthnCannotParse",
			file: func(t *testing.T) []byte {
				bad := mdstest.Entry("not-a-uuid", nil)
				return good.Blob(t, mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{someCA}), bad)
			},
			check: func(t *testing.T, info *mds.Info, logs []string) {
				if info.Entries != 1 || info.Skipped != 1 {
					t.Errorf("info = %+v, want 1 entry and 1 skipped", info)
				}
				if len(logs) != 1 || !strings.Contains(logs[0], "not-a-uuid") {
					t.Errorf("warnings = %q, want one naming the entry", logs)
				}
			},
		},
		{
			name: "ShouldRefuseAnUnparsableEntryWhenStrict",
			file: func(t *testing.T) []byte {
				return good.Blob(t, mdstest.Entry("not-a-uuid", nil))
			},
			opts:    func(o *mds.Options) { o.StrictEntries = true },
			wantErr: mds.ErrMalformed,
		},
		{
			name:    "ShouldRefuseATestBlobUnderTheDefaultProductionRoot",
			file:    func(*testing.T) []byte { return valid },
			opts:    func(o *mds.Options) { o.Roots = nil },
			wantErr: mds.ErrUntrusted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs []string
			opts := mds.Options{
				Roots: good.Pool(),
				Logf:  func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) },
			}
			if tt.opts != nil {
				tt.opts(&opts)
			}
			path := mdstest.WriteFile(t, "blob.jwt", tt.file(t))
			p, info, err := mds.Load(path, opts)
			if tt.wantErr != nil {
				t.Logf("refused: %v", err)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Load error = %v, want %v", err, tt.wantErr)
				}
				if p != nil || info != nil {
					t.Error("Load returned a provider with its error")
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the file", err)
				}
				if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not say %q", err, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if p == nil || info == nil {
				t.Fatal("Load returned no provider or info")
			}
			if tt.check != nil {
				tt.check(t, info, logs)
			}
		})
	}
}

func TestLoadShouldRefuseAMissingFile(t *testing.T) {
	_, _, err := mds.Load(t.TempDir()+"/absent.jwt", mds.Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadShouldRefuseAnOversizedFile(t *testing.T) {
	path := t.TempDir() + "/big.jwt"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(mds.MaxBlobSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, _, err := mds.Load(path, mds.Options{}); !errors.Is(err, mds.ErrMalformed) || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("error = %v, want ErrMalformed saying it is too large", err)
	}
}

// TestParseShouldReadTheSpecExampleBlob checks the JSON decoding against
// a BLOB FIDO published rather than one these tests wrote.
func TestParseShouldReadTheSpecExampleBlob(t *testing.T) {
	blob, err := os.ReadFile("testdata/fido-example-blob.jwt")
	if err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(metadata.ExampleMDSRoot)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := mds.ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) // inside the example signing certificate's validity
	opts := mds.Options{Roots: roots, Now: func() time.Time { return at }}

	if _, _, err := mds.Parse(blob, opts); !errors.Is(err, mds.ErrExpired) || !strings.Contains(err.Error(), "2020-03-30") {
		t.Fatalf("Parse error = %v, want ErrExpired naming nextUpdate 2020-03-30", err)
	}
	opts.AllowExpired = true
	p, info, err := mds.Parse(blob, opts)
	if err != nil {
		t.Fatal(err)
	}
	if info.Number != 15 || info.Entries != 2 || info.Skipped != 0 || !info.Expired {
		t.Errorf("info = %+v, want no 15, 2 entries, expired", info)
	}
	e, err := p.GetEntry(context.Background(), uuid.MustParse("0132d110-bf4e-4208-a403-ab4f5f12efe5"))
	if err != nil || e == nil {
		t.Fatalf("GetEntry = %v, %v", e, err)
	}
	st := e.MetadataStatement
	if st.Description != "FIDO Alliance Sample FIDO2 Authenticator" || len(st.AttestationRootCertificates) != 1 ||
		len(e.StatusReports) != 2 || e.StatusReports[1].Status != metadata.FidoCertifiedL1 ||
		st.AuthenticatorGetInfo.AaGUID != e.AaGUID || len(st.AuthenticatorGetInfo.Versions) != 2 {
		t.Errorf("entry decoded wrongly: %+v", e)
	}
}

func TestParseRootsShouldRefuseAFileWithoutCertificates(t *testing.T) {
	for _, in := range []string{"", "not PEM", "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n"} {
		if _, err := mds.ParseRoots([]byte(in)); err == nil {
			t.Errorf("ParseRoots(%q) succeeded", in)
		}
	}
}

type user struct{ id []byte }

func (u user) WebAuthnID() []byte                         { return u.id }
func (u user) WebAuthnName() string                       { return "alice" }
func (u user) WebAuthnDisplayName() string                { return "Alice" }
func (u user) WebAuthnCredentials() []webauthn.Credential { return nil }

// register runs one registration ceremony of key with go-webauthn
// verifying attestation against provider.
func register(t *testing.T, provider metadata.Provider, key *rptest.Key) (*webauthn.Credential, error) {
	t.Helper()
	wa, err := webauthn.New(&webauthn.Config{
		RPID: "localhost", RPDisplayName: "Keydesk test", RPOrigins: []string{origin},
		AttestationPreference: protocol.PreferDirectAttestation, MDS: provider,
	})
	if err != nil {
		t.Fatal(err)
	}
	u := user{id: []byte("user-1")}
	creation, session, err := wa.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	options, err := json.Marshal(creation.Response)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := key.Create(options)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(resp)
	if err != nil {
		t.Fatal(err)
	}
	return wa.CreateCredential(u, *session, parsed)
}

// stripAttestation makes the client send a "none" attestation, as a
// browser may.
func stripAttestation(t *testing.T) func(map[string]any) {
	return func(resp map[string]any) {
		r := resp["response"].(map[string]any)
		var obj struct {
			Fmt      string         `cbor:"fmt"`
			AuthData []byte         `cbor:"authData"`
			AttStmt  map[string]any `cbor:"attStmt"`
		}
		if err := cbor.Unmarshal(r["attestationObject"].(rptest.B64), &obj); err != nil {
			t.Error(err)
			return
		}
		obj.Fmt, obj.AttStmt = "none", map[string]any{}
		b, err := cbor.Marshal(obj)
		if err != nil {
			t.Error(err)
			return
		}
		r["attestationObject"] = rptest.B64(b)
	}
}

func TestRegistration(t *testing.T) {
	pk := mdstest.NewPKI(t, "fido", time.Now().AddDate(1, 0, 0))
	stranger, err := rptest.NewKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	strangerCA := stranger.Authenticator.AttestationCA()

	tests := []struct {
		name    string
		entries func(keyCA []byte) []metadata.EntryJSON
		tamper  func(t *testing.T) func(map[string]any)
		// wantErr is in the refusal's details when registration must fail.
		wantErr string
		// wantUnattested: registration passes go-webauthn but CheckAttested refuses it.
		wantUnattested bool
	}{
		{
			name: "ShouldAcceptAKeyChainingToItsModelsRoot",
			entries: func(keyCA []byte) []metadata.EntryJSON {
				return []metadata.EntryJSON{mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{keyCA})}
			},
		},
		{
			name: "ShouldAcceptAKeyWhoseRootIsOneOfSeveral",
			entries: func(keyCA []byte) []metadata.EntryJSON {
				return []metadata.EntryJSON{mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{strangerCA, keyCA})}
			},
		},
		{
			name: "ShouldRefuseARevokedModel",
			entries: func(keyCA []byte) []metadata.EntryJSON {
				return []metadata.EntryJSON{mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{keyCA}, metadata.FidoCertifiedL1, metadata.Revoked)}
			},
			wantErr: "REVOKED",
		},
		{
			name: "ShouldRefuseAModelWithPhysicallyCompromisedKeys",
			entries: func(keyCA []byte) []metadata.EntryJSON {
				return []metadata.EntryJSON{mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{keyCA}, metadata.FidoCertifiedL1, metadata.UserKeyPhysicalCompromise)}
			},
			wantErr: "USER_KEY_PHYSICAL_COMPROMISE",
		},
		{
			name: "ShouldRefuseAKeyWhoseChainLeadsToAnotherKeysCA",
			entries: func([]byte) []metadata.EntryJSON {
				return []metadata.EntryJSON{mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{strangerCA})}
			},
			wantErr: "trust chain",
		},
		{
			name: "ShouldRefuseAModelTheBlobDoesNotList",
			entries: func(keyCA []byte) []metadata.EntryJSON {
				return []metadata.EntryJSON{mdstest.Entry(uuid.NewString(), [][]byte{keyCA})}
			},
			wantErr: "no registered metadata",
		},
		{
			name: "ShouldRefuseAnAttestationTypeTheModelDoesNotUse",
			entries: func(keyCA []byte) []metadata.EntryJSON {
				e := mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{keyCA})
				e.MetadataStatement.AttestationTypes = metadata.AuthenticatorAttestationTypes{metadata.BasicSurrogate}
				return []metadata.EntryJSON{e}
			},
			wantErr: "attestation type 'basic_full'",
		},
		{
			name: "ShouldLeaveAStrippedAttestationToCheckAttested",
			entries: func(keyCA []byte) []metadata.EntryJSON {
				return []metadata.EntryJSON{mdstest.Entry(mdstest.SoftkeyAAGUID, [][]byte{strangerCA})}
			},
			tamper:         stripAttestation,
			wantUnattested: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := rptest.NewKey(origin)
			if err != nil {
				t.Fatal(err)
			}
			if tt.tamper != nil {
				key.Tamper = tt.tamper(t)
			}
			provider, _, err := mds.Load(mdstest.WriteFile(t, "blob.jwt", pk.Blob(t, tt.entries(key.Authenticator.AttestationCA())...)), mds.Options{Roots: pk.Pool()})
			if err != nil {
				t.Fatal(err)
			}
			cred, err := register(t, provider, key)
			if tt.wantErr != "" {
				var pe *protocol.Error
				if !errors.As(err, &pe) {
					t.Fatalf("registration error = %v, want a protocol.Error", err)
				}
				t.Logf("refused: %s | %s", pe.Details, pe.DevInfo)
				if all := pe.Details + " " + pe.DevInfo; !strings.Contains(all, tt.wantErr) {
					t.Fatalf("refusal %q does not mention %q", all, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("registration refused: %v", err)
			}
			err = mds.CheckAttested(cred)
			if tt.wantUnattested {
				if !errors.Is(err, mds.ErrNotAttested) {
					t.Fatalf("CheckAttested = %v, want ErrNotAttested", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckAttested: %v", err)
			}
			if cred.AttestationType != string(metadata.BasicFull) || cred.AttestationFormat != "packed" {
				t.Errorf("attestation %s/%s, want packed/basic_full", cred.AttestationFormat, cred.AttestationType)
			}
		})
	}
}

func TestCheckAttested(t *testing.T) {
	tests := []struct {
		name, format, typ string
		ok                bool
	}{
		{"ShouldAcceptBasicFull", "packed", "basic_full", true},
		{"ShouldAcceptAttCA", "tpm", "attca", true},
		{"ShouldAcceptAnonCA", "apple", "anonca", true},
		{"ShouldRefuseNone", "none", "none", false},
		{"ShouldRefuseSelfAttestation", "packed", "basic_surrogate", false},
		{"ShouldRefuseNoneEvenWithATrustPathType", "none", "basic_full", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mds.CheckAttested(&webauthn.Credential{AttestationFormat: tt.format, AttestationType: tt.typ})
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, mds.ErrNotAttested)) {
				t.Fatalf("CheckAttested(%s/%s) = %v, want ok=%v", tt.format, tt.typ, err, tt.ok)
			}
		})
	}
}

// TestModelsShouldListTheBLOBsModels: the provider Parse returns lists
// the AAGUIDs of its entries, sorted, and still checks registrations as
// go-webauthn's own provider (the extended checks included: see
// TestRegistration); a provider from elsewhere lists nothing.
func TestModelsShouldListTheBLOBsModels(t *testing.T) {
	p := mdstest.NewPKI(t, "models", time.Now().Add(48*time.Hour))
	const a, b = "bbbbbbbb-0000-4000-8000-000000000002", "aaaaaaaa-0000-4000-8000-000000000001"
	k, err := rptest.NewKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	provider, _, err := mds.Parse(p.Blob(t, mdstest.Entry(a, [][]byte{k.Authenticator.AttestationCA()}), mdstest.Entry(b, [][]byte{k.Authenticator.AttestationCA()})), mds.Options{Roots: p.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := mds.Models(provider)
	if !ok || len(got) != 2 || got[0].String() != b || got[1].String() != a {
		t.Fatalf("Models = %v, %v", got, ok)
	}
	if _, ok := provider.(metadata.ExtendedProvider); !ok {
		t.Fatal("the provider lost go-webauthn's extended checks")
	}
	got[0] = uuid.Nil
	if again, _ := mds.Models(provider); again[0].String() != b {
		t.Fatal("Models returned the provider's own slice")
	}
	if _, ok := mds.Models(nil); ok {
		t.Fatal("a provider from elsewhere listed models")
	}
}
