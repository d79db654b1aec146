package rpclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/rpclient"
)

// TestBadAnswers points the client at servers that are not the API, or a
// broken one: each answer must end in a clear typed error, never a panic
// nor a half-filled result.
func TestBadAnswers(t *testing.T) {
	ctx := context.Background()
	// reply answers every request with status, content type and body.
	reply := func(status int, contentType, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if contentType != "" {
				w.Header().Set("Content-Type", contentType)
			}
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	const jsonType = "application/json"
	me := func(c *rpclient.Client) error { _, err := c.Me(ctx); return err }
	keys := func(c *rpclient.Client) error { _, err := c.MyKeys(ctx); return err }
	redeem := func(c *rpclient.Client) error { _, _, err := c.RedeemGrant(ctx, admin, "CODE"); return err }
	begin := func(c *rpclient.Client) error { _, _, _, err := c.LoginBegin(ctx, admin); return err }

	var redirected atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		reply(200, jsonType, `{"user":{"name":"x"},"scope":"full"}`)(w, r)
	}))
	t.Cleanup(elsewhere.Close)

	tests := []struct {
		name    string
		handler http.HandlerFunc
		call    func(*rpclient.Client) error
		want    []error
		// attempts is how many requests the server must see.
		attempts int32
		check    func(t *testing.T, e *rpclient.Error)
		cfg      func(*rpclient.Config)
	}{
		{name: "ShouldRefuseAnHTMLPage", handler: reply(200, "text/html; charset=utf-8", "<!doctype html><html>Welcome</html>"),
			call: me, want: []error{rpclient.ErrBadResponse}, attempts: 1,
			check: func(t *testing.T, e *rpclient.Error) {
				if !strings.Contains(e.Error(), "text/html") || strings.Contains(e.Error(), "Welcome") {
					t.Errorf("%q should name the content type and not repeat the body", e)
				}
			}},
		{name: "ShouldRefuseAnOversizedAnswer", handler: reply(200, jsonType, `{"keys":[`+strings.Repeat(" ", 2<<20)+`]}`),
			call: keys, want: []error{rpclient.ErrBadResponse}, attempts: 1,
			check: func(t *testing.T, e *rpclient.Error) {
				if !strings.Contains(e.Error(), "larger than") {
					t.Errorf("%q should say the answer is too large", e)
				}
			}},
		{name: "ShouldStopReadingAnEndlessAnswer", handler: func(w http.ResponseWriter, r *http.Request) {
			// Streams until the client hangs up: a client reading it all
			// would only stop at its timeout.
			w.Header().Set("Content-Type", jsonType)
			w.Write([]byte(`{"keys":[`))
			chunk := []byte(strings.Repeat(" ", 64<<10))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, call: keys, want: []error{rpclient.ErrBadResponse}, attempts: 1,
			cfg: func(c *rpclient.Config) { c.Timeout = 3 * time.Second }},
		{name: "ShouldRefuseAMemberOfTheWrongType", handler: reply(200, jsonType, `{"keys":"none"}`),
			call: keys, want: []error{rpclient.ErrBadResponse}, attempts: 1},
		{name: "ShouldRefuseDataAfterTheJSONValue", handler: reply(200, jsonType, `{"keys":[]} {"keys":[]}`),
			call: keys, want: []error{rpclient.ErrBadResponse}, attempts: 1},
		{name: "ShouldRefuseTruncatedJSON", handler: reply(200, jsonType, `{"keys":[{"id":"AAAA"`),
			call: keys, want: []error{rpclient.ErrBadResponse}, attempts: 1},
		{name: "ShouldRefuseAnEmptyBody", handler: reply(200, jsonType, ""),
			call: me, want: []error{rpclient.ErrBadResponse}, attempts: 1},
		{name: "ShouldRefuseNull", handler: reply(200, jsonType, "null"),
			call: me, want: []error{rpclient.ErrBadResponse}, attempts: 1},
		{name: "ShouldRefuseAKeyListWithoutKeys", handler: reply(200, jsonType, `{}`),
			call: keys, want: []error{rpclient.ErrBadResponse}, attempts: 1},
		{name: "ShouldRefuseASessionWithoutToken", handler: reply(200, jsonType, `{"scope":"register","expiresAt":"2030-01-01T00:00:00Z","user":{"name":"root"}}`),
			call: redeem, want: []error{rpclient.ErrBadResponse}, attempts: 1},
		{name: "ShouldRefuseASessionTokenThatCannotBeSentBack", handler: reply(200, jsonType, `{"token":"a\r\nb","scope":"register","expiresAt":"2030-01-01T00:00:00Z","user":{"name":"root"}}`),
			call: redeem, want: []error{rpclient.ErrBadResponse}, attempts: 1},
		{name: "ShouldRefuseOptionsThatAreNotAnObject", handler: reply(200, jsonType, `{"ceremonyId":"c","publicKey":"nope","expiresAt":"2030-01-01T00:00:00Z"}`),
			call: begin, want: []error{rpclient.ErrBadResponse}, attempts: 1},
		{name: "ShouldRefuseJSONSentAsText", handler: reply(200, "text/plain", `{"user":{"name":"x"},"scope":"full"}`),
			call: me, want: []error{rpclient.ErrBadResponse}, attempts: 1},
		{name: "ShouldRefuseAnotherSuccessStatus", handler: reply(201, jsonType, `{"user":{"name":"x"},"scope":"full"}`),
			call: me, want: []error{rpclient.ErrBadResponse}, attempts: 1},
		{name: "ShouldNotFollowARedirect", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
		}, call: me, want: []error{rpclient.ErrBadResponse}, attempts: 1,
			check: func(t *testing.T, e *rpclient.Error) {
				if redirected.Load() != 0 || e.Status != http.StatusTemporaryRedirect {
					t.Errorf("the redirect was followed (%d requests elsewhere), status %d", redirected.Load(), e.Status)
				}
			}},
		{name: "ShouldReportAProxysErrorPageAsAServerErrorAfterRetrying", handler: reply(502, "text/html", "<html>Bad Gateway</html>"),
			call: me, want: []error{rpclient.ErrServer}, attempts: 3,
			check: func(t *testing.T, e *rpclient.Error) {
				if e.Code != "" || e.Message != "" || e.Status != 502 || e.Attempts != 3 {
					t.Errorf("%+v", e)
				}
			}},
		{name: "ShouldReportAnHTMLNotFoundWithoutCode", handler: reply(404, "text/html", "<html>Not Found</html>"),
			call: keys, want: []error{rpclient.ErrNotFound}, attempts: 1,
			check: func(t *testing.T, e *rpclient.Error) {
				if e.Code != "" || e.Message != "" {
					t.Errorf("%+v", e)
				}
			}},
		{name: "ShouldBoundAHugeMessage", handler: reply(400, jsonType, `{"error":"bad_json","message":"`+strings.Repeat("é", 50000)+`"}`),
			call: me, want: []error{rpclient.ErrBadRequest}, attempts: 1,
			check: func(t *testing.T, e *rpclient.Error) {
				if len(e.Message) > 400 || !strings.HasSuffix(e.Message, "…") || strings.ContainsRune(e.Message, '\uFFFD') {
					t.Errorf("message of %d bytes: %q", len(e.Message), e.Message[len(e.Message)-10:])
				}
			}},
		{name: "ShouldStripControlAndBidiCharacters", handler: reply(403, jsonType, `{"error":"forbidden","message":"No\u001b[31m way\n\u202Eout\u0000."}`),
			call: keys, want: []error{rpclient.ErrForbidden}, attempts: 1,
			check: func(t *testing.T, e *rpclient.Error) {
				if e.Message != "No[31m way out." || e.Code != "forbidden" {
					t.Errorf("message %q, code %q", e.Message, e.Code)
				}
			}},
		{name: "ShouldDropACodeThatIsNotACode", handler: reply(409, jsonType, `{"error":"Last Key <b>","message":"m"}`),
			call: keys, want: []error{rpclient.ErrConflict}, attempts: 1,
			check: func(t *testing.T, e *rpclient.Error) {
				if e.Code != "" || errors.Is(e, rpclient.ErrLastKey) || e.Message != "m" {
					t.Errorf("%+v", e)
				}
			}},
		{name: "ShouldKeepTheMessageOfAProblemWithUnknownMembers", handler: reply(401, "application/problem+json", `{"error":"session_expired","message":"Sign in again.","trace":"x"}`),
			call: me, want: []error{rpclient.ErrUnauthorized}, attempts: 1,
			check: func(t *testing.T, e *rpclient.Error) {
				if e.Code != "session_expired" || e.Message != "Sign in again." {
					t.Errorf("%+v", e)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				tt.handler(w, r)
			}))
			t.Cleanup(ts.Close)
			c := newClient(t, ts.URL, func(cfg *rpclient.Config) {
				cfg.Token = "token-that-must-not-leak"
				if tt.cfg != nil {
					tt.cfg(cfg)
				}
			})
			err := tt.call(c)
			wantIs(t, err, tt.want...)
			e := asError(t, err)
			if hits.Load() != tt.attempts {
				t.Fatalf("%d requests, want %d", hits.Load(), tt.attempts)
			}
			if strings.Contains(err.Error(), "token-that-must-not-leak") {
				t.Fatalf("error %q holds the token", err)
			}
			if c.Token() != "token-that-must-not-leak" {
				t.Fatal("a refused answer replaced the session")
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

// TestCancellation checks that a call ends when its context does, while
// waiting for an answer or between attempts, and that a cancellation is
// told apart from a timeout.
func TestCancellation(t *testing.T) {
	// hang never answers until the client goes away or the test ends.
	done := make(chan struct{})
	var hits atomic.Int32
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(done) }) // runs before hang.Close
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(unavailable.Close)

	tests := []struct {
		name    string
		url     string
		cfg     func(*rpclient.Config)
		ctx     func() (context.Context, context.CancelFunc)
		want    error
		notWant error
		hits    int32
	}{
		{name: "ShouldStopWaitingForAnAnswerWhenCancelled", url: hang.URL,
			ctx:  func() (context.Context, context.CancelFunc) { return cancelAfter(50 * time.Millisecond) },
			want: context.Canceled, notWant: rpclient.ErrNetwork, hits: 1},
		{name: "ShouldStopBetweenAttemptsWhenCancelled", url: unavailable.URL,
			cfg:  func(c *rpclient.Config) { c.RetryBackoff = time.Minute },
			ctx:  func() (context.Context, context.CancelFunc) { return cancelAfter(50 * time.Millisecond) },
			want: context.Canceled, notWant: rpclient.ErrServer, hits: 1},
		{name: "ShouldSendNothingWhenAlreadyCancelled", url: hang.URL,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			want: context.Canceled, notWant: rpclient.ErrNetwork, hits: 0},
		{name: "ShouldTimeOutAsANetworkFailure", url: hang.URL,
			cfg:  func(c *rpclient.Config) { c.Timeout = 100 * time.Millisecond },
			ctx:  func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			want: rpclient.ErrNetwork, hits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.Store(0)
			c := newClient(t, tt.url, tt.cfg)
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			_, err := c.Me(ctx)
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("the call took %v", took)
			}
			wantIs(t, err, tt.want)
			if tt.notWant != nil && errors.Is(err, tt.notWant) {
				t.Fatalf("%v also matches %v", err, tt.notWant)
			}
			if tt.want == rpclient.ErrNetwork && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%v does not match context.DeadlineExceeded", err)
			}
			asError(t, err)
			if hits.Load() != tt.hits {
				t.Fatalf("%d requests, want %d", hits.Load(), tt.hits)
			}
		})
	}
}

func cancelAfter(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(d, cancel)
	return ctx, cancel
}
