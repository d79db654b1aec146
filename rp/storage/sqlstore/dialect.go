package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
)

// Dialect is what differs between the databases sqlstore runs on. Queries
// and migrations are written once, in PostgreSQL's syntax with $1..$N
// parameters and a few {{tokens}}; the dialect rewrites them.
type Dialect struct {
	// Name is the database's name in errors, such as "sqlite".
	Name string
	// Blob is the type of byte-string columns: {{blob}} in migrations.
	Blob string
	// NumberedQuestion rewrites $N parameters to ?N, which SQLite
	// binds by number as PostgreSQL binds $N.
	NumberedQuestion bool
	// RowLocks appends FOR UPDATE where a query reads rows that the
	// transaction goes on to check and change ({{forUpdate}}). SQLite has
	// no row locks and needs none: its write transactions are serial.
	RowLocks bool
	// TxOptions begin every Store.Tx transaction. SQLite's driver begins
	// them all with BEGIN IMMEDIATE (its _txlock DSN option), taking the
	// write lock first so that they run one at a time and never fail
	// half way to upgrade a read lock.
	TxOptions sql.TxOptions
	// ModifyingCTE lets one statement insert an audit entry and move the
	// chain's head (WITH ... INSERT ... UPDATE): a round trip less while
	// the head's lock is held. SQLite has no data-modifying CTEs.
	ModifyingCTE bool
	// SerializeWrites runs every write of this process through one
	// committer, in group commits (see committer), so that writers queue
	// in order instead of polling the database's busy lock, and share
	// commits.
	SerializeWrites bool
	// BeginWrite is the statement that begins a committer's batch
	// (SerializeWrites), such as SQLite's BEGIN IMMEDIATE: the committer
	// runs BEGIN and COMMIT as statements on its own connection.
	BeginWrite string
	// LocalStatements says a statement is a call into this process, done
	// in microseconds, not a round trip to a server: a statement outside
	// a transaction checks its context once, before it starts, and then
	// runs to completion. A cancellable context would cost each one a
	// watcher goroutine in database/sql and another in SQLite's driver,
	// which under load crowd the scheduler that the committer waits on,
	// to interrupt what ends before the watcher could act.
	LocalStatements bool
	// DatabaseWriteLock says a write transaction holds the whole
	// database from its start (SQLite's BEGIN IMMEDIATE, across
	// processes too): what it reads cannot change under it, so no row
	// needs locking and the audit chain's head is simply its newest entry.
	DatabaseWriteLock bool
	// LockMigrations, if not nil, takes a lock that keeps other processes
	// from migrating the same database until unlock is called.
	// Without it, the migration's own write transaction must do.
	LockMigrations func(ctx context.Context, db *sql.DB) (unlock func(), err error)
	// Retryable reports an error that rolled the transaction back only
	// because of a concurrent one (a serialization failure or a
	// deadlock), so that running it again may succeed.
	Retryable func(error) bool
	// UniqueViolation reports an error from a unique or primary key
	// constraint. Inserts avoid it with ON CONFLICT DO NOTHING; it is
	// the fallback for one that slips through.
	UniqueViolation func(error) bool
	// ForeignKeyViolation reports an error from a foreign key constraint.
	ForeignKeyViolation func(error) bool
}

// validate checks that d is complete.
func (d *Dialect) validate() error {
	switch {
	case d.Name == "":
		return fmt.Errorf("sqlstore: dialect has no name")
	case d.Blob == "":
		return fmt.Errorf("sqlstore: dialect %s has no blob type", d.Name)
	case d.Retryable == nil || d.UniqueViolation == nil || d.ForeignKeyViolation == nil:
		return fmt.Errorf("sqlstore: dialect %s lacks an error classifier", d.Name)
	case d.SerializeWrites && d.BeginWrite == "":
		return fmt.Errorf("sqlstore: dialect %s serializes writes but has no BeginWrite", d.Name)
	}
	return nil
}

// rewrite turns a query or migration written for PostgreSQL with tokens
// into d's SQL: it expands {{blob}} and {{forUpdate}} and, for
// NumberedQuestion, $N parameters into ?N, leaving string literals and
// -- comments as they are. An unknown or unclosed token is an error.
func (d *Dialect) rewrite(q string) (string, error) {
	var b strings.Builder
	b.Grow(len(q) + 16)
	inString := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inString = !inString
			b.WriteByte(c)
		case inString:
			b.WriteByte(c)
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			end := strings.IndexByte(q[i:], '\n')
			if end < 0 {
				end = len(q) - i - 1
			}
			b.WriteString(q[i : i+end+1])
			i += end
		case c == '{' && strings.HasPrefix(q[i:], "{{"):
			end := strings.Index(q[i:], "}}")
			if end < 0 {
				return "", fmt.Errorf("sqlstore: unclosed {{ at byte %d", i)
			}
			switch tok := q[i+2 : i+end]; tok {
			case "blob":
				b.WriteString(d.Blob)
			case "forUpdate":
				if d.RowLocks {
					b.WriteString(" FOR UPDATE")
				}
			default:
				return "", fmt.Errorf("sqlstore: unknown token {{%s}}", tok)
			}
			i += end + 1
		case c == '$' && d.NumberedQuestion && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	if inString {
		return "", fmt.Errorf("sqlstore: unterminated string literal")
	}
	return b.String(), nil
}

// queries caches rewritten queries. The queries are constants of this
// package, so a rewrite error is a bug and panics.
type queries struct {
	d     *Dialect
	cache sync.Map // string -> string
}

// get returns q rewritten for the dialect.
func (qs *queries) get(q string) string {
	if v, ok := qs.cache.Load(q); ok {
		return v.(string)
	}
	r, err := qs.d.rewrite(q)
	if err != nil {
		panic(err)
	}
	qs.cache.Store(q, r)
	return r
}
