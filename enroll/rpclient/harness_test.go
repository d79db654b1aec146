package rpclient_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/platform/inprocess"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
)

// The WebAuthn side of the tests: the reference server is the RP
// "localhost" at rpOrigin, which is what the desktop app's profile would
// configure; the API itself is reached at the test server's address.
const (
	rpID     = "localhost"
	rpOrigin = "https://localhost"
	admin    = "root"
)

// rpEnv is the reference RP server (rp/server over SQLite) behind an
// httptest server, with a bootstrapped admin whose enrollment code is
// code.
type rpEnv struct {
	url   string
	ts    *httptest.Server
	clock *rptest.Clock
	code  string
}

// envOptions vary the server of a test.
type envOptions struct {
	// tls serves the API over https with httptest's own authority.
	tls bool
	// wrap stands in front of the server's handler (a failing proxy).
	wrap func(http.Handler) http.Handler
	// config changes the server's configuration (rate limits).
	config func(*server.Config)
}

func newRP(t *testing.T, o envOptions) *rpEnv {
	t.Helper()
	s := rptest.StartServer(t, rptest.ServerOptions{RPID: rpID, Origin: rpOrigin, TLS: o.tls, Wrap: o.wrap, Configure: o.config})
	return &rpEnv{url: s.URL, ts: s.HTTP, clock: s.Clock, code: s.Code}
}

// newClient returns a client of url with short retry waits, changed by
// mod when not nil.
func newClient(t *testing.T, url string, mod func(*rpclient.Config)) *rpclient.Client {
	t.Helper()
	cfg := rpclient.Config{BaseURL: url, RetryBackoff: 5 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := rpclient.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// testKey is a software security key seen through the platform API, as
// the app's "virtual key" is: the softkey engine with a sealed state file
// and presence "auto", behind platform/inprocess, driven by the WebAuthn
// client of enroll/webauthn.
type testKey struct {
	key  *inprocess.Key
	caps webauthn.Capabilities
}

func newKey(t *testing.T) *testKey {
	t.Helper()
	presence, _, err := softkey.ParsePresence("auto")
	if err != nil {
		t.Fatal(err)
	}
	stateKey := make([]byte, 32)
	rand.Read(stateKey)
	engine, err := softkey.New(softkey.Config{StatePath: filepath.Join(t.TempDir(), "key.state"), StateKey: stateKey, Presence: presence})
	if err != nil {
		t.Fatal(err)
	}
	k := inprocess.New(engine)
	info, err := k.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{key: k, caps: webauthn.CapabilitiesOf(info, k.Device())}
}

func origin(t *testing.T) webauthn.Origin {
	t.Helper()
	o, err := webauthn.ParseOrigin(rpOrigin)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// create answers creation options as navigator.credentials.create()
// would with this key plugged in.
func (k *testKey) create(t *testing.T, options []byte) []byte {
	t.Helper()
	cred, err := (&webauthn.Client{}).Create(context.Background(), k.key, origin(t), options, webauthn.CeremonyOptions{Capabilities: k.caps})
	if err != nil {
		t.Fatalf("webauthn Create: %v", err)
	}
	return cred
}

// get answers request options as navigator.credentials.get() would.
func (k *testKey) get(t *testing.T, options []byte) []byte {
	t.Helper()
	cred, err := (&webauthn.Client{}).Get(context.Background(), k.key, origin(t), options, webauthn.CeremonyOptions{Capabilities: k.caps})
	if err != nil {
		t.Fatalf("webauthn Get: %v", err)
	}
	return cred
}

// enroll registers k for c's session: begin (naming the key beginNick),
// the key's creation, finish (renaming it finishNick when not "").
func enroll(t *testing.T, c *rpclient.Client, k *testKey, beginNick, finishNick string) *api.Key {
	t.Helper()
	ctx := context.Background()
	id, options, expires, err := c.RegistrationBegin(ctx, beginNick)
	if err != nil {
		t.Fatalf("RegistrationBegin: %v", err)
	}
	if id == "" || expires.IsZero() {
		t.Fatalf("RegistrationBegin gave ceremony %q expiring %v", id, expires)
	}
	key, err := c.RegistrationFinish(ctx, id, k.create(t, options), finishNick)
	if err != nil {
		t.Fatalf("RegistrationFinish: %v", err)
	}
	return key
}

// signIn signs c in with k as username ("" for a discoverable sign-in).
func signIn(t *testing.T, c *rpclient.Client, k *testKey, username string) (*api.Session, string) {
	t.Helper()
	ctx := context.Background()
	id, options, _, err := c.LoginBegin(ctx, username)
	if err != nil {
		t.Fatalf("LoginBegin: %v", err)
	}
	s, token, err := c.LoginFinish(ctx, id, k.get(t, options))
	if err != nil {
		t.Fatalf("LoginFinish: %v", err)
	}
	return s, token
}

// enrolledAdmin redeems the admin's code, registers k and signs in with
// it: the returned client holds a full session.
func enrolledAdmin(t *testing.T, e *rpEnv, k *testKey) *rpclient.Client {
	t.Helper()
	c := newClient(t, e.url, nil)
	if _, _, err := c.RedeemGrant(context.Background(), admin, e.code); err != nil {
		t.Fatalf("RedeemGrant: %v", err)
	}
	enroll(t, c, k, "first key", "")
	signIn(t, c, k, admin)
	return c
}

// asError returns err as an *rpclient.Error or fails the test.
func asError(t *testing.T, err error) *rpclient.Error {
	t.Helper()
	var e *rpclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *rpclient.Error", err, err)
	}
	return e
}

// wantIs fails the test unless err matches every one of wants.
func wantIs(t *testing.T, err error, wants ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v", wants)
	}
	for _, w := range wants {
		if !errors.Is(err, w) {
			t.Fatalf("error %q does not match %q", err, w)
		}
	}
}

// exchange is one request a tap saw and the answer it got.
type exchange struct {
	path     string
	request  []byte
	status   int
	response []byte
	dropped  bool // the answer was withheld from the client
}

// tap is the client's transport in front of a real one: it records every
// exchange and, for the paths in cut, forwards the request to the server,
// reads the whole answer (so the server has acted on it) and then fails
// as a connection reset would, as many times as cut says.
type tap struct {
	base http.RoundTripper

	mu        sync.Mutex
	cut       map[string]int
	exchanges []exchange
}

func newTap(base http.RoundTripper, cut map[string]int) *tap {
	if base == nil {
		base = http.DefaultTransport
	}
	if cut == nil {
		cut = map[string]int{}
	}
	return &tap{base: base, cut: cut}
}

// errCut is the failure a tap makes of an answer it withholds.
var errCut = errors.New("simulated connection reset after the server answered")

func (tp *tap) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		out.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := tp.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	tp.mu.Lock()
	drop := tp.cut[req.URL.Path] > 0
	if drop {
		tp.cut[req.URL.Path]--
	}
	tp.exchanges = append(tp.exchanges, exchange{path: req.URL.Path, request: body, status: resp.StatusCode, response: answer, dropped: drop})
	tp.mu.Unlock()
	if drop {
		return nil, errCut
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	return resp, nil
}

// seen returns the exchanges of path.
func (tp *tap) seen(path string) []exchange {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var out []exchange
	for _, x := range tp.exchanges {
		if x.path == path {
			out = append(out, x)
		}
	}
	return out
}
