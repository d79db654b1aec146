package storagetest

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/storage"
)

var credentialTests = []test{
	{"CredentialRoundTripsEveryField", testCredentialRoundTrip},
	{"CreateCredentialRefusesATakenIDOrUnknownUser", testCreateCredentialConflicts},
	{"CredentialsListsOldestFirstWithRevokedOnes", testCredentialsOrder},
	{"MissingCredentialsAreNotFound", testMissingCredentials},
	{"UserWithCredentialsReadsBothAtOnce", testUserWithCredentials},
	{"RenameCredentialChangesOnlyTheNickname", testRenameCredential},
	{"RevokeCredentialKeepsTheFirstRevocation", testRevokeCredential},
	{"UpdateSignCountMovesOnlyFromTheOldCount", testUpdateSignCount},
	{"UpdateSignCountLetsOneOfRacingSignInsWin", testUpdateSignCountRace},
	{"LastUsableKeySurvivesRacingRevocations", testLastUsableKeyRace},
}

func testCredentialRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := newUser(t, s, "alice")
	full := storage.Credential{
		ID: randomBytes(1023), UserID: u.ID, Nickname: "blue YubiKey ✓", WebAuthn: []byte(`{"id":"x","publicKey":"AQID"}`),
		Attestation: []byte(`{"object":"o2NmbXRkbm9uZQ"}`),
		AAGUID:      randomBytes(16), SignCount: math.MaxUint32, AttestationType: "packed",
		CreatedAt: t0, LastUsedAt: t0.Add(time.Hour + time.Microsecond), RevokedAt: t0.Add(2 * time.Hour), RevokeReason: "lost",
		ProvisionedBy: "helpdesk-jo", Batch: "2025-06 laptops",
	}
	bare := storage.Credential{ID: []byte{0}, UserID: u.ID, CreatedAt: t0.Add(time.Second)}
	mustTx(t, s, func(tx storage.Tx) error {
		if err := tx.CreateCredential(full); err != nil {
			return err
		}
		return tx.CreateCredential(bare)
	})
	for _, want := range []storage.Credential{full, bare} {
		got, err := s.Credential(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "Credential", *got, want)
		got, owner, err := s.CredentialWithUser(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "CredentialWithUser's credential", *got, want)
		wantEqual(t, "CredentialWithUser's user", *owner, *u)
		mustTx(t, s, func(tx storage.Tx) error {
			got, err := tx.Credential(want.ID)
			if err != nil {
				return err
			}
			wantEqual(t, "Tx.Credential", *got, want)
			return nil
		})
	}
	if _, _, err := s.CredentialWithUser(ctx, []byte("nope")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("CredentialWithUser of an unknown ID: %v", err)
	}
	list, err := s.Credentials(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "Credentials", list, []storage.Credential{full, bare})
	if !list[0].Revoked() || list[1].Revoked() {
		t.Errorf("Revoked() = %v, %v; want true, false", list[0].Revoked(), list[1].Revoked())
	}
	// The one-query read returns every field as the separate reads do.
	gotU, gotList, err := s.UserWithCredentials(ctx, strings.ToUpper(u.Name))
	wantErr(t, "UserWithCredentials", err, nil)
	wantEqual(t, "UserWithCredentials' credentials", gotList, list)
	wantU, err := s.UserByName(ctx, u.Name)
	wantErr(t, "UserByName", err, nil)
	wantEqual(t, "UserWithCredentials' user", *gotU, *wantU)
}

// testUserWithCredentials: a user with no key comes back with none, an
// unknown name is not found, and other users' keys stay out.
func testUserWithCredentials(t *testing.T, s storage.Store) {
	ctx := t.Context()
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	newer, older := newCredential(t, s, alice, time.Minute), newCredential(t, s, alice, 0)
	u, creds, err := s.UserWithCredentials(ctx, "bob")
	wantErr(t, "UserWithCredentials without keys", err, nil)
	wantEqual(t, "user", *u, *bob)
	if len(creds) != 0 {
		t.Errorf("credentials of a user without keys: %d", len(creds))
	}
	newCredential(t, s, bob, 0)
	u, creds, err = s.UserWithCredentials(ctx, "Alice")
	wantErr(t, "UserWithCredentials", err, nil)
	wantEqual(t, "user", *u, *alice)
	wantEqual(t, "credentials", creds, []storage.Credential{*older, *newer})
	_, _, err = s.UserWithCredentials(ctx, "carol")
	wantErr(t, "UserWithCredentials of an unknown name", err, storage.ErrNotFound)
}

func testCreateCredentialConflicts(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	c := newCredential(t, s, u, 0)
	for _, tt := range []struct {
		name string
		c    storage.Credential
		want error
	}{
		{"TakenID", storage.Credential{ID: c.ID, UserID: u.ID, CreatedAt: t0}, storage.ErrConflict},
		{"UnknownUser", storage.Credential{ID: randomBytes(16), UserID: randomBytes(32), CreatedAt: t0}, storage.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			after := storage.Credential{ID: randomBytes(16), UserID: u.ID, CreatedAt: t0}
			mustTx(t, s, func(tx storage.Tx) error {
				wantErr(t, "CreateCredential", tx.CreateCredential(tt.c), tt.want)
				return tx.CreateCredential(after)
			})
			if _, err := s.Credential(t.Context(), after.ID); err != nil {
				t.Errorf("credential created after the refusal: %v", err)
			}
		})
	}
	t.Run("EmptyID", func(t *testing.T) {
		err := s.Tx(t.Context(), func(tx storage.Tx) error { return tx.CreateCredential(storage.Credential{UserID: u.ID}) })
		if err == nil {
			t.Error("CreateCredential with an empty ID succeeded")
		}
	})
	got, err := s.Credential(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "the first credential", *got, *c)
}

func testCredentialsOrder(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u, other := newUser(t, s, "alice"), newUser(t, s, "bob")
	newest := newCredential(t, s, u, 2*time.Minute)
	oldest := newCredential(t, s, u, 0)
	middle := newCredential(t, s, u, time.Minute)
	newCredential(t, s, other, 0)
	mustTx(t, s, func(tx storage.Tx) error { return tx.RevokeCredential(middle.ID, t0.Add(time.Hour), "lost") })
	middle.RevokedAt, middle.RevokeReason = t0.Add(time.Hour), "lost"
	want := []storage.Credential{*oldest, *middle, *newest}

	got, err := s.Credentials(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "Credentials", got, want)
	mustTx(t, s, func(tx storage.Tx) error {
		got, err := tx.Credentials(u.ID)
		wantEqual(t, "Tx.Credentials", got, want)
		return err
	})
	if got, err := s.Credentials(ctx, randomBytes(32)); err != nil || len(got) != 0 {
		t.Errorf("Credentials of an unknown user = %v, %v; want none", got, err)
	}
}

func testMissingCredentials(t *testing.T, s storage.Store) {
	ctx := t.Context()
	newCredential(t, s, newUser(t, s, "alice"), 0)
	missing := randomBytes(16)
	inTx := func(f func(tx storage.Tx) error) func() error {
		return func() error { return s.Tx(ctx, f) }
	}
	for _, tt := range []struct {
		name string
		f    func() error
	}{
		{"Credential", func() error { _, err := s.Credential(ctx, missing); return err }},
		{"TxCredential", inTx(func(tx storage.Tx) error { _, err := tx.Credential(missing); return err })},
		{"RenameCredential", inTx(func(tx storage.Tx) error { return tx.RenameCredential(missing, "x") })},
		{"RevokeCredential", inTx(func(tx storage.Tx) error { return tx.RevokeCredential(missing, t0, "lost") })},
		{"UpdateSignCount", inTx(func(tx storage.Tx) error { return tx.UpdateSignCount(missing, 0, 1, t0) })},
	} {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.name, tt.f(), storage.ErrNotFound) })
	}
}

func testRenameCredential(t *testing.T, s storage.Store) {
	c := newCredential(t, s, newUser(t, s, "alice"), 0)
	mustTx(t, s, func(tx storage.Tx) error { return tx.RenameCredential(c.ID, "work key") })
	want := *c
	want.Nickname = "work key"
	got, err := s.Credential(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "renamed credential", *got, want)
}

func testRevokeCredential(t *testing.T, s storage.Store) {
	c := newCredential(t, s, newUser(t, s, "alice"), 0)
	mustTx(t, s, func(tx storage.Tx) error { return tx.RevokeCredential(c.ID, t0.Add(time.Hour), "lost") })
	// Revoking again succeeds and changes nothing.
	mustTx(t, s, func(tx storage.Tx) error { return tx.RevokeCredential(c.ID, t0.Add(2*time.Hour), "stolen") })
	want := *c
	want.RevokedAt, want.RevokeReason = t0.Add(time.Hour), "lost"
	got, err := s.Credential(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "revoked credential", *got, want)
	err = s.Tx(t.Context(), func(tx storage.Tx) error { return tx.RevokeCredential(c.ID, time.Time{}, "x") })
	if err == nil {
		t.Error("RevokeCredential at the zero time succeeded")
	}
}

func testUpdateSignCount(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	for _, tt := range []struct {
		name      string
		stored    uint32
		revoked   bool
		old, new  uint32
		want      error
		wantCount uint32
	}{
		{"ShouldMoveFromTheStoredCount", 7, false, 7, 8, nil, 8},
		{"ShouldAllowACounterThatStaysAtZero", 0, false, 0, 0, nil, 0},
		{"ShouldRefuseAStaleOldCount", 7, false, 6, 9, storage.ErrConflict, 7},
		{"ShouldRefuseARevokedCredential", 7, true, 7, 8, storage.ErrConflict, 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := storage.Credential{ID: randomBytes(16), UserID: u.ID, CreatedAt: t0, SignCount: tt.stored}
			if tt.revoked {
				c.RevokedAt, c.RevokeReason = t0, "lost"
			}
			mustTx(t, s, func(tx storage.Tx) error { return tx.CreateCredential(c) })
			usedAt := t0.Add(time.Minute)
			err := s.Tx(t.Context(), func(tx storage.Tx) error { return tx.UpdateSignCount(c.ID, tt.old, tt.new, usedAt) })
			wantErr(t, "UpdateSignCount", err, tt.want)
			want := c
			want.SignCount = tt.wantCount
			if tt.want == nil {
				want.LastUsedAt = usedAt
			}
			got, err := s.Credential(t.Context(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			wantEqual(t, "credential", *got, want)
		})
	}
}

func testUpdateSignCountRace(t *testing.T, s storage.Store) {
	c := newCredential(t, s, newUser(t, s, "alice"), 0)
	errs := race(Racers, func(i int) error {
		return s.Tx(t.Context(), func(tx storage.Tx) error {
			return tx.UpdateSignCount(c.ID, 0, uint32(100+i), t0.Add(time.Duration(i)*time.Second))
		})
	})
	counts := tally(errs, storage.ErrConflict)
	wantEqual(t, "outcomes", counts, map[string]int{"ok": 1, "conflict": Racers - 1})
	winner := -1
	for i, err := range errs {
		if err == nil {
			winner = i
		}
	}
	got, err := s.Credential(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if winner >= 0 && (got.SignCount != uint32(100+winner) || !got.LastUsedAt.Equal(t0.Add(time.Duration(winner)*time.Second))) {
		t.Errorf("sign count %d used at %v, want the winner's %d at %v", got.SignCount, got.LastUsedAt, 100+winner, t0.Add(time.Duration(winner)*time.Second))
	}
}

// errLastKey is the refusal of a revocation that would leave no usable key.
var errLastKey = errors.New("last usable key")

func testLastUsableKeyRace(t *testing.T, s storage.Store) {
	u := newUser(t, s, "alice")
	keys := []*storage.Credential{newCredential(t, s, u, 0), newCredential(t, s, u, time.Second)}
	// Half the racers revoke one key, half the other, each only if
	// another usable key would remain: exactly one revocation may win.
	errs := race(Racers, func(i int) error {
		target := keys[i%2]
		return s.Tx(t.Context(), func(tx storage.Tx) error {
			cs, err := tx.Credentials(u.ID)
			if err != nil {
				return err
			}
			usable := 0
			for _, c := range cs {
				if !c.Revoked() && !bytes.Equal(c.ID, target.ID) {
					usable++
				}
			}
			if usable == 0 {
				return errLastKey
			}
			return tx.RevokeCredential(target.ID, t0.Add(time.Hour), "lost")
		})
	})
	// Revoking the already revoked key again is allowed (idempotent), so
	// the racers for the first winner's key may succeed too; what must
	// hold is that one key stays usable.
	for _, err := range errs {
		if err != nil && !errors.Is(err, errLastKey) {
			t.Errorf("Tx: %v", err)
		}
	}
	cs, err := s.Credentials(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	usable := 0
	for _, c := range cs {
		if !c.Revoked() {
			usable++
		}
	}
	if usable != 1 {
		t.Errorf("%d usable keys after the race, want 1 (outcomes %v)", usable, tally(errs, errLastKey))
	}
}
