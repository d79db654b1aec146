package storagetest

import (
	"context"
	"errors"
	"testing"

	"github.com/keydesk/keydesk/rp/storage"
)

var userTests = []test{
	{"UserRoundTripsEveryFieldWithItsNameFolded", testUserRoundTrip},
	{"CreateUserRefusesATakenNameOrID", testCreateUserConflicts},
	{"CreateUserRefusesInvalidUsers", testCreateUserInvalid},
	{"MissingUsersAreNotFound", testMissingUsers},
	{"SetUserRolesAndDisabledChangeOnlyThose", testSetUserRolesAndDisabled},
	{"SearchUsersMatchesNameOrDisplayNameIgnoringCase", testSearchUsers},
	{"CountUsersCountsDisabledUsersToo", testCountUsers},
	{"AnEndedContextRunsNoStatement", testEndedContext},
}

// testEndedContext: a request that has ended gets its context's error
// and changes nothing, also where the store detaches a statement from
// its context once it starts (sqlstore.Dialect.LocalStatements).
func testEndedContext(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.UserByName(ctx, "alice"); !errors.Is(err, context.Canceled) {
		t.Errorf("UserByName: err = %v, want context.Canceled", err)
	}
	if _, _, err := s.UserWithCredentials(ctx, "alice"); !errors.Is(err, context.Canceled) {
		t.Errorf("UserWithCredentials: err = %v, want context.Canceled", err)
	}
	err := s.Tx(ctx, func(tx storage.Tx) error { return tx.SetUserDisabled(u.ID, true) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Tx: err = %v, want context.Canceled", err)
	}
	got, err := s.UserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Disabled {
		t.Error("a transaction with an ended context disabled the user")
	}
}

func testUserRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	in := storage.User{
		ID: randomBytes(64), Name: "Alice.Example", DisplayName: "Alice Ëxample",
		Roles: []storage.Role{storage.RoleUser, storage.RoleAdmin}, Disabled: true, CreatedAt: t0,
	}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateUser(in) })
	want := in
	want.Name = "alice.example"

	for _, tt := range []struct {
		name string
		get  func() (*storage.User, error)
	}{
		{"UserByNameInAnotherCase", func() (*storage.User, error) { return s.UserByName(ctx, "ALICE.example") }},
		{"UserByID", func() (*storage.User, error) { return s.UserByID(ctx, in.ID) }},
		{"TxUserByName", func() (u *storage.User, err error) {
			err = s.Tx(ctx, func(tx storage.Tx) error { u, err = tx.UserByName("alice.EXAMPLE"); return err })
			return u, err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.get()
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "user", *got, want)
		})
	}

	// A user with no roles comes back with none.
	bare := storage.User{ID: []byte{1}, Name: "b", CreatedAt: t0}
	mustTx(t, s, func(tx storage.Tx) error { return tx.CreateUser(bare) })
	got, err := s.UserByID(ctx, bare.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "user without roles", *got, bare)
}

func testCreateUserConflicts(t *testing.T, s storage.Store) {
	alice := newUser(t, s, "alice")
	for _, tt := range []struct {
		name string
		u    storage.User
	}{
		{"SameNameInAnotherCase", storage.User{ID: randomBytes(32), Name: "ALICE", CreatedAt: t0}},
		{"SameID", storage.User{ID: alice.ID, Name: "bob", CreatedAt: t0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The transaction goes on after the conflict, on every
			// database: a conflict does not abort it.
			err := s.Tx(t.Context(), func(tx storage.Tx) error {
				wantErr(t, "CreateUser", tx.CreateUser(tt.u), storage.ErrConflict)
				return tx.CreateUser(storage.User{ID: randomBytes(32), Name: "after " + tt.name, CreatedAt: t0})
			})
			if err != nil {
				t.Fatalf("Tx after a conflict: %v", err)
			}
			if _, err := s.UserByName(t.Context(), "after "+tt.name); err != nil {
				t.Errorf("user created after the conflict: %v", err)
			}
		})
	}
	got, err := s.UserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "alice after the conflicts", *got, *alice)
}

func testCreateUserInvalid(t *testing.T, s storage.Store) {
	for _, tt := range []struct {
		name string
		u    storage.User
	}{
		{"EmptyID", storage.User{Name: "a"}},
		{"IDOver64Bytes", storage.User{ID: randomBytes(65), Name: "a"}},
		{"EmptyName", storage.User{ID: randomBytes(8)}},
		{"UnknownRole", storage.User{ID: randomBytes(8), Name: "a", Roles: []storage.Role{"root"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Tx(t.Context(), func(tx storage.Tx) error { return tx.CreateUser(tt.u) })
			if err == nil || errors.Is(err, storage.ErrConflict) {
				t.Errorf("CreateUser: %v, want an invalid-input error", err)
			}
		})
	}
	if n, err := s.CountUsers(t.Context()); err != nil || n != 0 {
		t.Errorf("CountUsers = %d, %v; want 0", n, err)
	}
}

func testMissingUsers(t *testing.T, s storage.Store) {
	ctx := t.Context()
	newUser(t, s, "alice")
	missing := randomBytes(32)
	for _, tt := range []struct {
		name string
		f    func() error
	}{
		{"UserByName", func() error { _, err := s.UserByName(ctx, "bob"); return err }},
		{"UserByID", func() error { _, err := s.UserByID(ctx, missing); return err }},
		{"TxUserByName", func() error {
			return s.Tx(ctx, func(tx storage.Tx) error { _, err := tx.UserByName("bob"); return err })
		}},
		{"SetUserRoles", func() error {
			return s.Tx(ctx, func(tx storage.Tx) error { return tx.SetUserRoles(missing, []storage.Role{storage.RoleAdmin}) })
		}},
		{"SetUserDisabled", func() error {
			return s.Tx(ctx, func(tx storage.Tx) error { return tx.SetUserDisabled(missing, true) })
		}},
	} {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.name, tt.f(), storage.ErrNotFound) })
	}
}

func testSetUserRolesAndDisabled(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := newUser(t, s, "alice")
	other := newUser(t, s, "bob")
	roles := []storage.Role{storage.RoleUser, storage.RoleHelpdesk}
	mustTx(t, s, func(tx storage.Tx) error {
		if err := tx.SetUserRoles(u.ID, roles); err != nil {
			return err
		}
		return tx.SetUserDisabled(u.ID, true)
	})
	want := *u
	want.Roles, want.Disabled = roles, true
	got, err := s.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "after SetUserRoles and SetUserDisabled", *got, want)

	// An unknown role is refused and changes nothing.
	err = s.Tx(ctx, func(tx storage.Tx) error { return tx.SetUserRoles(u.ID, []storage.Role{"root"}) })
	if err == nil {
		t.Error("SetUserRoles with an unknown role succeeded")
	}
	mustTx(t, s, func(tx storage.Tx) error { return tx.SetUserDisabled(u.ID, false) })
	want.Disabled = false
	if got, err = s.UserByID(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "after enabling again", *got, want)
	if got, err = s.UserByID(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "the other user", *got, *other)
}

func testSearchUsers(t *testing.T, s storage.Store) {
	for _, u := range []storage.User{
		{Name: "alice", DisplayName: "Alice Liddell"},
		{Name: "bob", DisplayName: "Bob Stone"},
		{Name: "carol", DisplayName: "Carol ALISON"},
		{Name: "d_ve", DisplayName: "Dave 100%"},
		{Name: "émile", DisplayName: "ÉMILE Zola"},
	} {
		u.ID, u.CreatedAt = randomBytes(16), t0
		mustTx(t, s, func(tx storage.Tx) error { return tx.CreateUser(u) })
	}
	for _, tt := range []struct {
		name  string
		q     string
		limit int
		want  []string
	}{
		{"ShouldMatchNameOrDisplayName", "ali", 10, []string{"alice", "carol"}},
		{"ShouldIgnoreCase", "LIDDELL", 10, []string{"alice"}},
		{"ShouldFoldNonASCII", "émile zola", 10, []string{"émile"}},
		{"ShouldListEveryoneForEmpty", "", 10, []string{"alice", "bob", "carol", "d_ve", "émile"}},
		{"ShouldStopAtLimit", "o", 1, []string{"bob"}},
		{"ShouldTakePercentLiterally", "%", 10, []string{"d_ve"}},
		{"ShouldTakeUnderscoreLiterally", "_", 10, []string{"d_ve"}},
		{"ShouldListNoneForNoMatch", "zzz", 10, nil},
		{"ShouldListNoneForZeroLimit", "", 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			users, err := s.SearchUsers(t.Context(), tt.q, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range users {
				got = append(got, u.Name)
			}
			wantEqual(t, "SearchUsers("+tt.q+")", got, tt.want)
		})
	}
}

func testCountUsers(t *testing.T, s storage.Store) {
	if n, err := s.CountUsers(t.Context()); err != nil || n != 0 {
		t.Fatalf("CountUsers on an empty store = %d, %v; want 0", n, err)
	}
	a := newUser(t, s, "a")
	newUser(t, s, "b")
	mustTx(t, s, func(tx storage.Tx) error { return tx.SetUserDisabled(a.ID, true) })
	if n, err := s.CountUsers(t.Context()); err != nil || n != 2 {
		t.Errorf("CountUsers = %d, %v; want 2", n, err)
	}
}
