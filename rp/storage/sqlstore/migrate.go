package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationFiles are the schema changes, NNNN_name.sql, applied in order
// of NNNN and never edited once released: a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema change.
type migration struct {
	version int64
	name    string
	sql     string // as written, with tokens
}

// loadMigrations reads and orders the embedded migrations.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlstore: migration %s: name must be NNNN_name.sql", base)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return int(a.version - b.version) })
	for i := range ms {
		if ms[i].version != int64(i+1) {
			return nil, fmt.Errorf("sqlstore: migration %s: want version %d (no gaps or repeats)", ms[i].name, i+1)
		}
	}
	return ms, nil
}

// migrate brings db's schema up to date. It is safe when several
// processes start at once: the dialect's migration lock, or else the
// write transaction itself, lets one migrate while the others wait and
// then find nothing left to do. A database migrated by a newer version of
// this program is refused rather than used with a schema this one does
// not know.
func migrate(ctx context.Context, db *sql.DB, d *Dialect, ms []migration) error {
	if d.LockMigrations != nil {
		unlock, err := d.LockMigrations(ctx, db)
		if err != nil {
			return fmt.Errorf("sqlstore: lock for migration: %w", err)
		}
		defer unlock()
	}
	tx, err := db.BeginTx(ctx, &d.TxOptions)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT NOT NULL PRIMARY KEY,
	name       TEXT   NOT NULL,
	applied_at BIGINT NOT NULL
)`); err != nil {
		return fmt.Errorf("sqlstore: create schema_migrations: %w", err)
	}
	var current int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("sqlstore: read schema version: %w", err)
	}
	if current > int64(len(ms)) {
		return fmt.Errorf("sqlstore: the database has schema version %d, newer than this program's %d: upgrade the program", current, len(ms))
	}
	for _, m := range ms[current:] {
		q, err := d.rewrite(m.sql)
		if err != nil {
			return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
		}
		ins, _ := d.rewrite(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`)
		if _, err := tx.ExecContext(ctx, ins, m.version, m.name, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("sqlstore: record migration %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	return nil
}
