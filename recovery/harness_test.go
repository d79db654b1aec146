package recovery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/libfido2"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
	"github.com/keydesk/keydesk/recovery"
	"github.com/keydesk/keydesk/recovery/phonetest"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
)

// The desktop's keys are software keys behind the real libfido2 (the vhid
// LD_PRELOAD shim, which softkeytest.Preload loads by running the test
// binary again); the phone is a tab of a real headless Chromium with a
// virtual platform authenticator (recovery/phonetest); the service is the
// reference RP over HTTP on loopback.
//
// The browser is shared by the package, but started by the first test
// that needs one rather than here: Preload replaces this process with a
// new one (exec) before running the tests, and a browser started before
// that would be orphaned; after it, Preload runs the tests itself, so the
// only place left is the tests. It is stopped here once they ran, in the
// process that started it.
func TestMain(m *testing.M) {
	code := softkeytest.Preload(m)
	if browserStop != nil {
		if err := browserStop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	browserOnce sync.Once
	browser     *phonetest.Browser
	browserStop func() error
	browserErr  error
)

// sharedBrowser returns the package's Chromium, starting it on first use;
// a missing Chromium fails the test (never skips it). Call it before the
// test serves software keys: it changes the environment while it starts
// the browser.
func sharedBrowser(t testing.TB) *phonetest.Browser {
	t.Helper()
	browserOnce.Do(func() {
		// Chromium is not to load the vhid shim that this process was
		// started with: it has nothing to do with security keys here, and
		// the shim hooks open and poll in every process that loads it.
		preload, had := os.LookupEnv("LD_PRELOAD")
		os.Unsetenv("LD_PRELOAD")
		start := time.Now()
		browser, browserStop, browserErr = phonetest.StartMain()
		if had {
			os.Setenv("LD_PRELOAD", preload)
		}
		if browserErr == nil {
			v, _ := browser.Version()
			t.Logf("%s started in %v", v, time.Since(start).Round(time.Millisecond))
		}
	})
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	return browser
}

// env is a reference RP whose origin is http://localhost:PORT, the
// address the phone's browser reaches it at (RP ID "localhost"), with the
// user root bootstrapped, and what the test watches of it.
type env struct {
	srv *rptest.Server
	// origin is the RP's origin, which its QR links are built on.
	origin string
	// logs are the server's logs, JSON lines.
	logs *syncBuffer
	// notes are the notifications the server sent.
	notes *rptest.Notes
}

// newEnv starts the RP; configure, when set, changes its configuration.
func newEnv(t testing.TB, configure func(*server.Config)) *env {
	t.Helper()
	e := &env{logs: &syncBuffer{}, notes: &rptest.Notes{}}
	e.srv = rptest.StartServer(t, rptest.ServerOptions{RPID: "localhost", LocalOrigin: true, Configure: func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.Notify = e.notes.Add
		// The defaults, stated so that the tests can read them in
		// e.srv.Config.
		c.RecoveryTTL, c.RecoveryPollInterval = 3*time.Minute, 150*time.Millisecond
		if configure != nil {
			configure(c)
		}
	}})
	e.origin = e.srv.Config.Origins[0]
	return e
}

// client is a new API client of the desktop app, without a session.
func (e *env) client(t testing.TB) *rpclient.Client {
	t.Helper()
	c, err := rpclient.New(rpclient.Config{BaseURL: e.srv.URL, RetryBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// config is the desktop app's profile for the RP, with a client of its
// own, reporting events to ui.
func (e *env) config(t testing.TB, ui enroll.UI) enroll.Config {
	t.Helper()
	o, err := webauthn.ParseOrigin(e.origin)
	if err != nil {
		t.Fatal(err)
	}
	return enroll.Config{Profile: "work", Origin: o, RPID: "localhost", API: e.client(t), UI: ui}
}

// app is the desktop app's enroll service for the RP, and its API client.
type app struct {
	*enroll.Service
	api *rpclient.Client
}

// app returns a new app for the RP.
func (e *env) app(t testing.TB, ui enroll.UI) *app {
	t.Helper()
	cfg := e.config(t, ui)
	s, err := enroll.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &app{Service: s, api: cfg.API}
}

// token is the app's session token.
func (a *app) token(t testing.TB) string {
	t.Helper()
	tok := a.api.Token()
	if tok == "" {
		t.Fatal("the app has no session")
	}
	return tok
}

// openKey serves a software key and opens it through libfido2, as the
// app opens a USB key.
func openKey(t testing.TB) platform.Authenticator {
	t.Helper()
	sk := softkeytest.Serve(t, softkey.Config{})
	k, err := libfido2.New(libfido2.Config{}).Open(context.Background(), platform.Device{Path: sk.Path, Transport: platform.TransportUSB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// enrollFirstKey has root redeem their enrollment code in the app,
// enroll key, and sign in with it: the returned app holds a full
// session.
func (e *env) enrollFirstKey(t testing.TB, key platform.Authenticator, nickname string) (*app, *api.Key) {
	t.Helper()
	ctx := context.Background()
	s := e.app(t, enroll.UI{})
	if _, err := s.SignInWithCode(ctx, "root", e.srv.Code); err != nil {
		t.Fatalf("sign in with the enrollment code: %v", err)
	}
	k, err := s.Enroll(ctx, key, nickname)
	if err != nil {
		t.Fatalf("enroll %s: %v", nickname, err)
	}
	if _, err := s.SignIn(ctx, key, "root"); err != nil {
		t.Fatalf("sign in with %s: %v", nickname, err)
	}
	return s, k
}

// registerPhonePasskeyJS is what an RP's own web app runs to add a passkey
// for its signed-in user: begin a registration with the API, create the
// credential with the browser's WebAuthn, finish. The reference RP has no
// such page (its users enroll keys with Keydesk), so the test runs this
// in a page of the RP's origin, which is where the passkey must belong.
// The session token comes from the page's global __token, set apart so
// that a failure message never shows it.
const registerPhonePasskeyJS = `(async () => {
	const post = async (path, body) => {
		const r = await fetch(path, {
			method: "POST",
			headers: {"Content-Type": "application/json", "Authorization": "Bearer " + globalThis.__token},
			body: JSON.stringify(body),
		});
		const j = await r.json();
		if (!r.ok) {
			throw new Error(path + ": HTTP " + r.status + " " + j.error + ": " + j.message);
		}
		return j;
	};
	const begin = await post("/v1/registration/begin", {nickname: "phone"});
	const cred = await navigator.credentials.create({
		publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(begin.publicKey),
	});
	const key = await post("/v1/registration/finish", {ceremonyId: begin.ceremonyId, credential: cred.toJSON()});
	delete globalThis.__token;
	return key;
})()`

// registerPhonePasskey registers a passkey on phone for the user whose
// full session token is token, from a page of the RP's origin (the
// recovery page without a session: it shows its code form and sends
// nothing), and returns the key as the RP registered it.
func (e *env) registerPhonePasskey(t testing.TB, phone *phonetest.Phone, token string) api.Key {
	t.Helper()
	phone.Navigate(e.origin + "/r/setup")
	phone.WaitVisible("#code")
	tok, _ := json.Marshal(token)
	if err := phone.TryEval("globalThis.__token = "+string(tok)+", true", nil); err != nil {
		t.Fatalf("hand the session to the page: %v", err)
	}
	var k api.Key
	if err := phone.TryEval(registerPhonePasskeyJS, &k); err != nil {
		t.Fatalf("register the phone's passkey: %v", err)
	}
	creds := phone.Credentials()
	if len(creds) != 1 || !creds[0].Resident || creds[0].RPID != "localhost" {
		t.Fatalf("the phone holds %+v, want one passkey for localhost", creds)
	}
	return k
}

// numbers returns the numbers the phone page offers, in order.
func numbers(t testing.TB, phone *phonetest.Phone) []int {
	t.Helper()
	var ns []int
	phone.Eval(`Array.from(document.querySelectorAll("#numbers button"), (b) => Number(b.textContent))`, &ns)
	return ns
}

// pick taps number on the phone page, failing if it is not offered.
func pick(t testing.TB, phone *phonetest.Phone, number int) {
	t.Helper()
	ns := numbers(t, phone)
	i := slices.Index(ns, number)
	if i < 0 {
		t.Fatalf("the page offers %v, not %d", ns, number)
	}
	phone.Click(fmt.Sprintf("#numbers button:nth-of-type(%d)", i+1))
}

// wrongNumber is one of the offered numbers that is not want.
func wrongNumber(t testing.TB, phone *phonetest.Phone, want int) int {
	t.Helper()
	for _, n := range numbers(t, phone) {
		if n != want {
			return n
		}
	}
	t.Fatalf("the page offers no other number than %d", want)
	return 0
}

// waitResult is a Wait's answer.
type waitResult struct {
	o   recovery.Outcome
	err error
}

// waitAsync runs h.Wait in the background.
func waitAsync(h *recovery.Handoff, within time.Duration) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		o, err := h.Wait(ctx)
		ch <- waitResult{o, err}
	}()
	return ch
}

// result waits for a waitAsync's answer.
func result(t testing.TB, ch <-chan waitResult, within time.Duration) waitResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(within):
		t.Fatalf("Wait did not return within %v", within)
	}
	return waitResult{}
}

// adminClient is an rptest client with token, a full session of root (an
// admin), for what the app does not do (the audit export).
func (e *env) adminClient(token string) *rptest.Client {
	return &rptest.Client{BaseURL: e.srv.URL, Token: token}
}

// auditLog is the whole audit log, its chain verified, and its raw export.
func (e *env) auditLog(t testing.TB, adminToken string) ([]audit.Entry, []byte) {
	t.Helper()
	raw, entries := rptest.AuditExport(t, e.adminClient(adminToken))
	return entries, raw
}

// countAudit counts the entries of action about subject with details.
func countAudit(entries []audit.Entry, action audit.Action, subject string, details map[string]string) int {
	n := 0
	for _, en := range entries {
		if en.Action != action || en.Subject != subject {
			continue
		}
		ok := true
		for k, v := range details {
			ok = ok && en.Details[k] == v
		}
		if ok {
			n++
		}
	}
	return n
}

// wantNoSecrets fails the test for each secret found in data.
func wantNoSecrets(t testing.TB, where string, data []byte, secrets map[string]string) {
	t.Helper()
	for name, s := range secrets {
		if s != "" && bytes.Contains(data, []byte(s)) {
			t.Errorf("the %s holds the %s", where, name)
		}
	}
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// recorder collects a flow's events.
type recorder struct {
	mu     sync.Mutex
	events []enroll.Event
}

func (r *recorder) add(ev enroll.Event) { r.mu.Lock(); r.events = append(r.events, ev); r.mu.Unlock() }

func (r *recorder) count(kind enroll.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Kind == kind {
			n++
		}
	}
	return n
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, ev := range r.events {
		fmt.Fprintf(&b, "%s: %s\n", ev.Kind, ev.Message)
	}
	return b.String()
}
