// Package sqlstore implements storage.Store once over database/sql, for
// every database a Dialect describes (SQLite and PostgreSQL), with one set
// of embedded migrations.
//
// Queries are written for PostgreSQL and rewritten by the dialect. State
// changes that check before they write are correct under concurrency at
// PostgreSQL's READ COMMITTED: single-statement conditional updates
// (UPDATE ... WHERE uses < max_uses), which re-check their condition on a
// row another transaction changed; inserts that do nothing on a conflict
// rather than fail; and, where a transaction reads rows to decide what to
// write (the audit chain's head, a user's credentials), FOR UPDATE row
// locks. SQLite runs one write transaction at a time. No expected outcome
// (a conflict, a consumed ceremony) aborts a PostgreSQL transaction, so
// the caller's transaction stays usable after one, as on SQLite.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/storage"
)

// maxAttempts bounds how often Tx runs f when the database rolls it back
// for a concurrent transaction (a deadlock between row locks taken in
// different orders, or a serialization failure).
const maxAttempts = 5

// Store is a storage.Store on a database/sql database.
type Store struct {
	db *sql.DB
	d  *Dialect
	q  *queries
	// stmts caches prepared statements; pdb runs through it.
	stmts *stmts
	pdb   preparedDB
	// commit runs every write in group commits when the dialect
	// serializes writes; nil otherwise.
	commit *committer
}

var _ storage.Store = (*Store)(nil)

// New migrates db and returns a Store on it that owns db: Close closes
// it. On error db is left open for the caller to close.
func New(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, d: &d}
	s.q = &queries{d: s.d}
	s.stmts = &stmts{db: db}
	s.pdb = preparedDB{c: s.stmts, local: d.LocalStatements}
	if err := migrate(ctx, db, s.d, ms); err != nil {
		return nil, err
	}
	if d.SerializeWrites {
		s.commit = newCommitter(s)
	}
	return s, nil
}

// Tx runs f in a transaction and commits it when f returns nil. When the
// database rolls the transaction back because of a concurrent one, it
// runs f again, up to maxAttempts times. Where the dialect serializes
// writes, f runs on the committer's goroutine, in a savepoint of a
// transaction it may share with other calls (a group commit); Tx returns
// once that transaction committed, and re-panics a panic in f. The
// storage.Tx given to f must not be used after f returns. f reads and
// writes through its storage.Tx, never through the Store: the pool may be
// bounded (PostgreSQL's is), and on SQLite a write through the Store from
// inside f would wait for the committer that is running f.
func (s *Store) Tx(ctx context.Context, f func(tx storage.Tx) error) error {
	if s.commit != nil {
		return s.commit.do(ctx, func(t *tx) error { return f(t) })
	}
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, f)
		if err == nil || attempt == maxAttempts || !s.d.Retryable(err) {
			return err
		}
		// Back off a little, at random, so that the transactions that
		// collided do not collide again.
		wait := time.Duration(attempt) * time.Duration(1+rand.IntN(5)) * time.Millisecond
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// tryTx runs f in one transaction.
func (s *Store) tryTx(ctx context.Context, f func(tx storage.Tx) error) (err error) {
	sqlTx, err := s.db.BeginTx(ctx, &s.d.TxOptions)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			sqlTx.Rollback()
		}
	}()
	if err := f(&tx{ctx: ctx, s: s, p: preparedTx{c: s.stmts, tx: sqlTx}}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	committed = true
	return nil
}

// readHot runs f, a read of the sign-in path, once: on the committer's
// connection where writes go through one (see committer.read), else on
// the pool.
func (s *Store) readHot(ctx context.Context, f func(ctx context.Context, q querier) error) error {
	if s.commit == nil {
		return f(ctx, s.pdb)
	}
	return s.commit.read(ctx, f)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping %s: %w", s.d.Name, err)
	}
	// A query, not only a connection: the database may accept
	// connections and still refuse work.
	var one int
	if err := s.pdb.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("sqlstore: ping %s: %w", s.d.Name, err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	if s.commit != nil {
		s.commit.close()
	}
	s.stmts.close()
	return s.db.Close()
}

// querier is what reads need from *sql.DB and *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// UserByName finds a user by name, ignoring case.
func (s *Store) UserByName(ctx context.Context, name string) (*storage.User, error) {
	return userByName(ctx, s.pdb, s.q, name, false)
}

// UserByID finds a user by WebAuthn user handle.
func (s *Store) UserByID(ctx context.Context, id []byte) (*storage.User, error) {
	return userByID(ctx, s.pdb, s.q, id)
}

// userByID finds a user by ID in a query or transaction.
func userByID(ctx context.Context, db querier, q *queries, id []byte) (*storage.User, error) {
	u, err := scanUser(db.QueryRowContext(ctx, q.get(`SELECT `+userColumns+` FROM users WHERE id = $1`), id))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: user by ID: %w", err)
	}
	return u, nil
}

// SearchUsers lists, by name, at most limit users whose name or display
// name contains q, ignoring case. A limit below 1 lists none.
func (s *Store) SearchUsers(ctx context.Context, q string, limit int) ([]storage.User, error) {
	if limit < 1 {
		return nil, nil
	}
	pattern := "%" + escapeLike(strings.ToLower(q)) + "%"
	rows, err := s.pdb.QueryContext(ctx, s.q.get(`SELECT `+userColumns+` FROM users
		WHERE name LIKE $1 ESCAPE '\' OR search_name LIKE $1 ESCAPE '\'
		ORDER BY name LIMIT $2`), pattern, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: search users: %w", err)
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: search users: %w", err)
	}
	out := make([]storage.User, len(users))
	for i, u := range users {
		out[i] = *u
	}
	return out, nil
}

// escapeLike quotes LIKE's wildcards and its escape character in s.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// CountUsers counts every user, disabled ones included.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.pdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: count users: %w", err)
	}
	return n, nil
}

// Credential finds a credential by ID.
func (s *Store) Credential(ctx context.Context, id []byte) (*storage.Credential, error) {
	return credential(ctx, s.pdb, s.q, id, false)
}

// CredentialWithUser reads a credential and its owner in one query.
func (s *Store) CredentialWithUser(ctx context.Context, id []byte) (*storage.Credential, *storage.User, error) {
	var (
		cr credentialRow
		ur userRow
	)
	query := `SELECT ` + prefixed("c.", credentialColumns) + `, ` + prefixed("u.", userColumns) + `
		FROM credentials c JOIN users u ON u.id = c.user_id WHERE c.id = $1`
	if err := s.readHot(ctx, func(ctx context.Context, q querier) error {
		return q.QueryRowContext(ctx, s.q.get(query), id).Scan(append(cr.dest(), ur.dest()...)...)
	}); err != nil {
		return nil, nil, fmt.Errorf("sqlstore: credential with user: %w", notFound(err))
	}
	return cr.credential(), ur.user(), nil
}

// UserWithCredentials reads a user by name and the user's credentials,
// oldest first, in one query: a user without any comes back as one row
// whose credential columns are NULL.
func (s *Store) UserWithCredentials(ctx context.Context, name string) (*storage.User, []storage.Credential, error) {
	const op = "user with credentials"
	var (
		u     *storage.User
		creds []storage.Credential
	)
	err := s.readHot(ctx, func(ctx context.Context, q querier) error {
		u, creds = nil, nil
		rows, err := q.QueryContext(ctx, s.q.get(`SELECT `+prefixed("u.", userColumns)+`, `+outerCredentialColumns+`
		FROM users u LEFT JOIN credentials c ON c.user_id = u.id
		WHERE u.name = $1 ORDER BY c.created_at, c.id`), foldName(name))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				ur userRow
				cr credentialRow
			)
			if err := rows.Scan(append(ur.dest(), cr.dest()...)...); err != nil {
				return err
			}
			if u == nil {
				u = ur.user()
			}
			if cr.c.ID != nil {
				creds = append(creds, *cr.credential())
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	if u == nil {
		return nil, nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	}
	return u, creds, nil
}

// outerCredentialColumns are credentialColumns of c in an outer join:
// the columns a credentialRow scans as NOT NULL read as zero when there
// is no credential.
var outerCredentialColumns = `c.id, c.user_id, COALESCE(c.nickname, ''), c.webauthn, c.attestation, c.aaguid,
	COALESCE(c.sign_count, 0), COALESCE(c.attestation_type, ''), COALESCE(c.created_at, 0), c.last_used_at, c.revoked_at,
	COALESCE(c.revoke_reason, ''), COALESCE(c.provisioned_by, ''), COALESCE(c.batch, '')`

// prefixed qualifies each of a column list's names with p.
func prefixed(p, columns string) string {
	names := strings.Split(columns, ",")
	for i, n := range names {
		names[i] = p + strings.TrimSpace(n)
	}
	return strings.Join(names, ", ")
}

// Credentials lists a user's credentials, revoked ones included, oldest
// first.
func (s *Store) Credentials(ctx context.Context, userID []byte) ([]storage.Credential, error) {
	return credentials(ctx, s.pdb, s.q, userID, false)
}

// CreateCeremony stores a begun ceremony in one statement, outside any
// transaction where writers run concurrently, or in the next group commit
// where they take turns.
func (s *Store) CreateCeremony(ctx context.Context, c storage.Ceremony) error {
	const op = "create ceremony"
	if err := checkCeremony(op, c); err != nil {
		return err
	}
	if s.commit != nil {
		// The foreign key checks the user: SQLite's transaction survives
		// a violation, so the extra lookup tx.CreateCeremony makes is
		// not needed.
		return s.commit.do(ctx, func(t *tx) error {
			n, err := t.exec(op, insertCeremony, ceremonyArgs(c)...)
			if err == nil && n == 0 {
				err = fmt.Errorf("sqlstore: %s: ID taken: %w", op, storage.ErrConflict)
			}
			return err
		})
	}
	res, err := s.pdb.ExecContext(ctx, s.q.get(insertCeremony), ceremonyArgs(c)...)
	switch {
	case err != nil && s.d.ForeignKeyViolation(err):
		return fmt.Errorf("sqlstore: %s: %w (%w)", op, storage.ErrNotFound, err)
	case err != nil:
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	} else if n == 0 {
		return fmt.Errorf("sqlstore: %s: ID taken: %w", op, storage.ErrConflict)
	}
	return nil
}

// Ceremony reads a ceremony that can still be finished.
func (s *Store) Ceremony(ctx context.Context, id string, now time.Time) (*storage.Ceremony, error) {
	const op = "ceremony"
	c := storage.Ceremony{ID: id}
	var (
		kind     string
		expires  int64
		consumed sql.NullInt64
	)
	err := s.readHot(ctx, func(ctx context.Context, q querier) error {
		return q.QueryRowContext(ctx, s.q.get(`SELECT kind, user_id, session_hash, session, nickname, expires_at, consumed_at
		FROM ceremonies WHERE id = $1`), id).
			Scan(&kind, &c.UserID, &c.SessionHash, &c.Session, &c.Nickname, &expires, &consumed)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("sqlstore: %s: %w", op, err)
	case consumed.Valid:
		return nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConsumed)
	case expires <= now.UnixMicro():
		return nil, fmt.Errorf("sqlstore: %s: %w", op, storage.ErrExpired)
	}
	c.Kind = storage.CeremonyKind(kind)
	c.UserID, c.SessionHash, c.Session = orNil(c.UserID), orNil(c.SessionHash), orNil(c.Session)
	c.ExpiresAt = fromMicros(expires)
	return &c, nil
}

// CeremonyResult finds the answer a finished ceremony gave.
func (s *Store) CeremonyResult(ctx context.Context, ceremonyID string) (*storage.CeremonyResult, error) {
	r := storage.CeremonyResult{CeremonyID: ceremonyID}
	var created sql.NullInt64
	err := s.pdb.QueryRowContext(ctx, s.q.get(`SELECT request_hash, result, result_at FROM ceremonies WHERE id = $1`),
		ceremonyID).Scan(&r.RequestHash, &r.Result, &created)
	if err == nil && !created.Valid {
		err = sql.ErrNoRows // begun, not finished
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: ceremony result: %w", notFound(err))
	}
	r.CreatedAt = fromMicros(created.Int64)
	return &r, nil
}

// Session finds a session by its token hash: storage.ErrExpired once now
// has reached its expiry.
func (s *Store) Session(ctx context.Context, tokenHash []byte, now time.Time) (*storage.Session, error) {
	var (
		ses              storage.Session
		scope            string
		created, expires int64
		authTime         sql.NullInt64
	)
	var registered sql.NullInt64
	err := s.pdb.QueryRowContext(ctx, s.q.get(`SELECT token_hash, user_id, scope, created_at, expires_at, auth_time, grant_id,
			key_registered_at, registered_key
		FROM sessions WHERE token_hash = $1`), tokenHash).
		Scan(&ses.TokenHash, &ses.UserID, &scope, &created, &expires, &authTime, &ses.GrantID, &registered, &ses.RegisteredKey)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: session: %w", notFound(err))
	}
	if !now.Before(fromMicros(expires)) {
		return nil, fmt.Errorf("sqlstore: session: %w", storage.ErrExpired)
	}
	ses.Scope = storage.Scope(scope)
	ses.CreatedAt, ses.ExpiresAt, ses.AuthTime = fromMicros(created), fromMicros(expires), fromNullMicros(authTime)
	ses.KeyRegisteredAt, ses.RegisteredKey = fromNullMicros(registered), orNil(ses.RegisteredKey)
	return &ses, nil
}

// Policy returns the stored policy, or the zero Policy when none was set.
func (s *Store) Policy(ctx context.Context) (storage.Policy, error) {
	var doc string
	err := s.pdb.QueryRowContext(ctx, `SELECT document FROM policy WHERE id = 1`).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Policy{}, nil
	}
	if err != nil {
		return storage.Policy{}, fmt.Errorf("sqlstore: policy: %w", err)
	}
	var p storage.Policy
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return storage.Policy{}, fmt.Errorf("sqlstore: policy: %w", err)
	}
	return p, nil
}

// Audit lists at most limit audit entries from fromSeq on, in order. A
// limit below 1 lists none.
func (s *Store) Audit(ctx context.Context, fromSeq uint64, limit int) ([]audit.Entry, error) {
	if limit < 1 || fromSeq > math.MaxInt64 {
		return nil, nil
	}
	rows, err := s.pdb.QueryContext(ctx, s.q.get(`SELECT `+auditColumns+` FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2`),
		int64(fromSeq), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit: %w", err)
	}
	es, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit: %w", err)
	}
	return es, nil
}

// AuditForUser lists at most limit of the newest entries whose actor or
// subject is the user name (case-folded, as user names are stored),
// newest first. A limit below 1 lists none.
func (s *Store) AuditForUser(ctx context.Context, name string, limit int) ([]audit.Entry, error) {
	if limit < 1 {
		return nil, nil
	}
	rows, err := s.pdb.QueryContext(ctx, s.q.get(`SELECT `+auditColumns+` FROM audit
		WHERE subject = $1 OR (actor = $1 AND actor <> subject) ORDER BY seq DESC LIMIT $2`), foldName(name), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit for user: %w", err)
	}
	es, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: audit for user: %w", err)
	}
	return es, nil
}

// userByName finds a user by name in a query or transaction, locking the
// row when lock is set.
func userByName(ctx context.Context, db querier, q *queries, name string, lock bool) (*storage.User, error) {
	query := `SELECT ` + userColumns + ` FROM users WHERE name = $1`
	if lock {
		query += `{{forUpdate}}`
	}
	u, err := scanUser(db.QueryRowContext(ctx, q.get(query), foldName(name)))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: user by name: %w", err)
	}
	return u, nil
}

// credential finds a credential in a query or transaction, locking the
// row when lock is set.
func credential(ctx context.Context, db querier, q *queries, id []byte, lock bool) (*storage.Credential, error) {
	query := `SELECT ` + credentialColumns + ` FROM credentials WHERE id = $1`
	if lock {
		query += `{{forUpdate}}`
	}
	c, err := scanCredential(db.QueryRowContext(ctx, q.get(query), id))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: credential: %w", err)
	}
	return c, nil
}

// credentials lists a user's credentials in a query or transaction,
// locking the rows, in the order listed, when lock is set.
func credentials(ctx context.Context, db querier, q *queries, userID []byte, lock bool) ([]storage.Credential, error) {
	query := `SELECT ` + credentialColumns + ` FROM credentials WHERE user_id = $1 ORDER BY created_at, id`
	if lock {
		query += `{{forUpdate}}`
	}
	rows, err := db.QueryContext(ctx, q.get(query), userID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: credentials: %w", err)
	}
	cs, err := collect(rows, scanCredential)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: credentials: %w", err)
	}
	out := make([]storage.Credential, len(cs))
	for i, c := range cs {
		out[i] = *c
	}
	return out, nil
}

// foldName is the stored form of a user name.
func foldName(name string) string { return strings.ToLower(name) }
