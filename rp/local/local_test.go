package local

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
	"github.com/keydesk/keydesk/rp/storage"
)

// logBuffer is a Logger's output, safe for the server's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start starts an embedded RP on dir, closed when the test ends.
func start(t *testing.T, dir string, log io.Writer) *Server {
	t.Helper()
	cfg := Config{DataDir: dir}
	if log != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// get GETs url without keeping the connection, and returns the status
// and body.
func get(url string) (int, string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestStartServes: the API answers at BaseURL, the origin is localhost
// on the same port, and the data directory, database and secret are
// created for their owner only.
func TestStartServes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keydesk")
	s := start(t, dir, nil)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(s.BaseURL(), "http://"))
	if err != nil || !strings.HasPrefix(s.BaseURL(), "http://127.0.0.1:") || port == "0" {
		t.Fatalf("BaseURL %q: %v", s.BaseURL(), err)
	}
	if s.Origin() != "http://localhost:"+port || s.RPID() != "localhost" {
		t.Fatalf("origin %q, RP ID %q", s.Origin(), s.RPID())
	}
	for path, want := range map[string]string{
		"/healthz":      `"ok"`,
		"/readyz":       `"ready"`,
		"/openapi.yaml": "openapi: 3.1",
	} {
		status, body, err := get(s.BaseURL() + path)
		if err != nil || status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d %v, want %q in:\n%.500s", path, status, err, want, body)
		}
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("data directory mode %v, want 0700", m)
	}
	for _, f := range []string{DBFile, SecretFile} {
		if m := mode(t, filepath.Join(dir, f)); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, m)
		}
	}
}

// TestDemoAccount follows the app's first run: a code, redeemed into a
// registration session of a user with every role; a second code while
// no key is enrolled (the first stays valid); a key registered; then no
// code, and the key signs in to the helpdesk and admin screens. Nothing
// secret reaches the log or the audit log, whose chain verifies.
func TestDemoAccount(t *testing.T) {
	var log logBuffer
	dir := t.TempDir()
	s := start(t, dir, &log)
	ctx := t.Context()

	code1, err := s.DemoAccount(ctx, " Demo ")
	if err != nil || code1 == "" {
		t.Fatalf("first DemoAccount: %q, %v", code1, err)
	}
	code2, err := s.DemoAccount(ctx, "demo")
	if err != nil || code2 == "" || code2 == code1 {
		t.Fatalf("second DemoAccount: %q (first %q), %v", code2, code1, err)
	}

	c, err := rpclient.New(rpclient.Config{BaseURL: s.BaseURL()})
	if err != nil {
		t.Fatal(err)
	}
	sess, token, err := c.RedeemGrant(ctx, "demo", code2)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Scope != string(storage.ScopeRegister) {
		t.Errorf("session scope %q, want register", sess.Scope)
	}
	me, err := c.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"user", "helpdesk", "admin"} {
		if !slices.Contains(me.User.Roles, r) {
			t.Errorf("roles %v lack %s", me.User.Roles, r)
		}
	}
	// Codes of earlier calls are left valid (see DemoAccount).
	if _, err := (&rptest.Client{BaseURL: s.BaseURL()}).Redeem("demo", code1); err != nil {
		t.Errorf("the first code no longer redeems: %v", err)
	}
	if _, _, err := c.RedeemGrant(ctx, "demo", code2); !errors.Is(err, rpclient.ErrUnauthorized) {
		t.Errorf("a used code redeemed again: %v", err)
	}

	key, err := rptest.NewKey(s.Origin())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&rptest.Client{BaseURL: s.BaseURL(), Token: token}).Register(key, "demo key"); err != nil {
		t.Fatal(err)
	}
	if code, err := s.DemoAccount(ctx, "demo"); err != nil || code != "" {
		t.Fatalf("DemoAccount with a key: %q, %v", code, err)
	}

	full := &rptest.Client{BaseURL: s.BaseURL()}
	if _, err := full.Login(key, "demo"); err != nil {
		t.Fatal(err)
	}
	admin, err := rpclient.New(rpclient.Config{BaseURL: s.BaseURL(), Token: full.Token})
	if err != nil {
		t.Fatal(err)
	}
	if users, err := admin.SearchUsers(ctx, "demo", 10); err != nil || len(users) != 1 {
		t.Errorf("helpdesk search: %v %v", users, err)
	}
	if _, err := admin.Policy(ctx); err != nil {
		t.Errorf("admin policy: %v", err)
	}
	raw, entries := rptest.AuditExport(t, full)
	var roleChanged bool
	for _, e := range entries {
		roleChanged = roleChanged || e.Action == audit.ActionRoleChanged && e.Subject == "demo" && e.Details["via"] == "demo-account"
	}
	if !roleChanged {
		t.Error("the demo account's roles were not audited")
	}

	secret, err := os.ReadFile(filepath.Join(dir, SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{code1, code2, token, full.Token, strings.TrimSpace(string(secret))} {
		if strings.Contains(log.String(), c) || bytes.Contains(raw, []byte(c)) {
			t.Errorf("a secret is in the log or the audit log: %.4s...", c)
		}
	}
	if !strings.Contains(log.String(), "embedded RP serving") {
		t.Errorf("the log is not the server's:\n%s", log.String())
	}
}

// TestDemoAccountPromotesAnExistingUser: an account that exists with
// fewer roles gets them all, and its code.
func TestDemoAccountPromotesAnExistingUser(t *testing.T) {
	s := start(t, t.TempDir(), nil)
	ctx := t.Context()
	u := server.NewUser("alice", "Alice", []storage.Role{storage.RoleUser}, time.Now())
	if err := s.store.Tx(ctx, func(tx storage.Tx) error { return tx.CreateUser(u) }); err != nil {
		t.Fatal(err)
	}
	code, err := s.DemoAccount(ctx, "Alice")
	if err != nil || code == "" {
		t.Fatalf("DemoAccount: %q, %v", code, err)
	}
	got, err := s.store.UserByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Roles, demoRoles) {
		t.Errorf("roles %v, want %v", got.Roles, demoRoles)
	}
	if _, err := s.DemoAccount(ctx, "not a name!"); err == nil {
		t.Error("DemoAccount took a malformed name")
	}
}

// TestDemoAccountLeavesAnAdminsDoing: an account whose only key was
// revoked, or that was disabled, gets no code but an error.
func TestDemoAccountLeavesAnAdminsDoing(t *testing.T) {
	s := start(t, t.TempDir(), nil)
	ctx := t.Context()
	code, err := s.DemoAccount(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	c := &rptest.Client{BaseURL: s.BaseURL()}
	if _, err := c.Redeem("demo", code); err != nil {
		t.Fatal(err)
	}
	key, err := rptest.NewKey(s.Origin())
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.Register(key, "demo key")
	if err != nil {
		t.Fatal(err)
	}
	id, err := base64.RawURLEncoding.DecodeString(k.ID)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.store.UserByName(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.Tx(ctx, func(tx storage.Tx) error { return tx.RevokeCredential(id, time.Now(), "lost") }); err != nil {
		t.Fatal(err)
	}
	if code, err := s.DemoAccount(ctx, "demo"); err == nil || code != "" || !strings.Contains(err.Error(), "already has a key") {
		t.Errorf("only a revoked key: %q, %v", code, err)
	}
	if err := s.store.Tx(ctx, func(tx storage.Tx) error { return tx.SetUserDisabled(u.ID, true) }); err != nil {
		t.Fatal(err)
	}
	if code, err := s.DemoAccount(ctx, "demo"); err == nil || code != "" || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("disabled: %q, %v", code, err)
	}
}

// TestRestartKeepsState: a second start on the same directory reads the
// same secret and the same accounts: a code issued before the restart
// redeems after it.
func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	first, err := Start(t.Context(), Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	code, err := first.DemoAccount(t.Context(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	secret := first.cfg.Secret
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	s := start(t, dir, nil)
	if !bytes.Equal(s.cfg.Secret, secret) {
		t.Fatal("the secret changed across a restart")
	}
	if again, err := LoadSecret(filepath.Join(dir, SecretFile)); err != nil || !bytes.Equal(again, secret) {
		t.Fatalf("LoadSecret: %x, %v", again, err)
	}
	if _, err := s.store.UserByName(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	if _, err := (&rptest.Client{BaseURL: s.BaseURL()}).Redeem("demo", code); err != nil {
		t.Fatalf("a code from before the restart: %v", err)
	}
}

// TestListenRefusals: addresses off loopback are refused before
// anything listens, and a port in use is named as such.
func TestListenRefusals(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0", "127.0.0.1"} {
		dir := t.TempDir()
		if s, err := Start(t.Context(), Config{DataDir: dir, Listen: addr}); err == nil {
			s.Close()
			t.Errorf("Listen %q: started", addr)
		} else if !strings.Contains(err.Error(), addr) {
			t.Errorf("Listen %q: the error does not name it: %v", addr, err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(t.Context(), Config{DataDir: t.TempDir(), Listen: ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("a port in use: %v", err)
	}
}

// TestStartCancelled: a done context fails the start, and leaves no
// server behind.
func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	before := runtime.NumGoroutine()
	s, err := Start(ctx, Config{DataDir: t.TempDir()})
	if !errors.Is(err, context.Canceled) || s != nil {
		t.Fatalf("got %v, %v", s, err)
	}
	waitGoroutines(t, before)
}

// TestClose: after Close the port no longer answers and none of the
// server's goroutines is left; a second Close is harmless.
func TestClose(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := Start(t.Context(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// The app's client keeps its connection open, idle, between calls:
	// that must not hold Close up.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(s.BaseURL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	begun := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begun); took > shutdownGrace/2 {
		t.Errorf("Close took %v with an idle connection", took)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := get(s.BaseURL() + "/healthz"); err == nil {
		t.Fatal("the port still answers after Close")
	}
	tr.CloseIdleConnections()
	waitGoroutines(t, before)
}

// TestCloseEndsStuckRequests: a request that does not finish within the
// grace is ended, and Close still returns with nothing left running.
func TestCloseEndsStuckRequests(t *testing.T) {
	defer func(g time.Duration) { shutdownGrace = g }(shutdownGrace)
	shutdownGrace = 200 * time.Millisecond
	before := runtime.NumGoroutine()
	s, err := Start(t.Context(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	stuck, err := net.Dial("tcp", strings.TrimPrefix(s.BaseURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	// Half a request: the server waits for the rest.
	if _, err := io.WriteString(stuck, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	begun := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begun); took < shutdownGrace || took > shutdownGrace+2*time.Second {
		t.Errorf("Close took %v, want about %v", took, shutdownGrace)
	}
	stuck.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := stuck.Read(make([]byte, 1)); err == nil {
		t.Error("the stuck connection got an answer")
	}
	stuck.Close()
	waitGoroutines(t, before)
}

// waitGoroutines waits for the number of goroutines to fall back to n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLoadSecret: a missing file is created 0600 with 32 random bytes as
// hex and read back the same; a short or malformed one is refused
// without quoting it.
func TestLoadSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), SecretFile)
	s, err := LoadSecret(path)
	if err != nil || len(s) != 32 {
		t.Fatalf("%x, %v", s, err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode %v, want 0600", m)
	}
	b, _ := os.ReadFile(path)
	if strings.TrimSpace(string(b)) != hex.EncodeToString(s) {
		t.Errorf("file %q, want the secret as hex", b)
	}
	if again, err := LoadSecret(path); err != nil || !bytes.Equal(again, s) {
		t.Errorf("read back %x, %v", again, err)
	}
	for _, bad := range []string{"abcd\n", "zz" + strings.Repeat("00", 32)} {
		os.WriteFile(path, []byte(bad), 0o600)
		if _, err := LoadSecret(path); err == nil || strings.Contains(err.Error(), strings.TrimSpace(bad)) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestDataDir: $XDG_DATA_HOME/keydesk, else ~/.local/share/keydesk.
func TestDataDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/xdg")
	if d, err := DataDir(); err != nil || d != filepath.Join("/xdg", "keydesk") {
		t.Errorf("with XDG_DATA_HOME: %q %v", d, err)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/someone")
	if d, err := DataDir(); err != nil || d != filepath.Join("/home/someone", ".local", "share", "keydesk") {
		t.Errorf("without: %q %v", d, err)
	}
}
