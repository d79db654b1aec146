package stacktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// recordSeedsEnv, set to 1, makes TestLibfido2RequestsAreFuzzSeeds rewrite
// the recorded seeds of the engine's FuzzCommand target.
const recordSeedsEnv = "KEYDESK_RECORD_SEEDS"

// seedDir is where FuzzCommand (package softkey) keeps its corpus.
var seedDir = filepath.Join("..", "testdata", "fuzz", "FuzzCommand")

// recorder stands in front of a key and keeps every CTAP2 request it gets,
// whichever process sent it.
type recorder struct {
	*softkey.Authenticator
	mu   sync.Mutex
	reqs map[string][]byte // file name -> request
}

func (r *recorder) CBOR(ctx context.Context, req []byte, keepalive func(byte)) []byte {
	sum := sha256.Sum256(req)
	name := fmt.Sprintf("libfido2-%02x-%s", req[0], hex.EncodeToString(sum[:6]))
	r.mu.Lock()
	if r.reqs != nil {
		r.reqs[name] = bytes.Clone(req)
	}
	r.mu.Unlock()
	return r.Authenticator.CBOR(ctx, req, keepalive)
}

// TestLibfido2RequestsAreFuzzSeeds runs the flows of libfido2 and
// fido2-tools that reach every command (PIN, tokens, credentials with
// extensions, assertions, credential management, fingerprints, config,
// reset) and checks that FuzzCommand's corpus holds what libfido2 sends
// for each command, so fuzzing starts from real requests.
func TestLibfido2RequestsAreFuzzSeeds(t *testing.T) {
	a, err := softkey.New(softkey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Authenticator: a, reqs: map[string][]byte{}}
	k := softkeytest.ServeHandler(t, a, rec)
	dev, err := libfido2.NewDevice(k.Path)
	if err != nil {
		t.Fatal(err)
	}
	cdh := bytes.Repeat([]byte{7}, 32)
	rp := libfido2.RelyingParty{ID: "example.com", Name: "Example"}
	steps := []struct {
		name string
		run  func() error
	}{
		{"setPIN", func() error { return dev.SetPIN("1234", "") }},
		{"makeCredential", func() error {
			_, err := dev.MakeCredential(cdh, rp, libfido2.User{ID: []byte("alice"), Name: "alice"}, libfido2.ES256, "1234",
				&libfido2.MakeCredentialOpts{RK: libfido2.True, Extensions: []libfido2.Extension{libfido2.HMACSecretExtension}, CredProtect: libfido2.CredProtectUVOptionalWithID})
			return err
		}},
		{"getAssertion", func() error {
			_, err := dev.Assertion("example.com", cdh, nil, "1234", &libfido2.AssertionOpts{Extensions: []libfido2.Extension{libfido2.HMACSecretExtension}, HMACSalt: bytes.Repeat([]byte{9}, 32)})
			return err
		}},
		{"credentialManagement", func() error {
			if _, err := dev.RelyingParties("1234"); err != nil {
				return err
			}
			creds, err := dev.Credentials("example.com", "1234")
			if err != nil {
				return err
			}
			return dev.DeleteCredential(creds[0].ID, "1234")
		}},
		{"bioEnrollment", func() error {
			if err := dev.BioEnroll("1234"); err != nil {
				return err
			}
			_, err := dev.BioList("1234")
			return err
		}},
		{"config", func() error {
			_, _, err := tool(t, "1234\n", "fido2-token", "-S", "-l", "6", k.Path)
			return err
		}},
		{"changePIN", func() error {
			_, _, err := tool(t, "1234\n654321\n654321\n", "fido2-token", "-C", k.Path)
			return err
		}},
		{"reset", func() error { return dev.Reset() }},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}

	rec.mu.Lock()
	reqs := rec.reqs
	rec.reqs = nil
	rec.mu.Unlock()
	names := make([]string, 0, len(reqs))
	for name := range reqs {
		names = append(names, name)
	}
	sort.Strings(names)
	if os.Getenv(recordSeedsEnv) == "1" {
		old, _ := filepath.Glob(filepath.Join(seedDir, "libfido2-*"))
		for _, f := range old {
			os.Remove(f)
		}
		for _, name := range names {
			req := reqs[name]
			body := fmt.Sprintf("go test fuzz v1\nbool(false)\nbyte(%q)\n[]byte(%q)\n", req[0], req[1:])
			if err := os.WriteFile(filepath.Join(seedDir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("wrote %d seeds to %s", len(names), seedDir)
	}
	// Every command libfido2 sent has seeds in the corpus.
	seen := map[byte]bool{}
	for _, name := range names {
		seen[reqs[name][0]] = true
	}
	for cmd := range seen {
		matches, _ := filepath.Glob(filepath.Join(seedDir, fmt.Sprintf("libfido2-%02x-*", cmd)))
		if len(matches) == 0 {
			t.Errorf("no recorded libfido2 seed for command 0x%02x in %s (run with %s=1)", cmd, seedDir, recordSeedsEnv)
		}
	}
}
