// Package local is the reference RP started in-process on loopback, as
// the desktop app's embedded default: with nothing configured, Keydesk
// serves rp/server itself, over SQLite in the user data directory, on a
// free port of 127.0.0.1, and talks to it like to any other RP. It keeps
// its files where keydesk-rp serve keeps them with no flags (DataDir,
// DBFile, SecretFile), so that both see the same accounts.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/keydesk/keydesk/rp/server"
	"github.com/keydesk/keydesk/rp/storage"
	"github.com/keydesk/keydesk/rp/storage/sqlite"
)

// Config says where the embedded RP keeps its files and how it listens.
// The zero Config is the embedded default.
type Config struct {
	// DataDir holds DBFile (SQLite) and SecretFile; DataDir() when
	// empty, the directory keydesk-rp serve uses with no flags. It is
	// created 0700 if missing.
	DataDir string
	// Listen is the loopback address to listen on; "127.0.0.1:0" (any
	// free port) when empty. An address off loopback is refused: the
	// embedded RP serves plain HTTP, which only loopback keeps private.
	Listen string
	// Logger receives the server's log; nothing is logged when nil.
	Logger *slog.Logger
	// Now is the server's clock, for tests; time.Now when nil.
	Now func() time.Time
}

// DefaultListen is where the embedded RP listens with no Config.Listen:
// any free port, so that it never fights another program for one.
const DefaultListen = "127.0.0.1:0"

// rpID is the embedded RP's WebAuthn RP ID. Browsers and go-webauthn
// accept "localhost" with a plain http origin, and it is a registrable
// suffix of the origin's host, localhost.
const rpID = "localhost"

// shutdownGrace is how long Close lets requests in flight finish before
// it ends them: long enough for any ordinary answer; a recovery events
// stream, which lasts minutes, is cut. A variable for the tests.
var shutdownGrace = 5 * time.Second

// janitorInterval is how often expired ceremonies, sessions and grants
// are swept, as keydesk-rp serve does.
const janitorInterval = time.Minute

// Server is a running embedded RP. Its methods are safe for concurrent
// use.
type Server struct {
	cfg     server.Config // Store, Secret, Origins: what DemoAccount needs
	store   storage.Store
	hs      *http.Server
	baseURL string
	origin  string
	log     *slog.Logger

	// stop ends the lifetime context: the janitor and, once the grace
	// is over, requests still running. bg counts the serve loop and the
	// janitor.
	stop context.CancelFunc
	bg   sync.WaitGroup

	// mu guards closing; handlers counts requests being handled, so that
	// Close closes the store only once none uses it.
	mu       sync.Mutex
	closing  bool
	handlers sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Start opens (creating them if missing) the database and the secret in
// cfg.DataDir, listens on cfg.Listen and serves the RP API there until
// Close. ctx bounds the start only (opening and migrating the database);
// a ctx already done fails at once. The RP ID is "localhost" and the only
// origin http://localhost:PORT, PORT being the port it listens on.
// Another process (keydesk-rp serve) may use the same DataDir at the same
// time: SQLite's busy timeout serializes the writes.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local: start: %w", err)
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if err := checkLoopback(cfg.Listen); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		dir, err := DataDir()
		if err != nil {
			return nil, err
		}
		cfg.DataDir = dir
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("local: data directory: %w", err)
	}
	secret, err := LoadSecret(filepath.Join(cfg.DataDir, SecretFile))
	if err != nil {
		return nil, err
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("local: listen on %s: the port is in use (another Keydesk, or keydesk-rp serve?): %w", cfg.Listen, err)
	}
	if err != nil {
		return nil, fmt.Errorf("local: listen on %s: %w", cfg.Listen, err)
	}
	// "localhost" passed checkLoopback by name: make sure of the address
	// it resolved to.
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err != nil || !ap.Addr().IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("local: %s listens on %s, which is not loopback", cfg.Listen, ln.Addr())
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	store, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, DBFile))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("local: open the database: %w", err)
	}
	s := &Server{
		store:   store,
		baseURL: "http://" + ln.Addr().String(),
		origin:  "http://localhost:" + port,
		log:     log,
	}
	s.cfg = server.Config{RPID: rpID, RPDisplayName: "Keydesk", Origins: []string{s.origin},
		Store: store, Secret: secret, Logger: log, Now: cfg.Now}
	rp, err := server.New(s.cfg)
	if err != nil {
		ln.Close()
		store.Close()
		return nil, fmt.Errorf("local: %w", err)
	}

	life, stop := context.WithCancel(context.Background())
	s.stop = stop
	// The same limits as keydesk-rp serve: the client is the app, but
	// a stuck connection must not hold a goroutine for ever either.
	s.hs = &http.Server{Handler: s.track(rp.Handler()), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context { return life }}
	s.bg.Add(2)
	go func() {
		defer s.bg.Done()
		if err := s.hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("embedded RP stopped serving", "err", err)
		}
	}()
	go func() {
		defer s.bg.Done()
		rp.RunJanitor(life, janitorInterval)
	}()
	log.Info("embedded RP serving", "url", s.baseURL, "rpId", rpID, "origin", s.origin, "dataDir", cfg.DataDir)
	return s, nil
}

// checkLoopback refuses a listen address off loopback before anything
// listens there: an IP address must be a loopback one, and the only name
// taken is localhost (checked again once it resolved).
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("local: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return fmt.Errorf("local: listen address %q is not loopback: the embedded RP serves plain HTTP, only on this computer", addr)
	}
	return nil
}

// track counts the requests being handled (see Close), and refuses
// those that arrive once Close has ended the others.
func (s *Server) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		s.handlers.Add(1)
		s.mu.Unlock()
		defer s.handlers.Done()
		next.ServeHTTP(w, r)
	})
}

// BaseURL is the API's base URL, http://127.0.0.1:PORT with the default
// Listen: what the API client (enroll/rpclient) talks to.
func (s *Server) BaseURL() string { return s.baseURL }

// Origin is the WebAuthn origin the server accepts, http://localhost:PORT:
// what the app's WebAuthn client must put in clientDataJSON. It names
// localhost, not 127.0.0.1, because the RP ID must be a registrable
// suffix of the origin's host, and an IP address has none.
func (s *Server) Origin() string { return s.origin }

// RPID is the WebAuthn RP ID, "localhost".
func (s *Server) RPID() string { return rpID }

// Close shuts the server down: it stops listening, lets requests in
// flight finish for up to a few seconds, then ends those left (a recovery
// events stream), stops the janitor and closes the database. It returns
// once nothing of the server runs. Calling it again does nothing and
// returns the first call's error.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	err := s.hs.Shutdown(ctx)
	cancel()
	// Past the grace, or at once when all went idle: end what is left.
	s.stop()
	if err != nil {
		s.log.Warn("embedded RP: requests still running at shutdown were ended", "err", err)
		if err := s.hs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("local: close: %w", err))
		}
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.handlers.Wait()
	s.bg.Wait()
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("local: close the database: %w", err))
	}
	s.log.Info("embedded RP stopped")
	return errors.Join(errs...)
}
