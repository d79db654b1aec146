package storagetest

import (
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/storage"
)

// instanceTest is one behaviour of several Stores on one database.
type instanceTest struct {
	name string
	f    func(t *testing.T, db database)
}

var instanceTests = []instanceTest{
	{"TwoInstancesRacingOnOneCeremonyLetOneWin", testInstancesCeremonyRace},
	{"TwoInstancesRacingOnOneGrantNeverExceedMaxUses", testInstancesGrantRace},
	{"TwoInstancesRacingOnOneSignCountLetOneWin", testInstancesSignCountRace},
	{"TwoInstancesAppendToOneUnforkedChain", testInstancesAuditRace},
	{"TwoInstancesTakeFromOneRateLimitBucket", func(t *testing.T, db database) { testRateLimitRace(t, pair(t, db)) }},
	{"AnInstanceFinishesWhatAnotherBegan", testInstancesHandOff},
	{"MigrationsAppliedAgainAreHarmless", testMigrationsTwice},
	{"MigrationsAppliedConcurrentlyAreHarmless", testMigrationsConcurrently},
}

// pair opens two Stores on db.
func pair(t *testing.T, db database) [2]storage.Store {
	return [2]storage.Store{db.mustOpen(t), db.mustOpen(t)}
}

func testInstancesCeremonyRace(t *testing.T, db database) {
	s := pair(t, db)
	c := newCeremony(t, s[0], "c1")
	errs := race(Racers, func(i int) error {
		return s[i%2].Tx(t.Context(), func(tx storage.Tx) error {
			if _, err := tx.ConsumeCeremony(c.ID, t0); err != nil {
				return err
			}
			return tx.SaveCeremonyResult(storage.CeremonyResult{CeremonyID: c.ID, RequestHash: []byte{byte(i)}, Result: []byte{byte(i)}, CreatedAt: t0})
		})
	})
	wantEqual(t, "outcomes", tally(errs, storage.ErrConsumed), map[string]int{"ok": 1, "already used": Racers - 1})
	for i, err := range errs {
		if err != nil {
			continue
		}
		for _, st := range s {
			r, err := st.CeremonyResult(t.Context(), c.ID)
			if err != nil || r.Result[0] != byte(i) {
				t.Errorf("CeremonyResult = %+v, %v; want the winner's (%d)", r, err, i)
			}
		}
	}
}

func testInstancesGrantRace(t *testing.T, db database) {
	s := pair(t, db)
	const maxUses = 2
	g := newGrant(t, s[0], newUser(t, s[0], "alice"), "code", maxUses)
	errs := race(Racers, func(i int) error { _, err := useGrant(t, s[i%2], g.CodeHash, t0); return err })
	wantEqual(t, "outcomes", tally(errs, storage.ErrConsumed), map[string]int{"ok": maxUses, "already used": Racers - maxUses})
}

func testInstancesSignCountRace(t *testing.T, db database) {
	s := pair(t, db)
	c := newCredential(t, s[0], newUser(t, s[0], "alice"), 0)
	errs := race(Racers, func(i int) error {
		return s[i%2].Tx(t.Context(), func(tx storage.Tx) error { return tx.UpdateSignCount(c.ID, 0, uint32(i+1), t0) })
	})
	wantEqual(t, "outcomes", tally(errs, storage.ErrConflict), map[string]int{"ok": 1, "conflict": Racers - 1})
}

func testInstancesAuditRace(t *testing.T, db database) {
	s := pair(t, db)
	errs := race(Racers, func(i int) error {
		return s[i%2].Tx(t.Context(), func(tx storage.Tx) error { _, err := tx.AppendAudit(entry(i, "alice")); return err })
	})
	wantEqual(t, "outcomes", tally(errs), map[string]int{"ok": Racers})
	for _, st := range s {
		if got := verifyChain(t, st); len(got) != Racers {
			t.Errorf("%d entries, want %d", len(got), Racers)
		}
	}
}

func testInstancesHandOff(t *testing.T, db database) {
	s := pair(t, db)
	u := newUser(t, s[0], "alice")
	c := storage.Ceremony{ID: "c1", Kind: storage.CeremonyRegistration, UserID: u.ID, Session: []byte("{}"), ExpiresAt: t0.Add(time.Minute)}
	mustTx(t, s[0], func(tx storage.Tx) error { return tx.CreateCeremony(c) })
	var got *storage.Ceremony
	mustTx(t, s[1], func(tx storage.Tx) (err error) { got, err = tx.ConsumeCeremony(c.ID, t0); return err })
	wantEqual(t, "ceremony begun on the other instance", *got, c)
	err := s[0].Tx(t.Context(), func(tx storage.Tx) error { _, err := tx.ConsumeCeremony(c.ID, t0); return err })
	wantErr(t, "consuming it again on the first", err, storage.ErrConsumed)
}

func testMigrationsTwice(t *testing.T, db database) {
	first := db.mustOpen(t)
	u := newUser(t, first, "alice")
	e := appendAudit(t, first, entry(1, "alice"))[0]
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		again := db.mustOpen(t)
		got, err := again.UserByID(t.Context(), u.ID)
		if err != nil {
			t.Fatalf("user after reopening: %v", err)
		}
		wantEqual(t, "user after reopening", *got, *u)
		wantEqual(t, "audit after reopening", verifyChain(t, again), []audit.Entry{e})
	}
	// The chain goes on from where it was.
	next := appendAudit(t, db.mustOpen(t), entry(2, "alice"))[0]
	if next.Seq != 2 || next.PrevHash != e.Hash {
		t.Errorf("entry after reopening: seq %d, want 2 after the first", next.Seq)
	}
}

func testMigrationsConcurrently(t *testing.T, db database) {
	const n = 4
	stores := make([]storage.Store, n)
	errs := race(n, func(i int) (err error) {
		stores[i], err = db.open(t.Context(), db.dsn)
		return err
	})
	// Every store that opened closes, even when another did not: a store
	// left open keeps its goroutines running into the next test.
	for _, st := range stores {
		if st != nil {
			t.Cleanup(func() { st.Close() })
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	// Each works, and sees what the others wrote.
	for i, st := range stores {
		newUser(t, st, string(rune('a'+i)))
		appendAudit(t, st, entry(i, "a"))
	}
	for _, st := range stores {
		if got, err := st.CountUsers(t.Context()); err != nil || got != n {
			t.Errorf("CountUsers = %d, %v; want %d", got, err, n)
		}
		if got := verifyChain(t, st); len(got) != n {
			t.Errorf("%d audit entries, want %d", len(got), n)
		}
	}
}
