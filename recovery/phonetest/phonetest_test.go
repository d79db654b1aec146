package phonetest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/recovery/phonetest"
)

// browser is the package's shared Chromium, started in TestMain; each test opens its own
// phones (tabs in fresh browser contexts) on it.
var browser *phonetest.Browser

func TestMain(m *testing.M) {
	// The crash helper of process_test.go is this binary run again to be killed; it starts
	// its own browser and needs no shared one.
	if os.Getenv("KEYDESK_PHONETEST_CRASH_HELPER") == "1" {
		os.Exit(m.Run())
	}
	start := time.Now()
	b, stop, err := phonetest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	browser = b
	startTime = time.Since(start)
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// startTime is how long TestMain's start took, for the log.
var startTime time.Duration

func TestBrowserVersion(t *testing.T) {
	v, err := browser.Version()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(v, "/") {
		t.Errorf("Version() = %q, want Product/version", v)
	}
	t.Logf("%s, started in %v", v, startTime)
}

// TestRegisterAndSignIn is the phone's happy path: the page, under a strict CSP, creates a
// passkey with navigator.credentials.create on RP ID "localhost" and signs in with it with
// user verification required; go-webauthn verifies both on the server.
func TestRegisterAndSignIn(t *testing.T) {
	t.Parallel()
	rp := newRPServer(t, nil)
	p := browser.NewPhone(t)
	p.Navigate(rp.URL)

	p.Click("#register")
	if got := p.Text("#result"); got != "ok" {
		t.Fatalf("register: page shows %q, want ok", got)
	}
	creds := rp.credentials()
	if len(creds) != 1 {
		t.Fatalf("server has %d credentials, want 1", len(creds))
	}
	if !creds[0].Flags.UserVerified || !creds[0].Flags.UserPresent {
		t.Errorf("registration flags = %+v, want UP and UV", creds[0].Flags)
	}
	held := p.Credentials()
	if len(held) != 1 {
		t.Fatalf("phone holds %d credentials, want 1", len(held))
	}
	if c := held[0]; !bytes.Equal(c.ID, creds[0].ID) || c.RPID != "localhost" || !c.Resident ||
		string(c.UserHandle) != "user-handle-alice" {
		t.Errorf("phone's credential = %+v, want id %x for localhost, resident, user handle user-handle-alice", c, creds[0].ID)
	}

	p.Click("#login")
	if got := p.Text("#result"); got != "ok" {
		t.Fatalf("sign in: page shows %q, want ok", got)
	}
	if n, uv := rp.loginCount(); n != 1 || !uv {
		t.Errorf("server validated %d sign-ins (last with UV: %v), want 1 with UV", n, uv)
	}
	if after := p.Credentials(); len(after) != 1 || after[0].SignCount <= held[0].SignCount {
		t.Errorf("sign count after sign-in = %+v, want above %d", after, held[0].SignCount)
	}

	// The page is a strict-CSP page working as intended: none of the checks may fire.
	p.CheckNoErrors()
	if got := rp.requestLines(); !hasLine(got, "POST /register/finish") || !hasLine(got, "POST /login/finish") {
		t.Errorf("server saw %q, want both finish requests", got)
	}
}

// TestFailedUserVerification shows SetUserVerified(false) standing for a fingerprint the phone
// did not recognise: a sign-in that requires UV fails in the page with NotAllowedError and
// never reaches the server; after SetUserVerified(true) the same passkey signs in.
func TestFailedUserVerification(t *testing.T) {
	t.Parallel()
	rp := newRPServer(t, nil)
	p := browser.NewPhone(t)
	p.Navigate(rp.URL)
	p.Eval(`register()`, nil)

	p.SetUserVerified(false)
	start := time.Now()
	p.Click("#login")
	got := p.Text("#result")
	if !strings.HasPrefix(got, "error: NotAllowedError") {
		t.Fatalf("sign in without UV: page shows %q, want error: NotAllowedError", got)
	}
	t.Logf("failed UV reported in %v: %s", time.Since(start), got)
	if n, _ := rp.loginCount(); n != 0 {
		t.Errorf("server validated %d sign-ins, want 0", n)
	}
	if hasLine(rp.requestLines(), "POST /login/finish") {
		t.Error("the page posted an assertion after the failed UV")
	}

	p.SetUserVerified(true)
	p.Eval(`login()`, nil)
	if n, uv := rp.loginCount(); n != 1 || !uv {
		t.Errorf("after SetUserVerified(true): %d sign-ins (UV %v), want 1 with UV", n, uv)
	}
}

// TestRemoveAuthenticator shows a phone whose authenticator is gone: its passkey goes with it,
// and a sign-in finds no authenticator (NotAllowedError once the request's timeout expires).
func TestRemoveAuthenticator(t *testing.T) {
	t.Parallel()
	rp := newRPServer(t, nil)
	p := browser.NewPhone(t)
	p.Navigate(rp.URL)
	p.Eval(`register()`, nil)

	p.RemoveAuthenticator()
	start := time.Now()
	var name string
	p.Eval(`login(300).then(() => "ok", (e) => e.name)`, &name)
	if name != "NotAllowedError" {
		t.Errorf("sign in without an authenticator: got %q, want NotAllowedError", name)
	}
	t.Logf("no authenticator reported in %v", time.Since(start))
}

// TestPhonesAreIsolated shows that two phones share nothing: not passkeys, cookies or storage.
// This is what keeps tests (and the devices of one test) from leaking state into each other.
func TestPhonesAreIsolated(t *testing.T) {
	t.Parallel()
	rp := newRPServer(t, nil)
	a, b := browser.NewPhone(t), browser.NewPhone(t)
	a.Navigate(rp.URL)
	b.Navigate(rp.URL)

	a.Eval(`register()`, nil)
	a.Eval(`localStorage.setItem("k", "v"); document.cookie = "c=1; path=/"`, nil)

	if got := len(a.Credentials()); got != 1 {
		t.Fatalf("phone a holds %d credentials, want 1", got)
	}
	if got := b.Credentials(); len(got) != 0 {
		t.Errorf("phone b holds %+v, want none", got)
	}
	var state struct {
		Storage *string `json:"storage"`
		Cookie  string  `json:"cookie"`
	}
	b.Eval(`({storage: localStorage.getItem("k"), cookie: document.cookie})`, &state)
	if state.Storage != nil || state.Cookie != "" {
		t.Errorf("phone b sees storage %v and cookie %q, want neither", state.Storage, state.Cookie)
	}
}

// TestConsoleAndPageErrors shows that console calls, uncaught exceptions and unhandled
// rejections are recorded, and that CheckNoErrors reports the errors among them.
func TestConsoleAndPageErrors(t *testing.T) {
	t.Parallel()
	rp := newRPServer(t, map[string]http.HandlerFunc{
		"GET /noisy": staticPage("", `<!doctype html><title>noisy</title><script src="/noisy.js"></script>`),
		"GET /noisy.js": script(`console.log("hello", 42);
console.warn("careful");
console.error("bad thing");
setTimeout(() => { throw new Error("boom"); });
Promise.reject(new TypeError("nope"));`),
	})
	rec := &recorder{TB: t}
	p := browser.NewPhone(rec)
	p.Navigate(rp.URL + "/noisy")

	want := []struct{ typ, text string }{
		{"log", "hello 42"},
		{"warning", "careful"},
		{"error", "bad thing"},
		{"exception", "Error: boom"},
		{"exception", "TypeError: nope"},
	}
	msgs := p.Console()
	for _, w := range want {
		if !containsMessage(msgs, w.typ, w.text) {
			t.Errorf("console has no %s %q; it has:\n%s", w.typ, w.text, joinMessages(msgs))
		}
	}
	if got := p.PageErrors(); len(got) != 2 {
		t.Errorf("PageErrors() = %v, want the 2 exceptions", got)
	}

	p.CheckNoErrors()
	if len(rec.errors) != 3 {
		t.Errorf("CheckNoErrors reported %d problems, want 3 (bad thing, boom, nope):\n%s",
			len(rec.errors), strings.Join(rec.errors, "\n"))
	}
}

// TestCSPViolations shows that a blocked inline script is recorded as a CSP violation (and
// logged), that a report-only policy's violation is recorded without blocking, and that a page
// within its policy records none: so a recovery test's "no violations" is meaningful.
func TestCSPViolations(t *testing.T) {
	t.Parallel()
	const inline = `<!doctype html><title>csp</title><script>document.title = "inline ran";</script>`
	const external = `<!doctype html><title>csp</title><script src="/title.js"></script>`
	const policy = "default-src 'none'; img-src 'self'; script-src 'self' 'report-sample'"
	rp := newRPServer(t, map[string]http.HandlerFunc{
		"GET /enforced": staticPage(policy, inline),
		"GET /report-only": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy-Report-Only", policy)
			staticPage("", inline)(w, r)
		},
		"GET /clean":    staticPage(policy, external),
		"GET /title.js": script(`document.title = "external ran";`),
	})
	tests := []struct {
		name, path      string
		wantTitle       string
		wantDisposition string // "" for no violation
	}{
		{"ShouldBlockAndRecordInlineScript", "/enforced", "csp", "enforce"},
		{"ShouldRecordReportOnlyViolationWithoutBlocking", "/report-only", "inline ran", "report"},
		{"ShouldRecordNothingForPageWithinPolicy", "/clean", "external ran", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := browser.NewPhone(t)
			p.Navigate(rp.URL + tt.path)
			var title string
			p.Eval(`document.title`, &title)
			if title != tt.wantTitle {
				t.Errorf("title = %q, want %q", title, tt.wantTitle)
			}
			got := p.CSPViolations()
			if tt.wantDisposition == "" {
				if len(got) != 0 {
					t.Errorf("CSPViolations() = %+v, want none", got)
				}
				p.CheckNoErrors()
				return
			}
			if len(got) != 1 {
				t.Fatalf("CSPViolations() = %+v, want 1", got)
			}
			v := got[0]
			if v.Directive != "script-src-elem" || v.BlockedURI != "inline" || v.Disposition != tt.wantDisposition ||
				v.Policy != policy || !strings.Contains(v.Sample, "document.title") || v.DocumentURI != rp.URL+tt.path {
				t.Errorf("violation = %+v, want script-src-elem blocking inline (%s) on %s with a sample", v, tt.wantDisposition, rp.URL+tt.path)
			}
			if !containsMessage(p.Console(), "", "Content Security Policy") {
				t.Errorf("console has no CSP message; it has:\n%s", joinMessages(p.Console()))
			}
		})
	}
}

// TestFragmentNeverSent shows how a test proves a secret in the URL fragment (as in a QR
// handoff link) never leaves the phone: the browser keeps the fragment out of every request
// line, and RequestsContaining finds a page that leaks it anyway. The server's own log agrees.
func TestFragmentNeverSent(t *testing.T) {
	t.Parallel()
	const secret = "k3y-in-fragment-9f8e7d"
	page := func(js string) string {
		return `<!doctype html><title>handoff</title><p id="result" hidden></p><script src="` + js + `"></script>`
	}
	routes := map[string]http.HandlerFunc{
		"GET /safe":  staticPage(strictCSP, page("/safe.js")),
		"GET /leaky": staticPage(strictCSP, page("/leaky.js")),
		"GET /safe.js": script(`const key = location.hash.slice(1);
fetch("/api/ping", {method: "POST", body: JSON.stringify({len: key.length})}).then(() => {
	const r = document.getElementById("result"); r.textContent = "sent"; r.hidden = false;
});`),
		"GET /leaky.js": script(`const key = location.hash.slice(1);
fetch("/api/ping?k=" + encodeURIComponent(key), {method: "POST", body: key}).then(() => {
	const r = document.getElementById("result"); r.textContent = "sent"; r.hidden = false;
});`),
		"POST /api/ping": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
	}
	tests := []struct {
		name     string
		path     string
		wantLeak bool
	}{
		{"ShouldKeepFragmentOnPhone", "/safe", false},
		{"ShouldCatchPageThatSendsFragment", "/leaky", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rp := newRPServer(t, routes) // a server each, so that one's log is not the other's
			p := browser.NewPhone(t)
			p.Navigate(rp.URL + tt.path + "#" + secret)
			if got := p.Text("#result"); got != "sent" {
				t.Fatalf("page shows %q, want sent", got)
			}

			reqs := p.Requests()
			nav := reqs[0]
			if nav.Line() != "GET "+rp.URL+tt.path || nav.Fragment != "#"+secret || nav.Type != "Document" {
				t.Errorf("first request = %s (fragment %q, type %s), want the navigation without its fragment %q",
					nav.Line(), nav.Fragment, nav.Type, "#"+secret)
			}
			leaks := p.RequestsContaining(secret)
			if got := len(leaks) > 0; got != tt.wantLeak {
				t.Errorf("requests containing the secret: %v, want leak %v (all requests: %v)", leaks, tt.wantLeak, lines(reqs))
			}
			if tt.wantLeak && (len(leaks) != 1 || leaks[0].Method != "POST" || string(leaks[0].Body) != secret) {
				t.Errorf("leak = %+v, want the one POST with the secret in its URL and body", leaks)
			}
			serverSaw := strings.Contains(strings.Join(rp.requestLines(), "\n"), secret)
			if serverSaw != tt.wantLeak {
				t.Errorf("server saw the secret: %v, want %v", serverSaw, tt.wantLeak)
			}
			p.CheckNoErrors()
		})
	}
}

func TestLocalhostURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:8080", "http://localhost:8080"},
		{"http://127.0.0.1:8080/path?q=1#frag", "http://localhost:8080/path?q=1#frag"},
		{"http://[::1]:9000/", "http://localhost:9000/"},
		{"http://127.0.0.1", "http://localhost"},
		{"http://localhost:1234", "http://localhost:1234"},
		{"https://example.com:443/x", "https://example.com:443/x"},
		{"http://192.0.2.1:80/", "http://192.0.2.1:80/"},
	}
	for _, tt := range tests {
		if got := phonetest.LocalhostURL(tt.in); got != tt.want {
			t.Errorf("LocalhostURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// recorder is a testing.TB that keeps Errorf's messages instead of failing the test, to check
// what a helper reports; everything else goes to the real test.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func containsMessage(msgs []phonetest.ConsoleMessage, typ, text string) bool {
	for _, m := range msgs {
		if (typ == "" || m.Type == typ) && strings.Contains(m.Text, text) {
			return true
		}
	}
	return false
}

func joinMessages(msgs []phonetest.ConsoleMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("  " + m.String() + "\n")
	}
	return b.String()
}

func lines(reqs []phonetest.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Line())
	}
	return out
}
