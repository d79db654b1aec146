// Package pgtest runs a throwaway PostgreSQL server from the system's installation for tests and
// gives each test a database of its own on it, so storage tests run against the real thing.
//
// The server lives in a temporary directory, listens on a free port on 127.0.0.1 and trusts
// every connection as the role "test". It trades durability for speed (fsync, full_page_writes
// and synchronous_commit are off). PostgreSQL refuses to run as root, so when the tests run as
// root (as on CI) initdb and the server run as the "postgres" system user that Debian's
// postgresql package creates. A missing installation is an error, never a skip: a test skipped
// on CI counts as missing.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotInstalled is returned (wrapped, with what was looked for) when no PostgreSQL server
// binaries are found. Tests must fail on it rather than skip.
var ErrNotInstalled = errors.New("PostgreSQL server not installed: run make deps")

// EnvBin names the environment variable that, when set, is the directory holding initdb,
// pg_ctl and postgres, overriding the search of /usr/lib/postgresql/*/bin.
const EnvBin = "KEYDESK_PG_BIN"

// Role is the superuser that initdb creates and that every connection URL uses.
const Role = "test"

// runAsUser is the unprivileged account the server runs as when the tests run as root.
const runAsUser = "postgres"

// startTimeout bounds initdb plus the server start; stopTimeout bounds pg_ctl stop.
const (
	startTimeout = 2 * time.Minute
	stopTimeout  = 30 * time.Second
	dbTimeout    = time.Minute
)

// Server is a running throwaway PostgreSQL server. Its methods are safe for concurrent use by
// parallel tests.
type Server struct {
	bin     string // directory holding initdb, pg_ctl and postgres
	runuser string // path of runuser when running as root, else ""
	dir     string // temp dir: unix socket, log; removed on stop
	data    string // data directory, inside dir
	port    int
	admin   *pgxpool.Pool // connected to the "postgres" database, for CREATE/DROP DATABASE
	exited  <-chan error  // receives the server process's exit; nil when not running
	guard   *os.File      // write end of the watchdog's stdin; closing it lets the watchdog go
	watch   *exec.Cmd     // the watchdog, which cleans up if this process dies without stopping
	seq     atomic.Uint64 // database name suffix

	stopOnce sync.Once
	stopErr  error
}

// Start starts a server for one test (or benchmark) and stops it, removing all its files, when
// the test ends. It fails the test if PostgreSQL is not installed. Starting takes about a
// second, so a package with many tests should share one server through [StartMain] and give
// each test its own database with [Server.NewDatabase].
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.stop(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// StartMain starts a server to be shared by a whole test package from TestMain. Call stop after
// m.Run and before os.Exit (a deferred call would not run); it reports its errors on stderr.
// If the process dies without calling stop, a watchdog still stops the server and removes its
// files. An error means PostgreSQL could not be started: TestMain must then exit non-zero, not
// skip the tests.
func StartMain() (s *Server, stop func(), err error) {
	s, err = start()
	if err != nil {
		return nil, nil, fmt.Errorf("pgtest: %w", err)
	}
	return s, func() {
		if err := s.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
	}, nil
}

// NewDatabase creates an empty database with a name unique on this server, drops it when the
// test ends, and returns its connection URL
// (postgres://test@127.0.0.1:PORT/NAME?sslmode=disable). The role is a superuser, so the test
// can run any migration. The drop disconnects any connection the test left open.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	url, drop, err := s.CreateDatabase(tb.Name())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Error(err)
		}
	})
	return url
}

// CreateDatabase creates a fresh database named after label (made unique)
// for a program that is not a test, such as a benchmark command, and
// returns its URL and a function that drops it.
func (s *Server) CreateDatabase(label string) (url string, drop func() error, err error) {
	name := databaseName(label, s.seq.Add(1))
	ident := pgx.Identifier{name}.Sanitize()
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", nil, fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
		defer cancel()
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("pgtest: drop database %s: %w", name, err)
		}
		return nil
	}
	return s.url(name), drop, nil
}

// url returns the connection URL of database name on s.
func (s *Server) url(name string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Role, s.port, name)
}

// databaseName makes a PostgreSQL identifier (at most 63 bytes) from a test name, for
// readable server logs, and a sequence number, for uniqueness.
func databaseName(testName string, n uint64) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		b.WriteString("db")
	}
	return fmt.Sprintf("%s_%d", b.String(), n)
}

// start finds the binaries, creates the data directory and starts the server.
func start() (_ *Server, err error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}

	var owner *user.User
	if os.Geteuid() == 0 {
		if owner, err = user.Lookup(runAsUser); err != nil {
			return nil, fmt.Errorf("running as root, which PostgreSQL refuses, and there is no %q user to run it as (Debian's postgresql package creates it: run make deps): %w", runAsUser, err)
		}
		if s.runuser, err = exec.LookPath("runuser"); err != nil {
			return nil, fmt.Errorf("running as root, which PostgreSQL refuses, and runuser (util-linux) is missing: %w", err)
		}
	}

	if s.dir, err = os.MkdirTemp("", "keydesk-pgtest-"); err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	s.data = filepath.Join(s.dir, "data")
	// The unix socket path must fit in sockaddr_un.sun_path (108 bytes).
	if n := len(filepath.Join(s.dir, ".s.PGSQL.65535.lock")); n > 100 {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("temp dir %s is too long (%d bytes) for a unix socket path: set TMPDIR to a shorter directory", s.dir, n)
	}
	if err := s.startWatchdog(); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	defer func() {
		if err != nil {
			if stopErr := s.stop(); stopErr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, stopErr)
			}
		}
	}()
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return nil, fmt.Errorf("chown %s to %s: %w", s.dir, runAsUser, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if out, err := s.command(ctx, "initdb", "-D", s.data, "-A", "trust", "-U", Role,
		"-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		hint := ""
		if s.runuser != "" {
			hint = fmt.Sprintf(" (as user %s, who must be able to reach %s)", runAsUser, s.dir)
		}
		return nil, fmt.Errorf("initdb%s: %w\n%s", hint, err, out)
	}
	if err := s.configure(); err != nil {
		return nil, err
	}
	if err := s.startServer(ctx); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(s.url("postgres"))
	if err != nil {
		return nil, fmt.Errorf("parse admin URL: %w", err)
	}
	cfg.MaxConns = 4
	if s.admin, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("connect to the server: %w", err)
	}
	if err := s.admin.Ping(ctx); err != nil {
		return nil, fmt.Errorf("connect to the server on port %d: %w\n%s", s.port, err, s.logTail(0))
	}
	return s, nil
}

// findBin returns the directory holding initdb, pg_ctl and postgres: $KEYDESK_PG_BIN, else the
// highest version under Debian's /usr/lib/postgresql, else the directory of initdb on $PATH.
func findBin() (string, error) {
	if dir := os.Getenv(EnvBin); dir != "" {
		if err := hasTools(dir); err != nil {
			return "", fmt.Errorf("%w: $%s=%s: %v", ErrNotInstalled, EnvBin, dir, err)
		}
		return dir, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best, bestVersion := "", []int(nil)
	for _, m := range matches {
		dir := filepath.Dir(m)
		v, ok := parseVersion(filepath.Base(filepath.Dir(dir)))
		if !ok || hasTools(dir) != nil {
			continue
		}
		if best == "" || versionLess(bestVersion, v) {
			best, bestVersion = dir, v
		}
	}
	if best != "" {
		return best, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil && hasTools(filepath.Dir(p)) == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("%w (no /usr/lib/postgresql/*/bin with initdb, pg_ctl and postgres; $%s may name such a directory)", ErrNotInstalled, EnvBin)
}

// hasTools reports whether dir holds executable initdb, pg_ctl and postgres.
func hasTools(dir string) error {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%s is not executable", filepath.Join(dir, name))
		}
	}
	return nil
}

// parseVersion parses a directory name like "15" or "9.6".
func parseVersion(s string) ([]int, bool) {
	var v []int
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		v = append(v, n)
	}
	return v, true
}

// versionLess reports whether version a sorts before b.
func versionLess(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// command runs one of the server's programs, as the postgres user when running as root.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.runuser != "" {
		cmd = exec.CommandContext(ctx, s.runuser, append([]string{"-u", runAsUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	// The postgres user may not be able to enter the test's working directory. TZ spares
	// initdb its search of the time zone database; LC_ALL keeps messages in English.
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	return cmd
}

// configure appends the test settings to postgresql.conf (the port is given at start, so that
// a port taken meanwhile can be retried).
func (s *Server) configure() error {
	conf := fmt.Sprintf(`
# pgtest: a throwaway server for tests.
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 200
`, strings.ReplaceAll(s.dir, "'", "''"))
	f, err := os.OpenFile(filepath.Join(s.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("configure server: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("configure server: %w", err)
	}
	return nil
}

// startServer starts the server on a free port, trying another port if a concurrent process
// took the chosen one before the server bound it. The server runs as a child of this process
// (not daemonized by pg_ctl), so that this process reaps it: an orphaned postmaster would linger
// as a zombie under an init that is slow to reap.
func (s *Server) startServer(ctx context.Context) error {
	logPath := filepath.Join(s.dir, "log")
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("open server log: %w", err)
		}
		fi, err := logFile.Stat()
		if err != nil {
			logFile.Close()
			return fmt.Errorf("open server log: %w", err)
		}
		logStart := fi.Size()
		cmd := s.command(context.Background(), "postgres", "-D", s.data, "-p", strconv.Itoa(port))
		cmd.Stdout, cmd.Stderr = logFile, logFile
		err = cmd.Start()
		logFile.Close()
		if err != nil {
			return fmt.Errorf("start postgres: %w", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		s.port, s.exited = port, exited
		err = s.waitReady(ctx)
		if err == nil {
			return nil
		}
		log := s.logTail(logStart)
		if attempt < 5 && strings.Contains(log, "Address already in use") {
			if err := s.stopServer(); err != nil {
				return err
			}
			continue
		}
		return fmt.Errorf("start postgres (in %s): %w\n%s", s.dir, err, log)
	}
}

// waitReady waits until the postmaster reports in postmaster.pid that it accepts connections,
// as pg_ctl start -w does.
func (s *Server) waitReady(ctx context.Context) error {
	pidFile := filepath.Join(s.data, "postmaster.pid")
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(pidFile); err == nil {
			// Line 8 is the status (LOCK_FILE_LINE_PM_STATUS in pidfile.h).
			if lines := strings.Split(string(b), "\n"); len(lines) >= 8 && strings.TrimSpace(lines[7]) == "ready" {
				return nil
			}
		}
		select {
		case err := <-s.exited:
			s.exited = nil
			return fmt.Errorf("postgres exited: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// stopServer stops the running server, if any, and reaps it.
func (s *Server) stopServer() error {
	var err error
	if _, statErr := os.Stat(filepath.Join(s.data, "postmaster.pid")); statErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		out, stopErr := s.command(ctx, "pg_ctl", "stop", "-D", s.data, "-m", "immediate", "-w", "-s").CombinedOutput()
		cancel()
		if stopErr != nil {
			err = fmt.Errorf("pg_ctl stop: %w\n%s", stopErr, bytes.TrimSpace(out))
		}
	}
	if s.exited != nil {
		select {
		case <-s.exited: // Killed by SIGQUIT: an error exit status is expected.
		case <-time.After(stopTimeout):
			err = errors.Join(err, fmt.Errorf("postgres did not exit within %v", stopTimeout))
		}
		s.exited = nil
	}
	return err
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the end of the server log written after offset from.
func (s *Server) logTail(from int64) string {
	b, err := os.ReadFile(filepath.Join(s.dir, "log"))
	if err != nil || int64(len(b)) < from {
		return ""
	}
	b = b[from:]
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "server log:\n" + string(b)
}

// watchdogScript waits for its stdin to close (when this process stops the server, exits or is
// killed), then stops the server if it is still running and removes the temp dir. It ignores
// the terminal's signals so that an interrupted test run is still cleaned up.
const watchdogScript = `trap '' INT TERM HUP QUIT
read _ || :
dir=$1; shift
if [ -f "$dir/data/postmaster.pid" ]; then "$@" >/dev/null 2>&1; fi
rm -rf "$dir"`

// startWatchdog starts the process that cleans up after this one if it dies without stopping
// the server (a test timeout, a panic in TestMain, os.Exit, SIGKILL).
func (s *Server) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	stop := s.command(context.Background(), "pg_ctl", "stop", "-D", s.data, "-m", "immediate", "-w", "-s")
	cmd := exec.Command("/bin/sh", append([]string{"-c", watchdogScript, "pgtest-watchdog", s.dir}, stop.Args...)...)
	cmd.Stdin = r
	cmd.Dir = "/"
	cmd.Env = stop.Env
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return fmt.Errorf("start watchdog: %w", err)
	}
	s.guard, s.watch = w, cmd
	return nil
}

// stop stops the server and removes its files; later calls return the first call's result.
func (s *Server) stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		if s.admin != nil {
			s.admin.Close()
		}
		if err := s.stopServer(); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.dir, err))
		}
		if s.guard != nil {
			s.guard.Close()
			if err := s.watch.Wait(); err != nil {
				errs = append(errs, fmt.Errorf("watchdog: %w", err))
			}
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}
