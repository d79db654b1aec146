package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/keydesk/keydesk/rp/storage"
	"github.com/keydesk/keydesk/rp/storage/pgtest"
	"github.com/keydesk/keydesk/rp/storage/storagetest"
)

// server is the PostgreSQL server of the whole package; each test gets a
// database of its own on it.
var server *pgtest.Server

func TestMain(m *testing.M) {
	s, stop, err := pgtest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = s
	code := m.Run()
	stop()
	os.Exit(code)
}

func TestStore(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := Open(t.Context(), server.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestInstances(t *testing.T) {
	storagetest.RunInstances(t, func(t *testing.T) string { return server.NewDatabase(t) }, func(ctx context.Context, url string) (storage.Store, error) {
		return Open(ctx, url)
	})
}

// TestTransactionsRunAtReadCommittedWhateverTheServerDefault checks that
// the dialect sets the isolation level itself: under a server default of
// SERIALIZABLE, transactions queued on the audit chain's head would fail
// with serialization errors instead of waiting for it.
func TestTransactionsRunAtReadCommittedWhateverTheServerDefault(t *testing.T) {
	ctx := t.Context()
	cfg, err := pgx.ParseConfig(server.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	if _, err := db.ExecContext(ctx, `ALTER DATABASE `+pgx.Identifier{cfg.Database}.Sanitize()+
		` SET default_transaction_isolation = 'serializable'`); err != nil {
		t.Fatal(err)
	}
	db.SetMaxIdleConns(0) // new connections, which take the new default
	for _, tt := range []struct {
		name string
		opts *sql.TxOptions
		want string
	}{
		{"TheServerDefault", nil, "serializable"},
		{"TheDialect", &Dialect.TxOptions, "read committed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := db.BeginTx(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			var got string
			if err := tx.QueryRowContext(ctx, `SHOW transaction_isolation`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("transaction_isolation = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOpenErrorsHideThePassword(t *testing.T) {
	for _, tt := range []struct {
		name, url string
	}{
		{"Unreachable", "postgres://test:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=5"},
		{"Malformed", "postgres://test:hunter2@127.0.0.1:port/db"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.url)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", tt.name)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestADeadlockedTransactionRunsAgain makes two transactions lock two
// credentials in opposite orders: PostgreSQL aborts one (SQLSTATE 40P01)
// and Store.Tx runs it again, so both succeed.
func TestADeadlockedTransactionRunsAgain(t *testing.T) {
	ctx := t.Context()
	url := server.NewDatabase(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	// Detect the deadlock sooner than the default second.
	_, err = db.ExecContext(ctx, `ALTER DATABASE `+pgx.Identifier{cfg.Database}.Sanitize()+` SET deadlock_timeout = '50ms'`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u := storage.User{ID: []byte("u"), Name: "alice"}
	a := storage.Credential{ID: []byte("a"), UserID: u.ID}
	b := storage.Credential{ID: []byte("b"), UserID: u.ID}
	if err := s.Tx(ctx, func(tx storage.Tx) error {
		if err := tx.CreateUser(u); err != nil {
			return err
		}
		if err := tx.CreateCredential(a); err != nil {
			return err
		}
		return tx.CreateCredential(b)
	}); err != nil {
		t.Fatal(err)
	}

	var attempts atomic.Int32
	locked := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	var once [2]sync.Once
	lockBoth := func(i int, first, second []byte) error {
		return s.Tx(ctx, func(tx storage.Tx) error {
			attempts.Add(1)
			if _, err := tx.Credential(first); err != nil {
				return err
			}
			// On the first attempts only, wait until the other holds
			// its first lock too.
			once[i].Do(func() {
				close(locked[i])
				<-locked[1-i]
			})
			_, err := tx.Credential(second)
			return err
		})
	}
	var wg sync.WaitGroup
	var errs [2]error
	wg.Go(func() { errs[0] = lockBoth(0, a.ID, b.ID) })
	wg.Go(func() { errs[1] = lockBoth(1, b.ID, a.ID) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("%d attempts, want 3 (one deadlocked and ran again)", n)
	}
}
