package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/storage"
	_ "modernc.org/sqlite" // the database the committer exists for
)

// testDialect is enough of SQLite's dialect (rp/storage/sqlite, which
// imports this package) to run a committer on it.
var testDialect = Dialect{
	Name: "sqlite", Blob: "BLOB", NumberedQuestion: true,
	SerializeWrites: true, BeginWrite: "BEGIN IMMEDIATE", LocalStatements: true, DatabaseWriteLock: true,
	Retryable:           func(error) bool { return false },
	UniqueViolation:     func(error) bool { return false },
	ForeignKeyViolation: func(error) bool { return false },
}

// openTestStore is a Store with a committer on a new SQLite file, closed
// when the test ends.
func openTestStore(t *testing.T) *Store {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "db")+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), db, testDialect)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCommitKeepsEachJobsOutcome runs batches by hand, so that their
// make-up is known, not left to timing: a failing job leaves nothing of
// its own and takes nothing of the others, whether it ran first (no
// savepoint: its failure rolls the whole transaction back and the next
// job begins another) or after others (a savepoint).
func TestCommitKeepsEachJobsOutcome(t *testing.T) {
	errJob := errors.New("job failed")
	tests := []struct {
		name     string
		outcomes []string // per job: ok, fail (an error after its write), panic
	}{
		{"ShouldRunALoneJob", []string{"ok"}},
		{"ShouldRollBackALoneFailure", []string{"fail"}},
		{"ShouldBeginAgainAfterAFirstJobFails", []string{"fail", "ok", "ok"}},
		{"ShouldKeepEarlierJobsFromALaterFailure", []string{"ok", "fail", "ok"}},
		{"ShouldSurviveFailuresInARow", []string{"fail", "panic", "fail", "ok", "fail"}},
		{"ShouldRollBackAllFailures", []string{"fail", "fail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			s := openTestStore(t)

			names := make([]string, len(tt.outcomes))
			batch := make([]*job, len(tt.outcomes))
			for i, outcome := range tt.outcomes {
				names[i] = string(rune('a'+i)) + "-" + outcome
				u := storage.User{ID: []byte(names[i]), Name: names[i], DisplayName: names[i],
					Roles: []storage.Role{storage.RoleUser}, CreatedAt: time.Unix(1e9, 0).UTC()}
				batch[i] = &job{ctx: ctx, done: make(chan struct{}), f: func(t *tx) error {
					if err := t.CreateUser(u); err != nil {
						return err
					}
					switch outcome {
					case "fail":
						return errJob
					case "panic":
						panic(errJob)
					}
					return nil
				}}
			}
			// The committer's own goroutine is idle: no job was sent.
			s.commit.commit(batch)

			for i, outcome := range tt.outcomes {
				j := batch[i]
				select {
				case <-j.done:
				default:
					t.Fatalf("job %s was not finished", names[i])
				}
				_, uerr := s.UserByName(ctx, names[i])
				switch outcome {
				case "ok":
					if j.err != nil || uerr != nil {
						t.Errorf("job %s: err %v, user lookup %v; want both nil", names[i], j.err, uerr)
					}
				default:
					if j.err == nil {
						t.Errorf("job %s: no error", names[i])
					}
					if outcome == "panic" && j.panicked != errJob {
						t.Errorf("job %s: panicked with %v, want its own value", names[i], j.panicked)
					}
					if !errors.Is(uerr, storage.ErrNotFound) {
						t.Errorf("job %s failed, yet its user is stored (lookup: %v)", names[i], uerr)
					}
				}
			}
			// The connection is left outside any transaction: the next
			// batch, sent the usual way, commits.
			if err := s.Tx(ctx, func(tx storage.Tx) error {
				return tx.CreateUser(storage.User{ID: []byte("after"), Name: "after", DisplayName: "after",
					Roles: []storage.Role{storage.RoleUser}, CreatedAt: time.Unix(1e9, 0).UTC()})
			}); err != nil {
				t.Fatalf("a batch after: %v", err)
			}
			if _, err := s.UserByName(context.Background(), "after"); err != nil {
				t.Fatalf("a batch after: %v", err)
			}
		})
	}
}

// TestAReadInsideATransactionDoesNotWaitForIt: a Store read made from
// inside a batch's f (which should use its tx instead) runs on the pool
// rather than waiting for the committer, which is running the caller.
func TestAReadInsideATransactionDoesNotWaitForIt(t *testing.T) {
	ctx := t.Context()
	s := openTestStore(t)
	u := storage.User{ID: []byte("u1"), Name: "alice", DisplayName: "Alice", Roles: []storage.Role{storage.RoleUser}, CreatedAt: time.Unix(1e9, 0).UTC()}
	if err := s.Tx(ctx, func(tx storage.Tx) error { return tx.CreateUser(u) }); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Tx(ctx, func(tx storage.Tx) error {
			_, _, err := s.UserWithCredentials(ctx, "alice")
			return err
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a read inside a transaction waited for the committer running it")
	}
	// And a read outside sees what the last batch wrote.
	got, _, err := s.UserWithCredentials(ctx, "alice")
	if err != nil || got.Name != "alice" {
		t.Fatalf("read after write: %+v, %v", got, err)
	}
}

func TestGoid(t *testing.T) {
	me := goid()
	if me == 0 || goid() != me {
		t.Fatalf("goid %d, then %d", me, goid())
	}
	other := make(chan uint64)
	go func() { other <- goid() }()
	if o := <-other; o == 0 || o == me {
		t.Fatalf("another goroutine's goid %d, mine %d", o, me)
	}
}
