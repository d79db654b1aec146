// Package storagetest is the test suite every storage.Store
// implementation passes, run against a real database: every method's
// round trips and errors, rollback, and the races that several RP
// instances sharing one database must survive.
package storagetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/storage"
)

// Racers is how many goroutines the race tests run at once.
const Racers = 16

// t0 is the suite's "now": a time with microseconds, as stored.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 123456000, time.UTC)

// test is one behaviour, run on a fresh store.
type test struct {
	name string
	f    func(t *testing.T, s storage.Store)
}

// Run runs the suite. open(t) must return a Store on a new, empty
// database that is closed and removed when t ends; each subtest opens
// its own.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	var tests []test
	tests = append(tests, userTests...)
	tests = append(tests, credentialTests...)
	tests = append(tests, ceremonyTests...)
	tests = append(tests, sessionTests...)
	tests = append(tests, grantTests...)
	tests = append(tests, auditTests...)
	tests = append(tests, transactionTests...)
	tests = append(tests, rateLimitTests...)
	tests = append(tests, recoveryTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.f(t, open(t))
		})
	}
}

// RunInstances runs the tests that need several Stores on one database,
// as several RP instances have: races between instances, and migrations
// applied again and concurrently. newDatabase(t) returns the DSN of a new,
// empty database, removed when t ends; open opens a Store on a DSN, which
// the tests close.
func RunInstances(t *testing.T, newDatabase func(t *testing.T) string, open func(ctx context.Context, dsn string) (storage.Store, error)) {
	for _, tt := range append(instanceTests, recoveryInstanceTests...) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.f(t, database{dsn: newDatabase(t), open: open})
		})
	}
}

// database is one database that several Stores open.
type database struct {
	dsn  string
	open func(ctx context.Context, dsn string) (storage.Store, error)
}

// mustOpen opens another Store on the database, closed when t ends.
func (d database) mustOpen(t *testing.T) storage.Store {
	t.Helper()
	s, err := d.open(t.Context(), d.dsn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// mustTx runs f in a transaction and fails the test on error.
func mustTx(t *testing.T, s storage.Store, f func(tx storage.Tx) error) {
	t.Helper()
	if err := s.Tx(t.Context(), f); err != nil {
		t.Fatalf("Tx: %v", err)
	}
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// newUser creates a user with the role user.
func newUser(t *testing.T, s storage.Store, name string) *storage.User {
	t.Helper()
	u := storage.User{ID: randomBytes(32), Name: name, DisplayName: name, Roles: []storage.Role{storage.RoleUser}, CreatedAt: t0}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateUser(u) })
	return &u
}

// newCredential registers a key for u, created at t0 plus age.
func newCredential(t *testing.T, s storage.Store, u *storage.User, age time.Duration) *storage.Credential {
	t.Helper()
	c := storage.Credential{
		ID: randomBytes(16), UserID: u.ID, Nickname: "key", WebAuthn: []byte(`{"publicKey":"pk"}`),
		AAGUID: randomBytes(16), AttestationType: "none", CreatedAt: t0.Add(age),
	}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateCredential(c) })
	return &c
}

// wantErr fails the test unless errors.Is(err, want); want nil means no
// error.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: %v, want no error", what, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// wantEqual fails the test unless got and want are deeply equal.
func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// race runs f(0) .. f(n-1) at once, each in a goroutine released at the
// same moment, and returns their errors by index.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// tally counts errors by sentinel: nil under "ok", others under their
// message when no sentinel matches.
func tally(errs []error, sentinels ...error) map[string]int {
	m := map[string]int{}
	for _, err := range errs {
		key := "ok"
		if err != nil {
			key = fmt.Sprintf("unexpected: %v", err)
			for _, s := range sentinels {
				if errors.Is(err, s) {
					key = s.Error()
					break
				}
			}
		}
		m[key]++
	}
	return m
}
