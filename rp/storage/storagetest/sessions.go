package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/storage"
)

var sessionTests = []test{
	{"SessionRoundTripsEveryField", testSessionRoundTrip},
	{"SessionRefusesExpiredAndMissing", testSessionRefusals},
	{"CreateSessionRefusesATakenHashOrUnknownUser", testCreateSessionConflicts},
	{"DeleteSessionEndsIt", testDeleteSession},
	{"PolicyIsZeroUntilSetThenRoundTrips", testPolicy},
}

var grantTests = []test{
	{"UseGrantCountsUsesAndReturnsTheGrant", testUseGrant},
	{"UseGrantRefusesMissingExpiredRevokedAndUsedUp", testUseGrantRefusals},
	{"CreateGrantRefusesTakenOrInvalidGrants", testCreateGrantConflicts},
	{"UseGrantNeverExceedsMaxUses", testUseGrantRace},
}

func testSessionRoundTrip(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	for _, tt := range []struct {
		name string
		ses  storage.Session
	}{
		{"SignedIn", storage.Session{TokenHash: randomBytes(32), UserID: u.ID, Scope: storage.ScopeFull,
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), AuthTime: t0.Add(time.Microsecond)}},
		{"FromAGrant", storage.Session{TokenHash: randomBytes(32), UserID: u.ID, Scope: storage.ScopeRegister,
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), GrantID: "g1"}},
		{"ForRecoveryWithItsKeyRegistered", storage.Session{TokenHash: randomBytes(32), UserID: u.ID, Scope: storage.ScopeRecovery,
			CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute), GrantID: "r1", KeyRegisteredAt: t0.Add(time.Minute),
			RegisteredKey: []byte("replacement")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mustTx(t, s, func(tx storage.Tx) error { return tx.CreateSession(tt.ses) })
			got, err := s.Session(t.Context(), tt.ses.TokenHash, t0)
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "Session", *got, tt.ses)
		})
	}
}

func testSessionRefusals(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	ses := storage.Session{TokenHash: randomBytes(32), UserID: u.ID, Scope: storage.ScopeFull, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateSession(ses) })
	for _, tt := range []struct {
		name string
		hash []byte
		now  time.Time
		want error
	}{
		{"ShouldFindItJustBeforeExpiry", ses.TokenHash, ses.ExpiresAt.Add(-time.Microsecond), nil},
		{"ShouldRefuseAtTheExpiry", ses.TokenHash, ses.ExpiresAt, storage.ErrExpired},
		{"ShouldNotFindAnUnknownHash", randomBytes(32), t0, storage.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Session(t.Context(), tt.hash, tt.now)
			wantErr(t, "Session", err, tt.want)
		})
	}
}

func testCreateSessionConflicts(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	ses := storage.Session{TokenHash: randomBytes(32), UserID: u.ID, Scope: storage.ScopeFull, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateSession(ses) })
	for _, tt := range []struct {
		name string
		ses  storage.Session
		want error
	}{
		{"TakenHash", storage.Session{TokenHash: ses.TokenHash, UserID: u.ID, Scope: storage.ScopeRecovery, CreatedAt: t0, ExpiresAt: t0}, storage.ErrConflict},
		{"UnknownUser", storage.Session{TokenHash: randomBytes(32), UserID: randomBytes(32), Scope: storage.ScopeFull, CreatedAt: t0, ExpiresAt: t0}, storage.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, "CreateSession", s.Tx(t.Context(), func(tx storage.Tx) error { return tx.CreateSession(tt.ses) }), tt.want)
		})
	}
	got, err := s.Session(t.Context(), ses.TokenHash, t0)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "the first session", *got, ses)
}

func testDeleteSession(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	ses := storage.Session{TokenHash: randomBytes(32), UserID: u.ID, Scope: storage.ScopeFull, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateSession(ses) })
	mustTx(t, s, func(tx storage.Tx) error { return tx.DeleteSession(ses.TokenHash) })
	_, err := s.Session(t.Context(), ses.TokenHash, t0)
	wantErr(t, "Session after DeleteSession", err, storage.ErrNotFound)
	err = s.Tx(t.Context(), func(tx storage.Tx) error { return tx.DeleteSession(ses.TokenHash) })
	wantErr(t, "DeleteSession again", err, storage.ErrNotFound)
}

func testPolicy(t *testing.T, s storage.Store) {
	got, err := s.Policy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "Policy before any was set", got, storage.Policy{})
	for _, p := range []storage.Policy{
		{
			AllowedAAGUIDs: []string{"ee882879-721c-4913-9775-3dfcce97072a"}, DeniedAAGUIDs: []string{"00000000-0000-0000-0000-000000000000"},
			Attestation: "verified", UserVerification: "required", ResidentKey: "preferred", RefuseCounterRegression: true,
			RecoveryFourEyes: true,
		},
		{Attestation: "none"},
	} {
		mustTx(t, s, func(tx storage.Tx) error { return tx.SetPolicy(p) })
		got, err := s.Policy(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "Policy", got, p)
	}
}

// newGrant issues an enrollment grant for u with code hash code.
func newGrant(t *testing.T, s storage.Store, u *storage.User, code string, maxUses int) storage.Grant {
	t.Helper()
	g := storage.Grant{ID: "grant-" + code, UserID: u.ID, Kind: storage.GrantEnrollment, CodeHash: []byte(code),
		IssuedBy: "helpdesk-jo", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), MaxUses: maxUses}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateGrant(g) })
	return g
}

func useGrant(t *testing.T, s storage.Store, code []byte, now time.Time) (g *storage.Grant, err error) {
	err = s.Tx(t.Context(), func(tx storage.Tx) error { g, err = tx.UseGrant(code, now); return err })
	return g, err
}

func testUseGrant(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	g := storage.Grant{ID: "g1", UserID: u.ID, Kind: storage.GrantRecovery, CodeHash: randomBytes(32), IssuedBy: "admin",
		CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), MaxUses: 2}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateGrant(g) })
	for uses := 1; uses <= 2; uses++ {
		got, err := useGrant(t, s, g.CodeHash, t0)
		if err != nil {
			t.Fatalf("use %d: %v", uses, err)
		}
		want := g
		want.Uses = uses
		wantEqual(t, "UseGrant", *got, want)
	}
	_, err := useGrant(t, s, g.CodeHash, t0)
	wantErr(t, "third use", err, storage.ErrConsumed)
}

func testUseGrantRefusals(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	used := newGrant(t, s, u, "used", 1)
	if _, err := useGrant(t, s, used.CodeHash, t0); err != nil {
		t.Fatal(err)
	}
	revoked := storage.Grant{ID: "revoked", UserID: u.ID, Kind: storage.GrantEnrollment, CodeHash: []byte("revoked"),
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), MaxUses: 1, RevokedAt: t0}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateGrant(revoked) })
	live := newGrant(t, s, u, "live", 1)
	for _, tt := range []struct {
		name string
		code []byte
		now  time.Time
		want error
	}{
		{"ShouldNotFindAnUnknownCode", []byte("unknown"), t0, storage.ErrNotFound},
		{"ShouldRefuseAtTheExpiry", live.CodeHash, live.ExpiresAt, storage.ErrExpired},
		{"ShouldRefuseAUsedUpGrant", used.CodeHash, t0, storage.ErrConsumed},
		{"ShouldRefuseARevokedGrant", revoked.CodeHash, t0, storage.ErrConsumed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := useGrant(t, s, tt.code, tt.now)
			wantErr(t, "UseGrant", err, tt.want)
		})
	}
	// The refusals counted nothing.
	got, err := useGrant(t, s, live.CodeHash, t0)
	if err != nil || got.Uses != 1 {
		t.Errorf("UseGrant of the live grant = %+v, %v; want 1 use", got, err)
	}
}

func testCreateGrantConflicts(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	g := newGrant(t, s, u, "code", 1)
	valid := func(f func(g *storage.Grant)) storage.Grant {
		n := storage.Grant{ID: "other", UserID: u.ID, Kind: storage.GrantEnrollment, CodeHash: []byte("other"),
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), MaxUses: 1}
		f(&n)
		return n
	}
	errInvalid := errors.New("any error but a sentinel")
	for _, tt := range []struct {
		name string
		g    storage.Grant
		want error
	}{
		{"TakenID", valid(func(n *storage.Grant) { n.ID = g.ID }), storage.ErrConflict},
		{"TakenCode", valid(func(n *storage.Grant) { n.CodeHash = g.CodeHash }), storage.ErrConflict},
		{"UnknownUser", valid(func(n *storage.Grant) { n.UserID = randomBytes(32) }), storage.ErrNotFound},
		{"NoUses", valid(func(n *storage.Grant) { n.MaxUses = 0 }), errInvalid},
		{"MoreUsesThanAllowed", valid(func(n *storage.Grant) { n.Uses = 2 }), errInvalid},
		{"EmptyCode", valid(func(n *storage.Grant) { n.CodeHash = nil }), errInvalid},
		{"UnknownKind", valid(func(n *storage.Grant) { n.Kind = "forever" }), errInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Tx(t.Context(), func(tx storage.Tx) error { return tx.CreateGrant(tt.g) })
			if tt.want == errInvalid {
				if err == nil || errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
					t.Errorf("CreateGrant: %v, want an invalid-input error", err)
				}
				return
			}
			wantErr(t, "CreateGrant", err, tt.want)
		})
	}
	got, err := useGrant(t, s, g.CodeHash, t0)
	if err != nil {
		t.Fatal(err)
	}
	g.Uses = 1
	wantEqual(t, "the first grant", *got, g)
}

func testUseGrantRace(t *testing.T, s storage.Store) {
	const maxUses = 3
	g := newGrant(t, s, newUser(t, s, "alice"), "code", maxUses)
	errs := race(Racers, func(int) error { _, err := useGrant(t, s, g.CodeHash, t0); return err })
	wantEqual(t, "outcomes", tally(errs, storage.ErrConsumed), map[string]int{"ok": maxUses, "already used": Racers - maxUses})
	_, err := useGrant(t, s, g.CodeHash, t0)
	wantErr(t, "use after the race", err, storage.ErrConsumed)
}
