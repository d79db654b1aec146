package rptest

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/server"
	"github.com/keydesk/keydesk/rp/storage/storeopen"
)

// Clock is a server's clock that tests move by hand (step-up windows,
// expiries). Its zero value is not usable: see NewClock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at the current second.
func NewClock() *Clock { return &Clock{now: time.Now().UTC().Truncate(time.Second)} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// ServerOptions vary the server StartServer starts.
type ServerOptions struct {
	// RPID and Origin are the RP's; "localhost" and "https://localhost"
	// when empty.
	RPID, Origin string
	// LocalOrigin makes the origin the server's own address as a browser
	// must name it, http://localhost:PORT (https with TLS), PORT being
	// the port it listens on, known only once it listens: what a test
	// that opens the RP's pages in a real browser needs (the phone page
	// of a recovery, whose link the RP builds from its first origin). It
	// replaces Origin; RPID should be "localhost".
	LocalOrigin bool
	// TLS serves the API over https with httptest's own authority.
	TLS bool
	// Wrap stands in front of the server's handler (a failing proxy, a
	// hostile answer, a timer).
	Wrap func(http.Handler) http.Handler
	// Configure changes the configuration before the server starts.
	Configure func(*server.Config)
}

// Server is the reference RP (rp/server over SQLite in the test's temp
// directory) behind an httptest server, with the user "root" bootstrapped.
type Server struct {
	// URL is the API's base URL.
	URL string
	// Config is the server's configuration (Store included).
	Config server.Config
	// Clock is the server's clock.
	Clock *Clock
	// Code is root's one-time enrollment code.
	Code string
	// HTTP is the httptest server, for its client (TLS) or to close it
	// early (an unreachable service).
	HTTP *httptest.Server
}

// StartServer starts a reference RP for the test. Rate limits are far
// above what tests send unless Configure sets its own; everything stops
// when the test ends.
func StartServer(tb testing.TB, o ServerOptions) *Server {
	tb.Helper()
	ctx := context.Background()
	store, err := storeopen.Open(ctx, "sqlite:"+filepath.Join(tb.TempDir(), "rp.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	secret := make([]byte, 32)
	rand.Read(secret)
	if o.RPID == "" {
		o.RPID = "localhost"
	}
	if o.Origin == "" {
		o.Origin = "https://localhost"
	}
	// The listener comes first, so that its port can be in the origin;
	// the handler is set before the server starts serving.
	var h http.Handler
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	tb.Cleanup(hs.Close)
	if o.LocalOrigin {
		_, port, err := net.SplitHostPort(hs.Listener.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		scheme := "http"
		if o.TLS {
			scheme = "https"
		}
		o.Origin = scheme + "://localhost:" + port
	}
	s := &Server{Clock: NewClock(), HTTP: hs}
	s.Config = server.Config{RPID: o.RPID, RPDisplayName: "Keydesk test", Origins: []string{o.Origin},
		Store: store, Secret: secret, Now: s.Clock.Now, Logger: slog.New(slog.DiscardHandler),
		IPRate: 1e6, IPBurst: 1e6, AccountRate: 1e6, AccountBurst: 1e6, RecoveryRate: 1e6, RecoveryBurst: 1e6}
	if o.Configure != nil {
		o.Configure(&s.Config)
	}
	srv, err := server.New(s.Config)
	if err != nil {
		tb.Fatal(err)
	}
	h = srv.Handler()
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	if o.TLS {
		hs.StartTLS()
	} else {
		hs.Start()
	}
	s.URL = s.HTTP.URL
	if s.Code, _, err = server.BootstrapAdmin(ctx, s.Config, "root"); err != nil {
		tb.Fatal(err)
	}
	return s
}

// Notes records a server's notifications (its Config.Notify, which runs
// them on goroutines of their own).
type Notes struct {
	mu  sync.Mutex
	all []server.Notification
}

// Add is the Config.Notify to hand the server.
func (n *Notes) Add(_ context.Context, x server.Notification) {
	n.mu.Lock()
	n.all = append(n.all, x)
	n.mu.Unlock()
}

// List returns the notifications so far.
func (n *Notes) List() []server.Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]server.Notification(nil), n.all...)
}

// WaitFor waits up to 5 s for a notification of kind about user, and
// fails the test without one.
func (n *Notes) WaitFor(tb testing.TB, user string, kind server.NotificationKind) server.Notification {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, x := range n.List() {
			if x.User == user && x.Kind == kind {
				return x
			}
		}
	}
	tb.Fatalf("no %s notification for %s", kind, user)
	return server.Notification{}
}
