package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// maxBatch bounds how many Store.Tx calls one group commit runs.
const maxBatch = 32

// errClosed is a write to a Store that Close has stopped.
var errClosed = errors.New("sqlstore: the store is closed")

// committer runs the write transactions of a database that takes one
// writer at a time (Dialect.SerializeWrites) as group commits: every
// Store.Tx waiting when the database becomes free runs, in turn, inside
// one database transaction, each in a savepoint of its own, and one
// commit makes them durable together. A Tx whose f fails is rolled back
// to its savepoint and told at once; the others learn the commit's
// outcome. Each statement and commit is paid once per batch instead of
// once per request: on SQLite the commit (writing the WAL frames,
// occasionally a checkpoint) costs as much as the statements of a
// sign-in, and it is what every other writer waits for.
type committer struct {
	s *Store
	// conn is the connection every batch runs on, with its statements,
	// kept so that its page cache stays valid: SQLite drops a
	// connection's cache whenever another connection has written, and a
	// batch on a fresh connection would read each page it touches from
	// the file again.
	conn      *connStmts
	jobs      chan *job
	closed    chan struct{} // closed by close
	closeOnce sync.Once
	done      chan struct{} // closed when run returns
}

// job is one Store.Tx waiting in the committer.
type job struct {
	ctx context.Context
	f   func(*tx) error
	// err is f's error, or the commit's; panicked holds what f panicked
	// with, to panic with again on the caller's goroutine (the value as
	// it was, so that a caller's recover sees what f threw).
	err      error
	panicked any
	done     chan struct{}
}

func newCommitter(s *Store) *committer {
	c := &committer{s: s, jobs: make(chan *job), closed: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// do runs f in the next batch and returns its outcome.
func (c *committer) do(ctx context.Context, f func(*tx) error) error {
	j := &job{ctx: ctx, f: f, done: make(chan struct{})}
	select {
	case c.jobs <- j:
	case <-ctx.Done():
		return fmt.Errorf("sqlstore: begin: %w", ctx.Err())
	case <-c.closed:
		return errClosed
	}
	<-j.done
	if j.panicked != nil {
		panic(j.panicked)
	}
	return j.err
}

// close stops the committer once its batch in progress has ended. It
// may be called more than once.
func (c *committer) close() {
	c.closeOnce.Do(func() { close(c.closed) })
	<-c.done
}

// run collects batches: whatever waits when the previous one ends.
func (c *committer) run() {
	defer close(c.done)
	defer func() {
		if c.conn != nil {
			c.conn.close()
		}
	}()
	batch := make([]*job, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case j := <-c.jobs:
			batch = append(batch, j)
		case <-c.closed:
			return
		}
	collect:
		for len(batch) < maxBatch {
			select {
			case j := <-c.jobs:
				batch = append(batch, j)
			default:
				break collect
			}
		}
		c.commit(batch)
	}
}

// commit runs batch in one transaction. Until one of its jobs has
// succeeded, a job runs without a savepoint: when it fails, the whole
// transaction rolls back, as it holds nothing else, and the next job
// begins another. Most batches hold one job or two, so this spares most
// of them the SAVEPOINT and RELEASE statements and the pages SQLite
// copies to keep a savepoint's undo.
func (c *committer) commit(batch []*job) {
	s := c.s
	finish := func(j *job, err error) {
		j.err = err
		close(j.done)
	}
	// The transaction belongs to no request: one caller giving up must
	// not roll back the others' work.
	ctx := context.Background()
	var (
		conn *connStmts // nil while no transaction is open
		ran  []*job     // succeeded, waiting for the commit
	)
	abort := func(rest []*job, err error) {
		if conn != nil {
			c.rollback(ctx)
		}
		for _, j := range append(ran, rest...) {
			finish(j, fmt.Errorf("sqlstore: group commit: %w", err))
		}
	}
	for i, j := range batch {
		if err := j.ctx.Err(); err != nil {
			finish(j, fmt.Errorf("sqlstore: begin: %w", err))
			continue
		}
		if conn == nil {
			var err error
			if conn, err = c.begin(ctx); err != nil {
				// Nothing ran in this transaction: ran is empty.
				for _, j := range batch[i:] {
					finish(j, fmt.Errorf("sqlstore: begin: %w", err))
				}
				return
			}
		}
		// A savepoint keeps the jobs that already ran from j's failure.
		guard := len(ran) > 0
		if guard {
			if _, err := conn.ExecContext(ctx, `SAVEPOINT tx`); err != nil {
				abort(batch[i:], err)
				return
			}
		}
		// Statements run to completion: a request that ends meanwhile
		// is checked for between transactions, and an interrupted
		// statement would spare nothing. A context that cannot end also
		// spares SQLite's driver a watcher goroutine per statement.
		ferr := c.call(j, &tx{ctx: context.WithoutCancel(j.ctx), s: s, p: conn})
		switch {
		case ferr != nil && !guard:
			c.rollback(ctx)
			conn = nil
			finish(j, ferr)
			continue
		case ferr != nil:
			// Back to before f, whatever f did; if SQLite already rolled
			// the whole transaction back (a full disk, an I/O error), the
			// savepoint is gone and the batch with it.
			if _, err := conn.ExecContext(ctx, `ROLLBACK TO tx`); err != nil {
				abort(batch[i:], fmt.Errorf("%w (after %w)", err, ferr))
				return
			}
		}
		if guard {
			if _, err := conn.ExecContext(ctx, `RELEASE tx`); err != nil {
				abort(batch[i:], err)
				return
			}
		}
		if ferr != nil {
			finish(j, ferr)
			continue
		}
		ran = append(ran, j)
	}
	if conn == nil {
		return
	}
	if len(ran) == 0 {
		c.rollback(ctx)
		return
	}
	_, err := conn.ExecContext(ctx, `COMMIT`)
	if err != nil {
		// A failed COMMIT may leave the transaction open.
		c.rollback(ctx)
		err = fmt.Errorf("sqlstore: commit: %w", err)
	}
	for _, j := range ran {
		finish(j, err)
	}
}

// begin starts a batch's transaction on the committer's connection,
// opening it again if it was lost.
func (c *committer) begin(ctx context.Context) (*connStmts, error) {
	if c.conn == nil {
		conn, err := c.s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		c.conn = newConnStmts(conn)
	}
	if _, err := c.conn.ExecContext(ctx, c.s.d.BeginWrite); err != nil {
		// The next batch tries a new connection.
		c.drop()
		return nil, err
	}
	return c.conn, nil
}

// rollback ends the batch's transaction without its changes. If that
// fails, the connection may still be in the transaction, so the next
// batch starts on a new one.
func (c *committer) rollback(ctx context.Context) {
	if _, err := c.conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		c.drop()
	}
}

// drop closes the committer's connection, for the next batch to open
// another.
func (c *committer) drop() {
	c.conn.close()
	c.conn = nil
}

// call runs j's f on t, turning a panic into an error for the batch and
// a panic for j's caller.
func (c *committer) call(j *job, t *tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			j.panicked = v
			err = fmt.Errorf("sqlstore: transaction panicked")
		}
	}()
	return j.f(t)
}
