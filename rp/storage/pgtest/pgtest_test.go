//go:build unix

package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// shared is the server of the whole package, started in TestMain.
var (
	shared          *Server
	sharedStartTime time.Duration
)

// envOrphan makes the test binary, run by TestWatchdogCleansUpAfterAKilledProcess, start a
// server and exit without stopping it.
const envOrphan = "PGTEST_ORPHAN"

func TestMain(m *testing.M) {
	if os.Getenv(envOrphan) != "" {
		orphan()
		return
	}
	t0 := time.Now()
	s, stop, err := StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared, sharedStartTime = s, time.Since(t0)
	code := m.Run()
	stop()
	os.Exit(code)
}

// orphan starts a server, prints its directory and postmaster PID, and exits without stopping
// it, as a test binary killed by a timeout would.
func orphan() {
	s, err := start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s %d\n", s.dir, postmasterPID(s))
	os.Exit(0)
}

// postmasterPID reads the server's PID from postmaster.pid, or returns 0.
func postmasterPID(s *Server) int {
	b, err := os.ReadFile(filepath.Join(s.data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid
}

// alive reports whether a process with this PID exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// waitGone waits up to 30 s for process pid to exit and dir to disappear.
func waitGone(t *testing.T, pid int, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		if !alive(pid) && errors.Is(statErr, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: postmaster %d alive=%v, %s stat: %v", pid, alive(pid), dir, statErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connect opens a pool on url, closed when the test ends.
func connect(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pgxpool.New(%s): %v", url, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestStartServesPostgreSQL(t *testing.T) {
	t.Logf("shared server started in %v (TestMain)", sharedStartTime)
	t0 := time.Now()
	s := Start(t)
	t.Logf("own server started in %v (%s, port %d)", time.Since(t0), s.bin, s.port)

	ctx := t.Context()
	pool := connect(t, s.NewDatabase(t))
	var version string
	var num int
	if err := pool.QueryRow(ctx, "SELECT version(), current_setting('server_version_num')::int").Scan(&version, &num); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", version)
	if num < 150000 {
		t.Errorf("server_version_num = %d, want PostgreSQL 15 or later", num)
	}
	for name, want := range map[string]string{"fsync": "off", "full_page_writes": "off",
		"synchronous_commit": "off", "listen_addresses": "127.0.0.1", "server_encoding": "UTF8"} {
		var got string
		if err := pool.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestNewDatabaseIsolatesTests(t *testing.T) {
	ctx := t.Context()
	urlA, urlB := shared.NewDatabase(t), shared.NewDatabase(t)
	if urlA == urlB {
		t.Fatalf("two databases share the URL %s", urlA)
	}
	for _, u := range []string{urlA, urlB} {
		if !strings.HasPrefix(u, fmt.Sprintf("postgres://test@127.0.0.1:%d/", shared.port)) || !strings.HasSuffix(u, "?sslmode=disable") {
			t.Errorf("URL %s, want postgres://test@127.0.0.1:%d/NAME?sslmode=disable", u, shared.port)
		}
	}
	a, b := connect(t, urlA), connect(t, urlB)
	for _, tt := range []struct {
		pool *pgxpool.Pool
		name string
	}{{a, "in A"}, {b, "in B"}} {
		if _, err := tt.pool.Exec(ctx, `CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE)`); err != nil {
			t.Fatalf("create table %s: %v", tt.name, err)
		}
		if _, err := tt.pool.Exec(ctx, `INSERT INTO users (name) VALUES ($1)`, tt.name); err != nil {
			t.Fatalf("insert %s: %v", tt.name, err)
		}
	}
	if _, err := a.Exec(ctx, `INSERT INTO users (name) VALUES ('in A')`); err == nil {
		t.Error("duplicate insert succeeded, want a unique violation")
	}
	for _, tt := range []struct {
		pool *pgxpool.Pool
		want string
	}{{a, "in A"}, {b, "in B"}} {
		rows, _ := tt.pool.Query(ctx, `SELECT name FROM users ORDER BY id`)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("users = %q, want only %q", got, tt.want)
		}
	}
}

func TestNewDatabaseIsSafeInParallelTests(t *testing.T) {
	for i := range 8 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			pool := connect(t, shared.NewDatabase(t))
			if _, err := pool.Exec(t.Context(), `CREATE TABLE t (n int); INSERT INTO t VALUES (1)`); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("count = %d, %v; want 1", n, err)
			}
		})
	}
}

func TestNewDatabaseDropsAtCleanupDespiteOpenConnections(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		url := shared.NewDatabase(t)
		name = strings.TrimSuffix(url[strings.LastIndex(url, "/")+1:], "?sslmode=disable")
		conn, err := pgx.Connect(t.Context(), url) // deliberately never closed
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	var exists bool
	if err := shared.admin.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestStopLeavesNothingBehind(t *testing.T) {
	var dir string
	var pid int
	t.Run("inner", func(t *testing.T) {
		s := Start(t)
		dir, pid = s.dir, postmasterPID(s)
		if pid == 0 || !alive(pid) {
			t.Fatalf("no running postmaster in %s", s.data)
		}
	})
	if alive(pid) {
		t.Errorf("postmaster %d still running after the test ended", pid)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after the test ended (%v)", dir, err)
	}
}

func TestWatchdogCleansUpAfterAKilledProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envOrphan+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("orphan run: %v", err)
	}
	var dir string
	var pid int
	if _, err := fmt.Sscan(string(out), &dir, &pid); err != nil || pid == 0 {
		t.Fatalf("orphan printed %q: %v", out, err)
	}
	waitGone(t, pid, dir)
}

func TestMissingBinariesFailWithAHint(t *testing.T) {
	t.Setenv(EnvBin, t.TempDir())
	_, err := findBin()
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "PostgreSQL server not installed: run make deps") {
		t.Errorf("findBin() = %v, want ErrNotInstalled saying to run make deps", err)
	}
}

func TestVersionOrder(t *testing.T) {
	tests := []struct {
		a, b string
		less bool
	}{
		{"9.6", "15", true},
		{"15", "16", true},
		{"16", "15", false},
		{"15", "15", false},
		{"9", "9.6", true},
	}
	for _, tt := range tests {
		a, okA := parseVersion(tt.a)
		b, okB := parseVersion(tt.b)
		if !okA || !okB {
			t.Fatalf("parseVersion(%q, %q) failed", tt.a, tt.b)
		}
		if got := versionLess(a, b); got != tt.less {
			t.Errorf("versionLess(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.less)
		}
	}
	if _, ok := parseVersion("main"); ok {
		t.Error(`parseVersion("main") succeeded`)
	}
}

func TestDatabaseNameIsAValidUniqueIdentifier(t *testing.T) {
	long := strings.Repeat("Ab/", 40)
	tests := []struct {
		name, test string
		n          uint64
		want       string
	}{
		{"ShouldLowercaseAndReplaceSeparators", "TestX/sub-case", 3, "testx_sub_case_3"},
		{"ShouldTruncateLongNames", long, 18446744073709551615, strings.Repeat("ab_", 14)[:40] + "_18446744073709551615"},
		{"ShouldNameEmptyTests", "", 1, "db_1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := databaseName(tt.test, tt.n)
			if got != tt.want || len(got) > 63 {
				t.Errorf("databaseName(%q, %d) = %q, want %q (at most 63 bytes)", tt.test, tt.n, got, tt.want)
			}
		})
	}
}

// BenchmarkNewDatabase times CREATE DATABASE; the drops run after the timing.
func BenchmarkNewDatabase(b *testing.B) {
	for b.Loop() {
		shared.NewDatabase(b)
	}
}

// BenchmarkStartStop times a whole server's life: initdb, start, connect, stop, cleanup.
func BenchmarkStartStop(b *testing.B) {
	for b.Loop() {
		s, err := start()
		if err != nil {
			b.Fatal(err)
		}
		if err := s.stop(); err != nil {
			b.Fatal(err)
		}
	}
}
