package phonetest_test

import (
	"bytes"
	"encoding/json"
	"errors"

	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keydesk/keydesk/recovery/phonetest"
)

// strictCSP is the kind of policy the real phone page is served with: only same-origin
// scripts, fetches and styles, nothing inline, no plugins, no framing.
const strictCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; " +
	"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// rpServer is a minimal relying party on go-webauthn: the page at / registers a passkey and
// signs in with it, from the phone's browser, through real navigator.credentials calls, and
// the server verifies the results as the real RP would.
type rpServer struct {
	srv *httptest.Server
	// URL is http://localhost:PORT, the origin the browser must use (RP ID "localhost").
	URL string
	wa  *webauthn.WebAuthn

	mu        sync.Mutex
	user      *testUser
	regSess   *webauthn.SessionData
	loginSess *webauthn.SessionData
	logins    int      // successful ValidateLogin calls
	lastLogin bool     // whether the last validated assertion had the UV flag
	lines     []string // every request line the server received, "METHOD /path?query"
}

// testUser is the one account of rpServer.
type testUser struct {
	id    []byte
	creds []webauthn.Credential
}

func (u *testUser) WebAuthnID() []byte                         { return u.id }
func (u *testUser) WebAuthnName() string                       { return "alice@example.com" }
func (u *testUser) WebAuthnDisplayName() string                { return "Alice" }
func (u *testUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// newRPServer starts the server for one test; extra routes are added to its mux.
func newRPServer(t *testing.T, extra map[string]http.HandlerFunc) *rpServer {
	t.Helper()
	rp := &rpServer{user: &testUser{id: []byte("user-handle-alice")}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", rp.servePage("text/html; charset=utf-8", appHTML))
	mux.HandleFunc("GET /app.js", rp.servePage("text/javascript; charset=utf-8", appJS))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST /register/begin", rp.registerBegin)
	mux.HandleFunc("POST /register/finish", rp.registerFinish)
	mux.HandleFunc("POST /login/begin", rp.loginBegin)
	mux.HandleFunc("POST /login/finish", rp.loginFinish)
	for pattern, h := range extra {
		mux.HandleFunc(pattern, h)
	}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		rp.lines = append(rp.lines, r.Method+" "+r.URL.RequestURI())
		rp.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(rp.srv.Close)
	rp.URL = phonetest.LocalhostURL(rp.srv.URL)

	wa, err := webauthn.New(&webauthn.Config{
		RPID:          "localhost",
		RPDisplayName: "Keydesk test RP",
		RPOrigins:     []string{rp.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	rp.wa = wa
	return rp
}

// servePage serves a fixed body under the strict CSP.
func (rp *rpServer) servePage(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", strictCSP)
		w.Header().Set("Content-Type", contentType)
		io.WriteString(w, body)
	}
}

// requestLines returns what the server received.
func (rp *rpServer) requestLines() []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return append([]string(nil), rp.lines...)
}

// credentials returns the user's registered credentials.
func (rp *rpServer) credentials() []webauthn.Credential {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return append([]webauthn.Credential(nil), rp.user.creds...)
}

// loginCount returns the number of verified sign-ins and whether the last one had UV.
func (rp *rpServer) loginCount() (int, bool) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.logins, rp.lastLogin
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// fail answers 400 with go-webauthn's developer info, which the page shows: a test that fails
// on the server side then says why.
func fail(w http.ResponseWriter, err error) {
	msg := err.Error()
	var perr *protocol.Error
	if errors.As(err, &perr) && perr.DevInfo != "" {
		msg += ": " + perr.DevInfo
	}
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}

func (rp *rpServer) registerBegin(w http.ResponseWriter, r *http.Request) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	creation, sess, err := rp.wa.BeginRegistration(rp.user,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementRequired,
			UserVerification: protocol.VerificationRequired,
		}))
	if err != nil {
		fail(w, err)
		return
	}
	rp.regSess = sess
	writeJSON(w, http.StatusOK, creation)
}

func (rp *rpServer) registerFinish(w http.ResponseWriter, r *http.Request) {
	parsed, err := protocol.ParseCredentialCreationResponseBody(r.Body)
	if err != nil {
		fail(w, err)
		return
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.regSess == nil {
		fail(w, errors.New("no registration in progress"))
		return
	}
	cred, err := rp.wa.CreateCredential(rp.user, *rp.regSess, parsed)
	rp.regSess = nil
	if err != nil {
		fail(w, err)
		return
	}
	rp.user.creds = append(rp.user.creds, *cred)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func (rp *rpServer) loginBegin(w http.ResponseWriter, r *http.Request) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	assertion, sess, err := rp.wa.BeginLogin(rp.user, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		fail(w, err)
		return
	}
	rp.loginSess = sess
	writeJSON(w, http.StatusOK, assertion)
}

func (rp *rpServer) loginFinish(w http.ResponseWriter, r *http.Request) {
	parsed, err := protocol.ParseCredentialRequestResponseBody(r.Body)
	if err != nil {
		fail(w, err)
		return
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.loginSess == nil {
		fail(w, errors.New("no sign-in in progress"))
		return
	}
	cred, err := rp.wa.ValidateLogin(rp.user, *rp.loginSess, parsed)
	rp.loginSess = nil
	if err != nil {
		fail(w, err)
		return
	}
	for i := range rp.user.creds {
		if bytes.Equal(rp.user.creds[i].ID, cred.ID) {
			rp.user.creds[i].Authenticator.SignCount = cred.Authenticator.SignCount
		}
	}
	rp.logins++
	rp.lastLogin = parsed.Response.AuthenticatorData.Flags.HasUserVerified()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// appHTML is the test RP's page: two buttons and a result line, no inline script or style.
const appHTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Keydesk test RP</title>
<script src="/app.js" defer></script></head>
<body>
<button id="register" type="button">Create passkey</button>
<button id="login" type="button">Sign in</button>
<p id="result" hidden></p>
</body>
</html>`

// appJS registers and signs in with go-webauthn's JSON options, through the browser's own
// JSON helpers (parse*OptionsFromJSON, toJSON), and shows "ok" or "error: NAME: message".
// register and login are also global, so a test can call them with Eval; login takes a
// timeout in ms to override the server's.
const appJS = `"use strict";
const result = document.getElementById("result");

async function post(path, body) {
	const res = await fetch(path, {
		method: "POST",
		headers: {"Content-Type": "application/json"},
		body: JSON.stringify(body ?? {}),
	});
	const json = await res.json();
	if (!res.ok) {
		throw new Error(json.error);
	}
	return json;
}

async function register() {
	const options = await post("/register/begin");
	const cred = await navigator.credentials.create({
		publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey),
	});
	await post("/register/finish", cred.toJSON());
}

async function login(timeout) {
	const options = await post("/login/begin");
	if (timeout) {
		options.publicKey.timeout = timeout;
	}
	const cred = await navigator.credentials.get({
		publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey),
	});
	await post("/login/finish", cred.toJSON());
}

function wire(id, ceremony) {
	document.getElementById(id).addEventListener("click", async () => {
		result.hidden = true;
		try {
			await ceremony();
			result.textContent = "ok";
		} catch (e) {
			result.textContent = "error: " + e.name + ": " + e.message;
		}
		result.hidden = false;
	});
}

wire("register", register);
wire("login", () => login());
globalThis.register = register;
globalThis.login = login;
`

// staticPage returns a handler that serves body as HTML with the given CSP ("" for none).
func staticPage(csp, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if csp != "" {
			w.Header().Set("Content-Security-Policy", csp)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, body)
	}
}

// script returns a handler that serves body as JavaScript.
func script(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		io.WriteString(w, body)
	}
}

// hasLine reports whether lines holds a line starting with prefix.
func hasLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
