package storagetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/storage"
)

var ceremonyTests = []test{
	{"CeremonyRoundTripsThroughConsume", testCeremonyRoundTrip},
	{"ConsumeCeremonyRefusesMissingConsumedAndExpired", testConsumeCeremonyRefusals},
	{"CreateCeremonyRefusesATakenIDOrUnknownUser", testCreateCeremonyConflicts},
	{"ConsumeCeremonyHasExactlyOneWinner", testConsumeCeremonyRace},
	{"CeremonyResultRoundTripsAndIsKeptOnce", testCeremonyResult},
	{"FinishCeremonyConsumesAndKeepsTheResultOnce", testFinishCeremony},
	{"FinishCeremonyHasExactlyOneWinner", testFinishCeremonyRace},
	{"DeleteExpiredRemovesOnlyWhatExpired", testDeleteExpired},
	{"StoreCreateCeremonyAndPeek", testStoreCeremony},
}

// testStoreCeremony creates ceremonies outside a transaction and reads
// them without consuming: the read refuses what a consume would.
func testStoreCeremony(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := newUser(t, s, "alice")
	c := storage.Ceremony{ID: "peek", Kind: storage.CeremonyRegistration, UserID: u.ID, SessionHash: randomBytes(32),
		Session: []byte(`{"challenge":"x"}`), Nickname: "n", ExpiresAt: t0.Add(5 * time.Minute)}
	wantErr(t, "CreateCeremony", s.CreateCeremony(ctx, c), nil)
	wantErr(t, "CreateCeremony again", s.CreateCeremony(ctx, c), storage.ErrConflict)
	wantErr(t, "CreateCeremony for an unknown user", s.CreateCeremony(ctx, storage.Ceremony{ID: "x", Kind: storage.CeremonyRegistration,
		UserID: randomBytes(32), ExpiresAt: t0}), storage.ErrNotFound)
	if err := s.CreateCeremony(ctx, storage.Ceremony{ID: "y", ExpiresAt: t0}); err == nil {
		t.Error("CreateCeremony of no kind: no error")
	}
	got, err := s.Ceremony(ctx, c.ID, t0)
	wantErr(t, "Ceremony", err, nil)
	wantEqual(t, "peeked ceremony", *got, c)
	_, err = s.Ceremony(ctx, c.ID, t0) // peeking consumes nothing
	wantErr(t, "Ceremony again", err, nil)
	_, err = s.Ceremony(ctx, "nope", t0)
	wantErr(t, "Ceremony of a missing one", err, storage.ErrNotFound)
	_, err = s.Ceremony(ctx, c.ID, c.ExpiresAt)
	wantErr(t, "Ceremony at its expiry", err, storage.ErrExpired)
	mustTx(t, s, func(tx storage.Tx) (err error) { _, err = tx.ConsumeCeremony(c.ID, t0); return err })
	_, err = s.Ceremony(ctx, c.ID, t0)
	wantErr(t, "Ceremony once consumed", err, storage.ErrConsumed)
}

// newCeremony begins a login ceremony that expires at t0 plus 5 minutes.
func newCeremony(t *testing.T, s storage.Store, id string) storage.Ceremony {
	t.Helper()
	c := storage.Ceremony{ID: id, Kind: storage.CeremonyLogin, Session: []byte(`{"challenge":"c"}`), ExpiresAt: t0.Add(5 * time.Minute)}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateCeremony(c) })
	return c
}

func testCeremonyRoundTrip(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	for _, tt := range []struct {
		name string
		c    storage.Ceremony
	}{
		{"Registration", storage.Ceremony{
			ID: "reg-1", Kind: storage.CeremonyRegistration, UserID: u.ID, SessionHash: randomBytes(32),
			Session: []byte(`{"challenge":"abc","userId":"AQID"}`), Nickname: "blue key", ExpiresAt: t0.Add(5 * time.Minute),
		}},
		{"DiscoverableLogin", storage.Ceremony{
			ID: "login-1", Kind: storage.CeremonyLogin, Session: []byte(`{"challenge":"def"}`), ExpiresAt: t0.Add(time.Microsecond),
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mustTx(t, s, func(tx storage.Tx) error { return tx.CreateCeremony(tt.c) })
			var got *storage.Ceremony
			mustTx(t, s, func(tx storage.Tx) (err error) { got, err = tx.ConsumeCeremony(tt.c.ID, t0); return err })
			wantEqual(t, "consumed ceremony", *got, tt.c)
		})
	}
}

func testConsumeCeremonyRefusals(t *testing.T, s storage.Store) {
	c := newCeremony(t, s, "c1")
	consume := func(id string, now time.Time) error {
		return s.Tx(t.Context(), func(tx storage.Tx) error { _, err := tx.ConsumeCeremony(id, now); return err })
	}
	// Refusals change nothing: the ceremony is still there to consume.
	for _, tt := range []struct {
		name string
		id   string
		now  time.Time
		want error
	}{
		{"ShouldNotFindAMissingCeremony", "nope", t0, storage.ErrNotFound},
		{"ShouldRefuseAtTheExpiry", c.ID, c.ExpiresAt, storage.ErrExpired},
		{"ShouldRefuseAfterTheExpiry", c.ID, c.ExpiresAt.Add(time.Hour), storage.ErrExpired},
	} {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, "ConsumeCeremony", consume(tt.id, tt.now), tt.want) })
	}
	wantErr(t, "first ConsumeCeremony", consume(c.ID, c.ExpiresAt.Add(-time.Microsecond)), nil)
	wantErr(t, "second ConsumeCeremony", consume(c.ID, t0), storage.ErrConsumed)
}

func testCreateCeremonyConflicts(t *testing.T, s storage.Store) {
	c := newCeremony(t, s, "c1")
	for _, tt := range []struct {
		name string
		c    storage.Ceremony
		want error
	}{
		{"TakenID", storage.Ceremony{ID: c.ID, Kind: storage.CeremonyLogin, ExpiresAt: t0}, storage.ErrConflict},
		{"UnknownUser", storage.Ceremony{ID: "c2", Kind: storage.CeremonyRegistration, UserID: randomBytes(32), ExpiresAt: t0}, storage.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mustTx(t, s, func(tx storage.Tx) error {
				wantErr(t, "CreateCeremony", tx.CreateCeremony(tt.c), tt.want)
				return tx.CreateCeremony(storage.Ceremony{ID: "after " + tt.name, Kind: storage.CeremonyLogin, ExpiresAt: t0})
			})
		})
	}
	var got *storage.Ceremony
	mustTx(t, s, func(tx storage.Tx) (err error) { got, err = tx.ConsumeCeremony(c.ID, t0); return err })
	wantEqual(t, "the first ceremony", *got, c)
}

func testConsumeCeremonyRace(t *testing.T, s storage.Store) {
	c := newCeremony(t, s, "c1")
	errs := race(Racers, func(int) error {
		return s.Tx(t.Context(), func(tx storage.Tx) error { _, err := tx.ConsumeCeremony(c.ID, t0); return err })
	})
	wantEqual(t, "outcomes", tally(errs, storage.ErrConsumed), map[string]int{"ok": 1, "already used": Racers - 1})
}

func testCeremonyResult(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := newCeremony(t, s, "c1")
	r := storage.CeremonyResult{CeremonyID: c.ID, RequestHash: randomBytes(32), Result: []byte(`{"ok":true}`), CreatedAt: t0}
	if _, err := s.CeremonyResult(ctx, c.ID); err == nil {
		t.Error("CeremonyResult before any was saved succeeded")
	}
	mustTx(t, s, func(tx storage.Tx) error {
		if _, err := tx.ConsumeCeremony(c.ID, t0); err != nil {
			return err
		}
		return tx.SaveCeremonyResult(r)
	})
	got, err := s.CeremonyResult(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "CeremonyResult", *got, r)

	for _, tt := range []struct {
		name string
		r    storage.CeremonyResult
		want error
	}{
		{"ShouldKeepTheFirstResult", storage.CeremonyResult{CeremonyID: c.ID, RequestHash: randomBytes(32), Result: []byte("2"), CreatedAt: t0}, storage.ErrConflict},
		{"ShouldRefuseAnUnknownCeremony", storage.CeremonyResult{CeremonyID: "nope", RequestHash: randomBytes(32), CreatedAt: t0}, storage.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, "SaveCeremonyResult", s.Tx(ctx, func(tx storage.Tx) error { return tx.SaveCeremonyResult(tt.r) }), tt.want)
		})
	}
	if got, err = s.CeremonyResult(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "CeremonyResult after a second save", *got, r)
	_, err = s.CeremonyResult(ctx, "nope")
	wantErr(t, "CeremonyResult of an unknown ceremony", err, storage.ErrNotFound)
}

// testFinishCeremony: one step consumes a ceremony and keeps its answer;
// whatever refuses a consume refuses it and keeps no answer.
func testFinishCeremony(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := newCeremony(t, s, "c1")
	finish := func(r storage.CeremonyResult) error {
		return s.Tx(ctx, func(tx storage.Tx) error { return tx.FinishCeremony(r) })
	}
	result := func(id string, at time.Time) storage.CeremonyResult {
		return storage.CeremonyResult{CeremonyID: id, RequestHash: randomBytes(32), Result: []byte(`{"n":1}`), CreatedAt: at}
	}
	newCeremony(t, s, "late")
	for _, tt := range []struct {
		name string
		r    storage.CeremonyResult
		want error
	}{
		{"ShouldRefuseAnUnknownCeremony", result("nope", t0), storage.ErrNotFound},
		{"ShouldRefuseAtExpiry", result("late", c.ExpiresAt), storage.ErrExpired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, "FinishCeremony", finish(tt.r), tt.want)
			_, err := s.CeremonyResult(ctx, tt.r.CeremonyID)
			wantErr(t, "CeremonyResult after a refused finish", err, storage.ErrNotFound)
		})
	}
	r := result(c.ID, c.ExpiresAt.Add(-time.Microsecond))
	wantErr(t, "FinishCeremony", finish(r), nil)
	got, err := s.CeremonyResult(ctx, c.ID)
	wantErr(t, "CeremonyResult", err, nil)
	wantEqual(t, "CeremonyResult", *got, r)
	_, err = s.Ceremony(ctx, c.ID, t0)
	wantErr(t, "Ceremony once finished", err, storage.ErrConsumed)
	wantErr(t, "FinishCeremony again", finish(result(c.ID, t0)), storage.ErrConsumed)
	err = s.Tx(ctx, func(tx storage.Tx) error { _, err := tx.ConsumeCeremony(c.ID, t0); return err })
	wantErr(t, "ConsumeCeremony once finished", err, storage.ErrConsumed)
	if got, err = s.CeremonyResult(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "CeremonyResult after a second finish", *got, r)
}

func testFinishCeremonyRace(t *testing.T, s storage.Store) {
	c := newCeremony(t, s, "c1")
	errs := race(Racers, func(i int) error {
		return s.Tx(t.Context(), func(tx storage.Tx) error {
			return tx.FinishCeremony(storage.CeremonyResult{CeremonyID: c.ID, RequestHash: []byte{byte(i)}, Result: []byte{byte(i)}, CreatedAt: t0})
		})
	})
	wantEqual(t, "outcomes", tally(errs, storage.ErrConsumed), map[string]int{"ok": 1, "already used": Racers - 1})
	got, err := s.CeremonyResult(t.Context(), c.ID)
	wantErr(t, "CeremonyResult", err, nil)
	if i := got.Result[0]; errs[i] != nil || !bytes.Equal(got.RequestHash, []byte{i}) {
		t.Errorf("kept result %d, whose finish failed (%v) or whose request hash is %x", i, errs[i], got.RequestHash)
	}
}

func testDeleteExpired(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := newUser(t, s, "alice")
	cred := newCredential(t, s, u, 0)
	now := t0.Add(time.Hour)
	expired, live := now, now.Add(time.Microsecond)
	mustTx(t, s, func(tx storage.Tx) error {
		for _, c := range []storage.Ceremony{
			{ID: "old", Kind: storage.CeremonyLogin, ExpiresAt: expired},
			{ID: "new", Kind: storage.CeremonyLogin, ExpiresAt: live},
		} {
			if err := tx.CreateCeremony(c); err != nil {
				return err
			}
			if err := tx.SaveCeremonyResult(storage.CeremonyResult{CeremonyID: c.ID, RequestHash: []byte{1}, Result: []byte{2}, CreatedAt: t0}); err != nil {
				return err
			}
		}
		for _, ses := range []storage.Session{
			{TokenHash: []byte("old"), UserID: u.ID, Scope: storage.ScopeFull, CreatedAt: t0, ExpiresAt: expired},
			{TokenHash: []byte("new"), UserID: u.ID, Scope: storage.ScopeFull, CreatedAt: t0, ExpiresAt: live},
		} {
			if err := tx.CreateSession(ses); err != nil {
				return err
			}
		}
		for _, g := range []storage.Grant{
			{ID: "old", UserID: u.ID, Kind: storage.GrantEnrollment, CodeHash: []byte("old"), CreatedAt: t0, ExpiresAt: expired, MaxUses: 1},
			{ID: "new", UserID: u.ID, Kind: storage.GrantEnrollment, CodeHash: []byte("new"), CreatedAt: t0, ExpiresAt: live, MaxUses: 1},
		} {
			if err := tx.CreateGrant(g); err != nil {
				return err
			}
		}
		return nil
	})
	var n int
	mustTx(t, s, func(tx storage.Tx) (err error) { n, err = tx.DeleteExpired(now); return err })
	if n != 3 {
		t.Errorf("DeleteExpired = %d, want 3 (a ceremony, a session and a grant)", n)
	}

	_, err := s.CeremonyResult(ctx, "old")
	wantErr(t, "result of the expired ceremony", err, storage.ErrNotFound)
	_, err = s.CeremonyResult(ctx, "new")
	wantErr(t, "result of the live ceremony", err, nil)
	_, err = s.Session(ctx, []byte("new"), t0)
	wantErr(t, "live session", err, nil)
	_, err = s.Session(ctx, []byte("old"), t0)
	wantErr(t, "expired session", err, storage.ErrNotFound)
	inTx := func(f func(tx storage.Tx) error) error { return s.Tx(ctx, f) }
	wantErr(t, "expired ceremony", inTx(func(tx storage.Tx) error { _, err := tx.ConsumeCeremony("old", t0); return err }), storage.ErrNotFound)
	wantErr(t, "live ceremony", inTx(func(tx storage.Tx) error { _, err := tx.ConsumeCeremony("new", t0); return err }), nil)
	wantErr(t, "expired grant", inTx(func(tx storage.Tx) error { _, err := tx.UseGrant([]byte("old"), t0); return err }), storage.ErrNotFound)
	wantErr(t, "live grant", inTx(func(tx storage.Tx) error { _, err := tx.UseGrant([]byte("new"), t0); return err }), nil)
	if _, err := s.Credential(ctx, cred.ID); err != nil {
		t.Errorf("credential after DeleteExpired: %v", err)
	}
	if _, err := s.UserByID(ctx, u.ID); err != nil {
		t.Errorf("user after DeleteExpired: %v", err)
	}
}
