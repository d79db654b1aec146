package provision_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/provision"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/libfido2"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
)

// Keys are software keys behind the real libfido2 (the LD_PRELOAD shim);
// the service is the reference RP server over HTTP on loopback.
func TestMain(m *testing.M) { os.Exit(softkeytest.Preload(m)) }

const (
	rpID     = "localhost"
	rpOrigin = "https://localhost"
	// softkeyAAGUID is the software key's model.
	softkeyAAGUID = "ef185f03-0d9a-4909-8ff0-93c535aa9ecd"
)

// env is a reference RP with an admin, root, signed in through admin.
type env struct {
	srv   *rptest.Server
	admin *rpclient.Client
	// rootKey is root's key, for signing in again.
	rootKey *rptest.Key
}

// signInAgain gives e.admin a new session of root's.
func (e *env) signInAgain(t testing.TB) {
	t.Helper()
	root := &rptest.Client{BaseURL: e.srv.URL}
	if _, err := root.Login(e.rootKey, "root"); err != nil {
		t.Fatal(err)
	}
	if err := e.admin.SetToken(root.Token); err != nil {
		t.Fatal(err)
	}
}

func newEnv(t testing.TB, o rptest.ServerOptions) *env {
	t.Helper()
	srv := rptest.StartServer(t, o)
	root := &rptest.Client{BaseURL: srv.URL}
	if _, err := root.Redeem("root", srv.Code); err != nil {
		t.Fatal(err)
	}
	k, err := rptest.NewKey(rpOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Register(k, "root's key"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Login(k, "root"); err != nil {
		t.Fatal(err)
	}
	admin, err := rpclient.New(rpclient.Config{BaseURL: srv.URL, Token: root.Token, RetryBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, admin: admin, rootKey: k}
}

// users creates accounts.
func (e *env) users(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := e.admin.CreateUser(context.Background(), api.CreateUserRequest{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
}

// config is a Provisioner's configuration for e, changed by change.
func (e *env) config(change func(*provision.Config)) provision.Config {
	origin, _ := webauthn.ParseOrigin(rpOrigin)
	cfg := provision.Config{API: e.admin, Origin: origin, Batch: "test batch", Nickname: "Work key"}
	if change != nil {
		change(&cfg)
	}
	return cfg
}

func (e *env) provisioner(t testing.TB, change func(*provision.Config)) *provision.Provisioner {
	t.Helper()
	p, err := provision.New(context.Background(), e.config(change))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// plug serves a software key and opens it through libfido2.
func plug(t testing.TB, cfg softkey.Config) (platform.Authenticator, *softkeytest.Key) {
	t.Helper()
	sk := softkeytest.Serve(t, cfg)
	k, err := libfido2.New(libfido2.Config{}).Open(context.Background(), platform.Device{Path: sk.Path, Transport: platform.TransportUSB})
	if err != nil {
		t.Fatal(err)
	}
	return k, sk
}

// signInAs signs in to the service as user with key and pin, as the user
// will: through enroll, with its own session.
func (e *env) signInAs(t testing.TB, key platform.Authenticator, user, pin string) (*api.Session, error) {
	t.Helper()
	c, err := rpclient.New(rpclient.Config{BaseURL: e.srv.URL, RetryBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	origin, _ := webauthn.ParseOrigin(rpOrigin)
	s, err := enroll.New(enroll.Config{Origin: origin, API: c, UI: enroll.UI{PIN: func(context.Context, int) (string, error) { return pin, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	return s.SignIn(context.Background(), key, user)
}

// TestProvisionAFreshKey runs every step on a new key and checks what the
// user receives: the key enrolled for them, marked, with a random PIN that
// must be changed before use and a minimum PIN length.
func TestProvisionAFreshKey(t *testing.T) {
	e := newEnv(t, rptest.ServerOptions{})
	e.users(t, "alice")
	var mu sync.Mutex
	var progress []provision.Progress
	p := e.provisioner(t, func(c *provision.Config) {
		c.Progress = func(pr provision.Progress) { mu.Lock(); progress = append(progress, pr); mu.Unlock() }
	})
	key, _ := plug(t, softkey.Config{})
	j := provision.NewJob(provision.User{Name: "alice"})
	ctx := context.Background()
	if err := p.Provision(ctx, j, key); err != nil {
		t.Fatal(err)
	}
	if !j.Done() || j.Key() == nil || j.AAGUID() != softkeyAAGUID || j.MinPINLength() != 6 {
		t.Fatalf("job: done %v key %+v aaguid %s min %d", j.Done(), j.Key(), j.AAGUID(), j.MinPINLength())
	}
	pin := string(j.PIN().Bytes())
	if len(pin) != 8 || strings.Trim(pin, "0123456789") != "" {
		t.Fatalf("the PIN is not 8 digits (%d characters)", len(pin))
	}
	keys, err := e.admin.UserKeys(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].ID != j.Key().ID || keys[0].ProvisionedBy != "root" || keys[0].Batch != "test batch" || keys[0].Nickname != "Work key" {
		t.Fatalf("alice's keys: %+v", keys)
	}
	info, err := key.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.ForcePINChange || info.MinPINLength != 6 || !info.PINSet() {
		t.Fatalf("key: forcePINChange %v, minPINLength %d, PIN set %v", info.ForcePINChange, info.MinPINLength, info.PINSet())
	}
	// The user's first sign-in is refused until they choose their PIN;
	// the handed-over PIN is the one to change.
	if _, err := e.signInAs(t, key, "alice", pin); !errors.Is(err, platform.ErrPINPolicy) {
		t.Fatalf("sign-in before the PIN change: %v, want platform.ErrPINPolicy", err)
	}
	if err := key.ChangePIN(ctx, pin, "my own 246"); err != nil {
		t.Fatalf("change the handed-over PIN: %v", err)
	}
	if sess, err := e.signInAs(t, key, "alice", "my own 246"); err != nil || sess.User.Name != "alice" {
		t.Fatalf("sign-in with the user's PIN: %v", err)
	}
	// Progress named each step once, in order, with a touch for the
	// enrollment and the test sign-in.
	var got []string
	touches := 0
	for _, pr := range progress {
		got = append(got, string(pr.Step))
		if pr.Touch {
			touches++
		}
		if pr.User != "alice" || pr.Total != 7 || pr.Index < 1 || pr.Index > pr.Total {
			t.Errorf("progress %+v", pr)
		}
	}
	if strings.Join(got, ",") != "check,pin,enroll,verify,pin-rules" || touches != 2 {
		t.Errorf("steps %v, %d touches", got, touches)
	}
	j.Wipe()
	if !j.PIN().Wiped() {
		t.Error("the PIN was not wiped")
	}
}

// TestProvisionRefusesBeforeTouching: a key the policy refuses, or that
// cannot force a PIN change, is left as it was.
func TestProvisionRefusesBeforeTouching(t *testing.T) {
	tests := []struct {
		name    string
		policy  api.Policy
		key     softkey.Config
		wantErr error
	}{
		{"ShouldRefuseADeniedModel", api.Policy{DeniedAAGUIDs: []string{softkeyAAGUID}}, softkey.Config{}, provision.ErrKeyNotAllowed},
		{"ShouldRefuseAModelNotAllowed", api.Policy{AllowedAAGUIDs: []string{"00000000-0000-0000-0000-000000000001"}}, softkey.Config{}, provision.ErrKeyNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, rptest.ServerOptions{})
			e.users(t, "alice")
			if _, err := e.admin.SetPolicy(context.Background(), tt.policy); err != nil {
				t.Fatal(err)
			}
			p := e.provisioner(t, nil)
			key, _ := plug(t, tt.key)
			j := provision.NewJob(provision.User{Name: "alice"})
			err := p.Provision(context.Background(), j, key)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			info, err := key.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.PINSet() || j.Touched() {
				t.Fatal("a refused key was changed")
			}
			if keys, _ := e.admin.UserKeys(context.Background(), "alice"); len(keys) != 0 {
				t.Fatalf("alice has keys: %+v", keys)
			}
		})
	}
}

// TestProvisionResetsAUsedKeyOnceConfirmed: a key with a PIN is reset
// after the operator agrees (asked once per batch); declined, it is left
// alone.
func TestProvisionResetsAUsedKeyOnceConfirmed(t *testing.T) {
	e := newEnv(t, rptest.ServerOptions{})
	e.users(t, "alice", "bob", "carol")
	ctx := context.Background()
	used := func(t *testing.T) platform.Authenticator {
		key, _ := plug(t, softkey.Config{})
		if err := key.SetPIN(ctx, "old pin 1"); err != nil {
			t.Fatal(err)
		}
		return key
	}
	asked := 0
	p := e.provisioner(t, func(c *provision.Config) {
		c.ConfirmReset = func(_ context.Context, k provision.KeyFacts) (bool, error) {
			asked++
			if !k.PINSet || k.AAGUID != softkeyAAGUID {
				t.Errorf("facts %+v", k)
			}
			return true, nil
		}
	})
	for _, user := range []string{"alice", "bob"} {
		j := provision.NewJob(provision.User{Name: user})
		if err := p.Provision(ctx, j, used(t)); err != nil {
			t.Fatalf("%s: %v", user, err)
		}
	}
	if asked != 1 {
		t.Fatalf("asked %d times, want once per batch", asked)
	}
	declined := e.provisioner(t, func(c *provision.Config) {
		c.ConfirmReset = func(context.Context, provision.KeyFacts) (bool, error) { return false, nil }
	})
	key := used(t)
	if err := declined.Provision(ctx, provision.NewJob(provision.User{Name: "carol"}), key); !errors.Is(err, provision.ErrResetDeclined) {
		t.Fatalf("declined: %v", err)
	}
	if _, err := key.CredentialsMetadata(ctx, "old pin 1"); err != nil {
		t.Fatalf("the declined key lost its PIN: %v", err)
	}
}

// TestProvisionNeedsAnAdmin: the service refuses a user's or a helpdesk
// member's session before any key is asked for.
func TestProvisionNeedsAnAdmin(t *testing.T) {
	e := newEnv(t, rptest.ServerOptions{})
	for _, role := range []string{"user", "helpdesk"} {
		t.Run(role, func(t *testing.T) {
			name := "a-" + role
			req := api.CreateUserRequest{Name: name}
			if role != "user" {
				req.Roles = []string{role}
			}
			if _, err := e.admin.CreateUser(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			g, err := e.admin.IssueGrant(context.Background(), name, api.IssueGrantRequest{})
			if err != nil {
				t.Fatal(err)
			}
			c := &rptest.Client{BaseURL: e.srv.URL}
			k, _ := rptest.NewKey(rpOrigin)
			if _, err := c.Redeem(name, g.Code); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Register(k, "k"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Login(k, name); err != nil {
				t.Fatal(err)
			}
			api, err := rpclient.New(rpclient.Config{BaseURL: e.srv.URL, Token: c.Token})
			if err != nil {
				t.Fatal(err)
			}
			cfg := e.config(nil)
			cfg.API = api
			if _, err := provision.New(context.Background(), cfg); !errors.Is(err, rpclient.ErrForbidden) {
				t.Fatalf("New with a %s session: %v, want ErrForbidden", role, err)
			}
			// The provisioning routes themselves refuse it too.
			if _, _, _, err := api.ProvisionBegin(context.Background(), "root", ""); !errors.Is(err, rpclient.ErrForbidden) {
				t.Fatalf("ProvisionBegin with a %s session: %v", role, err)
			}
		})
	}
}

// TestProvisionEnablesEnterpriseAttestation: asked for, enterprise
// attestation is enabled on a key that supports it, and a key that does
// not is refused before anything is enrolled.
func TestProvisionEnablesEnterpriseAttestation(t *testing.T) {
	e := newEnv(t, rptest.ServerOptions{})
	e.users(t, "alice", "bob")
	p := e.provisioner(t, func(c *provision.Config) { c.EnterpriseAttestation = true })
	ctx := context.Background()
	key, _ := plug(t, softkey.Config{})
	if err := p.Provision(ctx, provision.NewJob(provision.User{Name: "alice"}), key); err != nil {
		t.Fatal(err)
	}
	info, err := key.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.EnterpriseAttestation() != platform.EnterpriseAttestationEnabled {
		t.Fatalf("enterprise attestation %s", info.EnterpriseAttestation())
	}
	without, _ := plug(t, softkey.Config{NoEnterpriseAttestation: true})
	j := provision.NewJob(provision.User{Name: "bob"})
	if err := p.Provision(ctx, j, without); !errors.Is(err, provision.ErrKeyUnsupported) {
		t.Fatalf("a key without enterprise attestation: %v", err)
	}
	if info, _ := without.Info(ctx); j.Key() != nil || j.Touched() || info.PINSet() {
		t.Fatal("a key that cannot do what was asked was changed")
	}
}
