// Package postgres opens the reference RP's store in PostgreSQL, for
// several RP instances sharing one database, through pgx's database/sql
// driver.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/keydesk/keydesk/rp/storage"
	"github.com/keydesk/keydesk/rp/storage/sqlstore"
)

// maxConns bounds the connections one Store opens: past a few per
// database core, more backends only add context switches and lock
// queues. make bench-rp on 2 cores, one run: 32 connections gave p95 37 ms
// at 16 concurrent sign-ins, 8 gave 25 ms and more throughput.
const maxConns = 8

// SQLSTATE codes the dialect branches on.
const (
	uniqueViolation      = "23505"
	foreignKeyViolation  = "23503"
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

// Open connects to the PostgreSQL database at url
// (postgres://user@host/db?...) and migrates it. Transactions run at READ
// COMMITTED, set explicitly whatever the server's default: the store's
// conditional updates and FOR UPDATE row locks make its check-then-write
// operations correct there, and contention on the audit chain's head
// queues on a row lock instead of failing as it would under SERIALIZABLE.
func Open(ctx context.Context, url string) (storage.Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's message hides the password.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "keydesk-rp"
	}
	db := stdlib.OpenDB(*cfg)
	// Starting a PostgreSQL connection costs a process, and more backends
	// than the server has cores only queue on its locks: a bounded pool,
	// kept open (database/sql keeps 2 idle by default), which requests
	// beyond it wait for. Store.Tx functions read through their Tx, so no
	// transaction waits for a second connection.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect to %s/%s: %w", cfg.Host, cfg.Database, err)
	}
	s, err := sqlstore.New(ctx, db, Dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// Dialect is PostgreSQL's sqlstore.Dialect.
var Dialect = sqlstore.Dialect{
	Name:           "postgres",
	Blob:           "BYTEA",
	ModifyingCTE:   true,
	RowLocks:       true,
	TxOptions:      sql.TxOptions{Isolation: sql.LevelReadCommitted},
	LockMigrations: lockMigrations,
	Retryable: func(err error) bool {
		c := sqlState(err)
		return c == serializationFailure || c == deadlockDetected
	},
	UniqueViolation:     func(err error) bool { return sqlState(err) == uniqueViolation },
	ForeignKeyViolation: func(err error) bool { return sqlState(err) == foreignKeyViolation },
}

// migrationLockKey names the advisory lock held while migrating:
// "keydesk1" in ASCII.
const migrationLockKey int64 = 0x6b65796465736b31

// lockMigrations takes a session advisory lock on a connection of its
// own, so that of several instances starting at once one migrates and
// the others wait, then find the schema up to date.
func lockMigrations(ctx context.Context, db *sql.DB) (func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		conn.Close()
		return nil, err
	}
	return func() {
		// If the unlock fails the connection is dropped, and with it the
		// lock.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, migrationLockKey); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}

// sqlState is the SQLSTATE of a PostgreSQL error, or "".
func sqlState(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
