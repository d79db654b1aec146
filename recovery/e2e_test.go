package recovery_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/keydesk/keydesk/enroll"
	"github.com/keydesk/keydesk/enroll/rpclient"
	"github.com/keydesk/keydesk/platform"
	"github.com/keydesk/keydesk/recovery"
	"github.com/keydesk/keydesk/rp/audit"
	"github.com/keydesk/keydesk/rp/server"
)

// TestRecoveryEndToEnd is issue 7's whole recovery, as one test, with
// real parts only: root has a security key (a software key behind the
// real libfido2) and a passkey on their phone (registered in Chromium on
// the RP's origin). The key is lost. At the desktop, Keydesk starts a QR
// handoff; the phone opens the QR code's link, shows which computer asks,
// from where and when, the user taps the number the desktop shows and the
// page approves with the passkey, user verification required; the
// desktop learns it from the events stream, redeems with its ephemeral
// key, enrolls a replacement key and revokes the lost one. Then: the
// lost key is refused, the replacement signs in, the audit log and the
// notifications tell the story, and the secret of the QR code never
// left the phone nor reached a log.
func TestRecoveryEndToEnd(t *testing.T) {
	b := sharedBrowser(t)
	ctx := context.Background()
	e := newEnv(t, nil)

	// Before: a security key, and a passkey on the phone.
	lostKey := openKey(t)
	app, lost := e.enrollFirstKey(t, lostKey, "desk key")
	phone := b.NewPhone(t)
	phoneKey := e.registerPhonePasskey(t, phone, app.token(t))
	if err := app.SignOut(ctx); err != nil {
		t.Fatal(err)
	}

	// The key is lost. The desktop starts the handoff and shows it.
	desktop := e.client(t)
	h, err := recovery.Start(ctx, desktop, "root", "build-laptop-7")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	wantURL := e.origin + "/r/" + h.SessionID() + "#" + h.Secret()
	if h.URL() != wantURL || h.Number() < 10 || h.Number() > 99 || len(h.TypedCode()) != 9 {
		t.Fatalf("handoff: URL %q (want %q), number %d, typed code of %d characters", h.URL(), wantURL, h.Number(), len(h.TypedCode()))
	}
	if left := h.Remaining(time.Now()); left < 2*time.Minute || left > 3*time.Minute+time.Second {
		t.Errorf("countdown at %v, want about 3 minutes", left)
	}
	qr, err := h.QR(256)
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(bytes.NewReader(qr)); err != nil || img.Bounds().Dx() != 256 {
		t.Fatalf("QR: %v, %v", err, img.Bounds())
	}
	waiting := waitAsync(h, time.Minute)

	// The phone scans the code: the page says who asks.
	phone.Navigate(h.URL())
	phone.WaitVisible("#describe")
	for sel, want := range map[string]string{"#d-user": "root", "#d-desktop": "build-laptop-7", "#d-ip": "127.0.0.1"} {
		if got := phone.Text(sel); got != want {
			t.Errorf("the page shows %s = %q, want %q", sel, got, want)
		}
	}
	if phone.Text("#d-time") == "" {
		t.Error("the page does not show when the request was made")
	}
	var address string
	phone.Eval("location.href", &address)
	if strings.Contains(address, "#") || strings.Contains(address, h.Secret()) {
		t.Errorf("the secret stayed in the address bar: %s", address)
	}
	if ns := numbers(t, phone); len(ns) != 3 {
		t.Fatalf("the page offers %v, want three numbers", ns)
	}

	// The user taps the desktop's number; the passkey approves.
	signCount := phone.Credentials()[0].SignCount
	pick(t, phone, h.Number())
	phone.WaitVisible("#done")
	r := result(t, waiting, 10*time.Second)
	if r.err != nil || r.o.Status != recovery.Approved {
		t.Fatalf("Wait = %+v, %v; want approved", r.o, r.err)
	}
	if creds := phone.Credentials(); creds[0].SignCount <= signCount {
		t.Errorf("the phone's passkey was not used (sign count %d, then %d)", signCount, creds[0].SignCount)
	}
	// Approval to desktop: from the page sending its approval (the
	// browser's own clock of the request, Resource Timing) to Wait
	// returning, on one machine's clock.
	var sent float64
	phone.Eval(`(() => {
		const e = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/approve/finish"));
		return e ? performance.timeOrigin + e.startTime : 0;
	})()`, &sent)
	if sent == 0 {
		t.Fatal("the page's approval request is not in its resource timing")
	}
	latency := time.Duration(float64(r.o.At.UnixNano()) - sent*float64(time.Millisecond))
	t.Logf("Chromium: approval sent -> desktop knows: %v", latency.Round(100*time.Microsecond))
	if latency > time.Second {
		t.Errorf("the desktop learned of the approval %v after the phone sent it, want under 1 s", latency)
	}

	// The desktop redeems with its ephemeral key.
	sess, token, err := h.Redeem(ctx)
	if err != nil {
		t.Fatalf("Redeem: %v", err)
	}
	if sess.Scope != "recovery" || sess.User.Name != "root" || token == "" || sess.Token != "" {
		t.Fatalf("recovery session %+v", sess)
	}
	if _, _, err := h.Redeem(ctx); !errors.Is(err, recovery.ErrUsed) {
		t.Errorf("a second Redeem = %v, want ErrUsed", err)
	}

	// The walk through the recovery session: the replacement enrolled,
	// the lost key revoked.
	replacement := openKey(t)
	var ev recorder
	var offered []enroll.Key
	sum, err := recovery.Recover(ctx, e.config(t, enroll.UI{Event: ev.add}), token, recovery.Plan{
		Replacement: replacement, Nickname: "new desk key",
		SelectLost: func(usable []enroll.Key) ([]string, error) {
			offered = usable
			return []string{lost.ID}, nil
		},
	})
	if err != nil {
		t.Fatalf("Recover: %v\nevents:\n%s", err, ev.text())
	}
	if len(offered) != 2 || !hasKey(offered, lost.ID) || !hasKey(offered, phoneKey.ID) {
		t.Errorf("the keys offered as lost: %+v", offered)
	}
	if sum.User.Name != "root" || sum.Enrolled == nil || sum.Enrolled.Nickname != "new desk key" ||
		len(sum.Revoked) != 1 || sum.Revoked[0].ID != lost.ID || sum.Revoked[0].RevokedAt == nil {
		t.Fatalf("summary %+v", sum)
	}
	if ev.count(enroll.EventTouch) == 0 {
		t.Errorf("no touch prompt for the replacement:\n%s", ev.text())
	}
	if ended, err := e.client(t).WithToken(token); err != nil {
		t.Fatal(err)
	} else if _, err := ended.Me(ctx); !errors.Is(err, rpclient.ErrUnauthorized) {
		t.Errorf("the recovery session lives on after Recover: %v", err)
	}

	// After: the lost key is refused, by name and as a passkey.
	check := e.app(t, enroll.UI{})
	if _, err := check.SignIn(ctx, lostKey, "root"); err == nil {
		t.Fatal("the lost key signed in")
	}
	if _, err := check.SignIn(ctx, lostKey, ""); !errors.Is(err, rpclient.ErrKeyRevoked) {
		t.Fatalf("a discoverable sign-in with the lost key = %v, want ErrKeyRevoked", err)
	}
	// The replacement signs in.
	if s, err := check.SignIn(ctx, replacement, "root"); err != nil || s.Scope != "full" {
		t.Fatalf("sign-in with the replacement: %+v, %v", s, err)
	}
	keys, err := check.Keys(ctx, []platform.Authenticator{replacement})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		switch k.ID {
		case lost.ID:
			if k.RevokedAt == nil || k.RevokeReason != "lost" {
				t.Errorf("the lost key %+v", k)
			}
		case sum.Enrolled.ID:
			if k.RevokedAt != nil || !k.PluggedIn {
				t.Errorf("the replacement %+v", k)
			}
		case phoneKey.ID:
			if k.RevokedAt != nil {
				t.Errorf("the phone's passkey was revoked")
			}
		default:
			t.Errorf("an unexpected key %+v", k)
		}
	}

	// The audit log tells the story, every step by the recovering user.
	entries, export := e.auditLog(t, check.token(t))
	for _, want := range []struct {
		action  audit.Action
		details map[string]string
	}{
		{audit.ActionRecoveryRequested, map[string]string{"id": h.SessionID(), "method": "qr", "desktopName": "build-laptop-7", "account": "known"}},
		{audit.ActionRecoveryApproved, map[string]string{"id": h.SessionID()}},
		{audit.ActionRecoveryRedeemed, map[string]string{"id": h.SessionID()}},
		{audit.ActionCredentialRegistered, nil},
		{audit.ActionCredentialRevoked, map[string]string{"reason": "lost", "scope": "recovery"}},
	} {
		if n := countAudit(entries, want.action, "root", want.details); n == 0 {
			t.Errorf("the audit log has no %s %v", want.action, want.details)
		}
	}
	for _, en := range entries {
		if en.Action == audit.ActionRecoveryApproved && en.CredentialID != phoneKey.ID {
			t.Errorf("the approval is credited to %q, not the phone's passkey", en.CredentialID)
		}
	}
	for _, kind := range []server.NotificationKind{server.NotifyRecoveryRequested, server.NotifyRecoveryApproved, server.NotifyRecoveryRedeemed} {
		if n := e.notes.WaitFor(t, "root", kind); n.DesktopName != "build-laptop-7" {
			t.Errorf("notification %+v", n)
		}
	}

	// The phone: no error, no CSP violation, and the secret never in a
	// request line or header (a Referer, say). It travels in one place
	// only: the JSON body of the page's own POSTs to the RP's recovery
	// API, the proof that the phone read the QR code (api.RecoveryProof).
	phone.CheckNoErrors()
	proofs := 0
	for _, r := range phone.RequestsContaining(h.Secret()) {
		path := strings.TrimPrefix(r.URL, e.origin+"/v1/recovery/sessions/"+h.SessionID()+"/")
		body := strings.ReplaceAll(string(r.Body), h.Secret(), "")
		line := strings.ReplaceAll(r.Line(), h.Secret(), "SECRET")
		switch {
		case strings.Contains(r.URL, h.Secret()):
			t.Errorf("the phone sent the QR secret in a request line: %s", line)
		case r.Method != "POST" || path == r.URL || !strings.Contains(string(r.Body), `"secret":"`+h.Secret()+`"`):
			t.Errorf("the phone sent the QR secret elsewhere than in a recovery proof: %s %s", line, body)
		default:
			proofs++
		}
		for k, v := range r.Headers {
			if strings.Contains(k+v, h.Secret()) {
				t.Errorf("the phone sent the QR secret in the %s header of %s", k, line)
			}
		}
	}
	if proofs != 3 {
		t.Errorf("the secret went in %d proofs, want 3 (describe, approve/begin, approve/finish)", proofs)
	}
	// The phone's authenticator verified its user: the assertion the page
	// sent has the UV flag (authenticator data, byte 32, bit 2).
	finishes := 0
	for _, r := range phone.Requests() {
		if !strings.HasSuffix(r.URL, "/approve/finish") {
			continue
		}
		finishes++
		var fin struct {
			Credential struct {
				Response struct {
					AuthenticatorData string `json:"authenticatorData"`
				} `json:"response"`
			} `json:"credential"`
		}
		if err := json.Unmarshal(r.Body, &fin); err != nil {
			t.Fatalf("the approval's body: %v", err)
		}
		ad, err := base64.RawURLEncoding.DecodeString(fin.Credential.Response.AuthenticatorData)
		if err != nil || len(ad) < 37 {
			t.Fatalf("the approval's authenticator data %q: %v", fin.Credential.Response.AuthenticatorData, err)
		}
		if flags := ad[32]; flags&0x04 == 0 {
			t.Errorf("the approval's assertion has flags %#02x: the user was not verified", flags)
		}
	}
	if finishes != 1 {
		t.Errorf("%d approvals sent, want 1", finishes)
	}
	sawFragment := false
	for _, r := range phone.Requests() {
		if strings.Contains(r.URL, "#") {
			t.Errorf("a request line with a fragment: %s", r.Line())
		}
		sawFragment = sawFragment || r.Fragment != ""
	}
	if !sawFragment {
		t.Error("the phone never opened a link with a fragment: the test did not test the secret's path")
	}
	secrets := map[string]string{"QR secret": h.Secret(), "typed code": h.TypedCode(), "desktop token": h.DesktopToken(),
		"recovery session token": token}
	wantNoSecrets(t, "audit log", export, secrets)
	wantNoSecrets(t, "server log", e.logs.Bytes(), secrets)
}

// hasKey reports whether keys holds the key id.
func hasKey(keys []enroll.Key, id string) bool {
	for _, k := range keys {
		if k.ID == id {
			return true
		}
	}
	return false
}
