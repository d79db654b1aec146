// Package sqlite opens the reference RP's store in a SQLite file: the
// embedded default, a single process's database needing no server. It
// uses modernc.org/sqlite, a pure-Go SQLite, so that the RP builds
// without cgo and cross-compiles.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keydesk/keydesk/rp/storage"
	"github.com/keydesk/keydesk/rp/storage/sqlstore"
)

// busyTimeoutMillis is how long a connection waits for another's write
// lock (another process on the same file; within one process writers
// queue in sqlstore) before failing with SQLITE_BUSY.
const busyTimeoutMillis = 10000

// checkpointEvery is how often a passive checkpoint copies the WAL's
// committed pages into the database file. Connections do not checkpoint
// on commit: that runs in whichever write pays for it, with a flush to
// disk, while every other writer waits; here it runs beside them.
const checkpointEvery = 250 * time.Millisecond

// restartFrames is how long the WAL may grow, in pages (64 MiB), before
// a checkpoint makes it start over. A passive checkpoint copies the WAL
// into the database, but the WAL starts again from its beginning only if
// a writer finds no reader in it, which on a busy server never happens:
// it grew by about 100 MB a second under make bench-rp, and every reader
// searched a longer WAL index. A RESTART checkpoint waits for the readers
// in the WAL to end (a few microseconds each) and holds new writers back
// meanwhile; the passive ones before it left little to copy.
var restartFrames = 16384 // a variable so that tests can make the WAL restart sooner

// restartWait is how long a restarting checkpoint waits for the readers
// in the WAL to end, holding new writers back, before it gives up until
// the next round: a reader that long (an export) delays the restart, not
// every sign-in.
const restartWait = 60 * time.Millisecond

// journalSizeLimit is the size the WAL file is cut back to, in bytes,
// when it starts over after having grown beyond it.
const journalSizeLimit = 128 << 20

// Open opens, creating it if needed, the SQLite database at path and
// migrates it. A new file is readable by its owner only (0600); its WAL
// and shared-memory files get the same mode from SQLite. The database runs
// in WAL mode, so that reads proceed while a write is in progress, with
// foreign keys enforced; write transactions take the write lock when
// they begin (BEGIN IMMEDIATE) and run one at a time.
func Open(ctx context.Context, path string) (storage.Store, error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("sqlite: open: want a file path, not %q: an in-memory database is not shared between connections", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Connections are cheap but each re-runs the pragmas: keep enough
	// idle for concurrent readers.
	db.SetMaxIdleConns(16)
	s, err := migrateRetrying(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	st := &store{Store: s, stop: make(chan struct{}), stopped: make(chan struct{})}
	go st.checkpoint(db)
	return st, nil
}

// openAttempts bounds the tries of migrateRetrying.
const openAttempts = 5

// migrateRetrying makes the Store on db, migrating the database, and tries
// again when SQLite answers SQLITE_BUSY without waiting for its busy
// timeout: it does so to a connection that opens while another switches
// a new file to WAL mode (several processes, or instances, opening one
// new database at once), where the lock is not one a busy handler may
// wait for.
func migrateRetrying(ctx context.Context, db *sql.DB) (*sqlstore.Store, error) {
	for attempt := 1; ; attempt++ {
		s, err := sqlstore.New(ctx, db, Dialect)
		if err == nil || code(err)&0xff != sqlite3.SQLITE_BUSY || attempt == openAttempts {
			return s, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
}

// store is a sqlstore.Store whose WAL a goroutine checkpoints.
type store struct {
	*sqlstore.Store
	stopOnce sync.Once
	stop     chan struct{}
	stopped  chan struct{}
}

// checkpoint runs a passive checkpoint every checkpointEvery until Close,
// and a restarting one when the WAL has grown to restartFrames. A
// passive checkpoint takes no lock that writers or readers wait for; it
// copies what no reader still needs. An error (the database busy with
// another process's checkpoint, say) is left for the next round.
func (s *store) checkpoint(db *sql.DB) {
	defer close(s.stopped)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.checkpointOnce(db)
		}
	}
}

// checkpointOnce runs a passive checkpoint and, if the WAL has grown to
// restartFrames, a restarting one, on a connection of its own whose busy
// handler gives up after restartWait.
func (s *store) checkpointOnce(db *sql.DB) {
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	var busy, frames, copied int
	err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	if err != nil || frames < restartFrames {
		return
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, restartWait.Milliseconds())); err != nil {
		return
	}
	conn.ExecContext(ctx, `PRAGMA wal_checkpoint(RESTART)`)
	// The connection goes back to the pool: as every other one, it waits
	// the full busy timeout.
	conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, busyTimeoutMillis))
}

// Close stops the checkpoints and closes the database; SQLite checkpoints
// what is left when its last connection closes.
func (s *store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.stopped
	return s.Store.Close()
}

// dsn is modernc.org/sqlite's data source name for the file at path.
func dsn(path string) string {
	q := url.Values{}
	// busy_timeout goes first (the driver runs it before the others), so
	// that switching to WAL waits for a connection opening at the same
	// moment instead of failing.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMillis))
	q.Add("_pragma", "journal_mode(WAL)")
	// In WAL mode NORMAL syncs at checkpoints, not at every commit: a
	// power cut may lose the last commits, whole (a change with its audit
	// entry), never corrupt the file. FULL made every sign-in wait for a
	// disk flush, halving what one instance serves.
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Store's goroutine checkpoints instead (checkpointEvery); another
	// process on the same file (keydesk-rp audit export) writes little.
	q.Add("_pragma", "wal_autocheckpoint(0)")
	q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", journalSizeLimit))
	q.Set("_txlock", "immediate")
	return fileURI(path) + "?" + q.Encode()
}

// fileURI is path as a SQLite file: URI, so that a path holding '?', '#'
// or '%' is not read as parameters: SQLite decodes the escaped path. A
// Windows path with a drive letter becomes file:/C:/..., which SQLite
// reads back as C:/...
func fileURI(path string) string {
	p := filepath.ToSlash(path)
	if filepath.VolumeName(path) != "" && !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return "file:" + (&url.URL{Path: p}).EscapedPath()
}

// Dialect is SQLite's sqlstore.Dialect: writes are serialized by BEGIN
// IMMEDIATE (the _txlock DSN option), so nothing is ever rolled back for a
// concurrent transaction and there are no row locks to take.
var Dialect = sqlstore.Dialect{
	Name:              "sqlite",
	Blob:              "BLOB",
	NumberedQuestion:  true,
	SerializeWrites:   true,
	BeginWrite:        "BEGIN IMMEDIATE",
	LocalStatements:   true,
	DatabaseWriteLock: true,
	Retryable:         func(error) bool { return false },
	UniqueViolation: func(err error) bool {
		c := code(err)
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	ForeignKeyViolation: func(err error) bool { return code(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY },
}

// code is the extended result code of a SQLite error, or 0.
func code(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}
