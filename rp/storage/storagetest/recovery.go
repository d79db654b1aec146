package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/storage"
)

var recoveryTests = []test{
	{"RecoverySessionRoundTripsEveryField", testRecoveryRoundTrip},
	{"RecoverySessionForADecoyHasNoUser", testRecoveryDecoy},
	{"CreateRecoverySessionRefusesTakenOrInvalidSessions", testCreateRecoveryRefusals},
	{"RecoverySessionMovesPendingApprovedRedeemedOnce", testRecoveryLifecycle},
	{"RecoverySessionTransitionsRefuseWhatTheyMustNot", testRecoveryTransitionRefusals},
	{"RecoverySessionExpiresOnceAndIsSweptAfterAnHour", testRecoveryExpiry},
	{"RacingApprovalsOfARecoveryLetOneWin", func(t *testing.T, s storage.Store) { testRecoveryApproveRace(t, [2]storage.Store{s, s}) }},
	{"RacingRedemptionsOfARecoveryLetOneWin", func(t *testing.T, s storage.Store) { testRecoveryRedeemRace(t, [2]storage.Store{s, s}) }},
	{"RecoveryCodesReplaceListAndUseOnce", testRecoveryCodes},
	{"RacingUsesOfARecoveryCodeLetOneWin", func(t *testing.T, s storage.Store) { testRecoveryCodeRace(t, [2]storage.Store{s, s}) }},
	{"SessionRegistrationIsSpentOnce", testSessionRegistration},
	{"RacingSessionRegistrationsLetOneWin", func(t *testing.T, s storage.Store) { testSessionRegistrationRace(t, [2]storage.Store{s, s}) }},
	{"GrantRoundTripsItsVerificationAndApproval", testGrantVerificationRoundTrip},
	{"PendingGrantIsRefusedUntilAnotherApproves", testGrantFourEyes},
	{"RacingGrantApprovalsLetOneWin", func(t *testing.T, s storage.Store) { testGrantApproveRace(t, [2]storage.Store{s, s}) }},
}

// Instance races of the recovery state: two Stores on one database, as
// two RP instances behind a load balancer.
var recoveryInstanceTests = []instanceTest{
	{"TwoInstancesRacingOnOneRecoveryApprovalLetOneWin", func(t *testing.T, db database) { testRecoveryApproveRace(t, pair(t, db)) }},
	{"TwoInstancesRacingOnOneRecoveryRedeemLetOneWin", func(t *testing.T, db database) { testRecoveryRedeemRace(t, pair(t, db)) }},
	{"TwoInstancesRacingOnOneRecoveryCodeLetOneWin", func(t *testing.T, db database) { testRecoveryCodeRace(t, pair(t, db)) }},
	{"TwoInstancesRacingOnOneSessionRegistrationLetOneWin", func(t *testing.T, db database) { testSessionRegistrationRace(t, pair(t, db)) }},
	{"TwoInstancesRacingOnOneGrantApprovalLetOneWin", func(t *testing.T, db database) { testGrantApproveRace(t, pair(t, db)) }},
	{"AnInstanceSeesARecoveryAnotherApproved", testInstancesRecoveryHandOff},
}

// newRecovery stores a pending recovery session for u (nil: a decoy)
// that expires 3 minutes after t0.
func newRecovery(t *testing.T, s storage.Store, u *storage.User, id string) storage.RecoverySession {
	t.Helper()
	rs := storage.RecoverySession{
		ID: id, Username: "alice", SecretHash: randomBytes(32), CodeHash: randomBytes(32), DesktopTokenHash: randomBytes(32),
		Number: 42, Candidates: []int{17, 42, 88}, DesktopName: "alice-laptop", DesktopKey: randomBytes(91),
		DesktopIP: "192.0.2.7", CreatedAt: t0, ExpiresAt: t0.Add(3 * time.Minute),
		Status: storage.RecoveryPending, StatusAt: t0,
	}
	if u != nil {
		rs.UserID, rs.Username = u.ID, u.Name
	}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateRecoverySession(rs) })
	return rs
}

// inTx runs f in a transaction of s and returns its error.
func inTx(t *testing.T, s storage.Store, f func(tx storage.Tx) error) error {
	return s.Tx(t.Context(), f)
}

func readRecovery(t *testing.T, s storage.Store, id string) *storage.RecoverySession {
	t.Helper()
	rs, err := s.RecoverySession(t.Context(), id)
	if err != nil {
		t.Fatalf("RecoverySession(%s): %v", id, err)
	}
	return rs
}

func testRecoveryRoundTrip(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	rs := newRecovery(t, s, u, "r1")
	wantEqual(t, "RecoverySession", *readRecovery(t, s, rs.ID), rs)
	_, err := s.RecoverySession(t.Context(), "nope")
	wantErr(t, "RecoverySession of a missing one", err, storage.ErrNotFound)
}

func testRecoveryDecoy(t *testing.T, s storage.Store) {
	rs := newRecovery(t, s, nil, "decoy")
	got := readRecovery(t, s, rs.ID)
	if got.UserID != nil || got.Username != "alice" {
		t.Errorf("decoy read back with user %x %q", got.UserID, got.Username)
	}
	// It moves like any other: the server, not the store, refuses to
	// approve it (it has no user whose key could).
	wantErr(t, "refuse a decoy", inTx(t, s, func(tx storage.Tx) error { return tx.RefuseRecovery(rs.ID, t0, storage.RefusedOnPhone) }), nil)
	if got := readRecovery(t, s, rs.ID); got.Status != storage.RecoveryRefused || got.RefusalReason != storage.RefusedOnPhone {
		t.Errorf("refused decoy: %s for %q", got.Status, got.RefusalReason)
	}
}

func testCreateRecoveryRefusals(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	rs := newRecovery(t, s, u, "r1")
	valid := func(f func(r *storage.RecoverySession)) storage.RecoverySession {
		n := rs
		n.ID = "other"
		f(&n)
		return n
	}
	errInvalid := errors.New("any error but a sentinel")
	for _, tt := range []struct {
		name string
		rs   storage.RecoverySession
		want error
	}{
		{"TakenID", valid(func(n *storage.RecoverySession) { n.ID = rs.ID }), storage.ErrConflict},
		{"UnknownUser", valid(func(n *storage.RecoverySession) { n.UserID = randomBytes(32) }), storage.ErrNotFound},
		{"NoSecretHash", valid(func(n *storage.RecoverySession) { n.SecretHash = nil }), errInvalid},
		{"NoDesktopKey", valid(func(n *storage.RecoverySession) { n.DesktopKey = nil }), errInvalid},
		{"NotPending", valid(func(n *storage.RecoverySession) { n.Status = storage.RecoveryApproved }), errInvalid},
		{"ExpiresBeforeCreated", valid(func(n *storage.RecoverySession) { n.ExpiresAt = n.CreatedAt }), errInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := inTx(t, s, func(tx storage.Tx) error { return tx.CreateRecoverySession(tt.rs) })
			if tt.want == errInvalid {
				if err == nil || errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
					t.Errorf("CreateRecoverySession: %v, want an invalid-input error", err)
				}
				return
			}
			wantErr(t, "CreateRecoverySession", err, tt.want)
		})
	}
	wantEqual(t, "the first session", *readRecovery(t, s, rs.ID), rs)
}

func testRecoveryLifecycle(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	rs := newRecovery(t, s, u, "r1")
	now := t0.Add(time.Minute)
	wantErr(t, "BeginRecoveryApproval", inTx(t, s, func(tx storage.Tx) error { return tx.BeginRecoveryApproval(rs.ID, "c1", now) }), nil)
	wantErr(t, "BeginRecoveryApproval again (replaces)", inTx(t, s, func(tx storage.Tx) error { return tx.BeginRecoveryApproval(rs.ID, "c2", now) }), nil)
	wantErr(t, "ApproveRecovery with the replaced ceremony",
		inTx(t, s, func(tx storage.Tx) error {
			return tx.ApproveRecovery(rs.ID, "c1", []byte("cred"), []byte("nonce"), now, now.Add(time.Minute))
		}),
		storage.ErrConflict)
	if got := readRecovery(t, s, rs.ID); got.Status != storage.RecoveryPending || got.CeremonyID != "c2" {
		t.Fatalf("after a refused approval: %s %q", got.Status, got.CeremonyID)
	}
	redeemBy := now.Add(time.Minute)
	wantErr(t, "ApproveRecovery",
		inTx(t, s, func(tx storage.Tx) error {
			return tx.ApproveRecovery(rs.ID, "c2", []byte("cred"), []byte("nonce"), now, redeemBy)
		}), nil)
	want := rs
	want.Status, want.StatusAt, want.CeremonyID = storage.RecoveryApproved, now, "c2"
	want.CredentialID, want.Nonce, want.ExpiresAt = []byte("cred"), []byte("nonce"), redeemBy
	wantEqual(t, "approved session", *readRecovery(t, s, rs.ID), want)

	later := now.Add(10 * time.Second)
	var got *storage.RecoverySession
	wantErr(t, "RedeemRecovery", inTx(t, s, func(tx storage.Tx) (err error) { got, err = tx.RedeemRecovery(rs.ID, later); return err }), nil)
	want.Status, want.StatusAt = storage.RecoveryRedeemed, later
	if got != nil {
		wantEqual(t, "redeemed session", *got, want)
	}
	wantEqual(t, "redeemed session read back", *readRecovery(t, s, rs.ID), want)
	_, err := redeem(t, s, rs.ID, later)
	wantErr(t, "RedeemRecovery again", err, storage.ErrConsumed)
	wantErr(t, "RefuseRecovery once redeemed", inTx(t, s, func(tx storage.Tx) error { return tx.RefuseRecovery(rs.ID, later, storage.RefusedOnPhone) }), storage.ErrConsumed)
}

func redeem(t *testing.T, s storage.Store, id string, now time.Time) (rs *storage.RecoverySession, err error) {
	err = inTx(t, s, func(tx storage.Tx) error { rs, err = tx.RedeemRecovery(id, now); return err })
	return rs, err
}

func approve(t *testing.T, s storage.Store, id, ceremony string, now time.Time) error {
	return inTx(t, s, func(tx storage.Tx) error {
		return tx.ApproveRecovery(id, ceremony, []byte("cred"), []byte("nonce"), now, now.Add(time.Minute))
	})
}

func testRecoveryTransitionRefusals(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	begin := func(id string) storage.RecoverySession {
		rs := newRecovery(t, s, u, id)
		mustTx(t, s, func(tx storage.Tx) error { return tx.BeginRecoveryApproval(rs.ID, "c-"+id, t0) })
		return rs
	}
	pending, refused, approved, expired := begin("pending"), begin("refused"), begin("approved"), begin("expired")
	mustTx(t, s, func(tx storage.Tx) error { return tx.RefuseRecovery(refused.ID, t0, storage.RefusedWrongNumber) })
	if err := approve(t, s, approved.ID, "c-approved", t0); err != nil {
		t.Fatal(err)
	}
	late := expired.ExpiresAt
	for _, tt := range []struct {
		name string
		do   func(tx storage.Tx) error
		want error
	}{
		{"ShouldNotFindAMissingSession", func(tx storage.Tx) error { return tx.BeginRecoveryApproval("nope", "c", t0) }, storage.ErrNotFound},
		{"ShouldRefuseApprovingARefusedSession", func(tx storage.Tx) error {
			return tx.ApproveRecovery(refused.ID, "c-refused", []byte("c"), []byte("n"), t0, t0.Add(time.Minute))
		}, storage.ErrConsumed},
		{"ShouldRefuseBeginningOnAnApprovedSession", func(tx storage.Tx) error { return tx.BeginRecoveryApproval(approved.ID, "c", t0) }, storage.ErrConsumed},
		{"ShouldRefuseApprovingTwice", func(tx storage.Tx) error {
			return tx.ApproveRecovery(approved.ID, "c-approved", []byte("c"), []byte("n"), t0, t0.Add(time.Minute))
		}, storage.ErrConsumed},
		{"ShouldRefuseRedeemingAPendingSession", func(tx storage.Tx) error { _, err := tx.RedeemRecovery(pending.ID, t0); return err }, storage.ErrConflict},
		{"ShouldRefuseRedeemingARefusedSession", func(tx storage.Tx) error { _, err := tx.RedeemRecovery(refused.ID, t0); return err }, storage.ErrConsumed},
		{"ShouldRefuseApprovingAtTheExpiry", func(tx storage.Tx) error {
			return tx.ApproveRecovery(expired.ID, "c-expired", []byte("c"), []byte("n"), late, late.Add(time.Minute))
		}, storage.ErrExpired},
		{"ShouldRefuseRefusingAtTheExpiry", func(tx storage.Tx) error { return tx.RefuseRecovery(expired.ID, late, storage.RefusedOnPhone) }, storage.ErrExpired},
		{"ShouldRefuseRefusingTwice", func(tx storage.Tx) error { return tx.RefuseRecovery(refused.ID, t0, storage.RefusedOnPhone) }, storage.ErrConsumed},
		{"ShouldRefuseRedeemingAfterTheRedeemWindow", func(tx storage.Tx) error {
			_, err := tx.RedeemRecovery(approved.ID, t0.Add(time.Minute))
			return err
		}, storage.ErrExpired},
		{"ShouldRefuseExpiringBeforeTheExpiry", func(tx storage.Tx) error { return tx.ExpireRecovery(pending.ID, t0) }, storage.ErrConflict},
	} {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.name, inTx(t, s, tt.do), tt.want) })
	}
	if err := inTx(t, s, func(tx storage.Tx) error { return tx.RefuseRecovery(pending.ID, t0, "bored") }); err == nil {
		t.Error("RefuseRecovery for an unknown reason: no error")
	}
	// The refusals changed nothing.
	for id, want := range map[string]storage.RecoveryStatus{
		pending.ID: storage.RecoveryPending, refused.ID: storage.RecoveryRefused,
		approved.ID: storage.RecoveryApproved, expired.ID: storage.RecoveryPending,
	} {
		if got := readRecovery(t, s, id).Status; got != want {
			t.Errorf("%s: status %s, want %s", id, got, want)
		}
	}
	for id, want := range map[string]storage.RefusalReason{
		pending.ID: "", refused.ID: storage.RefusedWrongNumber, approved.ID: "", expired.ID: "",
	} {
		if got := readRecovery(t, s, id).RefusalReason; got != want {
			t.Errorf("%s: refusal reason %q, want %q", id, got, want)
		}
	}
}

func testRecoveryExpiry(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	rs := newRecovery(t, s, u, "r1")
	live := newRecovery(t, s, u, "r2")
	at := rs.ExpiresAt
	wantErr(t, "ExpireRecovery", inTx(t, s, func(tx storage.Tx) error { return tx.ExpireRecovery(rs.ID, at) }), nil)
	wantErr(t, "ExpireRecovery again", inTx(t, s, func(tx storage.Tx) error { return tx.ExpireRecovery(rs.ID, at) }), storage.ErrConsumed)
	if got := readRecovery(t, s, rs.ID); got.Status != storage.RecoveryExpired || !got.StatusAt.Equal(at) {
		t.Errorf("expired session: %s at %v", got.Status, got.StatusAt)
	}
	// Kept for an hour past the expiry, then swept.
	mustTx(t, s, func(tx storage.Tx) error { _, err := tx.DeleteExpired(at.Add(59 * time.Minute)); return err })
	readRecovery(t, s, rs.ID)
	var n int
	mustTx(t, s, func(tx storage.Tx) (err error) { n, err = tx.DeleteExpired(at.Add(time.Hour)); return err })
	if n < 2 {
		t.Errorf("DeleteExpired an hour past both expiries removed %d rows, want both sessions", n)
	}
	for _, id := range []string{rs.ID, live.ID} {
		_, err := s.RecoverySession(t.Context(), id)
		wantErr(t, "swept session", err, storage.ErrNotFound)
	}
}

func testRecoveryApproveRace(t *testing.T, s [2]storage.Store) {
	u := newUser(t, s[0], "alice")
	rs := newRecovery(t, s[0], u, "race")
	mustTx(t, s[0], func(tx storage.Tx) error { return tx.BeginRecoveryApproval(rs.ID, "c1", t0) })
	errs := race(Racers, func(i int) error {
		return s[i%2].Tx(t.Context(), func(tx storage.Tx) error {
			return tx.ApproveRecovery(rs.ID, "c1", []byte{byte(i)}, []byte{byte(i)}, t0, t0.Add(time.Minute))
		})
	})
	wantEqual(t, "outcomes", tally(errs, storage.ErrConsumed), map[string]int{"ok": 1, "already used": Racers - 1})
	for i, err := range errs {
		if err == nil {
			if got := readRecovery(t, s[1], rs.ID); got.Nonce[0] != byte(i) {
				t.Errorf("nonce %x, want the winner's (%d)", got.Nonce, i)
			}
		}
	}
}

func testRecoveryRedeemRace(t *testing.T, s [2]storage.Store) {
	u := newUser(t, s[0], "alice")
	rs := newRecovery(t, s[0], u, "race")
	mustTx(t, s[0], func(tx storage.Tx) error { return tx.BeginRecoveryApproval(rs.ID, "c1", t0) })
	if err := approve(t, s[0], rs.ID, "c1", t0); err != nil {
		t.Fatal(err)
	}
	errs := race(Racers, func(i int) error { _, err := redeem(t, s[i%2], rs.ID, t0); return err })
	wantEqual(t, "outcomes", tally(errs, storage.ErrConsumed), map[string]int{"ok": 1, "already used": Racers - 1})
}

func testInstancesRecoveryHandOff(t *testing.T, db database) {
	s := pair(t, db)
	u := newUser(t, s[0], "alice")
	rs := newRecovery(t, s[0], u, "handoff")
	mustTx(t, s[1], func(tx storage.Tx) error { return tx.BeginRecoveryApproval(rs.ID, "c1", t0) })
	if err := approve(t, s[1], rs.ID, "c1", t0); err != nil {
		t.Fatal(err)
	}
	if got := readRecovery(t, s[0], rs.ID); got.Status != storage.RecoveryApproved {
		t.Fatalf("the first instance sees %s, want approved", got.Status)
	}
	if _, err := redeem(t, s[0], rs.ID, t0); err != nil {
		t.Fatal(err)
	}
}

// newCodes stores n recovery codes for u; code i has lookup "l<i>".
func newCodes(t *testing.T, s storage.Store, u *storage.User, n int) []storage.RecoveryCode {
	t.Helper()
	codes := make([]storage.RecoveryCode, n)
	for i := range codes {
		codes[i] = storage.RecoveryCode{ID: fmt.Sprintf("c%02d", i), UserID: u.ID, Lookup: []byte(fmt.Sprintf("l%d", i)),
			Hash: "$argon2id$v=19$m=4096,t=1,p=1$c2FsdA$aGFzaA", CreatedAt: t0}
	}
	mustTx(t, s, func(tx storage.Tx) error { return tx.ReplaceRecoveryCodes(u.ID, codes) })
	return codes
}

func useCode(t *testing.T, s storage.Store, u *storage.User, id string, now time.Time) error {
	return inTx(t, s, func(tx storage.Tx) error { return tx.UseRecoveryCode(u.ID, id, now) })
}

func testRecoveryCodes(t *testing.T, s storage.Store) {
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	codes := newCodes(t, s, alice, 10)
	newCodes(t, s, bob, 2)
	got, err := s.RecoveryCodes(t.Context(), alice.ID)
	wantErr(t, "RecoveryCodes", err, nil)
	wantEqual(t, "RecoveryCodes", got, codes)

	wantErr(t, "UseRecoveryCode", useCode(t, s, alice, codes[3].ID, t0), nil)
	wantErr(t, "UseRecoveryCode again", useCode(t, s, alice, codes[3].ID, t0), storage.ErrConsumed)
	wantErr(t, "UseRecoveryCode of another user's code", useCode(t, s, bob, codes[4].ID, t0), storage.ErrNotFound)
	got, _ = s.RecoveryCodes(t.Context(), alice.ID)
	if !got[3].UsedAt.Equal(t0) || !got[4].UsedAt.IsZero() {
		t.Errorf("used: %v and %v", got[3].UsedAt, got[4].UsedAt)
	}

	// A new set replaces the old, used codes included; bob's stay.
	fresh := []storage.RecoveryCode{{ID: "n1", UserID: alice.ID, Lookup: []byte("x"), Hash: "h", CreatedAt: t0.Add(time.Hour)}}
	mustTx(t, s, func(tx storage.Tx) error { return tx.ReplaceRecoveryCodes(alice.ID, fresh) })
	got, _ = s.RecoveryCodes(t.Context(), alice.ID)
	wantEqual(t, "codes after replacing", got, fresh)
	wantErr(t, "UseRecoveryCode of a replaced code", useCode(t, s, alice, codes[4].ID, t0), storage.ErrNotFound)
	if got, _ := s.RecoveryCodes(t.Context(), bob.ID); len(got) != 2 {
		t.Errorf("bob has %d codes, want 2", len(got))
	}
	// Bad sets change nothing.
	for name, bad := range map[string][]storage.RecoveryCode{
		"ARepeatedID":     {fresh[0], fresh[0]},
		"AnotherUsers":    {{ID: "o", UserID: bob.ID, Lookup: []byte("x"), Hash: "h"}},
		"ACodeWithNoHash": {{ID: "o", UserID: alice.ID, Lookup: []byte("x")}},
	} {
		if err := inTx(t, s, func(tx storage.Tx) error { return tx.ReplaceRecoveryCodes(alice.ID, bad) }); err == nil {
			t.Errorf("ReplaceRecoveryCodes with %s: no error", name)
		}
	}
	got, _ = s.RecoveryCodes(t.Context(), alice.ID)
	wantEqual(t, "codes after refused replacements", got, fresh)
}

func testRecoveryCodeRace(t *testing.T, s [2]storage.Store) {
	u := newUser(t, s[0], "alice")
	codes := newCodes(t, s[0], u, 2)
	errs := race(Racers, func(i int) error { return useCode(t, s[i%2], u, codes[0].ID, t0) })
	wantEqual(t, "outcomes", tally(errs, storage.ErrConsumed), map[string]int{"ok": 1, "already used": Racers - 1})
}

func newRecoverySession(t *testing.T, s storage.Store, u *storage.User) storage.Session {
	t.Helper()
	ses := storage.Session{TokenHash: randomBytes(32), UserID: u.ID, Scope: storage.ScopeRecovery, CreatedAt: t0,
		ExpiresAt: t0.Add(10 * time.Minute), GrantID: "r1"}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateSession(ses) })
	return ses
}

func testSessionRegistration(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	ses := newRecoverySession(t, s, u)
	use := func(hash []byte, now time.Time) error {
		return inTx(t, s, func(tx storage.Tx) error { return tx.UseSessionRegistration(hash, []byte("key-"+now.String()), now) })
	}
	wantErr(t, "UseSessionRegistration at the expiry", use(ses.TokenHash, ses.ExpiresAt), storage.ErrExpired)
	wantErr(t, "UseSessionRegistration", use(ses.TokenHash, t0.Add(time.Second)), nil)
	wantErr(t, "UseSessionRegistration again", use(ses.TokenHash, t0.Add(2*time.Second)), storage.ErrConsumed)
	wantErr(t, "UseSessionRegistration of no session", use(randomBytes(32), t0), storage.ErrNotFound)
	got, err := s.Session(t.Context(), ses.TokenHash, t0)
	if err != nil {
		t.Fatal(err)
	}
	ses.KeyRegisteredAt = t0.Add(time.Second)
	ses.RegisteredKey = []byte("key-" + ses.KeyRegisteredAt.String())
	wantEqual(t, "session after its registration", *got, ses)
}

func testSessionRegistrationRace(t *testing.T, s [2]storage.Store) {
	ses := newRecoverySession(t, s[0], newUser(t, s[0], "alice"))
	errs := race(Racers, func(i int) error {
		return s[i%2].Tx(t.Context(), func(tx storage.Tx) error { return tx.UseSessionRegistration(ses.TokenHash, []byte{byte(i)}, t0) })
	})
	wantEqual(t, "outcomes", tally(errs, storage.ErrConsumed), map[string]int{"ok": 1, "already used": Racers - 1})
}

// newRecoveryGrant issues a recovery grant for u by "helpdesk-jo", under
// four eyes when pending.
func newRecoveryGrant(t *testing.T, s storage.Store, u *storage.User, id string, pending bool) storage.Grant {
	t.Helper()
	g := storage.Grant{ID: id, UserID: u.ID, Kind: storage.GrantRecovery, CodeHash: []byte("code-" + id), IssuedBy: "helpdesk-jo",
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), MaxUses: 1, Verification: []string{"photo-id", "callback-known-number"},
		Note: "called back on the number in the HR system", NeedsApproval: pending}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateGrant(g) })
	return g
}

func testGrantVerificationRoundTrip(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	g := newRecoveryGrant(t, s, u, "g1", true)
	var got *storage.Grant
	mustTx(t, s, func(tx storage.Tx) (err error) { got, err = tx.Grant(g.ID); return err })
	wantEqual(t, "Grant", *got, g)
	if !got.Pending() {
		t.Error("a grant under four eyes is not pending")
	}
	err := inTx(t, s, func(tx storage.Tx) error { _, err := tx.Grant("nope"); return err })
	wantErr(t, "Grant of a missing one", err, storage.ErrNotFound)
	bad := g
	bad.ID, bad.CodeHash, bad.Verification = "g2", []byte("other"), []string{"a,b"}
	if err := inTx(t, s, func(tx storage.Tx) error { return tx.CreateGrant(bad) }); err == nil {
		t.Error("CreateGrant with a comma in a checklist item: no error")
	}
}

func testGrantFourEyes(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	g := newRecoveryGrant(t, s, u, "g1", true)
	plain := newRecoveryGrant(t, s, u, "g2", false)
	_, err := useGrant(t, s, g.CodeHash, t0)
	wantErr(t, "UseGrant of a pending grant", err, storage.ErrPending)
	approveGrant := func(id, by string, now time.Time) (g *storage.Grant, err error) {
		err = inTx(t, s, func(tx storage.Tx) error { g, err = tx.ApproveGrant(id, by, now); return err })
		return g, err
	}
	_, err = approveGrant(g.ID, g.IssuedBy, t0)
	wantErr(t, "ApproveGrant by its issuer", err, storage.ErrConflict)
	_, err = approveGrant(plain.ID, "helpdesk-kim", t0)
	wantErr(t, "ApproveGrant of a grant needing none", err, storage.ErrConflict)
	_, err = approveGrant(g.ID, "helpdesk-kim", g.ExpiresAt)
	wantErr(t, "ApproveGrant at the expiry", err, storage.ErrExpired)
	_, err = approveGrant("nope", "helpdesk-kim", t0)
	wantErr(t, "ApproveGrant of a missing one", err, storage.ErrNotFound)
	got, err := approveGrant(g.ID, "helpdesk-kim", t0.Add(time.Second))
	wantErr(t, "ApproveGrant", err, nil)
	want := g
	want.ApprovedBy, want.ApprovedAt = "helpdesk-kim", t0.Add(time.Second)
	if got != nil {
		wantEqual(t, "approved grant", *got, want)
	}
	_, err = approveGrant(g.ID, "helpdesk-lee", t0)
	wantErr(t, "ApproveGrant again", err, storage.ErrConsumed)
	used, err := useGrant(t, s, g.CodeHash, t0)
	wantErr(t, "UseGrant once approved", err, nil)
	if used != nil && used.Pending() {
		t.Error("the approved grant is still pending")
	}
	_, err = useGrant(t, s, g.CodeHash, t0)
	wantErr(t, "UseGrant once used", err, storage.ErrConsumed)
	_, err = useGrant(t, s, plain.CodeHash, t0)
	wantErr(t, "UseGrant of a grant needing no approval", err, nil)
}

func testGrantApproveRace(t *testing.T, s [2]storage.Store) {
	g := newRecoveryGrant(t, s[0], newUser(t, s[0], "alice"), "g1", true)
	errs := race(Racers, func(i int) error {
		return s[i%2].Tx(t.Context(), func(tx storage.Tx) error {
			_, err := tx.ApproveGrant(g.ID, fmt.Sprintf("helpdesk-%d", i), t0)
			return err
		})
	})
	wantEqual(t, "outcomes", tally(errs, storage.ErrConsumed), map[string]int{"ok": 1, "already used": Racers - 1})
}
