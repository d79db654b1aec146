package rpclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/rp/api"
)

// TestEnrollSignInRenameRevoke is the app's whole journey against the
// reference server, with real credentials from the software key: redeem
// an enrollment code, register a key, sign in with it, list, rename, meet
// the last-key guard, register a second key, meet the step-up rule, sign
// in with the second key and revoke the first, see the revoked key
// refused, sign out.
func TestEnrollSignInRenameRevoke(t *testing.T) {
	e := newRP(t, envOptions{})
	ctx := context.Background()
	c := newClient(t, e.url, nil)

	grant, grantToken, err := c.RedeemGrant(ctx, admin, e.code)
	if err != nil {
		t.Fatalf("RedeemGrant: %v", err)
	}
	if grant.Scope != "register" || grant.User.Name != admin || grantToken == "" || c.Token() != grantToken {
		t.Fatalf("grant session: %+v, token kept: %v", grant, c.Token() == grantToken)
	}
	if grant.Token != "" {
		t.Fatal("the token was left in the returned Session")
	}
	_, err = c.MyKeys(ctx)
	wantIs(t, err, rpclient.ErrForbidden)

	keyA := newKey(t)
	regA := enroll(t, c, keyA, "Key A", "")
	if regA.ID == "" || regA.Nickname != "Key A" || regA.RevokedAt != nil {
		t.Fatalf("registered: %+v", regA)
	}

	sess, token := signIn(t, c, keyA, admin)
	if sess.Scope != "full" || sess.User.Name != admin || token == grantToken || c.Token() != token || sess.Token != "" {
		t.Fatalf("sign-in session: %+v (new token adopted: %v)", sess, c.Token() == token)
	}

	keys, err := c.MyKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].ID != regA.ID {
		t.Fatalf("MyKeys = %+v, %v; want the one key %s", keys, err, regA.ID)
	}
	renamed, err := c.RenameKey(ctx, regA.ID, "Desk key")
	if err != nil || renamed.Nickname != "Desk key" {
		t.Fatalf("RenameKey = %+v, %v", renamed, err)
	}
	if keys, _ := c.MyKeys(ctx); len(keys) != 1 || keys[0].Nickname != "Desk key" {
		t.Fatalf("after renaming: %+v", keys)
	}

	_, err = c.RevokeKey(ctx, regA.ID, "lost")
	wantIs(t, err, rpclient.ErrLastKey, rpclient.ErrConflict)
	if re := asError(t, err); re.Code != "last_key" || re.Message == "" || re.Status != 409 {
		t.Fatalf("last key: %+v", re)
	}

	keyB := newKey(t)
	regB := enroll(t, c, keyB, "", "Key B")
	if regB.Nickname != "Key B" || regB.ID == regA.ID {
		t.Fatalf("second key: %+v", regB)
	}

	// The sign-in is now older than the server's step-up window.
	e.clock.Advance(6 * time.Minute)
	_, err = c.RevokeKey(ctx, regA.ID, "lost")
	wantIs(t, err, rpclient.ErrStepUpRequired, rpclient.ErrForbidden)
	if re := asError(t, err); re.Code != "step_up_required" || !strings.Contains(re.Message, "fresh sign-in") {
		t.Fatalf("step-up: %+v", re)
	}
	if me, err := c.Me(ctx); err != nil || e.clock.Now().Sub(me.AuthTime) < 5*time.Minute {
		t.Fatalf("Me = %+v, %v; want a sign-in older than five minutes", me, err)
	}

	signIn(t, c, keyB, admin)
	revoked, err := c.RevokeKey(ctx, regA.ID, "lost")
	if err != nil || revoked.RevokedAt == nil || revoked.RevokeReason != "lost" || revoked.ID != regA.ID {
		t.Fatalf("RevokeKey = %+v, %v", revoked, err)
	}
	_, err = c.RevokeKey(ctx, regB.ID, "stolen")
	wantIs(t, err, rpclient.ErrLastKey)

	// The revoked key still holds its credential: a discoverable sign-in
	// lets it offer it, and the server refuses it.
	fullToken := c.Token()
	id, options, _, err := c.LoginBegin(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.LoginFinish(ctx, id, keyA.get(t, options))
	wantIs(t, err, rpclient.ErrKeyRevoked, rpclient.ErrForbidden)
	if re := asError(t, err); re.Code != "key_revoked" {
		t.Fatalf("revoked key: %+v", re)
	}
	if c.Token() != fullToken {
		t.Fatal("a refused sign-in changed the client's session")
	}

	keys, err = c.MyKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("MyKeys = %+v, %v", keys, err)
	}
	for _, k := range keys {
		if (k.ID == regA.ID) != (k.RevokedAt != nil) {
			t.Errorf("key %s (%s): revoked at %v", k.Nickname, k.ID, k.RevokedAt)
		}
	}

	if err := c.Logout(ctx); err != nil || c.Token() != "" {
		t.Fatalf("Logout: %v, token left: %v", err, c.Token() != "")
	}
	_, err = c.Me(ctx)
	wantIs(t, err, rpclient.ErrUnauthorized)
	if err := c.SetToken(fullToken); err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(ctx)
	wantIs(t, err, rpclient.ErrUnauthorized)
	if re := asError(t, err); re.Code != "session_expired" {
		t.Fatalf("signed-out token: %+v", re)
	}
	// Signing out a session the server already ended is not a failure.
	if err := c.Logout(ctx); err != nil || c.Token() != "" {
		t.Fatalf("second Logout: %v", err)
	}
}

// TestBeginsReturnTheServersOptionsVerbatim checks that the options
// handed to the WebAuthn client are the bytes the server sent, not a
// re-encoding of them.
func TestBeginsReturnTheServersOptionsVerbatim(t *testing.T) {
	e := newRP(t, envOptions{})
	tp := newTap(nil, nil)
	c := newClient(t, e.url, func(cfg *rpclient.Config) { cfg.HTTPClient = &http.Client{Transport: tp} })
	ctx := context.Background()
	if _, _, err := c.RedeemGrant(ctx, admin, e.code); err != nil {
		t.Fatal(err)
	}
	_, creation, _, err := c.RegistrationBegin(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	_, request, _, err := c.LoginBegin(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		got  []byte
	}{{api.Version + "/registration/begin", creation}, {api.Version + "/login/begin", request}} {
		xs := tp.seen(tt.path)
		if len(xs) != 1 {
			t.Fatalf("%s: %d exchanges", tt.path, len(xs))
		}
		var sent map[string]json.RawMessage
		if err := json.Unmarshal(xs[0].response, &sent); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sent["publicKey"], tt.got) {
			t.Errorf("%s: options\n%s\nwant the server's\n%s", tt.path, tt.got, sent["publicKey"])
		}
	}
}
