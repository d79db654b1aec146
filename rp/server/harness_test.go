package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
	"github.com/keydesk/keydesk/rp/storage"
	"github.com/keydesk/keydesk/rp/storage/pgtest"
	"github.com/keydesk/keydesk/rp/storage/storeopen"
)

const testOrigin = "https://localhost"

var pg *pgtest.Server

func TestMain(m *testing.M) {
	srv, stop, err := pgtest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pg = srv
	code := m.Run()
	stop()
	os.Exit(code)
}

// backends are the databases every server test runs on.
var backends = []struct {
	name string
	dsn  func(t testing.TB) string
}{
	{"sqlite", func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "rp.db") }},
	{"postgres", func(t testing.TB) string { return pg.NewDatabase(t) }},
}

// forEachBackend runs f once per database.
func forEachBackend(t *testing.T, f func(t *testing.T, dsn func(t testing.TB) string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.dsn) })
	}
}

// clock is a test's time, moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is one RP instance (or several on one database) under test.
type env struct {
	t      testing.TB
	store  storage.Store
	clock  *clock
	cfg    server.Config
	url    string
	admin  *rptest.Client
	secret []byte
	dsn    string
	log    *slog.Logger
	logs   *syncBuffer // what the servers logged
	// notes are the recovery notifications the servers sent.
	notes *rptest.Notes
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func openStore(t testing.TB, dsn string) storage.Store {
	t.Helper()
	st, err := storeopen.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newEnv starts a server on a fresh database with a bootstrapped admin
// "root" signed in (env.admin).
func newEnv(t testing.TB, dsn func(t testing.TB) string) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{now: time.Now().UTC().Truncate(time.Second)}, secret: make([]byte, 32), logs: &syncBuffer{}, notes: &rptest.Notes{}}
	e.log = slog.New(slog.NewJSONHandler(e.logs, nil))
	rand.Read(e.secret)
	e.dsn = dsn(t)
	e.store = openStore(t, e.dsn)
	e.cfg = server.Config{RPID: "localhost", RPDisplayName: "Keydesk test", Origins: []string{testOrigin},
		Store: e.store, Secret: e.secret, Now: e.clock.Now, Logger: e.log,
		// Tests send far more than people: TestRateLimits checks the limits.
		IPRate: 1e6, IPBurst: 1e6, AccountRate: 1e6, AccountBurst: 1e6, RecoveryRate: 1e6, RecoveryBurst: 1e6,
		PolicyTTL: 100 * time.Millisecond, Notify: e.notes.Add}
	e.url = e.startInstance(e.store)
	code, _, err := server.BootstrapAdmin(context.Background(), e.cfg, "root")
	if err != nil {
		t.Fatal(err)
	}
	e.admin, _ = e.enroll("root", code)
	return e
}

// startInstance starts one more server instance on store.
func (e *env) startInstance(store storage.Store) string {
	e.t.Helper()
	cfg := e.cfg
	cfg.Store = store
	s, err := server.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	e.t.Cleanup(ts.Close)
	return ts.URL
}

func (e *env) client() *rptest.Client { return &rptest.Client{BaseURL: e.url} }

func (e *env) newKey() *rptest.Key {
	e.t.Helper()
	k, err := rptest.NewKey(testOrigin)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// enroll redeems code for name, registers a new key and signs in with
// it: the client holds a full session.
func (e *env) enroll(name, code string) (*rptest.Client, *rptest.Key) {
	e.t.Helper()
	c := e.client()
	if _, err := c.Redeem(name, code); err != nil {
		e.t.Fatalf("redeem for %s: %v", name, err)
	}
	k := e.newKey()
	if _, err := c.Register(k, name+"'s key"); err != nil {
		e.t.Fatalf("register for %s: %v", name, err)
	}
	if _, err := c.Login(k, name); err != nil {
		e.t.Fatalf("login %s: %v", name, err)
	}
	return c, k
}

// grant has the admin issue an enrollment code for name.
func (e *env) grant(name string) string {
	e.t.Helper()
	var g api.Grant
	if _, err := e.admin.Do("POST", "/v1/users/"+name+"/grants", api.IssueGrantRequest{}, &g); err != nil {
		e.t.Fatal(err)
	}
	return g.Code
}

// user creates name with roles and enrolls a key for them.
func (e *env) user(name string, roles ...string) (*rptest.Client, *rptest.Key) {
	e.t.Helper()
	if _, err := e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: name, Roles: roles}, nil); err != nil {
		e.t.Fatal(err)
	}
	return e.enroll(name, e.grant(name))
}
