// Package storeopen opens the store a data source name names, so that
// commands take one --db flag for either database. It is apart from
// package storage, which the database packages import.
package storeopen

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keydesk/keydesk/rp/storage"
	"github.com/keydesk/keydesk/rp/storage/postgres"
	"github.com/keydesk/keydesk/rp/storage/sqlite"
)

// Open opens the store dsn names:
//
//	sqlite:PATH                       a SQLite file (created 0600 if missing)
//	postgres://... or postgresql://... a PostgreSQL database (a libpq URL)
func Open(ctx context.Context, dsn string) (storage.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, dsn)
	}
	// Name the scheme only, and only if it looks like one: the rest of
	// a DSN may hold a password.
	if scheme, _, ok := strings.Cut(dsn, ":"); ok && isScheme(scheme) {
		return nil, fmt.Errorf("storeopen: unknown database scheme %q: want sqlite:PATH or a postgres:// URL", scheme)
	}
	return nil, errors.New("storeopen: the database names no known scheme: want sqlite:PATH or a postgres:// URL")
}

// isScheme reports whether s is a short URL scheme (RFC 3986: a letter,
// then letters, digits, '+', '-' and '.').
func isScheme(s string) bool {
	if s == "" || len(s) > 16 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
