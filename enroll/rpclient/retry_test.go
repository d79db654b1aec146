package rpclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/api"
)

// TestFinishRetriedAfterLostAnswer cuts the connection after the server
// processed a finish and answered: the client must send the same bytes
// again and get the first answer (the server's replay), not a refusal of
// the used ceremony, and the key must exist once.
func TestFinishRetriedAfterLostAnswer(t *testing.T) {
	ctx := context.Background()

	t.Run("ShouldGetTheSameSessionWhenASignInAnswerIsLost", func(t *testing.T) {
		e := newRP(t, envOptions{})
		k := newKey(t)
		enrolledAdmin(t, e, k)
		path := api.Version + "/login/finish"
		tp := newTap(nil, map[string]int{path: 1})
		c := newClient(t, e.url, func(cfg *rpclient.Config) { cfg.HTTPClient = &http.Client{Transport: tp} })

		s, token := signIn(t, c, k, admin)
		xs := tp.seen(path)
		if len(xs) != 2 || !xs[0].dropped || xs[1].dropped {
			t.Fatalf("want a lost answer then a retry; saw %+v", xs)
		}
		if !bytes.Equal(xs[0].request, xs[1].request) {
			t.Fatalf("the retry sent other bytes:\n%s\n%s", xs[0].request, xs[1].request)
		}
		var lost api.Session
		if err := json.Unmarshal(xs[0].response, &lost); err != nil || xs[0].status != 200 {
			t.Fatalf("the lost answer: %d %s", xs[0].status, xs[0].response)
		}
		if lost.Token == "" || lost.Token != token || s.Scope != "full" {
			t.Fatal("the retry got another session than the lost answer")
		}
		if me, err := c.Me(ctx); err != nil || me.Scope != "full" {
			t.Fatalf("Me with the retried session: %+v, %v", me, err)
		}
	})

	t.Run("ShouldGetTheSameKeyAndRegisterItOnceWhenARegistrationAnswerIsLost", func(t *testing.T) {
		e := newRP(t, envOptions{})
		full := enrolledAdmin(t, e, newKey(t))
		path := api.Version + "/registration/finish"
		tp := newTap(nil, map[string]int{path: 1})
		c := newClient(t, e.url, func(cfg *rpclient.Config) {
			cfg.HTTPClient = &http.Client{Transport: tp}
			cfg.Token = full.Token()
		})

		got := enroll(t, c, newKey(t), "spare", "")
		xs := tp.seen(path)
		if len(xs) != 2 || !xs[0].dropped || !bytes.Equal(xs[0].request, xs[1].request) {
			t.Fatalf("want a lost answer then a byte-identical retry; saw %d exchanges", len(xs))
		}
		var lost api.Key
		if err := json.Unmarshal(xs[0].response, &lost); err != nil || lost.ID != got.ID {
			t.Fatalf("the retry got key %s, the lost answer %s (%v)", got.ID, lost.ID, err)
		}
		keys, err := c.MyKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		spares := 0
		for _, k := range keys {
			if k.ID == got.ID {
				spares++
			}
		}
		if spares != 1 || len(keys) != 2 {
			t.Fatalf("%d keys, %d of them the retried one; want 2 and 1", len(keys), spares)
		}
	})

	t.Run("ShouldGetTheSameSessionWhenAGatewayTimesOutAfterTheServerAnswered", func(t *testing.T) {
		path := api.Version + "/login/finish"
		var (
			mu    sync.Mutex
			first []byte // the answer the gateway withheld
			calls int
		)
		e := newRP(t, envOptions{wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != path {
					h.ServeHTTP(w, r)
					return
				}
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				if n > 1 {
					h.ServeHTTP(w, r)
					return
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				mu.Lock()
				first = rec.Body.Bytes()
				mu.Unlock()
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusGatewayTimeout)
				w.Write([]byte("<html><body>504 Gateway Time-out</body></html>"))
			})
		}})
		k := newKey(t)
		c := enrolledAdmin(t, e, k) // its sign-in met the gateway's timeout once
		mu.Lock()
		defer mu.Unlock()
		var lost api.Session
		if err := json.Unmarshal(first, &lost); err != nil || lost.Token == "" {
			t.Fatalf("the server's first answer: %s", first)
		}
		if calls != 2 || c.Token() != lost.Token {
			t.Fatalf("%d finishes reached the server; the client's session is the withheld one: %v", calls, c.Token() == lost.Token)
		}
	})
}

// TestRedemptionIsNotRepeatedAfterALostAnswer shows why RedeemGrant is
// not retried once sent: the server redeemed the code, and a repeat
// would have failed as a wrong code.
func TestRedemptionIsNotRepeatedAfterALostAnswer(t *testing.T) {
	e := newRP(t, envOptions{})
	path := api.Version + "/grants/redeem"
	tp := newTap(nil, map[string]int{path: 1})
	c := newClient(t, e.url, func(cfg *rpclient.Config) { cfg.HTTPClient = &http.Client{Transport: tp} })

	_, _, err := c.RedeemGrant(context.Background(), admin, e.code)
	wantIs(t, err, rpclient.ErrNetwork, errCut)
	if re := asError(t, err); re.Attempts != 1 || re.Status != 0 {
		t.Fatalf("want one attempt and no status: %+v", re)
	}
	if xs := tp.seen(path); len(xs) != 1 || xs[0].status != 200 {
		t.Fatalf("want one redemption that the server accepted; saw %+v", xs)
	}
	if strings.Contains(err.Error(), e.code) || c.Token() != "" {
		t.Fatalf("error %q holds the code, or a session was kept", err)
	}
	_, _, err = newClient(t, e.url, nil).RedeemGrant(context.Background(), admin, e.code)
	wantIs(t, err, rpclient.ErrUnauthorized)
}

// TestRetriesOnlyWhatIsSafe checks which failures are retried, how many
// times, and what is reported when the attempts run out.
func TestRetriesOnlyWhatIsSafe(t *testing.T) {
	ctx := context.Background()

	t.Run("ShouldRetryEveryCallThatCouldNotConnect", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close() // nothing listens there now: every dial is refused
		c := newClient(t, url, nil)
		calls := map[string]func() error{
			"RedeemGrant": func() error { _, _, err := c.RedeemGrant(ctx, admin, "0000-0000-0000-0000"); return err },
			"Me":          func() error { _, err := c.Me(ctx); return err },
			"LoginBegin":  func() error { _, _, _, err := c.LoginBegin(ctx, admin); return err },
		}
		for name, call := range calls {
			err := call()
			wantIs(t, err, rpclient.ErrNetwork)
			var op *net.OpError
			if re := asError(t, err); re.Attempts != rpclient.DefaultMaxAttempts || !errors.As(err, &op) || !strings.Contains(err.Error(), "3 attempts") {
				t.Errorf("%s: %q after %d attempts; want %d, and the dial error kept", name, err, re.Attempts, rpclient.DefaultMaxAttempts)
			}
		}
		once := newClient(t, url, func(cfg *rpclient.Config) { cfg.MaxAttempts = 1 })
		_, err = once.Me(ctx)
		if re := asError(t, err); re.Attempts != 1 {
			t.Fatalf("MaxAttempts 1: %d attempts", re.Attempts)
		}
	})

	// failing answers the next failures[path] requests of path with
	// status, as a proxy in front of a restarting server does, and
	// counts every request that reaches it.
	type failing struct {
		mu       sync.Mutex
		status   int
		header   http.Header
		failures map[string]int
		hits     map[string]int
	}
	newFailing := func(t *testing.T, status int, header http.Header, failures map[string]int) (*rpEnv, *failing) {
		f := &failing{status: status, header: header, failures: failures, hits: map[string]int{}}
		e := newRP(t, envOptions{wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				f.mu.Lock()
				f.hits[r.URL.Path]++
				fail := f.failures[r.URL.Path] > 0
				if fail {
					f.failures[r.URL.Path]--
				}
				f.mu.Unlock()
				if !fail {
					h.ServeHTTP(w, r)
					return
				}
				for k, v := range f.header {
					w.Header()[k] = v
				}
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(f.status)
				w.Write([]byte("<html><body>Service unavailable</body></html>"))
			})
		}})
		return e, f
	}
	hits := func(f *failing, path string) int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.hits[path]
	}

	t.Run("ShouldRetryAReadThroughTwoUnavailableAnswers", func(t *testing.T) {
		path := api.Version + "/me"
		e, f := newFailing(t, http.StatusServiceUnavailable, nil, map[string]int{path: 2})
		c := newClient(t, e.url, nil)
		if _, _, err := c.RedeemGrant(ctx, admin, e.code); err != nil {
			t.Fatal(err)
		}
		if me, err := c.Me(ctx); err != nil || me.Scope != "register" {
			t.Fatalf("Me = %+v, %v", me, err)
		}
		if n := hits(f, path); n != 3 {
			t.Fatalf("%d requests; want 3", n)
		}
	})
	t.Run("ShouldReportTheLastAnswerWhenAttemptsRunOut", func(t *testing.T) {
		path := api.Version + "/login/begin"
		e, f := newFailing(t, http.StatusBadGateway, nil, map[string]int{path: 10})
		_, _, _, err := newClient(t, e.url, nil).LoginBegin(ctx, admin)
		wantIs(t, err, rpclient.ErrServer)
		if re := asError(t, err); re.Status != 502 || re.Attempts != 3 || re.Code != "" || hits(f, path) != 3 {
			t.Fatalf("%+v after %d requests", re, hits(f, path))
		}
	})
	t.Run("ShouldNotRetryARedemptionAfterAGatewayError", func(t *testing.T) {
		path := api.Version + "/grants/redeem"
		e, f := newFailing(t, http.StatusGatewayTimeout, nil, map[string]int{path: 1})
		_, _, err := newClient(t, e.url, nil).RedeemGrant(ctx, admin, e.code)
		wantIs(t, err, rpclient.ErrServer)
		if n := hits(f, path); n != 1 {
			t.Fatalf("%d requests; want 1", n)
		}
	})
	t.Run("ShouldNotRetryAnInternalError", func(t *testing.T) {
		path := api.Version + "/me"
		e, f := newFailing(t, http.StatusInternalServerError, nil, map[string]int{path: 1})
		_, err := newClient(t, e.url, func(cfg *rpclient.Config) { cfg.Token = "abc" }).Me(ctx)
		wantIs(t, err, rpclient.ErrServer)
		if n := hits(f, path); n != 1 {
			t.Fatalf("%d requests; want 1", n)
		}
	})
	t.Run("ShouldLeaveALongRetryAfterToTheCaller", func(t *testing.T) {
		path := api.Version + "/me"
		e, f := newFailing(t, http.StatusServiceUnavailable, http.Header{"Retry-After": {"120"}}, map[string]int{path: 1})
		_, err := newClient(t, e.url, func(cfg *rpclient.Config) { cfg.Token = "abc" }).Me(ctx)
		wantIs(t, err, rpclient.ErrServer)
		if re := asError(t, err); re.RetryAfter.Seconds() != 120 || hits(f, path) != 1 {
			t.Fatalf("%+v after %d requests", re, hits(f, path))
		}
	})
}
