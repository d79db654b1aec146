package libfido2

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	gofido2 "github.com/keys-pub/go-libfido2"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
)

// cmTestPIN is the PIN the fixtures set.
const cmTestPIN = "1234"

// cmOpen serves a software key with cfg and opens it through libfido2.
func cmOpen(t *testing.T, cfg softkey.Config) (*softkeytest.Key, *Key) {
	t.Helper()
	sk := softkeytest.Serve(t, cfg)
	a, err := New(Config{}).Open(context.Background(), platform.Device{Path: sk.Path})
	if err != nil {
		t.Fatal(err)
	}
	return sk, a.(*Key)
}

// cmSetPIN sets the first PIN with go-libfido2 (inside call, like every
// libfido2 call).
func cmSetPIN(t *testing.T, path, pin string) {
	t.Helper()
	dev, err := gofido2.NewDevice(path)
	if err != nil {
		t.Fatal(err)
	}
	call(func() { err = dev.SetPIN(pin, "") })
	if err != nil {
		t.Fatalf("set PIN: %v", err)
	}
}

// cmMakeCredential makes a discoverable ES256 credential with go-libfido2
// and returns its ID.
func cmMakeCredential(t *testing.T, path string, rp gofido2.RelyingParty, user gofido2.User, prot gofido2.CredProtect) []byte {
	t.Helper()
	dev, err := gofido2.NewDevice(path)
	if err != nil {
		t.Fatal(err)
	}
	cdh := make([]byte, 32)
	rand.Read(cdh)
	var att *gofido2.Attestation
	call(func() {
		att, err = dev.MakeCredential(cdh, rp, user, gofido2.ES256, cmTestPIN,
			&gofido2.MakeCredentialOpts{RK: gofido2.True, CredProtect: prot})
	})
	if err != nil {
		t.Fatalf("make credential for %s/%s: %v", rp.ID, user.Name, err)
	}
	return att.CredentialID
}

// cmTool runs a fido2-tools binary; the shim and its sockets come with the
// test process's environment. A new session without a terminal makes the
// tools read the PIN from stdin.
func cmTool(t *testing.T, stdin, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err := cmd.Run()
	return out.String(), err
}

// cmFixture is a key with a PIN and three discoverable credentials on two
// RPs, bob's with credProtect level 2.
type cmFixture struct {
	sk                *softkeytest.Key
	key               *Key
	alice, bob, carol []byte // credential IDs
}

var (
	cmExample = gofido2.RelyingParty{ID: "example.com", Name: "Example"}
	cmLogin   = gofido2.RelyingParty{ID: "login.example.org", Name: "Login"}
	cmAlice   = gofido2.User{ID: []byte("alice-id"), Name: "alice", DisplayName: "Alice A"}
	cmBob     = gofido2.User{ID: []byte("bob-id"), Name: "bob", DisplayName: "Bob B"}
	cmCarol   = gofido2.User{ID: []byte("carol-id"), Name: "carol", DisplayName: "Carol C"}
)

func newCMFixture(t *testing.T) *cmFixture {
	t.Helper()
	sk, key := cmOpen(t, softkey.Config{})
	cmSetPIN(t, sk.Path, cmTestPIN)
	return &cmFixture{
		sk: sk, key: key,
		alice: cmMakeCredential(t, sk.Path, cmExample, cmAlice, gofido2.CredProtectNone),
		bob:   cmMakeCredential(t, sk.Path, cmExample, cmBob, gofido2.CredProtectUVOptionalWithID),
		carol: cmMakeCredential(t, sk.Path, cmLogin, cmCarol, gofido2.CredProtectNone),
	}
}

// cmFind returns the credential id from rps, and its RP's ID.
func cmFind(rps []platform.RelyingParty, id []byte) (platform.Credential, string, bool) {
	for _, rp := range rps {
		for _, c := range rp.Credentials {
			if bytes.Equal(c.ID, id) {
				return c, rp.ID, true
			}
		}
	}
	return platform.Credential{}, "", false
}

// cmWantPINInvalid checks a wrong PIN's error and the attempts it reports.
func cmWantPINInvalid(t *testing.T, err error, retries int) {
	t.Helper()
	var pe *platform.Error
	if !errors.Is(err, platform.ErrPINInvalid) || !errors.As(err, &pe) || pe.RetriesLeft != retries {
		t.Fatalf("wrong PIN: %v (%+v), want ErrPINInvalid with %d retries left", err, pe, retries)
	}
}

func TestCredentialManagement(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, f *cmFixture)
	}{
		{"ShouldCountCredentials", func(t *testing.T, f *cmFixture) {
			md, err := f.key.CredentialsMetadata(ctx, cmTestPIN)
			if err != nil {
				t.Fatal(err)
			}
			if md != (platform.CredentialsMetadata{Existing: 3, Remaining: 22}) {
				t.Fatalf("metadata %+v", md)
			}
		}},
		{"ShouldListCredentialsGroupedByRPWithProtection", func(t *testing.T, f *cmFixture) {
			rps, err := f.key.Credentials(ctx, cmTestPIN)
			if err != nil {
				t.Fatal(err)
			}
			if len(rps) != 2 {
				t.Fatalf("%d RPs: %+v", len(rps), rps)
			}
			want := map[string]struct {
				name  string
				users []string
			}{
				"example.com":       {"Example", []string{"alice", "bob"}},
				"login.example.org": {"Login", []string{"carol"}},
			}
			for _, rp := range rps {
				w, ok := want[rp.ID]
				if !ok || rp.Name != w.name || len(rp.Credentials) != len(w.users) {
					t.Fatalf("RP %+v", rp)
				}
				var users []string
				for _, c := range rp.Credentials {
					users = append(users, c.User.Name)
				}
				if strings.Join(users, ",") != strings.Join(w.users, ",") {
					t.Errorf("RP %s users %v, want %v", rp.ID, users, w.users)
				}
			}
			for _, c := range []struct {
				id   []byte
				rp   string
				user gofido2.User
				prot int
			}{
				{f.alice, "example.com", cmAlice, 1},
				{f.bob, "example.com", cmBob, 2},
				{f.carol, "login.example.org", cmCarol, 1},
			} {
				got, rp, ok := cmFind(rps, c.id)
				if !ok || rp != c.rp {
					t.Fatalf("credential of %s: found %v under %q", c.user.Name, ok, rp)
				}
				if !bytes.Equal(got.User.ID, c.user.ID) || got.User.Name != c.user.Name ||
					got.User.DisplayName != c.user.DisplayName || got.Protection != c.prot {
					t.Errorf("credential of %s: %+v, want user %+v protection %d", c.user.Name, got, c.user, c.prot)
				}
			}
		}},
		{"ShouldUpdateUserKeepingUserID", func(t *testing.T, f *cmFixture) {
			// The user ID passed is ignored: the stored one stays.
			err := f.key.UpdateUser(ctx, cmTestPIN, f.bob, platform.User{ID: []byte("other"), Name: "bobby", DisplayName: "Bobby Two"})
			if err != nil {
				t.Fatal(err)
			}
			rps, err := f.key.Credentials(ctx, cmTestPIN)
			if err != nil {
				t.Fatal(err)
			}
			got, _, ok := cmFind(rps, f.bob)
			if !ok || string(got.User.ID) != "bob-id" || got.User.Name != "bobby" || got.User.DisplayName != "Bobby Two" || got.Protection != 2 {
				t.Fatalf("after update: %+v (found %v)", got, ok)
			}
			if alice, _, _ := cmFind(rps, f.alice); alice.User.Name != "alice" {
				t.Errorf("another credential changed: %+v", alice)
			}
			out, err := cmTool(t, cmTestPIN+"\n", "fido2-token", "-L", "-k", "example.com", f.sk.Path)
			if err != nil || !strings.Contains(out, "Bobby Two") || !strings.Contains(out, base64.StdEncoding.EncodeToString([]byte("bob-id"))) {
				t.Fatalf("fido2-token -L -k after the update: %v\n%s", err, out)
			}
		}},
		{"ShouldDeleteCredential", func(t *testing.T, f *cmFixture) {
			if err := f.key.DeleteCredential(ctx, cmTestPIN, f.alice); err != nil {
				t.Fatal(err)
			}
			out, err := cmTool(t, cmTestPIN+"\n", "fido2-token", "-L", "-k", "example.com", f.sk.Path)
			if err != nil || strings.Contains(out, base64.StdEncoding.EncodeToString(f.alice)) ||
				!strings.Contains(out, base64.StdEncoding.EncodeToString(f.bob)) {
				t.Fatalf("fido2-token -L -k after the delete: %v\n%s", err, out)
			}
			md, err := f.key.CredentialsMetadata(ctx, cmTestPIN)
			if err != nil || md.Existing != 2 {
				t.Fatalf("metadata after the delete: %+v %v", md, err)
			}
		}},
		{"ShouldDropRPWhoseLastCredentialIsDeleted", func(t *testing.T, f *cmFixture) {
			if err := f.key.DeleteCredential(ctx, cmTestPIN, f.carol); err != nil {
				t.Fatal(err)
			}
			rps, err := f.key.Credentials(ctx, cmTestPIN)
			if err != nil || len(rps) != 1 || rps[0].ID != "example.com" {
				t.Fatalf("after deleting carol: %+v %v", rps, err)
			}
		}},
		{"ShouldFailDeleteOfUnknownID", func(t *testing.T, f *cmFixture) {
			err := f.key.DeleteCredential(ctx, cmTestPIN, []byte("no such credential"))
			if !errors.Is(err, platform.ErrNoCredentials) {
				t.Fatalf("delete of an unknown ID: %v", err)
			}
		}},
		{"ShouldFailUpdateOfUnknownID", func(t *testing.T, f *cmFixture) {
			err := f.key.UpdateUser(ctx, cmTestPIN, []byte("no such credential"), platform.User{Name: "x"})
			if !errors.Is(err, platform.ErrNoCredentials) {
				t.Fatalf("update of an unknown ID: %v", err)
			}
		}},
		{"ShouldRejectWrongPINWithRetriesLeft", func(t *testing.T, f *cmFixture) {
			ops := []struct {
				name string
				run  func() error
			}{
				{"metadata", func() error { _, err := f.key.CredentialsMetadata(ctx, "9999"); return err }},
				{"list", func() error { _, err := f.key.Credentials(ctx, "9999"); return err }},
				{"delete", func() error { return f.key.DeleteCredential(ctx, "9999", f.alice) }},
				{"update", func() error { return f.key.UpdateUser(ctx, "9999", f.alice, platform.User{Name: "x"}) }},
			}
			for _, op := range ops {
				// One wrong PIN leaves 7 of 8 attempts; the right PIN
				// that follows restores them (and ends the streak that
				// blocks PIN use after three in a row).
				t.Run(op.name, func(t *testing.T) { cmWantPINInvalid(t, op.run(), 7) })
				if _, err := f.key.CredentialsMetadata(ctx, cmTestPIN); err != nil {
					t.Fatal(err)
				}
			}
			if rps, err := f.key.Credentials(ctx, cmTestPIN); err != nil || len(rps) != 2 {
				t.Fatalf("credentials after the wrong PINs: %+v %v", rps, err)
			}
		}},
		{"ShouldRequirePINWithoutSpendingAnAttempt", func(t *testing.T, f *cmFixture) {
			if _, err := f.key.Credentials(ctx, ""); !errors.Is(err, platform.ErrPINRequired) {
				t.Fatalf("empty PIN: %v", err)
			}
			info, err := f.key.Info(ctx)
			if err != nil || info.PINRetries != 8 {
				t.Fatalf("PIN retries %d after an empty PIN (%v)", info.PINRetries, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newCMFixture(t)) })
	}
}

func TestCredentialManagementOfEmptyKey(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, key *Key)
	}{
		{"ShouldListNoRelyingParties", func(t *testing.T, key *Key) {
			rps, err := key.Credentials(ctx, cmTestPIN)
			if err != nil || rps == nil || len(rps) != 0 {
				t.Fatalf("credentials of an empty key: %#v %v", rps, err)
			}
		}},
		{"ShouldCountNoCredentials", func(t *testing.T, key *Key) {
			md, err := key.CredentialsMetadata(ctx, cmTestPIN)
			if err != nil || md != (platform.CredentialsMetadata{Existing: 0, Remaining: 25}) {
				t.Fatalf("metadata of an empty key: %+v %v", md, err)
			}
		}},
		{"ShouldFailUpdateOnEmptyKey", func(t *testing.T, key *Key) {
			err := key.UpdateUser(ctx, cmTestPIN, []byte("x"), platform.User{Name: "x"})
			if !errors.Is(err, platform.ErrNoCredentials) {
				t.Fatalf("update on an empty key: %v", err)
			}
		}},
		{"ShouldRejectWrongPINOnEmptyKey", func(t *testing.T, key *Key) {
			_, err := key.Credentials(ctx, "9999")
			cmWantPINInvalid(t, err, 7)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk, key := cmOpen(t, softkey.Config{})
			cmSetPIN(t, sk.Path, cmTestPIN)
			tt.run(t, key)
		})
	}
}

func TestCredentialManagementWithoutPIN(t *testing.T) {
	// A key without a PIN refuses credential management with PIN_NOT_SET.
	_, key := cmOpen(t, softkey.Config{})
	if _, err := key.Credentials(context.Background(), cmTestPIN); !errors.Is(err, platform.ErrPINNotSet) {
		t.Fatalf("credentials of a key without a PIN: %v", err)
	}
}
