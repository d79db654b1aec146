package inprocess

import (
	"bytes"
	"context"
	"testing"

	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/platform/softkey"
)

// newKeyWithCredentials returns a key with testPIN and three discoverable
// credentials: alice and bob at example.com (credProtect left out, so
// level 1), carol at other.org with credProtect 2.
func newKeyWithCredentials(t *testing.T) *testKey {
	t.Helper()
	k := newKeyWithPIN(t, softkey.Config{})
	k.makeCredential(t, "example.com", "alice", 0)
	k.makeCredential(t, "example.com", "bob", 0)
	k.makeCredential(t, "other.org", "carol", 2)
	return k
}

// find returns the credential of user name, or fails the test.
func find(t *testing.T, rps []platform.RelyingParty, name string) platform.Credential {
	t.Helper()
	for _, rp := range rps {
		for _, c := range rp.Credentials {
			if c.User.Name == name {
				return c
			}
		}
	}
	t.Fatalf("no credential of %q in %+v", name, rps)
	return platform.Credential{}
}

func TestCredentials(t *testing.T) {
	ctx := context.Background()
	t.Run("ShouldCountCredentials", func(t *testing.T) {
		k := newKeyWithCredentials(t)
		md, err := k.CredentialsMetadata(ctx, testPIN)
		if err != nil || md != (platform.CredentialsMetadata{Existing: 3, Remaining: 22}) {
			t.Fatalf("metadata %+v, %v", md, err)
		}
	})
	t.Run("ShouldGroupCredentialsByRPWithTheirProtection", func(t *testing.T) {
		k := newKeyWithCredentials(t)
		rps, err := k.Credentials(ctx, testPIN)
		if err != nil {
			t.Fatal(err)
		}
		if len(rps) != 2 || rps[0].ID != "example.com" || rps[0].Name != "RP example.com" || len(rps[0].Credentials) != 2 || rps[1].ID != "other.org" || len(rps[1].Credentials) != 1 {
			t.Fatalf("groups %+v", rps)
		}
		for _, tc := range []struct {
			user       string
			protection int
		}{{"alice", 1}, {"bob", 1}, {"carol", 2}} {
			c := find(t, rps, tc.user)
			if c.Protection != tc.protection || len(c.ID) == 0 || !bytes.Equal(c.User.ID, []byte("uid-"+tc.user)) || c.User.DisplayName != "User "+tc.user {
				t.Errorf("%s: %+v", tc.user, c)
			}
		}
	})
	t.Run("ShouldListAnEmptyKeyAsAnEmptySlice", func(t *testing.T) {
		k := newKeyWithPIN(t, softkey.Config{})
		rps, err := k.Credentials(ctx, testPIN)
		if err != nil || rps == nil || len(rps) != 0 {
			t.Fatalf("got %#v, %v; want an empty slice", rps, err)
		}
	})

	cases := []struct {
		name string
		run  func(k *testKey, rps []platform.RelyingParty) error
		want error
		// check, when set, sees the credentials after a success.
		check func(t *testing.T, rps []platform.RelyingParty)
	}{
		{
			name: "ShouldUpdateTheUser",
			run: func(k *testKey, rps []platform.RelyingParty) error {
				c := find(t, rps, "alice")
				return k.UpdateUser(ctx, testPIN, c.ID, platform.User{ID: c.User.ID, Name: "alice2", DisplayName: "Alice Two"})
			},
			check: func(t *testing.T, rps []platform.RelyingParty) {
				c := find(t, rps, "alice2")
				if c.User.DisplayName != "Alice Two" || !bytes.Equal(c.User.ID, []byte("uid-alice")) {
					t.Errorf("updated %+v", c)
				}
			},
		},
		{
			name: "ShouldUpdateTheUserWithoutItsID",
			run: func(k *testKey, rps []platform.RelyingParty) error {
				return k.UpdateUser(ctx, testPIN, find(t, rps, "carol").ID, platform.User{Name: "caroline"})
			},
			check: func(t *testing.T, rps []platform.RelyingParty) { find(t, rps, "caroline") },
		},
		{
			name: "ShouldDeleteACredential",
			run: func(k *testKey, rps []platform.RelyingParty) error {
				return k.DeleteCredential(ctx, testPIN, find(t, rps, "carol").ID)
			},
			check: func(t *testing.T, rps []platform.RelyingParty) {
				if len(rps) != 1 || len(rps[0].Credentials) != 2 {
					t.Errorf("after delete %+v", rps)
				}
			},
		},
		{
			name: "ShouldFailToDeleteAnUnknownID",
			run: func(k *testKey, _ []platform.RelyingParty) error {
				return k.DeleteCredential(ctx, testPIN, []byte("no such credential"))
			},
			want: platform.ErrNoCredentials,
		},
		{
			name: "ShouldFailToUpdateAnUnknownID",
			run: func(k *testKey, _ []platform.RelyingParty) error {
				return k.UpdateUser(ctx, testPIN, []byte("no such credential"), platform.User{ID: []byte("uid-alice"), Name: "x"})
			},
			want: platform.ErrNoCredentials,
		},
		{
			name: "ShouldFailToListWithAWrongPIN",
			run: func(k *testKey, _ []platform.RelyingParty) error {
				_, err := k.Credentials(ctx, "0000")
				return err
			},
			want: platform.ErrPINInvalid,
		},
		{
			name: "ShouldFailToCountWithAWrongPIN",
			run: func(k *testKey, _ []platform.RelyingParty) error {
				_, err := k.CredentialsMetadata(ctx, "0000")
				return err
			},
			want: platform.ErrPINInvalid,
		},
		{
			name: "ShouldFailToDeleteWithAWrongPIN",
			run: func(k *testKey, rps []platform.RelyingParty) error {
				return k.DeleteCredential(ctx, "0000", find(t, rps, "bob").ID)
			},
			want: platform.ErrPINInvalid,
		},
		{
			name: "ShouldAskForThePINBeforeSpendingAnAttempt",
			run: func(k *testKey, _ []platform.RelyingParty) error {
				_, err := k.Credentials(ctx, "")
				return err
			},
			want: platform.ErrPINRequired,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKeyWithCredentials(t)
			before, err := k.Credentials(ctx, testPIN)
			if err != nil {
				t.Fatal(err)
			}
			err = tc.run(k, before)
			wantKind(t, err, tc.want)
			if tc.want == platform.ErrPINInvalid {
				if n := retriesLeft(t, err); n != 7 {
					t.Errorf("RetriesLeft %d, want 7", n)
				}
			}
			if tc.check != nil {
				after, err := k.Credentials(ctx, testPIN)
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, after)
			}
		})
	}
	t.Run("ShouldFailWithoutAPIN", func(t *testing.T) {
		k := newKey(t, softkey.Config{})
		_, err := k.Credentials(ctx, testPIN)
		wantKind(t, err, platform.ErrPINNotSet)
	})
}
