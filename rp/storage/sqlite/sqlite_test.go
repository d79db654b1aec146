package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/storage"
	"github.com/keydesk/keydesk/rp/storage/storagetest"
)

// newDatabase returns the path of a database file that does not exist
// yet, in a directory removed when t ends.
func newDatabase(t *testing.T) string {
	return filepath.Join(t.TempDir(), "keydesk.db")
}

func TestStore(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := Open(t.Context(), newDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestInstances(t *testing.T) {
	storagetest.RunInstances(t, newDatabase, func(ctx context.Context, path string) (storage.Store, error) {
		return Open(ctx, path)
	})
}

func TestOpenCreatesAPrivateWALDatabase(t *testing.T) {
	for _, tt := range []struct {
		name string
		file string
	}{
		{"PlainName", "keydesk.db"},
		{"NameWithURICharacters", "a?b#c%d e.db"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatalf("the database is not at its path: %v", err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("mode %v, want 0600", perm)
			}
			// WAL mode is kept in the file.
			db, err := sql.Open("sqlite", fileURI(path)+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var mode string
			if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if mode != "wal" {
				t.Errorf("journal_mode %q, want wal", mode)
			}
		})
	}
}

func TestOpenRefusesWhatIsNotAFile(t *testing.T) {
	for _, tt := range []struct {
		name, path string
	}{
		{"Empty", ""},
		{"Memory", ":memory:"},
		{"MissingDirectory", filepath.Join(t.TempDir(), "missing", "keydesk.db")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Open(t.Context(), tt.path); err == nil {
				s.Close()
				t.Errorf("Open(%q) succeeded", tt.path)
			}
		})
	}
}

func TestFileURIEscapesWhatSQLiteWouldReadAsParameters(t *testing.T) {
	for _, tt := range []struct{ path, want string }{
		{"/var/lib/keydesk/rp.db", "file:/var/lib/keydesk/rp.db"},
		{"relative/rp.db", "file:relative/rp.db"},
		{"/tmp/a?b#c%d e.db", "file:/tmp/a%3Fb%23c%25d%20e.db"},
	} {
		if got := fileURI(tt.path); got != tt.want {
			t.Errorf("fileURI(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestDSNSetsTheConnectionOptions(t *testing.T) {
	got := dsn("/var/lib/keydesk/rp.db")
	for _, want := range []string{
		"file:/var/lib/keydesk/rp.db?",
		"_pragma=busy_timeout%2810000%29",
		"_pragma=journal_mode%28WAL%29",
		"_pragma=synchronous%28NORMAL%29",
		"_pragma=foreign_keys%281%29",
		"_pragma=wal_autocheckpoint%280%29",
		"_pragma=journal_size_limit%28134217728%29",
		"_txlock=immediate",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("dsn = %s, want it to contain %s", got, want)
		}
	}
}

// walSalt is the first salt in the header of the WAL file beside path,
// which SQLite changes each time the WAL starts over from its beginning.
func walSalt(t *testing.T, path string) uint32 {
	t.Helper()
	f, err := os.Open(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 32)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatalf("WAL header: %v", err)
	}
	return binary.BigEndian.Uint32(b[16:20])
}

// Connections never checkpoint on commit (wal_autocheckpoint is 0), so
// without the store's own checkpoints the WAL would only grow: it starts
// over only after everything in it was copied to the database.
func TestWALIsCheckpointedInTheBackground(t *testing.T) {
	path := newDatabase(t)
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	write := func() {
		n++
		c := storage.Ceremony{ID: fmt.Sprintf("c%d", n), Kind: storage.CeremonyLogin, ExpiresAt: time.Now().Add(time.Hour)}
		if err := s.CreateCeremony(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	write()
	salt := walSalt(t, path)
	for range 200 {
		write()
	}
	deadline := time.Now().Add(20 * checkpointEvery)
	for walSalt(t, path) == salt {
		if time.Now().After(deadline) {
			t.Fatalf("the WAL did not start over within %v of %d commits", 20*checkpointEvery, n)
		}
		time.Sleep(checkpointEvery / 5)
		write()
	}
}

// Readers that never pause keep a passive checkpoint's WAL from ever
// starting over (each write finds a reader in it): the store restarts it
// once it is restartFrames long, so it stays bounded under load.
func TestWALStartsOverUnderConstantReads(t *testing.T) {
	defer func(n int) { restartFrames = n }(restartFrames)
	restartFrames = 2048
	path := newDatabase(t)
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Readers that overlap, so that some reader is always in the WAL,
	// each holding its snapshot for less than a restart waits.
	const readFor = restartWait / 3
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	const readers = 2
	for i := range readers {
		go func() {
			defer func() { done <- struct{}{} }()
			time.Sleep(time.Duration(i) * readFor / readers)
			for ctx.Err() == nil {
				// A plain BEGIN: the DSN's BEGIN IMMEDIATE would write-lock.
				conn, err := db.Conn(ctx)
				if err != nil {
					continue
				}
				var n int
				conn.ExecContext(ctx, `BEGIN`)
				conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM ceremonies WHERE id = 'c1'`).Scan(&n)
				time.Sleep(readFor)
				conn.ExecContext(context.Background(), `ROLLBACK`)
				conn.Close()
			}
		}()
	}
	defer func() {
		stop()
		for range readers {
			<-done
		}
	}()
	blob := strings.Repeat("x", 3000) // a page or so per ceremony
	var n atomic.Int64
	write := func() error {
		c := storage.Ceremony{ID: fmt.Sprintf("c%d", n.Add(1)), Kind: storage.CeremonyLogin, Session: []byte(blob),
			ExpiresAt: time.Now().Add(time.Hour)}
		return s.CreateCeremony(t.Context(), c)
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	salt := walSalt(t, path)
	// Writes never pause either: a pause would let a passive checkpoint
	// catch up and the readers after it read the database file alone.
	writeErr := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := write(); err != nil && ctx.Err() == nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	defer func() {
		stop()
		if err := <-writeErr; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for walSalt(t, path) == salt {
		if time.Now().After(deadline) {
			st, _ := os.Stat(path + "-wal")
			t.Fatalf("the WAL did not start over within %d commits under constant reads; it is %d bytes", n.Load(), st.Size())
		}
		time.Sleep(checkpointEvery / 5)
	}
	t.Logf("the WAL started over after %d commits", n.Load())
}
