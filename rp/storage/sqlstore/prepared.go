package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// stmts caches one prepared statement per query text: parsing and
// planning a statement on every call costs more than running most of
// them (SQLite's driver keeps no statement cache of its own). database/sql
// prepares a cached statement again on each pooled connection as needed,
// and a transaction reuses its connection's.
type stmts struct {
	db *sql.DB
	m  sync.Map // query text -> *sql.Stmt
	// warming marks the queries being prepared in the background, and
	// warmers counts those goroutines, which close waits for: one still
	// holding a connection would keep the database's files open.
	warming sync.Map // query text -> struct{}
	warmers sync.WaitGroup
}

// lookup returns the cached statement for query, if there is one.
func (c *stmts) lookup(query string) *sql.Stmt {
	if st, ok := c.m.Load(query); ok {
		return st.(*sql.Stmt)
	}
	return nil
}

// warm prepares query in the background, once. A transaction must not
// prepare on the pool itself: preparing takes a second connection, and
// with a bounded pool every transaction could end up waiting for one.
func (c *stmts) warm(query string) {
	if _, busy := c.warming.LoadOrStore(query, struct{}{}); busy {
		return
	}
	c.warmers.Go(func() { c.get(context.Background(), query) })
}

// get returns the prepared statement for query, or nil when it cannot be
// prepared (the caller then runs the query unprepared, which reports the
// error).
func (c *stmts) get(ctx context.Context, query string) *sql.Stmt {
	if st, ok := c.m.Load(query); ok {
		return st.(*sql.Stmt)
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := c.m.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

func (c *stmts) close() {
	c.warmers.Wait()
	c.m.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
}

// preparedDB runs queries on the database through the cache.
type preparedDB struct {
	c *stmts
	// local detaches statements from their context's end
	// (Dialect.LocalStatements).
	local bool
}

// context is the context a statement runs under: ctx, or for a local
// database ctx without its end, once it is known not to have ended.
func (p preparedDB) context(ctx context.Context) (context.Context, error) {
	if !p.local {
		return ctx, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

func (p preparedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, err := p.context(ctx)
	if err != nil {
		return nil, err
	}
	if st := p.c.get(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.c.db.ExecContext(ctx, query, args...)
}

func (p preparedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, err := p.context(ctx)
	if err != nil {
		return nil, err
	}
	if st := p.c.get(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.c.db.QueryContext(ctx, query, args...)
}

func (p preparedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if c, err := p.context(ctx); err == nil {
		// An ended ctx stays, for database/sql to answer the Row with
		// its error.
		ctx = c
	}
	if st := p.c.get(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.c.db.QueryRowContext(ctx, query, args...)
}

// txQuerier runs a transaction's statements: preparedTx on a
// database/sql transaction, connStmts on the committer's connection.
type txQuerier interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// preparedTx runs queries in a transaction through the cache.
type preparedTx struct {
	c  *stmts
	tx *sql.Tx
}

// A query not yet prepared runs unprepared on the transaction's own
// connection, and is prepared in the background for the next time.

func (p preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := p.c.lookup(query); st != nil {
		return p.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	p.c.warm(query)
	return p.tx.ExecContext(ctx, query, args...)
}

func (p preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.c.lookup(query); st != nil {
		return p.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	p.c.warm(query)
	return p.tx.QueryContext(ctx, query, args...)
}

func (p preparedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.c.lookup(query); st != nil {
		return p.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	p.c.warm(query)
	return p.tx.QueryRowContext(ctx, query, args...)
}

// connStmts runs statements on one connection, each prepared on it once.
// The committer runs its transactions this way, with BEGIN and COMMIT as
// statements of their own, instead of as a database/sql transaction: a
// Tx watches its context in a goroutine of its own, and so does every
// Rows read in it, and at thousands of batches a second those goroutines
// fill the run queues that the committer, which every writer waits
// for, must get through to run.
type connStmts struct {
	conn *sql.Conn
	m    map[string]*sql.Stmt
}

func newConnStmts(conn *sql.Conn) *connStmts {
	return &connStmts{conn: conn, m: map[string]*sql.Stmt{}}
}

// stmt returns query prepared on the connection, or nil when it cannot
// be prepared (the caller then runs it unprepared, which reports the
// error).
func (c *connStmts) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := c.m[query]; ok {
		return st
	}
	st, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.m[query] = st
	return st
}

func (c *connStmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.conn.ExecContext(ctx, query, args...)
}

func (c *connStmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.conn.QueryContext(ctx, query, args...)
}

func (c *connStmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.conn.QueryRowContext(ctx, query, args...)
}

// close closes the statements and the connection.
func (c *connStmts) close() {
	for _, st := range c.m {
		st.Close()
	}
	c.conn.Close()
}
