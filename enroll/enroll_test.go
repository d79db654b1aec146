package enroll_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/enroll/webauthn"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/libfido2"
	"github.com/keydesk/keydesk/platform/softkey"
	"github.com/keydesk/keydesk/platform/softkey/softkeytest"
	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
)

// Keys are software keys behind the real libfido2 (the LD_PRELOAD shim);
// the service is the reference RP server over HTTP on loopback.
func TestMain(m *testing.M) { os.Exit(softkeytest.Preload(m)) }

const (
	rpID     = "localhost"
	rpOrigin = "https://localhost"
	pin      = "1234"
)

// env is a reference RP with a bootstrapped user "root" whose enrollment
// code is code, and the clock the server reads.
type env struct {
	url   string
	cfg   server.Config
	code  string
	clock *rptest.Clock
}

func newEnv(t testing.TB, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	return newEnvAt(t, rpOrigin, wrap)
}

// newEnvAt is newEnv for a service whose pages are at origin.
func newEnvAt(t testing.TB, origin string, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	return newEnvFor(t, rpID, origin, wrap)
}

// newEnvFor is newEnv for the RP id whose pages are at origin.
func newEnvFor(t testing.TB, id, origin string, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	s := rptest.StartServer(t, rptest.ServerOptions{RPID: id, Origin: origin, Wrap: wrap})
	return &env{url: s.URL, cfg: s.Config, code: s.Code, clock: s.Clock}
}

// memTokens is the in-memory token store.
type memTokens struct {
	mu sync.Mutex
	m  map[string]string
}

func (m *memTokens) Get(p string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.m[p]; ok {
		return t, nil
	}
	return "", errors.New("no token")
}
func (m *memTokens) Set(p, t string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]string{}
	}
	m.m[p] = t
	return nil
}
func (m *memTokens) Delete(p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, p)
	return nil
}

// recorder collects a flow's events.
type recorder struct {
	mu     sync.Mutex
	events []enroll.Event
}

func (r *recorder) add(ev enroll.Event) { r.mu.Lock(); r.events = append(r.events, ev); r.mu.Unlock() }
func (r *recorder) kinds() []enroll.EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []enroll.EventKind
	for _, ev := range r.events {
		out = append(out, ev.Kind)
	}
	return out
}
func (r *recorder) touches() int {
	n := 0
	for _, k := range r.kinds() {
		if k == enroll.EventTouch {
			n++
		}
	}
	return n
}

// service is a Service for e, with ui.
func (e *env) service(t testing.TB, tokens enroll.TokenStore, ui enroll.UI) *enroll.Service {
	t.Helper()
	return e.serviceAt(t, rpOrigin, tokens, ui)
}

// serviceAt is service for a profile whose origin is origin, for the
// server's RP ID.
func (e *env) serviceAt(t testing.TB, origin string, tokens enroll.TokenStore, ui enroll.UI) *enroll.Service {
	t.Helper()
	api, err := rpclient.New(rpclient.Config{BaseURL: e.url, RetryBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	o, err := webauthn.ParseOrigin(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := enroll.New(enroll.Config{Profile: "test", Origin: o, RPID: e.cfg.RPID, API: api, Tokens: tokens, UI: ui})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openKey serves a software key and opens it through libfido2.
func openKey(t testing.TB, cfg softkey.Config) (platform.Authenticator, *softkeytest.Key) {
	t.Helper()
	sk := softkeytest.Serve(t, cfg)
	k, err := libfido2.New(libfido2.Config{}).Open(context.Background(), platform.Device{Path: sk.Path, Transport: platform.TransportUSB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k, sk
}

// TestJourney: a code, two keys enrolled, sign-ins, the list (which is
// plugged in), rename, revocation of a lost key after a step-up with the
// other, the revoked key refused, sign-out.
func TestJourney(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	tokens := &memTokens{}
	var rec recorder
	s := e.service(t, tokens, enroll.UI{Event: rec.add})
	blue, _ := openKey(t, softkey.Config{})
	green, _ := openKey(t, softkey.Config{})

	if _, err := s.Enroll(ctx, blue, "blue"); !errors.Is(err, enroll.ErrNotSignedIn) {
		t.Fatalf("Enroll before signing in = %v", err)
	}
	sess, err := s.SignInWithCode(ctx, "root", e.code)
	if err != nil || sess.Scope != "register" {
		t.Fatalf("SignInWithCode = %+v, %v", sess, err)
	}
	if tok, _ := tokens.Get("test"); tok == "" {
		t.Fatal("the session token was not kept")
	}
	blueKey, err := s.Enroll(ctx, blue, "blue")
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if blueKey.Nickname != "blue" || blueKey.Model != "Keydesk Software Key (virtual)" {
		t.Errorf("enrolled key %+v", blueKey)
	}
	if rec.touches() != 1 {
		t.Errorf("events %v: want one touch prompt", rec.kinds())
	}
	// Enrolling the same key again is refused by the key itself.
	if _, err := s.Enroll(ctx, blue, "again"); !errors.Is(err, platform.ErrCredentialExcluded) {
		t.Fatalf("enrolling the same key again = %v, want ErrCredentialExcluded", err)
	}

	if _, err := s.SignIn(ctx, blue, "root"); err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	greenKey, err := s.Enroll(ctx, green, "green")
	if err != nil {
		t.Fatalf("Enroll green: %v", err)
	}
	// Only blue is plugged in (green is "in a drawer": not passed).
	keys, err := s.Keys(ctx, []platform.Authenticator{blue})
	if err != nil || len(keys) != 2 {
		t.Fatalf("Keys = %+v, %v", keys, err)
	}
	for _, k := range keys {
		if want := k.ID == blueKey.ID; k.PluggedIn != want {
			t.Errorf("key %q plugged in %v, want %v", k.Nickname, k.PluggedIn, want)
		}
	}
	before := rec.touches()
	if keys, _ := s.Keys(ctx, []platform.Authenticator{blue, green}); !keys[0].PluggedIn || !keys[1].PluggedIn {
		t.Errorf("both plugged in: %+v", keys)
	}
	if rec.touches() != before {
		t.Error("listing keys asked for a touch")
	}
	if k, err := s.Rename(ctx, greenKey.ID, "green (spare)"); err != nil || k.Nickname != "green (spare)" {
		t.Fatalf("Rename = %+v, %v", k, err)
	}

	// Blue is lost. Signing in with blue to revoke blue is refused
	// before a touch; after the step-up window, green signs in first.
	before = rec.touches()
	if _, err := s.RevokeLost(ctx, blueKey.ID, "lost", blue); err == nil || !strings.Contains(err.Error(), "another of your keys") {
		t.Fatalf("revoking blue with blue = %v", err)
	}
	if rec.touches() != before {
		t.Error("refusing to revoke a key with itself asked for a touch")
	}
	e.clock.Advance(10 * time.Minute)
	if _, err := s.RevokeLost(ctx, blueKey.ID, "lost", nil); !errors.Is(err, rpclient.ErrStepUpRequired) {
		t.Fatalf("revoking without a fresh sign-in = %v, want ErrStepUpRequired", err)
	}
	revoked, err := s.RevokeLost(ctx, blueKey.ID, "lost", green)
	if err != nil || revoked.RevokedAt == nil || revoked.RevokeReason != "lost" {
		t.Fatalf("RevokeLost = %+v, %v", revoked, err)
	}
	// Username-first, the server no longer lists blue: the key finds
	// nothing to sign with. A passkey sign-in reaches the server, which
	// refuses the revoked key.
	if _, err := s.SignIn(ctx, blue, "root"); !errors.Is(err, platform.ErrNoCredentials) {
		t.Fatalf("username-first sign-in with the revoked key = %v, want ErrNoCredentials", err)
	}
	if _, err := s.SignIn(ctx, blue, ""); !errors.Is(err, rpclient.ErrKeyRevoked) {
		t.Fatalf("passkey sign-in with the revoked key = %v, want ErrKeyRevoked", err)
	}
	if err := s.SignOut(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Get("test"); err == nil {
		t.Error("the token was kept after signing out")
	}
	if s.SignedIn() {
		t.Error("still signed in")
	}
}

// TestANewSignInEndsTheOldSession: signing in again replaces the kept
// token, and the replaced session no longer works at the server.
func TestANewSignInEndsTheOldSession(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	tokens := &memTokens{}
	s := e.service(t, tokens, enroll.UI{})
	if _, err := s.SignInWithCode(ctx, "root", e.code); err != nil {
		t.Fatal(err)
	}
	key, _ := openKey(t, softkey.Config{})
	if _, err := s.Enroll(ctx, key, "blue"); err != nil {
		t.Fatal(err)
	}
	first, _ := tokens.Get("test")
	if _, err := s.SignIn(ctx, key, "root"); err != nil {
		t.Fatal(err)
	}
	second, _ := tokens.Get("test")
	if second == first || second == "" {
		t.Fatal("the kept token did not change")
	}
	old, err := rpclient.New(rpclient.Config{BaseURL: e.url, Token: first})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Me(ctx); !errors.Is(err, rpclient.ErrUnauthorized) {
		t.Errorf("the replaced session still works: Me = %v", err)
	}
	if _, err := s.Keys(ctx, nil); err != nil {
		t.Errorf("the new session: %v", err)
	}
}

// TestSessionIsResumedFromTheStore: a new Service for the profile uses
// the kept token.
func TestSessionIsResumedFromTheStore(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	tokens := &memTokens{}
	if _, err := e.service(t, tokens, enroll.UI{}).SignInWithCode(ctx, "root", e.code); err != nil {
		t.Fatal(err)
	}
	key, _ := openKey(t, softkey.Config{})
	if _, err := e.service(t, tokens, enroll.UI{}).Enroll(ctx, key, "blue"); err != nil {
		t.Fatalf("Enroll in a new Service: %v", err)
	}
}

// TestRPIDAndOptionsAreCheckedBeforeTheKey: a service asking for an RP ID
// its origin may not use, or sending hostile options, is refused without
// touching the key.
func TestRPIDAndOptionsAreCheckedBeforeTheKey(t *testing.T) {
	ctx := context.Background()
	hostile := map[string]string{
		"WrongRPID":          `{"rp":{"id":"example.com","name":"x"},"user":{"id":"dXNlcg","name":"a","displayName":"a"},"challenge":"AAAAAAAAAAAAAAAAAAAAAA","pubKeyCredParams":[{"type":"public-key","alg":-7}]}`,
		"UnknownAlgorithms":  `{"rp":{"id":"localhost","name":"x"},"user":{"id":"dXNlcg","name":"a","displayName":"a"},"challenge":"AAAAAAAAAAAAAAAAAAAAAA","pubKeyCredParams":[{"type":"public-key","alg":-65535}]}`,
		"EmptyChallenge":     `{"rp":{"id":"localhost","name":"x"},"user":{"id":"dXNlcg","name":"a","displayName":"a"},"challenge":"","pubKeyCredParams":[{"type":"public-key","alg":-7}]}`,
		"HugeExcludeList":    `{"rp":{"id":"localhost","name":"x"},"user":{"id":"dXNlcg","name":"a","displayName":"a"},"challenge":"AAAAAAAAAAAAAAAAAAAAAA","pubKeyCredParams":[{"type":"public-key","alg":-7}],"excludeCredentials":[` + strings.Repeat(`{"type":"public-key","id":"AAAA"},`, 5000) + `{"type":"public-key","id":"AAAA"}]}`,
		"NotJSON":            `<html>`,
		"UserIDTooLong":      `{"rp":{"id":"localhost","name":"x"},"user":{"id":"` + strings.Repeat("A", 100) + `","name":"a","displayName":"a"},"challenge":"AAAAAAAAAAAAAAAAAAAAAA","pubKeyCredParams":[{"type":"public-key","alg":-7}]}`,
		"ChallengeTooShort":  `{"rp":{"id":"localhost","name":"x"},"user":{"id":"dXNlcg","name":"a","displayName":"a"},"challenge":"AAAA","pubKeyCredParams":[{"type":"public-key","alg":-7}]}`,
		"PublicSuffixRPID":   `{"rp":{"id":"com","name":"x"},"user":{"id":"dXNlcg","name":"a","displayName":"a"},"challenge":"AAAAAAAAAAAAAAAAAAAAAA","pubKeyCredParams":[{"type":"public-key","alg":-7}]}`,
		"WrongTypeForRPName": `{"rp":{"id":"localhost","name":7},"user":{"id":"dXNlcg","name":"a","displayName":"a"},"challenge":"AAAAAAAAAAAAAAAAAAAAAA","pubKeyCredParams":[{"type":"public-key","alg":-7}]}`,
	}
	for name, options := range hostile {
		t.Run(name, func(t *testing.T) {
			// The real server, except that registration/begin answers
			// the hostile options.
			e := newEnv(t, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != api.Version+"/registration/begin" {
						next.ServeHTTP(w, r)
						return
					}
					w.Header().Set("Content-Type", "application/json")
					json.NewEncoder(w).Encode(map[string]any{"ceremonyId": "c1", "publicKey": json.RawMessage(options),
						"expiresAt": time.Now().Add(time.Minute)})
				})
			})
			if !json.Valid([]byte(options)) {
				// Not JSON at all: the begin answer itself is broken.
				e = newEnv(t, func(next http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if r.URL.Path != api.Version+"/registration/begin" {
							next.ServeHTTP(w, r)
							return
						}
						io.WriteString(w, options)
					})
				})
			}
			var rec recorder
			s := e.service(t, &memTokens{}, enroll.UI{Event: rec.add})
			if _, err := s.SignInWithCode(ctx, "root", e.code); err != nil {
				t.Fatal(err)
			}
			key, _ := openKey(t, softkey.Config{Presence: softkey.DenyAlways})
			_, err := s.Enroll(ctx, key, "blue")
			if err == nil {
				t.Fatal("hostile options were accepted")
			}
			var we *webauthn.Error
			var re *rpclient.Error
			if !errors.As(err, &we) && !errors.As(err, &re) {
				t.Errorf("error %v is neither the client's nor the API's typed error", err)
			}
			if rec.touches() != 0 {
				t.Errorf("the key was asked for a touch: %v (err %v)", rec.kinds(), err)
			}
			e.wantNoKeys(t)
		})
	}
}

// TestWrongPINUntilBlocked: a key with a PIN, a user typing wrong PINs:
// each is said with the attempts left, and the third in a row blocks
// PIN entry until the key is re-plugged; nothing is enrolled.
func TestWrongPINUntilBlocked(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	var asked []int
	s := e.service(t, &memTokens{}, enroll.UI{PIN: func(_ context.Context, retries int) (string, error) {
		asked = append(asked, retries)
		return "0000", nil
	}})
	if _, err := s.SignInWithCode(ctx, "root", e.code); err != nil {
		t.Fatal(err)
	}
	key, sk := openKey(t, softkey.Config{})
	if err := key.SetPIN(ctx, pin); err != nil {
		t.Fatal(err)
	}
	_, err := s.Enroll(ctx, key, "blue")
	if !errors.Is(err, platform.ErrPINAuthBlocked) {
		t.Fatalf("Enroll with wrong PINs = %v, want ErrPINAuthBlocked", err)
	}
	if want := []int{-1, 7, 6}; len(asked) != 3 || asked[0] != want[0] || asked[1] != want[1] || asked[2] != want[2] {
		t.Errorf("PIN asked with retries %v, want %v", asked, want)
	}
	if strings.Contains(err.Error(), "0000") {
		t.Error("the PIN is in the error")
	}
	// Re-plugged, the user goes on guessing: three more, then two, and
	// the PIN is blocked for good, which the error explains.
	for _, wantErr := range []error{platform.ErrPINAuthBlocked, platform.ErrPINBlocked} {
		sk.Authenticator.PowerCycle()
		_, err = s.Enroll(ctx, key, "blue")
		if !errors.Is(err, wantErr) {
			t.Fatalf("Enroll after a re-plug = %v, want %v (PIN asked with retries %v)", err, wantErr, asked)
		}
	}
	if want := []int{-1, 7, 6, -1, 4, 3, -1, 1}; !slices.Equal(asked, want) {
		t.Errorf("PIN asked with retries %v, want %v", asked, want)
	}
	if !strings.Contains(err.Error(), "Only a reset") {
		t.Errorf("a blocked PIN is not explained: %v", err)
	}
	e.wantNoKeys(t)
}

// wantNoKeys checks that root has no key at the server.
func (e *env) wantNoKeys(t *testing.T) {
	t.Helper()
	u, err := e.cfg.Store.UserByName(context.Background(), "root")
	if err != nil {
		t.Fatal(err)
	}
	if creds, err := e.cfg.Store.Credentials(context.Background(), u.ID); err != nil || len(creds) != 0 {
		t.Errorf("root has %d key(s) at the server (%v), want none", len(creds), err)
	}
}

// TestKeyRemovedMidCeremony: the key goes away while waiting for a touch;
// the flow says so and the service has no new key.
func TestKeyRemovedMidCeremony(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	sig := softkey.NewSignal(10 * time.Second)
	var rec recorder
	touched := make(chan struct{}, 1)
	s := e.service(t, &memTokens{}, enroll.UI{Event: func(ev enroll.Event) {
		rec.add(ev)
		if ev.Kind == enroll.EventTouch {
			select {
			case touched <- struct{}{}:
			default:
			}
		}
	}})
	if _, err := s.SignInWithCode(ctx, "root", e.code); err != nil {
		t.Fatal(err)
	}
	key, sk := openKey(t, softkey.Config{Presence: sig})
	go func() {
		<-sig.Waiting()
		sk.Stop()
	}()
	_, err := s.Enroll(ctx, key, "blue")
	if !errors.Is(err, platform.ErrDeviceRemoved) {
		t.Fatalf("Enroll with the key pulled out = %v, want ErrDeviceRemoved", err)
	}
	select {
	case <-touched:
	default:
		t.Error("no touch prompt before the key went away")
	}
	e.wantNoKeys(t)
}

// TestNetworkCut: the connection drops before the finish reaches the
// server (a clear network error, nothing stored), and after the server
// stored the key (the retry gets the same key: exactly one enrolled).
func TestNetworkCut(t *testing.T) {
	ctx := context.Background()
	var mode atomic.Value // "before", "after" or ""
	mode.Store("")
	e := newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m := mode.Load().(string)
			if r.URL.Path != api.Version+"/registration/finish" || m == "" {
				next.ServeHTTP(w, r)
				return
			}
			if m == "after" {
				next.ServeHTTP(httptest.NewRecorder(), r) // processed, answer lost
				mode.Store("")
			}
			hj, ok := w.(http.Hijacker)
			if !ok {
				t.Error("cannot hijack")
				return
			}
			conn, _, _ := hj.Hijack()
			conn.Close()
		})
	})
	s := e.service(t, &memTokens{}, enroll.UI{})
	if _, err := s.SignInWithCode(ctx, "root", e.code); err != nil {
		t.Fatal(err)
	}
	key, _ := openKey(t, softkey.Config{})
	mode.Store("before")
	_, err := s.Enroll(ctx, key, "blue")
	if !errors.Is(err, rpclient.ErrNetwork) || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("Enroll with the server unreachable at finish = %v, want ErrNetwork after 3 attempts", err)
	}
	mode.Store("after")
	k, err := s.Enroll(ctx, key, "blue")
	if err != nil {
		t.Fatalf("Enroll with the first answer lost = %v", err)
	}
	if _, err := s.SignIn(ctx, key, "root"); err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	keys, err := s.Keys(ctx, nil)
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID {
		t.Fatalf("keys after a lost answer: %+v, %v; want the one key", keys, err)
	}
}

// TestKeysOfAnRPIDAboveTheOrigin: the service's pages are at
// login.example.com and its RP ID is example.com: the plugged-in key is
// asked for credentials of the RP ID, not of the page's host.
func TestKeysOfAnRPIDAboveTheOrigin(t *testing.T) {
	ctx := context.Background()
	const origin = "https://login.example.com"
	e := newEnvFor(t, "example.com", origin, nil)
	s := e.serviceAt(t, origin, &memTokens{}, enroll.UI{})
	if _, err := s.SignInWithCode(ctx, "root", e.code); err != nil {
		t.Fatal(err)
	}
	key, _ := openKey(t, softkey.Config{})
	if _, err := s.Enroll(ctx, key, "blue"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignIn(ctx, key, "root"); err != nil {
		t.Fatal(err)
	}
	keys, err := s.Keys(ctx, []platform.Authenticator{key})
	if err != nil || len(keys) != 1 || !keys[0].PluggedIn {
		t.Fatalf("Keys = %+v, %v; want the key plugged in", keys, err)
	}
}
