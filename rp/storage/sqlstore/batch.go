package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// maxBatch bounds how many Store.Tx calls one group commit runs.
const maxBatch = 32

// yieldsBeforeCommit is how often the committer lets other goroutines run
// before a commit, for writes to join it (see run). make bench-rp at
// concurrency 64: 21.7% of bare validation without, 25.3-25.8% with 4;
// 16 gave no more.
const yieldsBeforeCommit = 4

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
	conn *connStmts
	// runner is the goroutine that runs the batches, which a read made
	// from inside a batch's f (on that goroutine) must not wait for.
	runner atomic.Uint64
	// inF is set while a job's f runs: only then can a read come from
	// the committer's own goroutine, which goid (a microsecond or two)
	// is asked to tell.
	inF       atomic.Bool
	jobs      chan *job
	closed    chan struct{} // closed by close
	closeOnce sync.Once
	done      chan struct{} // closed when run returns
}

// job is one Store.Tx waiting in the committer, or one read (read set).
type job struct {
	ctx  context.Context
	f    func(*tx) error
	read func(ctx context.Context, q querier) error
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
	return c.submit(&job{ctx: ctx, f: f, done: make(chan struct{})})
}

// read runs f on the committer's connection, outside any transaction,
// before the next batch: a read there finds the pages it needs in the
// connection's cache, which stays valid because every write of the
// process goes through that connection, where any other connection's
// cache is dropped by the next commit and its reads go to the file.
//
// A read from inside a Tx's f (which should use its tx) would wait for
// itself: it runs on the pool, as reads did before.
func (c *committer) read(ctx context.Context, f func(ctx context.Context, q querier) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.inF.Load() && goid() == c.runner.Load() {
		return f(ctx, c.s.pdb)
	}
	return c.submit(&job{ctx: ctx, read: f, done: make(chan struct{})})
}

// submit queues j and waits for its outcome.
func (c *committer) submit(j *job) error {
	ctx := j.ctx
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
	c.runner.Store(goid())
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
		batch = c.reads(c.collect(batch))
		if len(batch) == 0 {
			continue
		}
		// Before the commit, the requests that are ready to run get to
		// run up to their next write, which then joins this batch
		// instead of waiting for the next: a commit costs about the same
		// whatever its size (most of it is writing the pages that every
		// sign-in touches, such as the tails of the ceremonies and audit
		// tables, to the WAL), so fewer, larger commits cost less CPU a
		// write. With nothing else to run, a yield returns at once: a
		// lone request waits for nothing.
		for range yieldsBeforeCommit {
			runtime.Gosched()
		}
		if batch = c.reads(c.collect(batch)); len(batch) > 0 {
			c.commit(batch)
		}
	}
}

// collect adds to batch the jobs waiting, up to maxBatch.
func (c *committer) collect(batch []*job) []*job {
	for len(batch) < maxBatch {
		select {
		case j := <-c.jobs:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}

// reads runs the read jobs of batch and returns the others.
func (c *committer) reads(batch []*job) []*job {
	writes := batch[:0]
	for _, j := range batch {
		if j.read == nil {
			writes = append(writes, j)
			continue
		}
		if c.conn == nil {
			conn, err := c.s.db.Conn(context.Background())
			if err != nil {
				j.err = fmt.Errorf("sqlstore: %w", err)
				close(j.done)
				continue
			}
			c.conn = newConnStmts(conn)
		}
		j.err = c.callRead(j)
		close(j.done)
	}
	return writes
}

// callRead runs j's read, as call runs a write.
func (c *committer) callRead(j *job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			j.panicked = v
			err = fmt.Errorf("sqlstore: read panicked")
		}
	}()
	return j.read(context.WithoutCancel(j.ctx), c.conn)
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
	c.inF.Store(true)
	defer c.inF.Store(false)
	defer func() {
		if v := recover(); v != nil {
			j.panicked = v
			err = fmt.Errorf("sqlstore: transaction panicked")
		}
	}()
	return j.f(t)
}

// goid is the calling goroutine's ID, from the header of its stack trace
// ("goroutine 18 [running]:"). Go offers no other way; a read asks it
// once, about a microsecond.
func goid() uint64 {
	var buf [32]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, _ = bytes.CutPrefix(b, []byte("goroutine "))
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
