package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/rp/api"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/rptest"
	"github.com/keydesk/keydesk/rp/server"
)

// phoneKey is a passkey on the user's phone: a software key that
// verifies its user (a simulated fingerprint).
func (e *env) phoneKey() *rptest.Key {
	e.t.Helper()
	k, err := rptest.NewUVKey(testOrigin)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// recoveryUser creates name with a security key (to be lost) and a
// passkey on their phone, registered while signed in.
func (e *env) recoveryUser(name string) (c *rptest.Client, lost, phone *rptest.Key) {
	e.t.Helper()
	c, lost = e.user(name)
	phone = e.phoneKey()
	if _, err := c.Register(phone, "phone"); err != nil {
		e.t.Fatalf("register %s's phone passkey: %v", name, err)
	}
	return c, lost, phone
}

// start has a desktop start a handoff for name.
func (e *env) start(name string) *rptest.Desktop {
	e.t.Helper()
	d, _, err := e.client().StartRecovery(name, name+"-laptop")
	if err != nil {
		e.t.Fatalf("start recovery for %s: %v", name, err)
	}
	return d
}

// nextEvent waits up to within for the stream's next status.
func nextEvent(t *testing.T, events <-chan api.RecoveryStatus, within time.Duration) api.RecoveryStatus {
	t.Helper()
	select {
	case st, ok := <-events:
		if !ok {
			t.Fatal("the events stream ended")
		}
		return st
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
	}
	return api.RecoveryStatus{}
}

// wantProblem fails unless r is status with the error code.
func wantProblem(t *testing.T, what string, r *rptest.Response, status int, code string) {
	t.Helper()
	if r == nil {
		t.Fatalf("%s: no response", what)
	}
	if r.Status != status || r.Problem.Error != code {
		t.Fatalf("%s: %d %+v, want %d %s", what, r.Status, r.Problem, status, code)
	}
}

// auditExport is the whole audit log, verified.
func auditExport(t *testing.T, e *env) ([]byte, []audit.Entry) {
	t.Helper()
	return rptest.AuditExport(t, e.admin)
}

// countActions counts the entries of action about subject (or by actor).
func countActions(entries []audit.Entry, action audit.Action, who string, details map[string]string) int {
	n := 0
	for _, en := range entries {
		if en.Action != action || (en.Subject != who && en.Actor != who) {
			continue
		}
		ok := true
		for k, v := range details {
			ok = ok && en.Details[k] == v
		}
		if ok {
			n++
		}
	}
	return n
}

// wantNoSecrets fails if any of secrets is in the audit export, the
// server's log or a notification.
func wantNoSecrets(t *testing.T, e *env, secrets ...string) {
	t.Helper()
	export, _ := auditExport(t, e)
	notes, _ := json.Marshal(e.notes.List())
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for where, b := range map[string][]byte{"audit log": export, "server log": []byte(e.logs.String()), "notifications": notes} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("a secret (%.6s...) is in the %s", s, where)
			}
		}
	}
}

// TestRecoveryQRHandoff is issue 7's whole QR flow, with a phone passkey
// as the phone: start, describe, approve (user verified), the desktop's
// events stream hears it within a second, redeem with the desktop's key,
// the recovery session enrolls one replacement and revokes the lost key,
// which can no longer sign in while the replacement can.
func TestRecoveryQRHandoff(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		alice, lost, phone := e.recoveryUser("alice")

		d := e.start("Alice")
		st := d.Start
		if len(st.Secret) < 43 || st.Number < 10 || st.Number > 99 || !regexp.MustCompile(`^[0-9A-Z]{4}-[0-9A-Z]{4}$`).MatchString(st.TypedCode) ||
			st.URL != testOrigin+"/r/"+st.SessionID+"#"+st.Secret || st.DesktopToken == "" || !st.ExpiresAt.Equal(e.clock.Now().Add(3*time.Minute)) {
			t.Fatalf("start: %+v", st)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		events, err := d.Events(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev := nextEvent(t, events, time.Second); ev.Status != "pending" || ev.Nonce != "" {
			t.Fatalf("first event %+v", ev)
		}

		p := d.PhoneFor(e.client())
		desc, _, err := p.Describe()
		if err != nil {
			t.Fatal(err)
		}
		if desc.Username != "alice" || desc.DesktopName != "Alice-laptop" || desc.DesktopIP != "127.0.0.1" ||
			len(desc.Candidates) != 3 || !slices.Contains(desc.Candidates, st.Number) || !desc.CreatedAt.Equal(e.clock.Now()) {
			t.Fatalf("describe: %+v", desc)
		}
		again, _, _ := p.Describe()
		if !slices.Equal(again.Candidates, desc.Candidates) {
			t.Fatalf("the candidates changed between two describes: %v, %v", desc.Candidates, again.Candidates)
		}

		approvedAt := time.Now()
		if _, err := p.Approve(phone, st.Number); err != nil {
			t.Fatalf("approve: %v", err)
		}
		ev := nextEvent(t, events, time.Second)
		if ev.Status != "approved" || ev.Nonce == "" {
			t.Fatalf("event after the approval %+v", ev)
		}
		t.Logf("approval to event: %v", time.Since(approvedAt))

		sess, _, err := d.Redeem(ev.Nonce)
		if err != nil {
			t.Fatalf("redeem: %v", err)
		}
		if sess.Scope != "recovery" || sess.User.Name != "alice" || !sess.ExpiresAt.Equal(e.clock.Now().Add(10*time.Minute)) {
			t.Fatalf("session %+v", sess)
		}
		if ev := nextEvent(t, events, time.Second); ev.Status != "redeemed" {
			t.Fatalf("event after the redeem %+v", ev)
		}
		if _, ok := <-events; ok {
			t.Fatal("the events stream goes on after the redeem")
		}

		rec := d.Client // holds the recovery session
		var keys api.Keys
		if _, err := rec.Do("GET", "/v1/me/keys", nil, &keys); err != nil || len(keys.Keys) != 2 {
			t.Fatalf("keys in recovery: %+v %v", keys, err)
		}
		replacement := e.newKey()
		k, err := rec.Register(replacement, "replacement")
		if err != nil {
			t.Fatalf("register the replacement: %v", err)
		}
		if _, err := rec.Register(e.newKey(), "second"); err == nil || !strings.Contains(err.Error(), "recovery_key_registered") {
			t.Fatalf("a second registration in one recovery: %v", err)
		}
		lostID := credentialID(t, alice, "alice's key")
		if r, _ := rec.Do("POST", "/v1/me/keys/"+lostID+"/revoke", api.RevokeKeyRequest{Reason: "lost"}, nil); r.Status != 200 {
			t.Fatalf("revoke the lost key: %d %+v", r.Status, r.Problem)
		}
		r, _ := rec.Do("POST", "/v1/me/keys/"+k.ID+"/revoke", api.RevokeKeyRequest{Reason: "lost"}, nil)
		wantProblem(t, "revoke the replacement in the same recovery", r, 409, "replacement_key")
		r, _ = rec.Do("PATCH", "/v1/me/keys/"+k.ID, api.RenameKeyRequest{Nickname: "x"}, nil)
		wantProblem(t, "rename in recovery", r, 403, "forbidden")
		r, _ = rec.Do("POST", "/v1/me/recovery-codes", nil, nil)
		wantProblem(t, "recovery codes in recovery", r, 403, "forbidden")

		// Discoverable: named, the sign-in would not even list it.
		if _, err := e.client().Login(lost, ""); err == nil || !strings.Contains(err.Error(), "key_revoked") {
			t.Fatalf("the lost key signed in: %v", err)
		}
		if _, err := e.client().Login(replacement, "alice"); err != nil {
			t.Fatalf("the replacement: %v", err)
		}
		// The recovery session ends after ten minutes.
		e.clock.Advance(10 * time.Minute)
		r, _ = rec.Do("GET", "/v1/me/keys", nil, nil)
		wantProblem(t, "recovery session after ten minutes", r, 401, "session_expired")

		_, entries := auditExport(t, e)
		for _, a := range []audit.Action{audit.ActionRecoveryRequested, audit.ActionRecoveryApproved, audit.ActionRecoveryRedeemed} {
			if n := countActions(entries, a, "alice", map[string]string{"id": st.SessionID, "method": "qr"}); n != 1 {
				t.Errorf("%d %s entries, want 1", n, a)
			}
		}
		if n := countActions(entries, audit.ActionCredentialRevoked, "alice", map[string]string{"scope": "recovery"}); n != 1 {
			t.Errorf("%d revocations in recovery audited, want 1", n)
		}
		for _, kind := range []server.NotificationKind{server.NotifyRecoveryRequested, server.NotifyRecoveryApproved, server.NotifyRecoveryRedeemed} {
			n := e.notes.WaitFor(t, "alice", kind)
			if n.DesktopName != "Alice-laptop" || n.IP != "127.0.0.1" || n.Time.IsZero() {
				t.Errorf("notification %+v", n)
			}
		}
		wantNoSecrets(t, e, st.Secret, st.DesktopToken, strings.ReplaceAll(st.TypedCode, "-", ""), st.TypedCode, ev.Nonce, sess.Token)
	})
}

// TestRecoveryAcrossInstances starts, answers and redeems a handoff on
// different instances of one database: the desktop's stream on one
// instance hears an approval made on another by polling.
func TestRecoveryAcrossInstances(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		_, _, phone := e.recoveryUser("bo")
		other := e.startInstance(openStore(t, e.dsn))
		d := e.start("bo")
		events, err := d.Events(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		nextEvent(t, events, time.Second)
		p := d.PhoneFor(&rptest.Client{BaseURL: other})
		approvedAt := time.Now()
		if _, err := p.Approve(phone, d.Start.Number); err != nil {
			t.Fatal(err)
		}
		ev := nextEvent(t, events, time.Second)
		if ev.Status != "approved" {
			t.Fatalf("event %+v", ev)
		}
		t.Logf("approval on another instance to event: %v", time.Since(approvedAt))
		d.Client = &rptest.Client{BaseURL: other}
		if _, _, err := d.Redeem(ev.Nonce); err != nil {
			t.Fatalf("redeem on the other instance: %v", err)
		}
	})
}

func TestRecoveryRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		_, _, phone := e.recoveryUser("carl")
		_, _, strangerPhone := e.recoveryUser("mallory")
		plain := e.newKey() // verifies no user
		carl := e.client()
		carl.Login(phone, "carl")
		if _, err := carl.Register(plain, "no UV"); err != nil {
			t.Fatal(err)
		}
		approved := func(t *testing.T) (*rptest.Desktop, api.RecoveryStatus) {
			d := e.start("carl")
			if _, err := d.PhoneFor(e.client()).Approve(phone, d.Start.Number); err != nil {
				t.Fatal(err)
			}
			st, _, err := d.Status("", 0)
			if err != nil || st.Status != "approved" {
				t.Fatalf("status %+v %v", st, err)
			}
			return d, st
		}
		status := func(t *testing.T, d *rptest.Desktop) string {
			st, _, err := d.Status("", 0)
			if err != nil {
				t.Fatal(err)
			}
			if st.Reason != "" {
				return st.Status + " for " + st.Reason
			}
			return st.Status
		}

		t.Run("ShouldStopTheSessionOnAWrongNumber", func(t *testing.T) {
			d := e.start("carl")
			events, _ := d.Events(t.Context())
			nextEvent(t, events, time.Second)
			p := d.PhoneFor(e.client())
			desc, _, _ := p.Describe()
			wrong := desc.Candidates[0]
			if wrong == d.Start.Number {
				wrong = desc.Candidates[1]
			}
			_, r, _ := p.Begin(wrong)
			wantProblem(t, "wrong number", r, 403, "wrong_number")
			if ev := nextEvent(t, events, time.Second); ev.Status != "refused" || ev.Reason != api.RefusedWrongNumber {
				t.Fatalf("event %+v, want refused for a wrong number", ev)
			}
			if s := status(t, d); s != "refused for wrong_number" {
				t.Errorf("status %s", s)
			}
			_, r, _ = p.Begin(d.Start.Number)
			wantProblem(t, "the right number after a wrong one", r, 409, "recovery_refused")
			_, r, _ = p.Describe()
			wantProblem(t, "describe after a wrong number", r, 409, "recovery_refused")
			_, entries := auditExport(t, e)
			if countActions(entries, audit.ActionRecoveryRefused, "carl", map[string]string{"id": d.Start.SessionID, "reason": "wrong_number"}) != 1 {
				t.Error("the wrong number is not audited")
			}
			e.notes.WaitFor(t, "carl", server.NotifyRecoveryRefused)
		})
		t.Run("ShouldStopTheSessionWhenThePhoneSaysNotMe", func(t *testing.T) {
			d := e.start("carl")
			if _, err := d.PhoneFor(e.client()).Client.Do("POST", "/v1/recovery/sessions/"+d.Start.SessionID+"/refuse",
				api.RecoveryProof{Secret: d.Start.Secret}, nil); err != nil {
				t.Fatal(err)
			}
			if s := status(t, d); s != "refused for denied_on_phone" {
				t.Fatalf("status %s", s)
			}
		})
		t.Run("ShouldExpireByTheServersClock", func(t *testing.T) {
			d := e.start("carl")
			events, _ := d.Events(t.Context())
			nextEvent(t, events, time.Second)
			for _, n := range e.notes.List() {
				if n.Kind == server.NotifyRecoveryExpired {
					t.Fatalf("an expiry notification before the expiry: %+v", n)
				}
			}
			e.clock.Advance(3*time.Minute + time.Second)
			if ev := nextEvent(t, events, time.Second); ev.Status != "expired" {
				t.Fatalf("event %+v", ev)
			}
			if n := e.notes.WaitFor(t, "carl", server.NotifyRecoveryExpired); n.DesktopName != "carl-laptop" {
				t.Errorf("expiry notification %+v", n)
			}
			_, r, _ := d.PhoneFor(e.client()).Describe()
			wantProblem(t, "describe after expiry", r, 410, "recovery_expired")
			_, r, _ = d.RedeemSigned("AAAA")
			wantProblem(t, "redeem after expiry", r, 410, "recovery_expired")
			status(t, d)
			_, entries := auditExport(t, e)
			if n := countActions(entries, audit.ActionRecoveryExpired, "carl", map[string]string{"id": d.Start.SessionID}); n != 1 {
				t.Errorf("expiry audited %d times, want once", n)
			}
		})
		t.Run("ShouldRefuseASecondApproval", func(t *testing.T) {
			d, _ := approved(t)
			_, r, _ := d.PhoneFor(e.client()).Begin(d.Start.Number)
			wantProblem(t, "second approval", r, 409, "recovery_approved")
		})
		t.Run("ShouldRefuseAReplayedFinishAndChangeNothing", func(t *testing.T) {
			d := e.start("carl")
			p := d.PhoneFor(e.client())
			b, _, err := p.Begin(d.Start.Number)
			if err != nil {
				t.Fatal(err)
			}
			cred, err := phone.Get(b.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			finish := mustJSON(api.RecoveryApproveFinishRequest{RecoveryProof: p.Proof, CeremonyID: b.CeremonyID, Credential: cred})
			path := "/v1/recovery/sessions/" + d.Start.SessionID + "/approve/finish"
			if r, err := p.Client.Raw("POST", path, finish); err != nil || r.Status != 200 {
				t.Fatalf("finish: %+v %v", r, err)
			}
			before, _, err := d.Status("", 0)
			if err != nil || before.Status != "approved" || before.Nonce == "" {
				t.Fatalf("status %+v %v", before, err)
			}
			r, _ := p.Client.Raw("POST", path, finish)
			wantProblem(t, "the same finish again", r, 409, "recovery_approved")
			if after, _, err := d.Status("", 0); err != nil || after != before {
				t.Fatalf("status after a replayed finish %+v %v, was %+v", after, err, before)
			}
			_, entries := auditExport(t, e)
			if n := countActions(entries, audit.ActionRecoveryApproved, "carl", map[string]string{"id": d.Start.SessionID}); n != 1 {
				t.Errorf("%d approvals audited, want 1", n)
			}
			if _, _, err := d.Redeem(before.Nonce); err != nil {
				t.Fatalf("redeem after a replayed finish: %v", err)
			}
		})
		t.Run("ShouldRefuseAReplayedRedeem", func(t *testing.T) {
			d, st := approved(t)
			sig, _ := d.Sign(d.Key, st.Nonce)
			if _, _, err := d.RedeemSigned(sig); err != nil {
				t.Fatal(err)
			}
			_, r, _ := d.RedeemSigned(sig)
			wantProblem(t, "replayed redeem", r, 409, "recovery_used")
			_, entries := auditExport(t, e)
			if n := countActions(entries, audit.ActionRecoveryFailed, "carl", map[string]string{"id": d.Start.SessionID, "reason": "redeem_replayed"}); n != 1 {
				t.Errorf("the replay is audited %d times as redeem_replayed, want once", n)
			}
		})
		t.Run("ShouldStopTheSessionOnARedeemSignedByAnotherKey", func(t *testing.T) {
			d, st := approved(t)
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			sig, _ := d.Sign(other, st.Nonce)
			_, r, _ := d.RedeemSigned(sig)
			wantProblem(t, "redeem signed by another key", r, 401, "bad_signature")
			_, r, _ = d.Redeem(st.Nonce)
			wantProblem(t, "redeem with the right key after a wrong one", r, 409, "recovery_refused")
			if s := status(t, d); s != "refused for bad_desktop_signature" {
				t.Errorf("status %s", s)
			}
			_, entries := auditExport(t, e)
			if countActions(entries, audit.ActionRecoveryRefused, "carl", map[string]string{"id": d.Start.SessionID, "reason": "bad_desktop_signature"}) != 1 {
				t.Error("the bad signature is not audited")
			}
		})
		t.Run("ShouldRefuseARedeemOfAnotherNonce", func(t *testing.T) {
			d, _ := approved(t)
			sig, _ := d.Sign(d.Key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
			_, r, _ := d.RedeemSigned(sig)
			wantProblem(t, "redeem of another nonce", r, 401, "bad_signature")
		})
		t.Run("ShouldRefuseARedeemBeforeTheApproval", func(t *testing.T) {
			d := e.start("carl")
			sig, _ := d.Sign(d.Key, "AAAA")
			_, r, _ := d.RedeemSigned(sig)
			wantProblem(t, "redeem before approval", r, 409, "recovery_not_approved")
			if s := status(t, d); s != "pending" {
				t.Fatalf("status %s after an early redeem", s)
			}
		})
		t.Run("ShouldRefuseARedeemAfterItsWindow", func(t *testing.T) {
			d, st := approved(t)
			e.clock.Advance(61 * time.Second)
			_, r, _ := d.Redeem(st.Nonce)
			wantProblem(t, "redeem after the window", r, 410, "recovery_expired")
		})
		t.Run("ShouldRefuseAWrongSecretAndLiveOn", func(t *testing.T) {
			d := e.start("carl")
			p := d.PhoneFor(e.client())
			wrong := []byte(d.Start.Secret)
			if wrong[0] == 'A' {
				wrong[0] = 'B'
			} else {
				wrong[0] = 'A'
			}
			p.Proof.Secret = string(wrong)
			_, r, _ := p.Describe()
			wantProblem(t, "wrong secret", r, 401, "bad_recovery_secret")
			_, r, _ = p.Begin(d.Start.Number)
			wantProblem(t, "begin with a wrong secret", r, 401, "bad_recovery_secret")
			p.Proof = api.RecoveryProof{Code: "0000-0000"}
			_, r, _ = p.Describe()
			wantProblem(t, "wrong typed code", r, 401, "bad_recovery_secret")
			p.Proof = api.RecoveryProof{Secret: d.Start.Secret, Code: d.Start.TypedCode}
			_, r, _ = p.Describe()
			wantProblem(t, "secret and code at once", r, 401, "bad_recovery_secret")
			_, entries := auditExport(t, e)
			for reason, want := range map[string]int{"wrong_secret": 2, "wrong_typed_value": 2} {
				if n := countActions(entries, audit.ActionRecoveryFailed, "carl", map[string]string{"id": d.Start.SessionID, "reason": reason}); n != want {
					t.Errorf("%d wrong proofs audited as %s, want %d", n, reason, want)
				}
			}
			if _, err := d.PhoneFor(e.client()).Approve(phone, d.Start.Number); err != nil {
				t.Fatalf("the right secret after wrong ones: %v", err)
			}
		})
		t.Run("ShouldDescribeAndApproveWithTheTypedCode", func(t *testing.T) {
			d := e.start("carl")
			p := d.PhoneFor(e.client())
			p.Proof = api.RecoveryProof{Code: strings.ToLower(strings.ReplaceAll(d.Start.TypedCode, "-", " "))}
			desc, _, err := p.Describe()
			if err != nil || desc.Username != "carl" {
				t.Fatalf("describe with the typed code: %+v %v", desc, err)
			}
			if _, err := p.Approve(phone, d.Start.Number); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("ShouldAnswerALongPollOnTheApproval", func(t *testing.T) {
			d := e.start("carl")
			type result struct {
				st  api.RecoveryStatus
				err error
				in  time.Duration
			}
			done := make(chan result, 1)
			go func() {
				start := time.Now()
				st, _, err := d.Status("pending", 10)
				done <- result{st, err, time.Since(start)}
			}()
			time.Sleep(50 * time.Millisecond)
			if _, err := d.PhoneFor(e.client()).Approve(phone, d.Start.Number); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-done:
				if r.err != nil || r.st.Status != "approved" || r.st.Nonce == "" {
					t.Fatalf("long poll: %+v %v", r.st, r.err)
				}
			case <-time.After(time.Second):
				t.Fatal("the long poll did not answer within a second of the approval")
			}
			start := time.Now()
			if st, _, err := d.Status("approved", 1); err != nil || st.Status != "approved" || time.Since(start) < 900*time.Millisecond {
				t.Fatalf("a long poll without a change: %+v %v after %v", st, err, time.Since(start))
			}
			_, r, _ := d.Status("", 31)
			wantProblem(t, "a wait over 30 s", r, 400, "bad_query")
		})
		t.Run("ShouldRefuseAWrongDesktopToken", func(t *testing.T) {
			d := e.start("carl")
			d.Start.DesktopToken = d.Start.Secret
			_, r, _ := d.Status("", 0)
			wantProblem(t, "status with the QR secret as desktop token", r, 401, "bad_desktop_token")
			if _, err := d.Events(t.Context()); err == nil || !strings.Contains(err.Error(), "bad_desktop_token") {
				t.Fatalf("events: %v", err)
			}
		})
		t.Run("ShouldRefuseAnotherUsersKeyAndLiveOn", func(t *testing.T) {
			d := e.start("carl")
			p := d.PhoneFor(e.client())
			b, _, err := p.Begin(d.Start.Number)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := p.Finish(strangerPhone, b)
			wantProblem(t, "another user's passkey", r, 401, "approval_failed")
			if s := status(t, d); s != "pending" {
				t.Fatalf("status %s", s)
			}
			// The failed assertion used up its ceremony.
			r, _ = p.Finish(phone, b)
			wantProblem(t, "the user's own passkey on the failed ceremony", r, 409, "ceremony_used")
			if _, err := p.Approve(phone, d.Start.Number); err != nil {
				t.Fatalf("then the user's own: %v", err)
			}
		})
		t.Run("ShouldRefuseAFinishOfAReplacedBegin", func(t *testing.T) {
			d := e.start("carl")
			p := d.PhoneFor(e.client())
			first, _, _ := p.Begin(d.Start.Number)
			second, _, _ := p.Begin(d.Start.Number)
			r, _ := p.Finish(phone, first)
			wantProblem(t, "finish of the replaced begin", r, 409, "approval_superseded")
			if _, err := p.Finish(phone, second); err != nil {
				t.Fatalf("finish of the latest begin: %v", err)
			}
		})
		t.Run("ShouldRequireUserVerification", func(t *testing.T) {
			d := e.start("carl")
			p := d.PhoneFor(e.client())
			b, _, err := p.Begin(d.Start.Number)
			if err != nil {
				t.Fatal(err)
			}
			var opts struct {
				UserVerification string `json:"userVerification"`
				AllowCredentials []any  `json:"allowCredentials"`
			}
			json.Unmarshal(b.PublicKey, &opts)
			if opts.UserVerification != "required" || len(opts.AllowCredentials) != 0 {
				t.Fatalf("options %s", b.PublicKey)
			}
			// A key of carl's, but one that did not verify its user.
			allowed := b
			allowed.PublicKey, _ = json.Marshal(map[string]any{"challenge": mustChallenge(t, b.PublicKey), "rpId": "localhost",
				"allowCredentials": []map[string]any{{"type": "public-key", "id": credentialID(t, carl, "no UV")}}})
			r, _ := p.Finish(plain, allowed)
			wantProblem(t, "an assertion without user verification", r, 401, "approval_failed")
		})
		wantNoSecrets(t, e, carl.Token)
	})
}

// mustChallenge is the challenge of request options.
func mustChallenge(t *testing.T, options []byte) string {
	t.Helper()
	var o struct {
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.Challenge == "" {
		t.Fatalf("options %s: %v", options, err)
	}
	return o.Challenge
}

// credentialID is the ID of c's key named nickname.
func credentialID(t *testing.T, c *rptest.Client, nickname string) string {
	t.Helper()
	var keys api.Keys
	if _, err := c.Do("GET", "/v1/me/keys", nil, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.Keys {
		if k.Nickname == nickname {
			return k.ID
		}
	}
	t.Fatalf("no key %q", nickname)
	return ""
}

// shape is a JSON value's structure: its keys and the kinds of values.
func shape(t *testing.T, b []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+":"+strings.Split(strings.TrimPrefix(strings.TrimPrefix(jsonKind(m[k]), "[]"), "*"), ".")[0])
	}
	return strings.Join(out, ",")
}

func jsonKind(v any) string {
	switch v := v.(type) {
	case string:
		switch {
		case regexp.MustCompile(`^[0-9A-Z]{4}-[0-9A-Z]{4}$`).MatchString(v):
			return "typedcode"
		case regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(v):
			return "secret256"
		case regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(v):
			return "id128"
		}
		if _, err := time.Parse(time.RFC3339, v); err == nil {
			return "time"
		}
		return "string"
	case float64:
		return "number"
	case []any:
		return "array" + string(rune('0'+len(v)))
	}
	return "other"
}

// TestRecoveryDecoy: a handoff for a name without a usable account
// answers as a real one, in shape and in time, every step until the
// approval, which no key can give.
func TestRecoveryDecoy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		_, _, phone := e.recoveryUser("dana")
		_, _, attacker := e.recoveryUser("eve")
		e.user("dis")
		e.admin.Do("PUT", "/v1/users/dis/disabled", api.SetDisabledRequest{Disabled: true}, nil)
		raw := func(name string) (*rptest.Desktop, *rptest.Response) {
			d, r, err := e.client().StartRecovery(name, "laptop")
			if err != nil {
				t.Fatalf("start for %s: %v", name, err)
			}
			return d, r
		}
		real, realResp := raw("dana")
		for _, name := range []string{"nobody", "dis"} {
			t.Run(name, func(t *testing.T) {
				decoy, decoyResp := raw(name)
				if realResp.Status != decoyResp.Status || shape(t, realResp.Body) != shape(t, decoyResp.Body) {
					t.Fatalf("start answers differ:\n%d %s\n%d %s", realResp.Status, realResp.Body, decoyResp.Status, decoyResp.Body)
				}
				dr, _ := e.client().Raw("POST", "/v1/recovery/sessions/"+real.Start.SessionID+"/describe", mustJSON(api.RecoveryProof{Secret: real.Start.Secret}))
				dd, _ := e.client().Raw("POST", "/v1/recovery/sessions/"+decoy.Start.SessionID+"/describe", mustJSON(api.RecoveryProof{Secret: decoy.Start.Secret}))
				if dr.Status != 200 || dd.Status != 200 || shape(t, dr.Body) != shape(t, dd.Body) {
					t.Fatalf("describe answers differ:\n%d %s\n%d %s", dr.Status, dr.Body, dd.Status, dd.Body)
				}
				p := decoy.PhoneFor(e.client())
				b, _, err := p.Begin(decoy.Start.Number)
				if err != nil {
					t.Fatalf("begin on a decoy: %v", err)
				}
				// No credentials listed, user verification required: as for
				// a real account (ShouldRequireUserVerification).
				var opts struct {
					UserVerification string `json:"userVerification"`
					AllowCredentials []any  `json:"allowCredentials"`
				}
				if err := json.Unmarshal(b.PublicKey, &opts); err != nil || opts.UserVerification != "required" || len(opts.AllowCredentials) != 0 {
					t.Fatalf("a decoy's request options %s", b.PublicKey)
				}
				rb, _, err := real.PhoneFor(e.client()).Begin(real.Start.Number)
				if err != nil || shape(t, rb.PublicKey) != shape(t, b.PublicKey) {
					t.Fatalf("begin answers differ:\n%s\n%s (%v)", rb.PublicKey, b.PublicKey, err)
				}
				for _, k := range []*rptest.Key{attacker, phone} {
					r, _ := p.Finish(k, b)
					wantProblem(t, "approving a decoy", r, 401, "approval_failed")
					if b, _, err = p.Begin(decoy.Start.Number); err != nil {
						t.Fatal(err)
					}
				}
				if st, _, _ := decoy.Status("", 0); st.Status != "pending" {
					t.Fatalf("decoy status %+v", st)
				}
				_, entries := auditExport(t, e)
				if countActions(entries, audit.ActionRecoveryRequested, name, map[string]string{"id": decoy.Start.SessionID}) != 1 {
					t.Error("the decoy's request is not audited")
				}
				// The real account's owner is told; nobody is, for a decoy.
				e.notes.WaitFor(t, "dana", server.NotifyRecoveryRequested)
				for _, n := range e.notes.List() {
					if n.User == name {
						t.Errorf("a notification for a decoy: %+v", n)
					}
				}
			})
		}
		t.Run("ShouldTakeAsLongAsARealOne", func(t *testing.T) {
			// Interleaved, so that drift hits both alike; medians, so that
			// a pause does not decide.
			var known, unknown []time.Duration
			for i := range 15 {
				for _, name := range []string{"dana", "nobody" + string(rune('a'+i))} {
					start := time.Now()
					raw(name)
					if name == "dana" {
						known = append(known, time.Since(start))
					} else {
						unknown = append(unknown, time.Since(start))
					}
				}
			}
			mk, mu := median(known), median(unknown)
			t.Logf("median start: known %v, unknown %v", mk, mu)
			if diff := (mk - mu).Abs(); diff > max(10*time.Millisecond, min(mk, mu)) {
				t.Errorf("a known account's start takes %v, an unknown one's %v: tells them apart", mk, mu)
			}
		})
	})
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// forwardedFor is a proxy's transport: every request says it is from
// addr (X-Forwarded-For), which a server that trusts the loopback proxy
// takes as the client's address.
type forwardedFor struct{ addr string }

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return http.DefaultTransport.RoundTrip(r)
}

// retryAfter posts body to url and returns the answer's status and
// Retry-After header.
func retryAfter(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestRecoveryRateLimits: starting handoffs is limited per name and per
// address, answering them per account and per address, in the
// database, with Retry-After. The mechanism is tested with small bursts
// and two client addresses (the server trusts the loopback as a proxy,
// so X-Forwarded-For names the client); the defaults on their own.
func TestRecoveryRateLimits(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	e.recoveryUser("fred")
	cfg := e.cfg
	cfg.RecoveryRate, cfg.RecoveryBurst = 1.0/30, 2
	cfg.AccountRate, cfg.AccountBurst = 1.0/6, 3
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c := &rptest.Client{BaseURL: ts.URL}
	from := func(addr string) *rptest.Client {
		return &rptest.Client{BaseURL: ts.URL, HTTP: &http.Client{Transport: forwardedFor{addr}}}
	}
	start := func(name string) *rptest.Response {
		_, r, _ := c.StartRecovery(name, "laptop")
		return r
	}
	t.Run("ShouldLimitStartsPerNameAndAddress", func(t *testing.T) {
		for i := range 2 {
			if r := start("fred"); r.Status != 201 {
				t.Fatalf("start %d: %d %+v", i, r.Status, r.Problem)
			}
		}
		r := start("FRED")
		wantProblem(t, "third start", r, 429, "rate_limited")
		// The address's budget is spent too: another name is refused.
		wantProblem(t, "another name from the same address", start("gina"), 429, "rate_limited")
		e.clock.Advance(30 * time.Second)
		if r := start("gina"); r.Status != 201 {
			t.Fatalf("after waiting: %d %+v", r.Status, r.Problem)
		}
	})
	t.Run("ShouldLimitAnswersPerAccountWithRetryAfter", func(t *testing.T) {
		e.clock.Advance(time.Hour)
		d, _, err := c.StartRecovery("fred", "laptop")
		if err != nil {
			t.Fatal(err)
		}
		p := d.PhoneFor(c)
		p.Proof = api.RecoveryProof{Code: "0000-0000"}
		for i := range 3 {
			_, r, _ := p.Describe()
			wantProblem(t, "guess", r, 401, "bad_recovery_secret")
			_ = i
		}
		req, _ := http.NewRequest("POST", ts.URL+"/v1/recovery/sessions/"+d.Start.SessionID+"/describe", bytes.NewReader(mustJSON(p.Proof)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "6" {
			t.Fatalf("fourth guess: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
	t.Run("ShouldLimitStartsPerNameFromAnyAddress", func(t *testing.T) {
		e.clock.Advance(time.Hour)
		a, b := from("198.51.100.7"), from("203.0.113.9")
		for i := range 2 {
			if _, r, err := a.StartRecovery("fred", "laptop"); err != nil {
				t.Fatalf("start %d from one address: %d %+v", i, r.Status, r.Problem)
			}
		}
		_, r, _ := b.StartRecovery("fred", "laptop")
		wantProblem(t, "a third start for the name from another address", r, 429, "rate_limited")
		d, r, err := b.StartRecovery("gina", "laptop")
		if err != nil {
			t.Fatalf("another name from the other address: %d %+v", r.Status, r.Problem)
		}
		if desc, _, err := d.PhoneFor(c).Describe(); err != nil || desc.DesktopIP != "203.0.113.9" {
			t.Fatalf("the server did not take the forwarded address: %+v %v", desc, err)
		}
		_, r, _ = a.StartRecovery("hank", "laptop")
		wantProblem(t, "another name from the first address", r, 429, "rate_limited")
	})
	t.Run("ShouldLimitAnswersPerAccountFromAnyAddressAndInstance", func(t *testing.T) {
		e.clock.Advance(time.Hour)
		fred, _, err := c.StartRecovery("fred", "laptop")
		if err != nil {
			t.Fatal(err)
		}
		gina, _, err := c.StartRecovery("gina", "laptop")
		if err != nil {
			t.Fatal(err)
		}
		a, b := from("198.51.100.7"), from("203.0.113.9")
		guesser := fred.PhoneFor(a)
		guesser.Proof = api.RecoveryProof{Code: "0000-0000"}
		for range 3 {
			_, r, _ := guesser.Describe()
			wantProblem(t, "guess", r, 401, "bad_recovery_secret")
		}
		_, r, _ := fred.PhoneFor(b).Describe()
		wantProblem(t, "the right secret for the account from another address", r, 429, "rate_limited")
		other := httptest.NewServer(newServer(t, cfg).Handler())
		defer other.Close()
		_, r, _ = fred.PhoneFor(&rptest.Client{BaseURL: other.URL}).Describe()
		wantProblem(t, "the right secret for the account at another instance", r, 429, "rate_limited")
		if _, r, err := gina.PhoneFor(b).Describe(); err != nil {
			t.Fatalf("another account from the other address: %d %+v", r.Status, r.Problem)
		}
		_, r, _ = gina.PhoneFor(a).Describe()
		wantProblem(t, "another account from the guessing address", r, 429, "rate_limited")
	})
	t.Run("ShouldHoldTheDefaults", func(t *testing.T) {
		cfg := e.cfg
		cfg.RecoveryRate, cfg.RecoveryBurst, cfg.AccountRate, cfg.AccountBurst = 0, 0, 0, 0
		ts := httptest.NewServer(newServer(t, cfg).Handler())
		defer ts.Close()
		e.clock.Advance(time.Hour)
		c := &rptest.Client{BaseURL: ts.URL}
		var d *rptest.Desktop
		for i := range 5 {
			var (
				r   *rptest.Response
				err error
			)
			if d, r, err = c.StartRecovery("fred", "laptop"); err != nil {
				t.Fatalf("start %d: %d %+v", i, r.Status, r.Problem)
			}
		}
		pub, err := rptest.DesktopPublicKey(d.Key)
		if err != nil {
			t.Fatal(err)
		}
		start := mustJSON(api.RecoveryStartRequest{Username: "fred", DesktopName: "laptop", DesktopPublicKey: pub})
		if status, after := retryAfter(t, ts.URL+"/v1/recovery/sessions", start); status != 429 || after != "30" {
			t.Fatalf("sixth start: %d, Retry-After %q; want 429 after 30 s", status, after)
		}
		p := d.PhoneFor(c)
		p.Proof = api.RecoveryProof{Code: "0000-0000"}
		for range 10 {
			_, r, _ := p.Describe()
			wantProblem(t, "guess", r, 401, "bad_recovery_secret")
		}
		if status, after := retryAfter(t, ts.URL+"/v1/recovery/sessions/"+d.Start.SessionID+"/describe", mustJSON(p.Proof)); status != 429 || after != "6" {
			t.Fatalf("eleventh guess: %d, Retry-After %q; want 429 after 6 s", status, after)
		}
	})
}

// newServer is a server instance with cfg.
func newServer(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRecoveryCodes: ten distinct one-time codes, shown once and stored
// as argon2id hashes; a used code is refused, a new set invalidates the
// old, guessing is throttled.
func TestRecoveryCodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		e.admin.Do("POST", "/v1/users", api.CreateUserRequest{Name: "hal"}, nil)
		hal := e.client()
		hal.Redeem("hal", e.grant("hal"))
		first := e.newKey()
		k, err := hal.Register(first, "first")
		if err != nil || !k.RecoveryCodesAdvised {
			t.Fatalf("the first key's registration does not advise recovery codes: %+v %v", k, err)
		}
		hal.Login(first, "hal")
		if k, err := hal.Register(e.newKey(), "second"); err != nil || k.RecoveryCodesAdvised {
			t.Fatalf("the second key's registration advises recovery codes: %+v %v", k, err)
		}
		var codes api.RecoveryCodes
		if _, err := hal.Do("POST", "/v1/me/recovery-codes", nil, &codes); err != nil {
			t.Fatal(err)
		}
		format := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$`)
		seen := map[string]bool{}
		for _, c := range codes.Codes {
			if !format.MatchString(c) || seen[c] {
				t.Fatalf("code %q (repeated: %v)", c, seen[c])
			}
			seen[c] = true
		}
		if len(seen) != 10 {
			t.Fatalf("%d codes", len(seen))
		}
		var status api.RecoveryCodesStatus
		if _, err := hal.Do("GET", "/v1/me/recovery-codes", nil, &status); err != nil || status.Remaining != 10 || status.Total != 10 {
			t.Fatalf("status %+v %v", status, err)
		}

		t.Run("ShouldStoreOnlyArgon2idHashes", func(t *testing.T) {
			u, _ := e.store.UserByName(t.Context(), "hal")
			stored, err := e.store.RecoveryCodes(t.Context(), u.ID)
			if err != nil || len(stored) != 10 {
				t.Fatalf("%d stored, %v", len(stored), err)
			}
			for _, s := range stored {
				if !strings.HasPrefix(s.Hash, "$argon2id$v=19$m=8192,t=2,p=1$") || len(s.Lookup) != 8 {
					t.Errorf("hash %q, lookup %x", s.Hash, s.Lookup)
				}
				for _, c := range codes.Codes {
					for _, form := range []string{c, strings.ReplaceAll(c, "-", "")} {
						if strings.Contains(s.Hash, form) || bytes.Contains(s.Lookup, []byte(form)) {
							t.Fatal("a recovery code is stored in clear")
						}
					}
				}
			}
			if strings.HasPrefix(e.dsn, "sqlite:") {
				// Every byte the database wrote, the write-ahead log's too.
				var db []byte
				for _, suffix := range []string{"", "-wal"} {
					b, _ := os.ReadFile(strings.TrimPrefix(e.dsn, "sqlite:") + suffix)
					db = append(db, b...)
				}
				if len(db) == 0 {
					t.Fatal("no database file read")
				}
				for _, c := range codes.Codes {
					if bytes.Contains(db, []byte(c)) || bytes.Contains(db, []byte(strings.ReplaceAll(c, "-", ""))) {
						t.Fatalf("a recovery code is in the database file")
					}
				}
			}
		})
		redeem := func(name, code string) (*rptest.Response, *rptest.Client) {
			c := e.client()
			var sess api.Session
			r, _ := c.Do("POST", "/v1/recovery/codes/redeem", api.RecoveryCodeRedeemRequest{Username: name, Code: code}, &sess)
			c.Token = sess.Token
			return r, c
		}
		// ran are the subtests that ran to their end: the audit check at
		// the end counts their steps (a -run pattern may select others).
		ran := map[string]bool{}
		t.Run("ShouldRedeemACodeOnceForARecoverySession", func(t *testing.T) {
			typed := strings.ToLower(strings.ReplaceAll(codes.Codes[0], "-", " "))
			r, rec := redeem("Hal", typed)
			if r.Status != 200 {
				t.Fatalf("redeem: %d %+v", r.Status, r.Problem)
			}
			var me api.Me
			if _, err := rec.Do("GET", "/v1/me", nil, &me); err != nil || me.Scope != "recovery" {
				t.Fatalf("me %+v %v", me, err)
			}
			r, _ = redeem("hal", codes.Codes[0])
			wantProblem(t, "reuse", r, 401, "recovery_code_used")
			r, _ = redeem("root", codes.Codes[1])
			wantProblem(t, "another user's code", r, 401, "bad_recovery_code")
			hal.Do("GET", "/v1/me/recovery-codes", nil, &status)
			if status.Remaining != 9 {
				t.Fatalf("remaining %d", status.Remaining)
			}
			e.notes.WaitFor(t, "hal", server.NotifyRecoveryCodeUsed)
			ran["redeem"] = true
		})
		t.Run("ShouldInvalidateTheOldSetOnRegeneration", func(t *testing.T) {
			var fresh api.RecoveryCodes
			if _, err := hal.Do("POST", "/v1/me/recovery-codes", nil, &fresh); err != nil {
				t.Fatal(err)
			}
			r, _ := redeem("hal", codes.Codes[2])
			wantProblem(t, "a code of the old set", r, 401, "bad_recovery_code")
			if r, _ := redeem("hal", fresh.Codes[9]); r.Status != 200 {
				t.Fatalf("a code of the new set: %d %+v", r.Status, r.Problem)
			}
			wantNoSecrets(t, e, append(append([]string{}, codes.Codes...), fresh.Codes...)...)
			ran["regenerate"] = true
		})
		t.Run("ShouldNeedAFreshSignInToGenerate", func(t *testing.T) {
			e.clock.Advance(6 * time.Minute)
			r, _ := hal.Do("POST", "/v1/me/recovery-codes", nil, nil)
			wantProblem(t, "generate on a stale session", r, 403, "step_up_required")
		})
		if !ran["redeem"] || !ran["regenerate"] {
			return
		}
		_, entries := auditExport(t, e)
		if countActions(entries, audit.ActionRecoveryCodesGenerated, "hal", nil) != 2 ||
			countActions(entries, audit.ActionRecoveryRedeemed, "hal", map[string]string{"method": "recovery_code"}) != 2 ||
			countActions(entries, audit.ActionRecoveryFailed, "hal", map[string]string{"method": "recovery_code", "reason": "used"}) != 1 {
			t.Error("the recovery code steps are not all audited")
		}
	})
}

// TestRecoveryCodeGuessingIsThrottled: per account and per address, in
// the database. The server trusts the loopback as a proxy, so that a
// guess can come from another address (X-Forwarded-For).
func TestRecoveryCodeGuessingIsThrottled(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	e.user("ida")
	cfg := e.cfg
	cfg.AccountRate, cfg.AccountBurst = 1.0/6, 3
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c := &rptest.Client{BaseURL: ts.URL}
	elsewhere := &rptest.Client{BaseURL: ts.URL, HTTP: &http.Client{Transport: forwardedFor{"203.0.113.9"}}}
	guessFrom := func(c *rptest.Client, name string) *rptest.Response {
		r, _ := c.Do("POST", "/v1/recovery/codes/redeem", api.RecoveryCodeRedeemRequest{Username: name, Code: "00000-00000-00000-00000"}, nil)
		return r
	}
	guess := func(name string) *rptest.Response { return guessFrom(c, name) }
	for i := range 3 {
		wantProblem(t, "guess", guess("ida"), 401, "bad_recovery_code")
		_ = i
	}
	wantProblem(t, "fourth guess at the account", guess("ida"), 429, "rate_limited")
	wantProblem(t, "a guess at another account from the same address", guess("root"), 429, "rate_limited")
	wantProblem(t, "a guess at the account from another address", guessFrom(elsewhere, "ida"), 429, "rate_limited")
	wantProblem(t, "a guess at another account from another address", guessFrom(elsewhere, "root"), 401, "bad_recovery_code")
	e.clock.Advance(6 * time.Second)
	wantProblem(t, "after waiting", guess("ida"), 401, "bad_recovery_code")
}

// TestRecoveryGrants: helpdesk-assisted recovery with the identity
// checklist, and four eyes.
func TestRecoveryGrants(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn func(t testing.TB) string) {
		e := newEnv(t, dsn)
		hana, _ := e.user("hana", "helpdesk")
		hugo, _ := e.user("hugo", "helpdesk")
		louFull, lost := e.user("lou")
		all := []string{"photo-id", "callback-known-number", "manager-confirmation"}
		var list api.RecoveryChecklist
		if _, err := hana.Do("GET", "/v1/recovery/checklist", nil, &list); err != nil || !slices.Equal(list.Items, all) || list.FourEyes {
			t.Fatalf("checklist %+v %v", list, err)
		}
		issue := func(c *rptest.Client, name string, req api.IssueRecoveryGrantRequest) (*rptest.Response, api.RecoveryGrant) {
			var g api.RecoveryGrant
			r, _ := c.Do("POST", "/v1/users/"+name+"/recovery-grants", req, &g)
			return r, g
		}
		redeem := func(code string) (*rptest.Response, *rptest.Client) {
			c := e.client()
			var sess api.Session
			r, _ := c.Do("POST", "/v1/grants/redeem", api.GrantRedeemRequest{Username: "lou", Code: code}, &sess)
			c.Token = sess.Token
			return r, c
		}
		r, _ := issue(hana, "lou", api.IssueRecoveryGrantRequest{Verification: all[:2]})
		wantProblem(t, "an incomplete checklist", r, 400, "incomplete_verification")
		r, _ = issue(hana, "lou", api.IssueRecoveryGrantRequest{Verification: append(all, "vibes")})
		wantProblem(t, "an unknown checklist item", r, 400, "bad_verification")
		r, _ = issue(hana, "hugo", api.IssueRecoveryGrantRequest{Verification: all})
		wantProblem(t, "a grant for another helpdesk member", r, 403, "admin_only")
		r, _ = issue(hana, "root", api.IssueRecoveryGrantRequest{Verification: all})
		wantProblem(t, "a grant for an admin", r, 403, "admin_only")
		r, _ = issue(louFull, "lou", api.IssueRecoveryGrantRequest{Verification: all})
		wantProblem(t, "a grant by a user without a helpdesk role", r, 403, "forbidden")

		r, g := issue(hana, "lou", api.IssueRecoveryGrantRequest{Verification: all, Note: "passport seen, called back on +1 555 0100"})
		if r.Status != 201 || g.Code == "" || g.Pending || !slices.Equal(g.Verification, all) || g.IssuedBy != "hana" ||
			!g.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
			t.Fatalf("issue: %d %+v", r.Status, g)
		}
		if n := e.notes.WaitFor(t, "lou", server.NotifyRecoveryGrantIssued); n.IP != "127.0.0.1" {
			t.Errorf("notification of the grant %+v", n)
		}
		r, rec := redeem(g.Code)
		if r.Status != 200 {
			t.Fatalf("redeem: %d %+v", r.Status, r.Problem)
		}
		r, _ = redeem(g.Code)
		wantProblem(t, "a second redemption of the grant", r, 401, "bad_code")
		var me api.Me
		rec.Do("GET", "/v1/me", nil, &me)
		if me.Scope != "recovery" {
			t.Fatalf("scope %q", me.Scope)
		}
		replacement := e.newKey()
		if _, err := rec.Register(replacement, "replacement"); err != nil {
			t.Fatal(err)
		}
		lostID := ""
		var keys api.Keys
		rec.Do("GET", "/v1/me/keys", nil, &keys)
		for _, k := range keys.Keys {
			if k.Nickname != "replacement" {
				lostID = k.ID
			}
		}
		if r, _ := rec.Do("POST", "/v1/me/keys/"+lostID+"/revoke", api.RevokeKeyRequest{Reason: "lost"}, nil); r.Status != 200 {
			t.Fatalf("revoke the lost key: %d %+v", r.Status, r.Problem)
		}
		if _, err := e.client().Login(lost, "lou"); err == nil {
			t.Fatal("the lost key signed in")
		}

		t.Run("ShouldNeedAFullSessionToIssue", func(t *testing.T) {
			// An admin may issue for a helpdesk member (and for an admin,
			// themselves included).
			r, hg := issue(e.admin, "hana", api.IssueRecoveryGrantRequest{Verification: all})
			if r.Status != 201 {
				t.Fatalf("an admin's grant for a helpdesk member: %d %+v", r.Status, r.Problem)
			}
			if r, _ := issue(e.admin, "root", api.IssueRecoveryGrantRequest{Verification: all}); r.Status != 201 {
				t.Fatalf("an admin's grant for themselves: %d %+v", r.Status, r.Problem)
			}
			// hana, in a recovery session of her own and in a
			// registration session, is no helpdesk member.
			inRecovery := e.client()
			if _, err := inRecovery.Redeem("hana", hg.Code); err != nil {
				t.Fatal(err)
			}
			var enroll api.Grant
			if _, err := e.admin.Do("POST", "/v1/users/hana/grants", api.IssueGrantRequest{}, &enroll); err != nil {
				t.Fatal(err)
			}
			inRegistration := e.client()
			if _, err := inRegistration.Redeem("hana", enroll.Code); err != nil {
				t.Fatal(err)
			}
			for scope, c := range map[string]*rptest.Client{"recovery": inRecovery, "register": inRegistration} {
				var me api.Me
				if _, err := c.Do("GET", "/v1/me", nil, &me); err != nil || me.Scope != scope {
					t.Fatalf("hana's session %+v %v, want scope %s", me, err, scope)
				}
				r, _ := issue(c, "lou", api.IssueRecoveryGrantRequest{Verification: all})
				wantProblem(t, "a grant from a "+scope+" session", r, 403, "forbidden")
			}
		})
		t.Run("ShouldExpire", func(t *testing.T) {
			r, g := issue(hana, "lou", api.IssueRecoveryGrantRequest{Verification: all, TTLSeconds: 60})
			if r.Status != 201 || !g.ExpiresAt.Equal(e.clock.Now().Add(time.Minute)) {
				t.Fatalf("issue: %d %+v", r.Status, g)
			}
			e.clock.Advance(61 * time.Second)
			r, _ = redeem(g.Code)
			wantProblem(t, "an expired grant", r, 401, "bad_code")
			_, entries := auditExport(t, e)
			if n := countActions(entries, audit.ActionLoginFailed, "lou", map[string]string{"method": "enrollment_grant", "reason": "expired"}); n != 1 {
				t.Errorf("%d redemptions of an expired grant audited as expired, want 1", n)
			}
		})
		t.Run("ShouldRevokeTheLastKeyBeforeTheReplacement", func(t *testing.T) {
			_, only := e.user("max")
			r, g := issue(hana, "max", api.IssueRecoveryGrantRequest{Verification: all})
			if r.Status != 201 {
				t.Fatalf("issue: %d %+v", r.Status, r.Problem)
			}
			c := e.client()
			if _, err := c.Redeem("max", g.Code); err != nil {
				t.Fatal(err)
			}
			var keys api.Keys
			c.Do("GET", "/v1/me/keys", nil, &keys)
			if r, _ := c.Do("POST", "/v1/me/keys/"+keys.Keys[0].ID+"/revoke", api.RevokeKeyRequest{Reason: "stolen"}, nil); r.Status != 200 {
				t.Fatalf("revoke the only key in recovery: %d %+v", r.Status, r.Problem)
			}
			replacement := e.newKey()
			if _, err := c.Register(replacement, "replacement"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.client().Login(only, ""); err == nil {
				t.Fatal("the stolen key signed in")
			}
			if _, err := e.client().Login(replacement, "max"); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("ShouldWaitForASecondHelpdeskMemberUnderFourEyes", func(t *testing.T) {
			if r, _ := e.admin.Do("PUT", "/v1/policy", api.Policy{RecoveryFourEyes: true}, nil); r.Status != 200 {
				t.Fatalf("policy: %d %+v", r.Status, r.Problem)
			}
			var p api.Policy
			e.admin.Do("GET", "/v1/policy", nil, &p)
			if !p.RecoveryFourEyes {
				t.Fatal("the policy did not keep recoveryFourEyes")
			}
			time.Sleep(e.cfg.PolicyTTL)
			r, g := issue(hana, "lou", api.IssueRecoveryGrantRequest{Verification: all})
			if r.Status != 201 || !g.Pending {
				t.Fatalf("issue under four eyes: %d %+v", r.Status, g)
			}
			r, _ = redeem(g.Code)
			wantProblem(t, "redeem a pending grant", r, 403, "grant_pending")
			r, _ = hana.Do("POST", "/v1/recovery-grants/"+g.ID+"/approve", nil, nil)
			wantProblem(t, "self-approval", r, 403, "self_approval")
			r, _ = hana.Do("POST", "/v1/recovery-grants/nope/approve", nil, nil)
			wantProblem(t, "approve an unknown grant", r, 404, "grant_not_found")
			var approved api.RecoveryGrant
			if _, err := hugo.Do("POST", "/v1/recovery-grants/"+g.ID+"/approve", nil, &approved); err != nil || approved.Pending ||
				approved.ApprovedBy != "hugo" || approved.Code != "" {
				t.Fatalf("approve: %+v %v", approved, err)
			}
			r, _ = e.admin.Do("POST", "/v1/recovery-grants/"+g.ID+"/approve", nil, nil)
			wantProblem(t, "a second approval", r, 409, "already_approved")
			if r, _ := redeem(g.Code); r.Status != 200 {
				t.Fatalf("redeem once approved: %d %+v", r.Status, r.Problem)
			}
			_, entries := auditExport(t, e)
			if countActions(entries, audit.ActionRecoveryApproved, "lou", map[string]string{"id": g.ID, "method": "helpdesk", "issuer": "hana"}) != 1 {
				t.Error("the approval is not audited")
			}
			if countActions(entries, audit.ActionRecoveryRedeemed, "lou", map[string]string{"id": g.ID, "approver": "hugo"}) != 1 {
				t.Error("the redemption is not audited with its approver")
			}
			e.notes.WaitFor(t, "lou", server.NotifyRecoveryGrantApproved)
		})
		_, entries := auditExport(t, e)
		if countActions(entries, audit.ActionGrantIssued, "lou",
			map[string]string{"kind": "recovery", "verification": strings.Join(all, ","), "note": "passport seen, called back on +1 555 0100"}) != 1 {
			t.Error("the grant's checklist is not audited")
		}
		issued := 0
		for _, en := range entries {
			if en.Action == audit.ActionGrantIssued && en.Details["id"] == g.ID {
				issued++
				if en.Actor != "hana" || en.ActorRole != audit.RoleHelpdesk || en.Subject != "lou" {
					t.Errorf("the grant's issue is audited as by %s (%s) for %s, want hana (helpdesk) for lou", en.Actor, en.ActorRole, en.Subject)
				}
			}
		}
		if issued != 1 {
			t.Errorf("the grant's issue is audited %d times, want once", issued)
		}
		if n := countActions(entries, audit.ActionLoginFailed, "lou", map[string]string{"method": "enrollment_grant", "reason": "used_up"}); n != 1 {
			t.Errorf("%d second redemptions audited as used_up, want 1", n)
		}
		wantNoSecrets(t, e, g.Code, strings.ReplaceAll(g.Code, "-", ""))
	})
}

// TestRecoveryPage: the page and its script come from the RP with a
// strict Content-Security-Policy and nothing from anywhere else.
func TestRecoveryPage(t *testing.T) {
	e := newEnv(t, backends[0].dsn)
	d := e.start("root")
	external := regexp.MustCompile(`(?i)https?:|["'(=]\s*//|\bsrc\s*=\s*["']?[a-z]+:|@import`)
	inline := regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]|<style|\sstyle\s*=|\son[a-z]+\s*=|javascript:`)
	for _, tt := range []struct{ path, contentType string }{
		{"/r/" + d.Start.SessionID, "text/html; charset=utf-8"},
		{"/r/app.js", "text/javascript; charset=utf-8"},
		{"/r/style.css", "text/css; charset=utf-8"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(e.url + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			h := resp.Header
			for name, want := range map[string]string{
				"Content-Type":            tt.contentType,
				"Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-store",
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
			} {
				if got := h.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			if resp.StatusCode != 200 || body.Len() == 0 {
				t.Fatalf("%d, %d bytes", resp.StatusCode, body.Len())
			}
			if m := external.Find(body.Bytes()); m != nil {
				t.Errorf("an external URL: %q", m)
			}
			if m := inline.Find(body.Bytes()); m != nil && tt.contentType != "text/css; charset=utf-8" {
				t.Errorf("inline code or style: %q", m)
			}
		})
	}
	page, _ := http.Get(e.url + "/r/x")
	var body bytes.Buffer
	body.ReadFrom(page.Body)
	page.Body.Close()
	for _, want := range []string{`<script src="/r/app.js" defer></script>`, `<link rel="stylesheet" href="/r/style.css">`} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}
